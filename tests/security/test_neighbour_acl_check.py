"""Does a broker ACL file still grant what the strategy's corridors need? (the pure comparison
the controller makes; the CLI writes the block it compares with)."""

from __future__ import annotations

from pathlib import Path

from lykta.neighbour_acl import check_neighbour_acl, find_block, neighbour_acl
from lykta.strategy import load_strategy, presence_neighbours

ROOT = Path(__file__).parents[2]
SHIPPED = ROOT / "config" / "mosquitto" / "lykta.acl"
NORRKOPING = presence_neighbours(load_strategy(ROOT / "config" / "norrkoping" / "strategy.toml"))
HEAD = "pattern write lykta/v1/s/%u/state\n"
TAIL = "user lykta-controller\ntopic readwrite lykta/v1/s/#\n"
NB = {"gw-b": ["gw-a", "gw-c"], "gw-c": ["gw-b"]}


def test_the_shipped_acl_fits_the_shipped_strategy() -> None:
    assert NORRKOPING  # the example has corridors across cabinets
    assert check_neighbour_acl(SHIPPED.read_text(), NORRKOPING, "norrkoping").ok
    # the same file for another site id has no block of that site
    other = check_neighbour_acl(SHIPPED.read_text(), NORRKOPING, "linkoping")
    assert not other.ok and "no presence-neighbours block for site linkoping" in other.describe()


def test_the_generated_block_fits_and_is_found_between_other_entries() -> None:
    text = HEAD + "\n" + neighbour_acl(NB, "s") + TAIL
    assert find_block(text, "s") == neighbour_acl(NB, "s")
    check = check_neighbour_acl(text, NB, "s")
    assert check.ok and check.describe() == "" and check.gateways() == []
    # a changed comment or order is no alarm: the grants are compared
    reordered = text.replace("# generated from the strategy", "# edited by hand")
    assert check_neighbour_acl(reordered, NB, "s").ok


def test_a_missing_block_names_every_read_the_corridors_need() -> None:
    check = check_neighbour_acl(HEAD + TAIL, NB, "s", where="/etc/mosquitto/lykta.acl")
    assert not check.ok
    assert check.missing == (("gw-b", "gw-a"), ("gw-b", "gw-c"), ("gw-c", "gw-b"))
    assert check.gateways() == ["gw-b", "gw-c"]
    text = check.describe()
    assert "/etc/mosquitto/lykta.acl has no presence-neighbours block for site s" in text
    assert "gw-b cannot read the presence events of gw-a" in text
    # no neighbours at all: nothing to grant, no block needed
    assert check_neighbour_acl(HEAD + TAIL, {}, "s").ok


def test_a_stale_block_names_what_is_missing_and_what_is_left_over() -> None:
    old = {"gw-b": ["gw-a"], "gw-d": ["gw-e"]}  # the block of an older strategy
    check = check_neighbour_acl(HEAD + neighbour_acl(old, "s") + TAIL, NB, "s")
    assert not check.ok and check.error is None
    assert check.missing == (("gw-b", "gw-c"), ("gw-c", "gw-b"))
    assert check.extra == (("gw-d", "gw-e"),)
    assert "gw-c cannot read the presence events of gw-b" in check.describe()
    assert "still granted: gw-d reads gw-e" in check.describe()
    # a read of another site's topic, or a write, grants nothing here
    wrong = neighbour_acl(NB, "s").replace("topic read lykta/v1/s/gw-a/event",
                                           "topic write lykta/v1/s/gw-a/event")  # fmt: skip
    wrong = wrong.replace("topic read lykta/v1/s/gw-b/event", "topic read lykta/v1/x/gw-b/event")
    assert check_neighbour_acl(wrong, NB, "s").missing == (("gw-b", "gw-a"), ("gw-c", "gw-b"))


def test_an_unreadable_file_is_reported_not_raised() -> None:
    check = check_neighbour_acl(None, NB, "s", where="/nowhere (No such file or directory)")
    assert not check.ok and len(check.missing) == 3
    assert check.describe().startswith("/nowhere (No such file or directory) cannot be read")
