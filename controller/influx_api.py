"""Sending one batch of line protocol to InfluxDB, and what came of it.

Two clients with the same shape, chosen by :attr:`InfluxConfig.version`:

- :class:`V1Api`: ``POST /write?db=&rp=&precision=ms`` over httpx (InfluxDB 1.x; 2.x and 3.x
  accept it too), ``CREATE DATABASE`` through ``/query``;
- :class:`V2Api`: ``influxdb-client``'s synchronous write API run in a worker thread (the
  client's asyncio API needs aiohttp, which Lykta does not depend on).

Each ``send`` returns an :class:`Outcome` instead of raising, so the writer decides about
retries in one place: :data:`Outcome.RETRY` for 5xx, 408, 429, timeouts and connection errors,
and for 401/403 (the credentials are wrong, not the data: keep the batch);
:data:`Outcome.REJECTED` for other 4xx (the batch, or its bad lines, will never be accepted).
"""

from __future__ import annotations

import asyncio
import enum
import gzip
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import httpx

from controller.influx_config import InfluxConfig

if TYPE_CHECKING:
    from influxdb_client import WritePrecision

# 4xx answers that are not a verdict on the data: "try again later" (408, 429), and refused
# credentials (401, 403) -- dropping readings because a token expired would lose them all,
# so those batches wait in the spool until the credentials are fixed.
_RETRY_4XX = {401, 403, 408, 429}
_AUTH = {401, 403}
_DROPPED_RE = re.compile(r"dropped=(\d+)")


class Outcome(enum.Enum):
    """What happened to a batch."""

    WRITTEN = "written"
    RETRY = "retry"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one attempt, the HTTP status if any, and the server's reason."""

    outcome: Outcome
    status: int | None = None
    reason: str = ""

    def dropped_lines(self, batch_lines: int) -> int:
        """How many lines of a rejected batch InfluxDB did not store.

        A 1.x "partial write" 400 stores the good lines and names each bad one ("unable to
        parse '...'") or counts them ("dropped=N"); any other rejection stores nothing.
        """
        if self.outcome is not Outcome.REJECTED:
            return 0
        if "partial write" in self.reason:
            n = self.reason.count("unable to parse")
            n += sum(int(x) for x in _DROPPED_RE.findall(self.reason))
            return min(max(n, 1), batch_lines)
        return batch_lines


def classify(status: int, reason: str) -> Result:
    """The :class:`Result` of an HTTP answer (pure: tested without a server)."""
    if 200 <= status < 300:
        return Result(Outcome.WRITTEN, status)
    if status >= 500 or status in _RETRY_4XX:
        return Result(Outcome.RETRY, status, reason)
    return Result(Outcome.REJECTED, status, reason)


def _error_text(body: bytes | str | None) -> str:
    if not body:
        return ""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(data, dict):
        return str(data.get("error") or data.get("message") or text).strip()
    return text.strip()


class V1Api:
    """InfluxDB 1.x ``/write`` (``precision=ms``) through one pooled httpx client."""

    def __init__(self, config: InfluxConfig) -> None:
        self.config = config
        auth = (config.username, config.password_value() or "") if config.username else None
        self._client = httpx.AsyncClient(
            base_url=config.url.rstrip("/"), timeout=config.timeout_s, auth=auth
        )
        params = {"db": config.database, "precision": "ms"}
        if config.retention_policy:
            params["rp"] = config.retention_policy
        self._params = params
        self.target = f"{config.url} database {config.database!r}"

    async def prepare(self) -> Result:
        """Create the database if it is missing (``CREATE DATABASE`` is idempotent)."""
        if not self.config.create_database:
            return Result(Outcome.WRITTEN)
        name = self.config.database.replace("\\", "\\\\").replace('"', '\\"')
        try:
            r = await self._client.post("/query", data={"q": f'CREATE DATABASE "{name}"'})
        except httpx.HTTPError as e:
            return Result(Outcome.RETRY, None, f"{type(e).__name__}: {e}")
        result = classify(r.status_code, _error_text(r.content))
        if r.status_code in _AUTH:  # on start, wrong credentials are a configuration error
            return Result(Outcome.REJECTED, r.status_code, result.reason)
        if result.outcome is Outcome.WRITTEN:
            # /query answers 200 even for failed statements; the error is in the body
            err = _error_text(r.content) if b'"error"' in r.content else ""
            if err:
                return Result(Outcome.REJECTED, r.status_code, err)
        return result

    async def send(self, body: bytes) -> Result:
        """POST one batch to ``/write`` (gzip-compressed if configured)."""
        headers = None
        if self.config.gzip:
            # level 1: most of the size gain at a fraction of the CPU (line protocol repeats)
            body = await asyncio.to_thread(gzip.compress, body, 1)
            headers = {"Content-Encoding": "gzip"}
        try:
            r = await self._client.post(
                "/write", params=self._params, content=body, headers=headers
            )
        except httpx.HTTPError as e:  # timeouts, refused/reset connections, protocol errors
            return Result(Outcome.RETRY, None, f"{type(e).__name__}: {e}")
        if r.status_code == 204:
            return Result(Outcome.WRITTEN, 204)
        return classify(r.status_code, _error_text(r.content))

    def database_missing(self, result: Result) -> bool:
        """Whether a rejection says the database does not exist (it can be created)."""
        return result.status == 404 and "database not found" in result.reason

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


class V2Api:
    """InfluxDB 2.x/3.x (and 1.8+) v2 write API through ``influxdb-client``."""

    def __init__(self, config: InfluxConfig) -> None:
        from influxdb_client import InfluxDBClient, WritePrecision
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.config = config
        token, org, bucket = config.token_value(), config.org, config.bucket
        if token is None or org is None or bucket is None:  # InfluxConfig validates this
            raise ValueError("InfluxDB 2.x/3.x needs token (or token_file), org and bucket")
        self._org, self._bucket = org, bucket
        # influxdb-client annotates its precision constants (plain str) as WritePrecision
        self._precision = cast("WritePrecision", WritePrecision.MS)
        # retries=False: the writer retries, with backoff and the spool behind it
        self._client = InfluxDBClient(
            url=config.url,
            token=token,
            org=org,
            timeout=int(config.timeout_s * 1000),
            enable_gzip=config.gzip,
            retries=False,
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self.target = f"{config.url} bucket {config.bucket!r} of org {config.org!r}"

    async def prepare(self) -> Result:
        """Nothing to create: buckets are provisioned with the token that writes to them."""
        return Result(Outcome.WRITTEN)

    def _write(self, body: bytes) -> Result:
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError as Urllib3Error

        try:
            self._write_api.write(
                bucket=self._bucket,
                org=self._org,
                record=body,
                write_precision=self._precision,
            )
        except ApiException as e:
            reason = _error_text(e.body) or str(e.reason or "")
            if not e.status:  # no HTTP answer at all
                return Result(Outcome.RETRY, None, reason)
            return classify(int(e.status), reason)
        except (Urllib3Error, OSError) as e:
            return Result(Outcome.RETRY, None, f"{type(e).__name__}: {e}")
        return Result(Outcome.WRITTEN, 204)

    async def send(self, body: bytes) -> Result:
        """Write one batch (in a worker thread: the client is synchronous)."""
        return await asyncio.to_thread(self._write, body)

    def database_missing(self, result: Result) -> bool:
        """A missing bucket is a provisioning error, not created here."""
        return False

    async def close(self) -> None:
        """Close the client."""
        await asyncio.to_thread(self._client.close)


def make_api(config: InfluxConfig) -> V1Api | V2Api:
    """The client for ``config.version``."""
    return V1Api(config) if config.version == 1 else V2Api(config)
