"""What the API refuses at its door: non-finite numbers, oversized bodies, uploaded strategies
that name files on the server; and its docs pages work without a CDN."""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from controller.body_guard import finite
from controller.config import ControllerConfig
from controller.registry import Role
from controller.service import ControllerService
from tests.controller.conftest import STRATEGY

STRATEGY_TOML = STRATEGY.read_text()
INVENTORY_CSV = (STRATEGY.parent / "inventory.csv").read_text()


@pytest.fixture
def limited_cfg(controller_cfg: ControllerConfig, tmp_path: Path) -> ControllerConfig:
    inv = tmp_path / "inventories"
    inv.mkdir()
    (inv / "norrkoping.csv").write_text(INVENTORY_CSV)
    api = controller_cfg.api.model_copy(update={"max_body_bytes": 256 * 1024,
                                                "inventory_dir": inv})  # fmt: skip
    return controller_cfg.model_copy(update={"api": api})


@pytest.fixture
async def svc(limited_cfg: ControllerConfig) -> AsyncIterator[ControllerService]:
    async with ControllerService(limited_cfg) as s:
        await s.wait_ready(30)
        yield s


@pytest.fixture
async def api(svc: ControllerService) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=svc.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://lykta") as client:
        yield client


@pytest.fixture
def op(svc: ControllerService) -> dict[str, str]:
    return {"Authorization": f"Bearer {svc.registry.create_token('op', Role.OPERATOR, 1)}"}


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_numbers_get_a_422_that_is_json(
    api: httpx.AsyncClient, op: dict[str, str], constant: str
) -> None:
    body = f'{{"latitude": {constant}, "longitude": 16.1}}'
    r = await api.put("/api/v1/luminaires/STR-001/position", content=body,
                      headers={**op, "content-type": "application/json"})  # fmt: skip
    assert r.status_code == 422, r.text
    assert constant.lstrip("-") in r.json()["detail"]


async def test_a_number_beyond_float_range_is_refused_too(
    api: httpx.AsyncClient, op: dict[str, str]
) -> None:
    r = await api.put("/api/v1/luminaires/STR-001/position",
                      content='{"latitude": 1e400, "longitude": 1}',
                      headers={**op, "content-type": "application/json"})  # fmt: skip
    assert r.status_code == 422 and "1e400" in r.json()["detail"], r.text


def test_validation_errors_are_made_serialisable() -> None:
    """The 422 handler's own guard, should a non-finite float reach validation anyway."""
    errors = [{"loc": ["body", "x"], "input": float("nan"), "ctx": {"le": float("inf")}}]
    assert json.loads(json.dumps(finite(errors), allow_nan=False)) == [
        {"loc": ["body", "x"], "input": "nan", "ctx": {"le": "inf"}}]  # fmt: skip


async def test_request_bodies_are_bounded(api: httpx.AsyncClient, op: dict[str, str]) -> None:
    big = {"strategy_toml": STRATEGY_TOML, "inventory_csv": "x" * (300 * 1024)}
    r = await api.post("/api/v1/strategies", json=big, headers=op)
    assert r.status_code == 413 and "request body over" in r.json()["detail"]

    async def chunks():  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b" " * 10_000

    r = await api.post("/api/v1/strategies", content=chunks(),
                       headers={**op, "content-type": "application/json"})  # fmt: skip
    assert r.status_code == 413


@pytest.mark.parametrize("name", ["/etc/passwd", "../../../etc/passwd", "sub/x.csv", "fifo"])
async def test_an_uploaded_strategy_cannot_name_a_file_on_the_server(
    api: httpx.AsyncClient, op: dict[str, str], limited_cfg: ControllerConfig, name: str
) -> None:
    assert limited_cfg.api.inventory_dir is not None
    if name == "fifo":
        os.mkfifo(limited_cfg.api.inventory_dir / "fifo")  # reading it would hang a worker
    toml = re.sub(r'(?m)^inventory = ".*"$', f'inventory = "{name}"', STRATEGY_TOML)
    assert f'inventory = "{name}"' in toml
    r = await api.post("/api/v1/strategies", json={"strategy_toml": toml}, headers=op)
    assert r.status_code == 422, r.text
    problems = " ".join(r.json()["problems"])
    assert "inventory" in problems and "root:" not in problems


async def test_inventory_by_name_from_the_configured_directory_or_in_the_upload(
    api: httpx.AsyncClient, op: dict[str, str]
) -> None:
    toml = re.sub(r'(?m)^inventory = ".*"$', 'inventory = "norrkoping.csv"', STRATEGY_TOML)
    r = await api.post("/api/v1/strategies", json={"strategy_toml": toml}, headers=op)
    assert r.status_code == 201, r.text
    r = await api.post("/api/v1/strategies", json={"strategy_toml": STRATEGY_TOML,
                                                   "inventory_csv": INVENTORY_CSV}, headers=op)
    assert r.status_code == 201, r.text


async def test_docs_pages_use_only_packaged_assets(api: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        html = (await api.get(page)).text
        urls = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
        assert urls and not [u for u in urls if "://" in u], urls
        for u in re.findall(r'src="([^"]+\.js)"', html):
            r = await api.get(u)
            assert r.status_code == 200 and len(r.content) > 10_000, u
