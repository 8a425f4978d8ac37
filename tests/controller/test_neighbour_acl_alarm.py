"""The controller compares the broker's ACL file with the applied strategy's presence
neighbours: a stale file raises ``neighbour_acl_stale`` on apply, regenerating it clears the
alarm on the next tick; without a file configured, a change of neighbours is noted on apply."""

from __future__ import annotations

from pathlib import Path

from controller.alarms import AlarmKind
from controller.config import ControllerConfig
from controller.service import ControllerService
from lykta.cli.provision import write_neighbour_acl
from lykta.neighbour_acl import neighbour_acl
from lykta.strategy import Strategy, presence_neighbours
from tests.controller.conftest import eventually

SHIPPED_ACL = Path(__file__).parents[2] / "config" / "mosquitto" / "lykta.acl"


def _stale(svc: ControllerService) -> list[dict]:
    return [a for a in svc.registry.alarms(svc.site, active=True)
            if a["kind"] == AlarmKind.NEIGHBOUR_ACL_STALE]  # fmt: skip


def _without_saltangen(strategy: Strategy) -> Strategy:
    """The strategy with gw-saltangen's luminaires gone: no corridor crosses cabinets."""
    lums = [lum for lum in strategy.luminaires if lum.gateway != "gw-saltangen"]
    return strategy.model_copy(update={"luminaires": lums})


async def test_a_stale_acl_file_raises_on_apply_and_clears_once_regenerated(
    controller_cfg: ControllerConfig, norrkoping: Strategy, tmp_path: Path
) -> None:
    acl = tmp_path / "lykta.acl"
    # the shipped ACL's patterns, but the neighbours block of another site only
    acl.write_text(SHIPPED_ACL.read_text())
    programs = controller_cfg.programs.model_copy(update={"broker_acl_file": acl})
    cfg = controller_cfg.model_copy(update={"programs": programs})
    async with ControllerService(cfg) as svc:
        site = svc.site
        v = svc.registry.add_strategy_version(site, norrkoping, author="t", comment="", now_ms=1)
        notes: list[str] = []
        await svc.apply(v["id"], "tester", notes=notes)
        await eventually(lambda: len(_stale(svc)) == 1)
        [alarm] = _stale(svc)
        assert alarm["source"] == site and alarm["gateway"] is None
        assert alarm["priority"] == 1  # the corridors are safety routes
        for text in (alarm["message"], notes[0]):
            assert "gw-centrum cannot read the presence events of gw-saltangen" in text
            assert f"lykta provision neighbours --strategy FILE --site {site} --acl {acl}" in text
        # nothing changed: a tick neither re-reads nor re-raises
        await svc.tick()
        assert len(_stale(svc)) == 1
        # regenerated as the alarm says: the next tick clears it
        assert write_neighbour_acl(acl, neighbour_acl(presence_neighbours(norrkoping), site), site)
        await svc.tick()
        await eventually(lambda: not _stale(svc))
        assert not svc.engine.active()
        # the file gone (a broker host reinstalled): reported, the controller goes on
        acl.unlink()
        await svc.tick()
        await eventually(lambda: len(_stale(svc)) == 1)
        assert "cannot be read" in _stale(svc)[0]["message"]


async def test_without_a_file_a_change_of_neighbours_is_noted_on_apply(
    controller: ControllerService, norrkoping: Strategy
) -> None:
    svc, reg, site = controller, controller.registry, controller.site
    v1 = reg.add_strategy_version(site, norrkoping, author="t", comment="", now_ms=1)
    v2 = reg.add_strategy_version(site, _without_saltangen(norrkoping), author="t", comment="",
                                  now_ms=2)  # fmt: skip
    notes: list[str] = []
    await svc.apply(v1["id"], "tester", notes=notes)
    assert notes == []  # the first strategy: nothing to compare with
    await svc.apply(v1["id"], "tester", notes=notes)
    assert notes == []  # the same neighbours
    await svc.apply(v2["id"], "tester", notes=notes)
    [note] = notes
    assert "regenerate the broker ACL" in note and f"--site {site}" in note
    [audit] = [a for a in reg.audit_log() if a["action"] == "broker_acl"]
    assert audit["target"] == f"strategy/{v2['id']}" and audit["detail"]["note"] == note
    assert not _stale(svc)  # no file to judge: no alarm
