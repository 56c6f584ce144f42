"""Runtime objects of the simulated PBX and its virtual-time scheduler.

Plain mutable data (phones, channels, bridges, queues, members, waiting
callers, parked calls) plus a heap of timers keyed by virtual time. No
sockets, threads or wall clocks. Imports frames and config only.
"""
from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Callable

from .config import AgentSpec
from .frames import CHANNEL_STATE_DESC, Headers

__all__ = [
    "Phone",
    "Channel",
    "Bridge",
    "Member",
    "Queue",
    "QueueCall",
    "Parked",
    "Timer",
    "Scheduler",
]


@dataclass(eq=False)
class Phone:
    """An agent's phone (PJSIP endpoint + hint) and its live channels."""

    ext: str
    name: str
    interface: str
    answer_after: float | None
    busy: bool
    reachable: bool
    hangup_after: float | None
    channels: list[Channel] = field(default_factory=list)
    ext_status: int | None = None  # last ExtensionStatus sent

    @classmethod
    def from_spec(cls, spec: AgentSpec) -> Phone:
        return cls(spec.ext, spec.name, spec.interface, spec.answer_after, spec.busy,
                   spec.reachable, spec.hangup_after)

    @property
    def device_state(self) -> str:
        """Aggregate device state of the endpoint (PJSIP/<ext>)."""
        if not self.reachable:
            return "UNAVAILABLE"
        up = any(ch.state == 6 for ch in self.channels)
        ringing = any(ch.state in (0, 5) and ch.ringing for ch in self.channels)
        if up and ringing:
            return "RINGINUSE"
        if up or any(ch.state != 0 and not ch.ringing for ch in self.channels):
            return "INUSE"
        if ringing:
            return "RINGING"
        return "NOT_INUSE"


@dataclass(eq=False)
class Channel:
    """One channel (PJSIP/1001-00000001), with the fields Asterisk snapshots."""

    name: str
    uniqueid: str
    linkedid: str
    created: float
    state: int
    caller_num: str
    caller_name: str
    context: str
    exten: str
    priority: int = 1
    connected_num: str = "<unknown>"
    connected_name: str = "<unknown>"
    language: str = "en"
    accountcode: str = ""
    application: str = ""
    app_data: str = ""
    dnid: str = ""
    phone: Phone | None = None
    bridge: Bridge | None = None
    ringing: bool = False  # an outgoing leg that is alerting
    variables: dict[str, str] = field(default_factory=dict)
    alive: bool = True
    #: What owns the channel: a queue call, an originate, a direct dial...
    owner: object | None = None
    hangup_timer: Timer | None = None
    #: Queue calls whose AgentComplete waits for this (transferred) caller's hangup.
    pending: list[QueueCall] = field(default_factory=list)

    def block(self, prefix: str = "", **override: str) -> Headers:
        """The standard channel snapshot headers, optionally prefixed (``Dest``)."""
        state = int(override.get("state", self.state))
        fields = [
            ("Channel", self.name),
            ("ChannelState", str(state)),
            ("ChannelStateDesc", CHANNEL_STATE_DESC.get(state, "Unknown")),
            ("CallerIDNum", self.caller_num),
            ("CallerIDName", self.caller_name),
            ("ConnectedLineNum", override.get("connected_num", self.connected_num)),
            ("ConnectedLineName", override.get("connected_name", self.connected_name)),
            ("Language", self.language),
            ("AccountCode", self.accountcode),
            ("Context", override.get("context", self.context)),
            ("Exten", override.get("exten", self.exten)),
            ("Priority", str(override.get("priority", self.priority))),
            ("Uniqueid", self.uniqueid),
            ("Linkedid", self.linkedid),
        ]
        return [(prefix + k, v) for k, v in fields]

    @property
    def resource(self) -> str:
        """``PJSIP/1001-00000003`` -> ``1001``."""
        return self.name.split("/", 1)[-1].rsplit("-", 1)[0]


@dataclass(eq=False)
class Bridge:
    """A bridge (basic two-party, or the parking lot's holding bridge)."""

    uniqueid: str
    type: str = "basic"
    technology: str = "simple_bridge"
    creator: str = "<unknown>"
    name: str = "<unknown>"
    channels: list[Channel] = field(default_factory=list)
    created: float = 0.0

    def block(self, technology: str | None = None) -> Headers:
        return [
            ("BridgeUniqueid", self.uniqueid),
            ("BridgeType", self.type),
            ("BridgeTechnology", technology or self.technology),
            ("BridgeCreator", self.creator),
            ("BridgeName", self.name),
            ("BridgeNumChannels", str(len(self.channels))),
            ("BridgeVideoSourceMode", "none"),
        ]


@dataclass(eq=False)
class Member:
    """A queue member (static from config, or dynamic from QueueAdd)."""

    queue: Queue
    interface: str
    name: str
    state_interface: str
    dynamic: bool
    penalty: int = 0
    paused: bool = False
    paused_reason: str = ""
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0
    in_call: bool = False
    wrapuptime: int = 0
    last_sent: tuple[int, bool, int, bool] | None = None  # dedup of QueueMemberStatus
    reserved: bool = False  # being rung for a caller of this queue


@dataclass(eq=False)
class Queue:
    """A call queue: members in order, waiting callers in order, statistics."""

    name: str
    strategy: str
    timeout: int
    retry: int
    weight: int
    servicelevel: int
    maxlen: int
    members: dict[str, Member] = field(default_factory=dict)
    entries: list[QueueCall] = field(default_factory=list)
    completed: int = 0
    abandoned: int = 0
    completed_in_sl: int = 0
    holdtime: int = 0
    talktime: int = 0
    rr_next: int = 0


@dataclass(eq=False)
class QueueCall:
    """A caller in (or served by) a queue."""

    caller: Channel
    queue: Queue
    joined: float
    original_position: int
    patience: float | None
    talk: float | None
    legs: dict[str, Channel] = field(default_factory=dict)  # interface -> ringing leg
    ring_started: float = 0.0
    state: str = "waiting"  # waiting | connected | done
    member: Member | None = None
    agent_leg: Channel | None = None
    connected_at: float = 0.0
    hold_time: int = 0
    retry_until: float = 0.0
    timers: list[Timer] = field(default_factory=list)


@dataclass(eq=False)
class Parked:
    """A parked call in a parking space."""

    parkee: Channel
    space: int
    parker_dial: str
    timeout: int
    parked_at: float
    timer: Timer | None = None


class Timer:
    """A scheduled callback; ``cancel()`` makes it a no-op."""

    __slots__ = ("due", "fn", "cancelled")

    def __init__(self, due: float, fn: Callable[[], None]) -> None:
        self.due = due
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """Timers on a virtual clock; ``run_until(t)`` fires them in (time, FIFO) order."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()

    def at(self, due: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(max(due, self.now), fn)
        heapq.heappush(self._heap, (timer.due, next(self._seq), timer))
        return timer

    def after(self, delay: float, fn: Callable[[], None]) -> Timer:
        return self.at(self.now + max(0.0, delay), fn)

    def next_due(self) -> float | None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def pop_due(self, until: float) -> Timer | None:
        """The next live timer due at or before ``until`` (clock moved to it)."""
        while self._heap:
            due, _, timer = self._heap[0]
            if due > until:
                return None
            heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self.now = max(self.now, due)
            return timer
        return None

    def clear(self) -> None:
        for _, _, timer in self._heap:
            timer.cancel()
        self._heap.clear()
