"""The tracked state (agents, queue memberships, queues, calls) as plain data,
and the AMI vocabulary that maps Asterisk's codes and header names onto it.

Layer 1: imports only the stdlib and ``pbxis.versions``. No events, no I/O,
no locks: the digest (``pbxis.digest``) mutates this model and decides what to
publish.

Everything that differs between Asterisk versions (header names, status
codes) lives in ``pbxis.versions`` and nowhere else; this module re-exports
the vocabulary the digest reads.
"""

from __future__ import annotations

from typing import Any, Protocol

# The AMI vocabulary lives in pbxis.versions (every version difference in one place).
from .versions import (
    MEMBER_STATUSES,
    ORIGINATE_REASONS,
)

__all__ = [
    "LOGGED_OFF",
    "NO_CALL",
    "Headers",
    "first",
    "originate_reason",
    "Member",
    "Call",
    "Agent",
    "Queue",
    "Model",
]


class Headers(Protocol):
    """Where the digest reads headers: a dict, or a ``pbxis.protocol.Message``
    (whose ``get`` is cheaper than turning it into a dict, see its docstring)."""

    def get(self, name: str, /) -> str | None: ...

    def __contains__(self, name: object, /) -> bool: ...


def first(headers: Headers, names: tuple[str, ...]) -> str | None:
    """The value of the first of ``names`` present in ``headers``."""
    for name in names:
        value = headers.get(name)
        if value is not None:
            return value
    return None


def originate_reason(code: str | None) -> str:
    """``OriginateResponse Reason`` in words."""
    if code is None:
        return "failed"
    return ORIGINATE_REASONS.get(code, f"failed (reason {code})")


# --------------------------------------------------------------------------
# State values (what the published events carry)
# --------------------------------------------------------------------------

#: queueMemberStatus value of a non-member: (status, reason).
LOGGED_OFF: tuple[str, str | None] = ("loggedoff", None)
#: phoneNumber value of an agent with no call: (number, name, queue).
NO_CALL: tuple[str | None, str | None, str | None] = (None, None, None)


class Member:
    """One agent's membership of one queue."""

    __slots__ = ("interface", "name", "status", "paused", "reason")

    def __init__(self, interface: str) -> None:
        self.interface = interface
        self.name: str | None = None
        self.status = "0"
        self.paused = False
        self.reason: str | None = None

    def value(self) -> tuple[str, str | None]:
        """The queueMemberStatus value: ``("paused", reason)`` or ``(device word, None)``."""
        if self.paused:
            return ("paused", self.reason)
        return (MEMBER_STATUSES.get(self.status, "unknown"), None)


class Call:
    """One live channel of a tracked agent's phone (ringing or talking)."""

    __slots__ = (
        "channel",
        "uniqueid",
        "linkedid",
        "agent",
        "number",
        "name",
        "queue",
        "dialled",
        "originated",
        "peer",
    )

    def __init__(self, channel: str, agent: str, uniqueid: str | None) -> None:
        self.channel = channel
        self.uniqueid = uniqueid
        self.linkedid: str | None = None
        self.agent = agent
        #: The remote party's number ("" when withheld), None while not known.
        self.number: str | None = None
        self.name: str | None = None
        #: The queue the call came through, if any.
        self.queue: str | None = None
        #: A DialBegin/AgentCalled named it as the dialled channel.
        self.dialled = False
        #: The channel at the other end of the dial (DialBegin, AgentCalled, or
        #: BRIDGEPEER when a query found the call). Bridges are not tracked:
        #: redirect/park ask Asterisk for the bridge when they act.
        self.peer: str | None = None
        #: Created by an Originate (DialBegin without a dialling channel) and
        #: not yet dialling the far party itself.
        self.originated = False

    def value(self) -> tuple[str | None, str | None, str | None]:
        """The phoneNumber value ``(number, name, queue)``."""
        return (self.number, self.name, self.queue)


class Agent:
    """A tracked agent: reference count, name, device state, live calls."""

    __slots__ = ("agent", "location", "refs", "name", "device", "members_known", "calls")

    def __init__(self, agent: str, location: str) -> None:
        self.agent = agent
        self.location = location
        self.refs = 0
        self.name: str | None = None
        #: extensionStatus word, None while not known.
        self.device: str | None = None
        #: A QueueStatus Member=<location> told every queue this agent is in.
        self.members_known = False
        #: Live channels by name, oldest first.
        self.calls: dict[str, Call] = {}


class Queue:
    """A tracked queue: reference count and number of waiting callers."""

    __slots__ = ("name", "refs", "count", "members_known")

    def __init__(self, name: str) -> None:
        self.name = name
        self.refs = 0
        self.count: int | None = None
        #: A QueueStatus Queue=<name> listed every member.
        self.members_known = False


class Model:
    """The digest's state. Holds only what tracked agents and queues need.

    ``members`` holds memberships whose agent or queue is tracked; ``calls``
    the live channels of tracked agents; ``waiting`` the callers waiting in
    any queue by Linkedid, which the agent legs the queue rings share.
    """

    def __init__(self) -> None:
        self.agents: dict[str, Agent] = {}
        self.queues: dict[str, Queue] = {}
        self.members: dict[tuple[str, str], Member] = {}
        #: Member interface -> agent (Local/... members map via StateInterface).
        self.iface_agent: dict[str, str] = {}
        self.calls: dict[str, Call] = {}
        #: Linkedid of each caller waiting in a queue -> the queue.
        self.waiting: dict[str, str] = {}

    def current_call(self, agent: str) -> Call | None:
        """The agent's newest call whose party is known, or None."""
        a = self.agents.get(agent)
        if a is None:
            return None
        for call in reversed(a.calls.values()):
            if call.number is not None:
                return call
        return None

    def member_value(self, agent: str, queue: str) -> tuple[str, str | None] | None:
        """queueMemberStatus value, LOGGED_OFF when known not a member, None if unknown."""
        member = self.members.get((agent, queue))
        if member is not None:
            return member.value()
        a = self.agents.get(agent)
        q = self.queues.get(queue)
        if (a is not None and a.members_known) or (q is not None and q.members_known):
            return LOGGED_OFF
        return None

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready view of the tracked state (agents, queues, calls)."""
        agents: dict[str, Any] = {}
        for name, a in sorted(self.agents.items()):
            current = self.current_call(name)
            agents[name] = {
                "name": a.name,
                "extensionStatus": a.device,
                "phoneNumber": None
                if current is None
                else {"number": current.number, "name": current.name, "queue": current.queue},
                "queues": {
                    q: dict(zip(("status", "reason"), m.value()), interface=m.interface)
                    for (agent, q), m in sorted(self.members.items())
                    if agent == name
                },
                "calls": [
                    {
                        "channel": c.channel,
                        "uniqueId": c.uniqueid,
                        "number": c.number,
                        "name": c.name,
                        "queue": c.queue,
                        "peerChannel": c.peer,
                    }
                    for c in a.calls.values()
                ],
            }
        queues: dict[str, Any] = {
            name: {
                "count": q.count,
                "members": sorted(agent for agent, queue in self.members if queue == name),
            }
            for name, q in sorted(self.queues.items())
        }
        return {"agents": agents, "queues": queues}
