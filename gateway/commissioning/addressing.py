"""DALI random address allocation (pure): sequences of python-dali commands.

A sequence is a generator in python-dali's style (``dali.sequences``): it yields commands
(and ``dali.sequences.sleep``/``progress``), receives each command's response, and returns a
result. :func:`gateway.commissioning.runner.SequenceRunner` runs one on a bus; tests run them
on the simulator.

The search differs from python-dali's ``Commissioning`` in the two ways that cost bus time:

- **only the search-address bytes that changed are sent.** The search descends through
  *aligned* ranges (``hi`` always ends in binary ones), so two consecutive compare points
  differ in one or two adjacent bits and mostly one SEARCHADDR byte goes out per COMPARE,
  not three;
- **the next gear is searched for near the last one.** Random addresses are uniform, so after
  ``k`` gear found below ``a`` the next one is expected about ``a / k`` higher: the search
  first compares the aligned block of about twice that size above ``a`` and widens it only if
  it is empty, instead of restarting from the whole 24-bit space.

Both work for control gear (IEC 62386-102, 16-bit frames) and DALI-2 control devices
(Part 103, 24-bit frames, their own address space) through :class:`AddressSpace`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

from dali import address as dali_address
from dali.command import Command, Response
from dali.device import general as dev
from dali.gear import general as gear
from dali.sequences import progress, sleep

Sequence = Generator[Any, Any, Any]
"""A python-dali style command sequence (yields commands, sleep, progress)."""

MAX_RANDOM = 0xFFFFFF


@dataclass(frozen=True)
class AddressSpace:
    """The addressing commands of one kind of bus unit (control gear or control devices)."""

    kind: str
    terminate: Callable[[], Command]
    initialise_unaddressed: Callable[[], Command]
    initialise_all: Callable[[], Command]
    initialise_address: Callable[[int], Command]
    randomise: Callable[[], Command]
    compare: Callable[[], Command]
    withdraw: Callable[[], Command]
    search: tuple[Callable[[int], Command], Callable[[int], Command], Callable[[int], Command]]
    program: Callable[[int], Command]
    verify: Callable[[int], Command]
    present: Callable[[int], Command]
    random_address: tuple[Callable[[int], Command], Callable[[int], Command],
                          Callable[[int], Command]]
    clear_all: Callable[[], list[Command]]
    before: Callable[[], list[Command]] = lambda: []
    after: Callable[[], list[Command]] = lambda: []


def _gear_short(cls: Any) -> Callable[[int], Command]:
    return lambda a: cls(dali_address.GearShort(a))


def _device_short(cls: Any) -> Callable[[int], Command]:
    return lambda a: cls(dali_address.DeviceShort(a))


GEAR = AddressSpace(
    kind="gear",
    terminate=gear.Terminate,
    initialise_unaddressed=lambda: gear.Initialise(broadcast=False, address=None),
    initialise_all=lambda: gear.Initialise(broadcast=True),
    initialise_address=lambda a: gear.Initialise(broadcast=False, address=a),
    randomise=gear.Randomise,
    compare=gear.Compare,
    withdraw=gear.Withdraw,
    search=(gear.SetSearchAddrH, gear.SetSearchAddrM, gear.SetSearchAddrL),
    program=gear.ProgramShortAddress,
    verify=gear.VerifyShortAddress,
    present=_gear_short(gear.QueryControlGearPresent),
    random_address=(_gear_short(gear.QueryRandomAddressH), _gear_short(gear.QueryRandomAddressM),
                    _gear_short(gear.QueryRandomAddressL)),
    clear_all=lambda: [gear.DTR0(255), gear.SetShortAddress(dali_address.GearBroadcast())],
)
"""Control gear (luminaires): IEC 62386-102 addressing commands."""

DEVICES = AddressSpace(
    kind="device",
    terminate=dev.Terminate,
    initialise_unaddressed=lambda: dev.Initialise(0x7F),
    initialise_all=lambda: dev.Initialise(0xFF),
    initialise_address=dev.Initialise,
    randomise=dev.Randomise,
    compare=dev.Compare,
    withdraw=dev.Withdraw,
    search=(dev.SearchAddrH, dev.SearchAddrM, dev.SearchAddrL),
    program=dev.ProgramShortAddress,
    verify=dev.VerifyShortAddress,
    present=_device_short(dev.QueryDeviceStatus),
    random_address=(_device_short(dev.QueryRandomAddressH),
                    _device_short(dev.QueryRandomAddressM),
                    _device_short(dev.QueryRandomAddressL)),
    clear_all=lambda: [dev.DTR0(255), dev.SetShortAddress(dali_address.DeviceBroadcast())],
    # spontaneous event frames would collide with the addressing answers
    before=lambda: [dev.StartQuiescentMode(dali_address.DeviceBroadcast())],
    after=lambda: [dev.StopQuiescentMode(dali_address.DeviceBroadcast())],
)
"""DALI-2 control devices (sensors, Part 103): 24-bit addressing commands."""


def answer(response: Response | None) -> str:
    """``none``, ``one`` or ``many`` (a collision: several units answered at once)."""
    if response is None or response.raw_value is None:
        return "none"
    return "many" if response.raw_value.error else "one"


# -- existing addresses and duplicates -----------------------------------------------------


def find_existing(space: AddressSpace, *, confirm: bool = True) -> Sequence:
    """Which short addresses answer, and which of them are suspected duplicates.

    A collision on the presence query is a duplicate. Two units answering YES together can
    look like one clean answer on a real bus, so with ``confirm`` each address that answered
    cleanly is also asked its random address (H, M, L): units that picked different random
    addresses collide there. Returns ``(present, duplicates)`` as sorted lists.
    """
    present: list[int] = []
    duplicates: list[int] = []
    for a in range(64):
        kind = answer((yield space.present(a)))
        if kind == "none":
            continue
        present.append(a)
        if kind == "many":
            duplicates.append(a)
            continue
        if confirm:
            for query in space.random_address:
                if answer((yield query(a))) == "many":
                    duplicates.append(a)
                    break
    yield progress(message=f"{space.kind}: {len(present)} short addresses in use, "
                   f"{len(duplicates)} suspected duplicates")
    return present, duplicates


# -- the search ----------------------------------------------------------------------------


@dataclass
class SearchState:
    """What the search knows: the search-address bytes the units hold now (None: unknown),
    and how many units were found below which address (the next-gear estimate)."""

    sent: list[int | None] = field(default_factory=lambda: [None, None, None])
    found: int = 0
    last: int = -1

    def forget(self) -> None:
        """After INITIALISE/TERMINATE nothing is assumed about the units' search address."""
        self.sent = [None, None, None]


def set_search_address(space: AddressSpace, state: SearchState, value: int) -> Sequence:
    """Make the units' search address ``value``, sending only the bytes that changed."""
    for i, shift in enumerate((16, 8, 0)):
        byte = (value >> shift) & 0xFF
        if state.sent[i] != byte:
            yield space.search[i](byte)
            state.sent[i] = byte


def _compare(space: AddressSpace, state: SearchState, value: int) -> Sequence:
    """COMPARE at ``value``: ``none``, ``one`` or ``many``."""
    yield from set_search_address(space, state, value)
    return answer((yield space.compare()))


def find_lowest(space: AddressSpace, state: SearchState, lo: int) -> Sequence:
    """The lowest random address >= ``lo`` of a unit still in the search, as
    ``(address, clash)``, or None when none is left. ``clash`` means several units hold that
    random address (their COMPARE answers collided with nothing below)."""
    # first block: about twice the expected gap to the next unit, aligned (hi ends in ones)
    if state.found and lo > 0:
        gap = max(1, lo // state.found)
        k = min(24, gap.bit_length() + 1)
    else:
        k = 24
    while True:
        hi = lo | ((1 << k) - 1)
        if hi > MAX_RANDOM:
            hi = MAX_RANDOM
        reply = yield from _compare(space, state, hi)
        if reply != "none":
            break
        if hi == MAX_RANDOM:
            return None
        lo = hi + 1
        k += 1
    # descend: halve the aligned block [lo, hi]; a compare point below lo is known "no"
    last = reply
    bit = (hi - (lo & ~((1 << k) - 1))).bit_length()
    while lo < hi:
        bit -= 1
        mid = hi - (1 << bit)
        if mid < lo:
            continue  # nothing lies below lo: the upper half it is, without asking
        reply = yield from _compare(space, state, mid)
        if reply != "none":
            hi, last = mid, reply
        else:
            lo = mid + 1
    return lo, last == "many"


@dataclass(frozen=True)
class Assigned:
    """A unit found by its random address and given a short address."""

    random_address: int
    short_address: int | None
    verified: bool


def allocate(space: AddressSpace, free: Iterable[int], *, initialise: Command,
             keep: int | None = None, on_assigned: Callable[[Assigned], None] | None = None,
             max_rounds: int = 8) -> Sequence:
    """Give every unit that ``initialise`` selects a short address from ``free`` (in order).

    With ``keep`` the first unit found gets that address (resolving a duplicate: one of the
    pair keeps it). Units found when no address is left stay unaddressed and are reported.
    ``on_assigned`` is called after each unit (the journal writes it to disk at once).
    Returns the list of :class:`Assigned`.
    """
    free = list(free)
    done: list[Assigned] = []
    yield from space.before()
    yield space.terminate()
    yield initialise
    for _ in range(max_rounds):
        state = SearchState()
        yield space.randomise()
        yield sleep(0.1)  # RANDOMISE may take up to 100 ms
        lo = 0
        clash = False
        while lo <= MAX_RANDOM:
            found = yield from find_lowest(space, state, lo)
            if found is None:
                break
            random_address, clash = found
            if clash:
                yield progress(message=f"{space.kind}: two units picked random address "
                               f"{random_address:#08x}; randomising again")
                break
            if keep is not None and not done:
                short: int | None = keep
            else:
                short = free.pop(0) if free else None
            verified = False
            # PROGRAM SHORT ADDRESS and WITHDRAW act on the unit whose random address equals
            # the search address: the descent may have left it one step away
            yield from set_search_address(space, state, random_address)
            if short is not None:
                yield space.program(short)
                verified = answer((yield space.verify(short))) == "one"
            yield space.withdraw()
            item = Assigned(random_address, short, verified)
            done.append(item)
            if on_assigned is not None:
                on_assigned(item)
            state.found += 1
            # the search sweeps the random address space upwards: its position is the progress
            yield progress(message=f"{space.kind} {random_address:#08x} -> short address "
                           f"{short}", completed=random_address, size=MAX_RANDOM)
            lo = random_address + 1
        if not clash:
            break
    yield space.terminate()
    yield from space.after()
    return done


def address_unaddressed(space: AddressSpace, free: Iterable[int], *,
                        on_assigned: Callable[[Assigned], None] | None = None) -> Sequence:
    """Address every unit without a short address (existing addresses are kept)."""
    return (yield from allocate(space, free, initialise=space.initialise_unaddressed(),
                                on_assigned=on_assigned))


def readdress_all(space: AddressSpace, *,
                  on_assigned: Callable[[Assigned], None] | None = None) -> Sequence:
    """Clear every short address and address all units from 0."""
    yield from space.clear_all()
    return (yield from allocate(space, range(64), initialise=space.initialise_all(),
                                on_assigned=on_assigned))


def resolve_duplicate(space: AddressSpace, short_address: int, free: Iterable[int], *,
                      on_assigned: Callable[[Assigned], None] | None = None) -> Sequence:
    """Separate the units sharing ``short_address``: one keeps it, the others get free ones.
    Returns the :class:`Assigned` list (one entry means it was no duplicate after all)."""
    return (yield from allocate(space, free, initialise=space.initialise_address(short_address),
                                keep=short_address, on_assigned=on_assigned))
