"""Static configuration of the simulated PBX: phones, queues and AMI users.

Pure data (the equivalent of pjsip.conf, queues.conf and manager.conf of
the recording lab in shared/asterisk-22-notes.md). Imports only the
standard library.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "AgentSpec",
    "QueueSpec",
    "SimUser",
    "ALL_CLASSES",
    "default_agents",
    "default_queues",
    "scaled",
    "parse_classes",
    "make_users",
]

#: AMI permission classes (manager.conf read/write; EventMask).
ALL_CLASSES = (
    "system", "call", "log", "verbose", "command", "agent", "user", "config", "dtmf",
    "reporting", "cdr", "dialplan", "originate", "agi", "cc", "aoc", "test", "security",
    "message",
)


@dataclass(frozen=True)
class AgentSpec:
    """One agent phone (a PJSIP endpoint with a hint ``<ext>@default``).

    Args:
        ext: the extension, e.g. ``"1001"``; the interface is ``PJSIP/1001``.
        name: the caller-ID name, e.g. ``"Alice Anders"``.
        answer_after: seconds of ringing before the phone answers; None: it
            rings until the caller or the queue gives up (sipp noanswer mode).
        busy: the phone rejects every call with 486 Busy Here.
        reachable: False: the phone is offline (qualify fails, UNAVAILABLE).
        hangup_after: if set, the agent hangs up that many seconds after
            answering (unless the other side hung up first).
    """

    ext: str
    name: str
    answer_after: float | None = 2.0
    busy: bool = False
    reachable: bool = True
    hangup_after: float | None = None
    tech: str = "PJSIP"

    @property
    def interface(self) -> str:
        """``PJSIP/<ext>``."""
        return f"{self.tech}/{self.ext}"


@dataclass(frozen=True)
class QueueSpec:
    """One queue (queues.conf section); ``members`` are static members' extensions."""

    name: str
    strategy: str = "ringall"
    members: tuple[str, ...] = ()
    timeout: int = 10
    retry: int = 1
    weight: int = 0
    servicelevel: int = 0
    maxlen: int = 0
    #: Members paused at start: extension -> reason.
    paused: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SimUser:
    """An AMI user (manager.conf): secret, read and write permission classes."""

    secret: str
    read: str = "all"
    write: str = "all"


def parse_classes(text: str) -> frozenset[str]:
    """``"call,agent"`` / ``"all"`` / ``"on"`` / ``"off"`` -> a set of class names."""
    value = text.strip().lower()
    if value in ("all", "on", "yes", "true", "1", "-1"):
        return frozenset(ALL_CLASSES)
    if value in ("off", "no", "false", "0", "none", ""):
        return frozenset()
    names = {part.strip() for part in value.split(",") if part.strip()}
    if "all" in names:
        return frozenset(ALL_CLASSES)
    return frozenset(n for n in names if n in ALL_CLASSES)


def make_users(users: Mapping[str, str | SimUser] | None) -> dict[str, SimUser]:
    """Normalise ``{"name": "secret" | SimUser}``."""
    if users is None:
        users = {"pbxis": "pbxis-secret"}
    return {
        name: spec if isinstance(spec, SimUser) else SimUser(str(spec))
        for name, spec in users.items()
    }


def default_agents() -> list[AgentSpec]:
    """The recording lab's phones: 1001 Alice Anders, 1002 Bob Brown, 1003 Carol Clark."""
    return [
        AgentSpec("1001", "Alice Anders"),
        AgentSpec("1002", "Bob Brown"),
        AgentSpec("1003", "Carol Clark"),
    ]


def default_queues() -> list[QueueSpec]:
    """``sales`` (ringall: 1001, 1002) and ``support`` (rrmemory: 1002, 1003)."""
    return [
        QueueSpec("sales", "ringall", ("1001", "1002")),
        QueueSpec("support", "rrmemory", ("1002", "1003")),
    ]


_FIRST = (
    "Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy",
    "Karl", "Laura", "Mallory", "Nina", "Oscar", "Peggy", "Quinn", "Rupert", "Sybil",
    "Trent", "Ursula", "Victor", "Wendy", "Xavier", "Yvonne", "Zack",
)
_LAST = (
    "Anders", "Brown", "Clark", "Dalton", "Evans", "Fisher", "Garcia", "Hughes", "Irwin",
    "Jones", "Keller", "Lopez", "Miller", "Nolan", "Owens", "Parker", "Quade", "Reyes",
    "Stone", "Turner", "Upton", "Vance", "Walsh", "Young", "Zimmer",
)


def scaled(
    agents: int = 1000, queues: int = 50, *, queues_per_agent: int = 2,
    strategies: Sequence[str] = ("ringall", "rrmemory"),
) -> tuple[list[AgentSpec], list[QueueSpec]]:
    """A large PBX: ``agents`` phones (1001...) spread over ``queues`` queues.

    Agent ``i`` is a static member of queues ``i % queues`` and the next
    ``queues_per_agent - 1`` ones. The first queues are named ``sales`` and
    ``support``, the rest ``q003``... Deterministic.
    """
    if agents < 1 or queues < 1:
        raise ValueError("need at least one agent and one queue")
    specs = [
        AgentSpec(
            str(1001 + i),
            f"{_FIRST[i % len(_FIRST)]} {_LAST[(i // len(_FIRST)) % len(_LAST)]}"
            + ("" if i < len(_FIRST) * len(_LAST) else f" {i}"),
        )
        for i in range(agents)
    ]
    names = ["sales", "support"] + [f"q{n:03d}" for n in range(3, queues + 1)]
    members: list[list[str]] = [[] for _ in range(queues)]
    per_agent = max(1, min(queues_per_agent, queues))
    for i, spec in enumerate(specs):
        for k in range(per_agent):
            members[(i + k) % queues].append(spec.ext)
    queue_specs = [
        QueueSpec(names[q], strategies[q % len(strategies)], tuple(members[q]))
        for q in range(queues)
    ]
    return specs, queue_specs
