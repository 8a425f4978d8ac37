"""``lykta dashboards check``: passes on what the real demo pipeline wrote, and fails on each
thing it is there to catch (stale JSON, a key Grafana's model does not know, a panel without
unit or description, a query InfluxDB refuses, a panel with no data)."""

from __future__ import annotations

import copy
import json
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from lykta.cli.dashboard_check import (
    completeness_problems,
    influx_runner,
    panels,
    round_trip_problem,
    run_queries,
)
from lykta.stack import StackInfo

DASHBOARDS = Path(__file__).parents[2] / "dashboards"


def lykta(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lykta.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def committed() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def test_check_passes_on_data_the_demo_pipeline_wrote() -> None:
    """The one-command check: a private stack, a staged demo night, every query."""
    r = lykta("dashboards", "check", "--seconds", "30", timeout=110)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    boards = committed()
    n_panels = sum(1 for d in boards.values() for _ in panels(d))
    assert len(boards) == 5 and n_panels >= 25
    assert f"{len(boards)} dashboards, {n_panels} panels, all queries return data" in r.stdout
    panel_lines = [ln for ln in r.stdout.splitlines()
                   if re.match(r"ok   \S+ / (?!variable )", ln)]  # fmt: skip
    assert len(panel_lines) == n_panels
    assert not re.search(r"^FAIL", r.stdout, flags=re.M)


def test_stale_json_fails_the_check(tmp_path: Path) -> None:
    shutil.copytree(DASHBOARDS, tmp_path / "d", ignore=shutil.ignore_patterns("provisioning"))
    path = tmp_path / "d" / "energy.json"
    data = json.loads(path.read_text())
    data["panels"][0]["title"] = "edited by hand"
    path.write_text(json.dumps(data))
    r = lykta("dashboards", "check", "--dir", str(tmp_path / "d"), "--influx", "http://x")
    assert r.returncode == 1
    assert "energy.json: stale against the generator at $.panels[0].title" in r.stdout


def test_a_price_built_in_is_not_stale_and_no_influxdb_is_one_line(tmp_path: Path) -> None:
    r = lykta("dashboards", "build", "--out", str(tmp_path), "--price", "2.25")
    assert r.returncode == 0, r.stderr
    assert '"query": "2.25"' in (tmp_path / "energy.json").read_text()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    r = lykta("dashboards", "check", "--dir", str(tmp_path), "--influx",
              f"http://127.0.0.1:{port}")  # fmt: skip
    assert r.returncode == 1
    assert "up to date with the generator" in r.stdout
    assert r.stdout.strip().splitlines()[-1].startswith("error: cannot reach InfluxDB at")


def test_a_time_zone_built_in_is_a_variable_the_day_panels_use(tmp_path: Path) -> None:
    """Per-day panels group by the site's days: its zone is a variable (default from
    ``build --timezone``), not a constant a city elsewhere would have to edit by hand."""
    r = lykta("dashboards", "build", "--out", str(tmp_path), "--timezone", "Europe/Helsinki")
    assert r.returncode == 0, r.stderr
    energy = json.loads((tmp_path / "energy.json").read_text())
    [tz] = [v for v in energy["templating"]["list"] if v["name"] == "timezone"]
    assert tz["query"] == "Europe/Helsinki"
    day_queries = [t["query"] for p in panels(energy) for t in p["targets"]
                   if "time(1d)" in t["query"]]  # fmt: skip
    assert day_queries and all("tz('$timezone')" in q for q in day_queries)
    r = lykta("dashboards", "check", "--dir", str(tmp_path), "--influx", "http://x")
    assert "up to date with the generator" in r.stdout  # not stale: built with its zone
    r = lykta("dashboards", "build", "--out", str(tmp_path / "bad"), "--timezone", "Mars/Base")
    assert r.returncode == 2 and "not an IANA time zone" in r.stdout + r.stderr
    assert not (tmp_path / "bad").exists()


def test_a_key_grafanas_model_does_not_know_fails_the_round_trip() -> None:
    data = committed()["energy"]
    assert round_trip_problem(data) is None
    bad = copy.deepcopy(data)
    bad["panels"][1]["fieldConfig"]["defaults"]["unitt"] = "watt"  # a typo Grafana ignores
    assert round_trip_problem(bad) == "$.panels[1].fieldConfig.defaults.unitt (dropped)"


def test_a_panel_without_description_or_unit_is_reported() -> None:
    data = copy.deepcopy(committed()["uptime"])
    assert completeness_problems(data) == []
    p = data["panels"][2]
    del p["description"]
    del p["fieldConfig"]["defaults"]["unit"]
    data["templating"]["list"] = [v for v in data["templating"]["list"] if v["name"] != "zone"]
    assert completeness_problems(data) == [
        "no variable 'zone'", f"panel {p['title']!r} has no description, unit"]


def test_a_query_error_and_a_panel_without_data_fail(stack: StackInfo, influx_db: str) -> None:
    line = "zone_compliance,site=s,zone=z dark=0i 1800000000000"

    urllib.request.urlopen(f"{stack.influx_url}/write?db={influx_db}&precision=ms",
                           data=line.encode(), timeout=10).read()  # fmt: skip
    where = "WHERE $timeFilter AND \"zone\" =~ /^$zone$/"
    zones = 'SHOW TAG VALUES FROM "zone_compliance" WITH KEY = "zone"'

    def panel(title: str, q: str) -> dict:
        return {"title": title, "targets": [{"query": q}]}

    board = {
        "templating": {"list": [{"type": "query", "name": "zone", "includeAll": True,
                                 "allValue": ".*", "query": zones}]},
        "panels": [
            panel("good", f'SELECT sum("dark") FROM "zone_compliance" {where}'),
            panel("typo", f'SELEC sum("dark") FROM "zone_compliance" {where}'),
            panel("empty", f'SELECT sum("dark") FROM "nothing" {where}'),
            panel("unknown variable", "SELECT 1 FROM x WHERE $nope"),
        ],
    }  # fmt: skip

    query = influx_runner(stack.influx_url, influx_db)
    got = {r.title: r for r in run_queries("t", board, query, from_ms=1_799_999_000_000,
                                            to_ms=1_800_000_060_000)}  # fmt: skip
    assert got["variable $zone"].ok and got["good"].ok and got["good"].series == 1
    assert not got["typo"].ok and "InfluxDB: error parsing query" in got["typo"].errors[0]
    assert not got["empty"].ok and got["empty"].errors == [] and "no data" in got["empty"].line()
    assert got["unknown variable"].errors == ["unknown variable $nope"]
    # outside the time range the good panel has no data either: $timeFilter is applied
    [late] = [r for r in run_queries("t", board, query, from_ms=1_900_000_000_000,
                                     to_ms=1_900_000_060_000) if r.title == "good"]  # fmt: skip
    assert late.series == 0


def test_the_docs_describe_every_panel_with_its_query() -> None:
    doc = (DASHBOARDS.parent / "docs" / "dashboards.md").read_text()
    for name, data in committed().items():
        assert f"`dashboards/{name}.json`, uid `{data['uid']}`" in doc
        for p in panels(data):
            assert f"\n### {p['title']}\n" in doc, p["title"]
            for t in p["targets"]:
                assert f"```sql\n{t['query']}\n```" in doc, (p["title"], t["query"])


def test_provisioning_names_the_datasource_the_panels_use() -> None:
    """Grafana finds the panels' data source by uid: the provisioned one must carry it, and
    the provider's folder is the one ``push`` uses by default."""
    from lykta.cli.dashboard_influxql import DATASOURCE_TYPE, DATASOURCE_UID
    from lykta.cli.grafana_push import folder_uid

    prov = DASHBOARDS / "provisioning"
    ds = (prov / "datasources" / "lykta-influxdb.yaml").read_text()
    live = ds.split("\ndatasources:\n", 1)[1]  # the entry, not the commented variants
    assert f"uid: {DATASOURCE_UID}\n" in live and f"type: {DATASOURCE_TYPE}\n" in live
    assert "url: ${LYKTA_INFLUX_URL}" in live and "dbName: ${LYKTA_INFLUX_DB}" in live
    provider = (prov / "dashboards" / "lykta.yaml").read_text()
    assert "type: file" in provider and "path: ${LYKTA_DASHBOARDS}" in provider
    assert f"folderUid: {folder_uid('Lykta')}\n" in provider
    used = {t["datasource"]["uid"] for d in committed().values() for p in panels(d)
            for t in p["targets"]}  # fmt: skip
    assert used == {DATASOURCE_UID}


def test_an_influx_url_that_is_not_http_is_one_line() -> None:
    # no scheme used to end in urllib's ValueError traceback; file:// is never opened
    for url in ("influx:8086", "file:///etc/passwd"):
        r = lykta("dashboards", "check", "--influx", url)
        assert r.returncode == 1
        assert r.stdout.strip().splitlines()[-1] == f"error: --influx {url}: write http(s)://HOST:PORT"
