"""The broker ACL's presence-neighbours block: what grants each gateway ``read`` on exactly its
presence neighbours' ``event`` topics (corridors across cabinets), and whether an ACL file
still grants what the strategy needs.

Pure text in, text or a verdict out: ``lykta provision neighbours`` writes the block
(:func:`neighbour_acl`), the controller compares the broker's file with it
(:func:`check_neighbour_acl`). Mosquitto's ACL file does not refuse a subscription it denies
(it grants the SUBACK and drops the messages), so a stale block is invisible to the gateway:
this comparison is where it shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lykta.contract.topics import Topic, TopicKind, check_id

NEIGHBOURS_BEGIN = "# >>> presence neighbours of site {site} (lykta provision neighbours)"
NEIGHBOURS_END = "# <<< presence neighbours of site {site}"
_TOPIC_READ = re.compile(r"^topic\s+(?:(read|readwrite)\s+)?(\S+)\s*$")


def neighbour_acl(neighbours: dict[str, list[str]], site: str) -> str:
    """The ACL block granting each gateway ``read`` on exactly its presence neighbours'
    ``event`` topics (``neighbours``: :func:`lykta.strategy.presence_neighbours`)."""
    lines = [NEIGHBOURS_BEGIN.format(site=site),
             "# generated from the strategy: each gateway reads the presence of the gateways",
             "# whose corridors can reach its luminaires, and nothing else of theirs"]  # fmt: skip
    for gw in sorted(neighbours):
        lines.append(f"user {check_id(gw, 'gateway')}")
        lines += [f"topic read {Topic(site, n, TopicKind.EVENT)}" for n in neighbours[gw]]
    lines.append(NEIGHBOURS_END.format(site=site))
    return "\n".join(lines) + "\n"


def block_span(text: str, site: str) -> tuple[int, int] | None:
    """Where the site's generated block stands in ACL ``text``: from its begin marker to just
    after its end marker (the first end after the begin), or None if it has none."""
    begin, end = NEIGHBOURS_BEGIN.format(site=site), NEIGHBOURS_END.format(site=site)
    start = text.find(begin)
    if start < 0:
        return None
    stop = text.find(end, start + len(begin))
    return None if stop < 0 else (start, stop + len(end))


def find_block(text: str, site: str) -> str | None:
    """The site's generated block in ACL ``text`` (markers included), or None if it has none."""
    span = block_span(text, site)
    return None if span is None else text[span[0]:span[1]] + "\n"


def granted_reads(block: str, site: str) -> set[tuple[str, str]]:
    """(gateway, neighbour) pairs whose neighbour ``event`` topic ``block`` lets the gateway
    read (``topic read`` / ``readwrite`` / plain ``topic`` under a ``user`` line)."""
    user: str | None = None
    out: set[tuple[str, str]] = set()
    for raw in block.splitlines():
        line = raw.strip()
        if line.startswith("user "):
            user = line[5:].strip()
        elif user is not None and (m := _TOPIC_READ.match(line)):
            parts = m.group(2).split("/")
            if len(parts) == 5 and parts[:3] == ["lykta", "v1", site] and parts[4] == "event":
                out.add((user, parts[3]))
    return out


@dataclass(frozen=True, slots=True)
class NeighbourAclCheck:
    """How an ACL file's block compares with what the strategy needs (empty: it fits)."""

    missing: tuple[tuple[str, str], ...] = ()
    """(gateway, neighbour): the gateway must read the neighbour's presence but may not."""
    extra: tuple[tuple[str, str], ...] = ()
    """(gateway, neighbour): still granted, no longer a neighbour (more than needed)."""
    error: str | None = None
    """The file has no block for the site, or could not be read."""

    @property
    def ok(self) -> bool:
        """True if the file grants exactly the strategy's neighbours."""
        return not (self.missing or self.extra or self.error)

    def gateways(self) -> list[str]:
        """The gateways whose corridors stop at a cabinet boundary because of it."""
        return sorted({gw for gw, _ in self.missing})

    def describe(self) -> str:
        """What is wrong, in a sentence or two (empty if :attr:`ok`)."""
        parts = [self.error] if self.error else []
        if self.missing:
            pairs = (f"{gw} cannot read the presence events of {nb}" for gw, nb in self.missing)
            parts.append("corridors stop at the cabinet boundary: " + "; ".join(pairs))
        if self.extra:
            pairs = (f"{gw} reads {nb}" for gw, nb in self.extra)
            parts.append("no longer neighbours but still granted: " + "; ".join(pairs))
        return "; ".join(parts)


def check_neighbour_acl(text: str | None, neighbours: dict[str, list[str]], site: str,
                        *, where: str = "the ACL") -> NeighbourAclCheck:  # fmt: skip
    """Compare ACL ``text`` (None: the file could not be read) with the block
    :func:`neighbour_acl` makes of ``neighbours``. The grants are compared, not the text, so a
    changed comment is no alarm; a missing block is one only if some gateway needs a grant."""
    want = {(gw, nb) for gw, nbs in neighbours.items() for nb in nbs}
    if text is None:
        return NeighbourAclCheck(missing=tuple(sorted(want)), error=f"{where} cannot be read")
    block = find_block(text, site)
    if block is None:
        if not want:
            return NeighbourAclCheck()
        error = f"{where} has no presence-neighbours block for site {site}"
        return NeighbourAclCheck(missing=tuple(sorted(want)), error=error)
    have = granted_reads(block, site)
    return NeighbourAclCheck(missing=tuple(sorted(want - have)), extra=tuple(sorted(have - want)))
