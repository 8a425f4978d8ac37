"""`lykta provision neighbours`: the ACL entries that let each gateway read exactly its presence
neighbours' event topics, generated from the strategy (the shipped ACL holds them)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from lykta.cli.main import app

ROOT = Path(__file__).parents[2]
STRATEGY = ROOT / "config" / "norrkoping" / "strategy.toml"
SHIPPED = ROOT / "config" / "mosquitto" / "lykta.acl"
cli = CliRunner()


def run(*args: object) -> tuple[int, str]:
    r = cli.invoke(app, [str(a) for a in args])
    return r.exit_code, r.output


def test_the_shipped_acl_holds_exactly_the_generated_neighbours(tmp_path: Path) -> None:
    code, block = run("provision", "neighbours", "--strategy", STRATEGY, "--site", "norrkoping")
    assert code == 0
    assert block in SHIPPED.read_text(), "run lykta provision neighbours --acl on the shipped ACL"
    reads = [ln for ln in block.splitlines() if ln.startswith(("user ", "topic "))]
    assert reads == [
        "user gw-centrum", "topic read lykta/v1/norrkoping/gw-saltangen/event",
        "user gw-saltangen", "topic read lykta/v1/norrkoping/gw-centrum/event",
    ]  # fmt: skip
    # and rewriting the shipped ACL changes nothing
    acl = tmp_path / "lykta.acl"
    acl.write_text(SHIPPED.read_text())
    code, out = run("provision", "neighbours", "--strategy", STRATEGY, "--site", "norrkoping",
                    "--acl", acl)  # fmt: skip
    assert code == 0 and "unchanged" in out and acl.read_text() == SHIPPED.read_text()


def test_the_generated_block_is_replaced_not_repeated(tmp_path: Path) -> None:
    acl = tmp_path / "lykta.acl"
    stale = ("pattern write lykta/v1/x/%u/state\n\n"
             "# >>> presence neighbours of site x (lykta provision neighbours)\n"
             "user gw-old\ntopic read lykta/v1/x/gw-gone/event\n"
             "# <<< presence neighbours of site x\n"
             "user lykta-controller\ntopic readwrite lykta/v1/x/#\n")  # fmt: skip
    acl.write_text(stale)
    code, out = run("provision", "neighbours", "--strategy", STRATEGY, "--site", "x", "--acl", acl)
    assert code == 0 and "updated" in out
    text = acl.read_text()
    assert "gw-old" not in text and "gw-gone" not in text
    assert text.count("# >>> presence neighbours of site x") == 1
    assert "user gw-saltangen\ntopic read lykta/v1/x/gw-centrum/event" in text
    assert text.startswith("pattern write lykta/v1/x/%u/state\n")
    assert text.endswith("user lykta-controller\ntopic readwrite lykta/v1/x/#\n")
    before = text
    assert (
        run("provision", "neighbours", "--strategy", STRATEGY, "--site", "x", "--acl", acl)[0] == 0
    )
    assert acl.read_text() == before


def test_a_bad_strategy_or_site_is_a_clear_error(tmp_path: Path) -> None:
    code, out = run("provision", "neighbours", "--strategy", tmp_path / "none.toml", "--site", "x")
    assert code == 1 and "error" in out
    code, out = run("provision", "neighbours", "--strategy", STRATEGY, "--site", "a/#")
    assert code == 1 and "not a valid id" in out
