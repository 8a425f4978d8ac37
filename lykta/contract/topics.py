"""MQTT topic names: ``lykta/v1/{site}/{gateway}/{kind}``.

Build topics with :class:`Topic`, parse received ones with :meth:`Topic.parse`. Site and
gateway ids are restricted to a safe alphabet so they can never smuggle a ``/``, ``+`` or ``#``
into a topic (or a filter into an ACL).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

ROOT = "lykta/v1"
CONTROLLER_ID = "_controller"
SHARED_GROUP = "controllers"

_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


class TopicError(ValueError):
    """A topic string that is not part of the contract."""


class TopicKind(enum.StrEnum):
    """The last part of a topic: what the message is."""

    STATE = "state"
    TELEMETRY = "telemetry"
    EVENT = "event"
    PROGRAM = "program"
    CMD = "cmd"
    CMD_RES = "cmd/res"
    CONFIRM = "confirm"


def check_id(value: str, what: str) -> str:
    """Return ``value`` if it is a valid site/gateway id, else raise :class:`TopicError`."""
    if not _ID_RE.match(value):
        raise TopicError(
            f"{what} {value!r} is not a valid id (letters, digits, _ . -, at most 64, "
            "not starting with . or -)"
        )
    return value


@dataclass(frozen=True, slots=True)
class Topic:
    """One concrete topic of the contract."""

    site: str
    gateway: str
    kind: TopicKind

    def __post_init__(self) -> None:
        check_id(self.site, "site")
        if self.gateway != CONTROLLER_ID:
            check_id(self.gateway, "gateway")

    def __str__(self) -> str:
        return f"{ROOT}/{self.site}/{self.gateway}/{self.kind.value}"

    @classmethod
    def parse(cls, topic: str) -> Topic:
        """Parse a received topic string; raise :class:`TopicError` naming what is wrong."""
        parts = topic.split("/")
        if len(parts) < 5 or "/".join(parts[:2]) != ROOT:
            raise TopicError(f"topic {topic!r} is not under {ROOT}/{{site}}/{{gateway}}/")
        kind_s = "/".join(parts[4:])
        try:
            kind = TopicKind(kind_s)
        except ValueError:
            raise TopicError(f"topic {topic!r}: unknown kind {kind_s!r}") from None
        return cls(parts[2], parts[3], kind)

    @classmethod
    def controller_state(cls, site: str) -> Topic:
        """The controller's own retained online/offline topic."""
        return cls(site, CONTROLLER_ID, TopicKind.STATE)


def subscription(site: str, kind: TopicKind, *, gateway: str = "+", shared: bool = False) -> str:
    """A subscription filter for ``kind`` on one or all gateways of ``site`` (``+`` = all).

    ``shared=True`` gives the ``$share/controllers/...`` form so several controller processes
    split the load.
    """
    check_id(site, "site") if site != "+" else None
    f = f"{ROOT}/{site}/{gateway}/{kind.value}"
    return f"$share/{SHARED_GROUP}/{f}" if shared else f
