"""Pure parts of the writer: what to retry, how long to wait, how much a 4xx dropped."""

from __future__ import annotations

from pathlib import Path

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.influx_api import Outcome, Result, classify
from controller.influx_writer import InfluxConfig, InfluxWriter, backoff_delay
from lykta.stack import StackInfo, free_port
from tests.ingest.faultproxy import FaultProxy
from tests.ingest.test_influx_writer import _count, _lines


@settings(max_examples=300, deadline=None)
@given(
    attempt=st.integers(0, 200),
    initial=st.floats(0.001, 5),
    cap=st.floats(0.001, 60),
    u=st.floats(0, 1, exclude_max=True),
)
def test_backoff_is_exponential_capped_and_jittered(attempt, initial, cap, u):
    # Invariant: the delay lies in [d/2, d) for d = min(cap, initial * 2**attempt), so it never
    # exceeds the cap, never is zero, and doubles (in its bounds) with each attempt.
    d = min(cap, initial * 2.0**attempt)
    got = backoff_delay(attempt, initial=initial, cap=cap, u=u)
    assert d / 2 <= got <= d
    assert got <= cap


@given(st.integers(100, 599))
def test_only_server_side_throttling_and_credential_answers_are_retried(status: int):
    r = classify(status, "why")
    if 200 <= status < 300:
        assert r.outcome is Outcome.WRITTEN
    elif status >= 500 or status in (401, 403, 408, 429):
        assert r.outcome is Outcome.RETRY
    else:
        assert r.outcome is Outcome.REJECTED


def test_dropped_lines_are_read_from_the_reason():
    parse = "partial write: unable to parse 'a b': bad\nunable to parse 'c d': bad"
    assert classify(400, parse).dropped_lines(100) == 2
    conflict = 'partial write: field type conflict: input field "i" ... dropped=3'
    assert classify(400, conflict).dropped_lines(100) == 3
    assert classify(404, "bucket not found").dropped_lines(100) == 100
    assert Result(Outcome.WRITTEN, 204).dropped_lines(100) == 0


async def test_v2_writer_spools_while_the_server_is_unreachable(tmp_path: Path) -> None:
    # The influxdb-client path classifies a refused connection as retryable like the 1.x one.
    cfg = InfluxConfig(
        url=f"http://127.0.0.1:{free_port()}", version=2, token="t", org="o", bucket="b",
        attempts_before_spool=1, retry_initial_s=0.01,
    )
    async with InfluxWriter(cfg, spool_dir=tmp_path) as w:
        await w.write(["m v=1 1", "m v=2 2"])
        await w.flush()
        assert (w.stats.batches_spooled, w.stats.lines_spooled, w.stats.lines_written) == (1, 2, 0)


def test_v2_config_names_what_is_missing():
    try:
        InfluxConfig(version=2, token="t")
    except ValueError as e:
        assert "org, bucket" in str(e)
    else:
        raise AssertionError("version 2 without org and bucket accepted")


async def test_v2_writer_sends_ms_precision_with_token_org_and_bucket(
    stack: StackInfo, influx_db: str, tmp_path: Path
) -> None:
    # The v2 path through influxdb-client, checked on the wire (InfluxDB 2.x does not install
    # here; the proxy hands the v2 request's body to the real 1.x server).
    async with FaultProxy(stack.influx_url, [], v2_to_v1=True) as proxy:
        cfg = InfluxConfig(url=proxy.url, version=2, token="s3cret", org="nkpg", bucket=influx_db)
        async with InfluxWriter(cfg, spool_dir=tmp_path) as w:
            await w.write(_lines(0, 1200))
            await w.flush()
            assert w.stats.lines_written == 1200
        method, target, headers = next(r for r in proxy.requests if "/api/v2/write" in r[1])
    params = httpx.URL(target).params
    assert method == "POST" and params["precision"] == "ms"
    assert (params["org"], params["bucket"]) == ("nkpg", influx_db)
    assert headers["authorization"] == "Token s3cret"
    assert _count(stack.influx_url, influx_db) == 1200
