"""The immutable ``Event`` that subscribers receive, and the event-type names.

Imports nothing from pbxis (layer 0).
"""
from __future__ import annotations

from typing import Any, Dict, Hashable, Iterator, Mapping, Optional, Tuple

try:  # Python 3.11+
    from typing import final
except ImportError:  # pragma: no cover
    from typing_extensions import final  # type: ignore[assignment,unused-ignore]

__all__ = [
    "Event",
    "AGENT_NAME",
    "EXTENSION_STATUS",
    "QUEUE_MEMBER_STATUS",
    "PHONE_NUMBER",
    "QUEUE_COUNT",
    "AGENT_COMPLETE",
    "ORIGINATE_FAILED",
    "CLOSED",
    "CONNECTION_LOST",
    "CONNECTION_RESTORED",
    "EVENTS_DROPPED",
    "STATE_EVENT_TYPES",
    "is_state_event",
]

AGENT_NAME = "agentName"
EXTENSION_STATUS = "extensionStatus"
QUEUE_MEMBER_STATUS = "queueMemberStatus"
PHONE_NUMBER = "phoneNumber"
QUEUE_COUNT = "queueCount"
AGENT_COMPLETE = "agentComplete"
ORIGINATE_FAILED = "originateFailed"
CLOSED = "closed"
CONNECTION_LOST = "connectionLost"
CONNECTION_RESTORED = "connectionRestored"
#: Announces that a lagging channel dropped ``count`` discrete events.
EVENTS_DROPPED = "eventsDropped"

#: Types whose newest value supersedes older ones (conflated in slow channels).
STATE_EVENT_TYPES = frozenset(
    {AGENT_NAME, EXTENSION_STATUS, QUEUE_MEMBER_STATUS, PHONE_NUMBER, QUEUE_COUNT}
)


def is_state_event(event_type: str) -> bool:
    """True for event types that describe a current state (see API.md §3)."""
    return event_type in STATE_EVENT_TYPES


@final
class Event:
    """One pbxis event: a type, optional scope (agent, queue) and details.

    Immutable and hashable-free by design (details may hold any JSON value).
    ``ev["name"]`` and ``ev.get("name")`` read details; ``ev.to_dict()`` gives
    the JSON-ready form whose keys are ``type``, the scope keys present, and
    the details.
    """

    __slots__ = ("type", "agent", "queue", "_details")

    type: str
    agent: Optional[str]
    queue: Optional[str]
    _details: Dict[str, Any]

    def __init__(
        self,
        type: str,
        agent: Optional[str] = None,
        queue: Optional[str] = None,
        details: Optional[Mapping[str, Any]] = None,
        **more: Any,
    ) -> None:
        d: Dict[str, Any] = dict(details) if details else {}
        if more:
            d.update(more)
        # The slots' own setters: __setattr__ refuses, and these cost half
        # of object.__setattr__ (the digest makes an event per state change).
        _set_type(self, type)
        _set_agent(self, agent)
        _set_queue(self, queue)
        _set_details(self, d)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Event is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Event is immutable")

    def __getitem__(self, name: str) -> Any:
        return self._details[name]

    def get(self, name: str, default: Any = None) -> Any:
        """A detail by name, or ``default``."""
        return self._details.get(name, default)

    @property
    def details(self) -> Mapping[str, Any]:
        """A read-only copy of the details."""
        return dict(self._details)

    def __iter__(self) -> Iterator[str]:
        return iter(self._details)

    @property
    def coalesce_key(self) -> Tuple[Hashable, ...]:
        """``(type, agent, queue)``: pending state events with equal keys conflate."""
        return (self.type, self.agent, self.queue)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict: ``type``, scope keys when present, then details."""
        out: Dict[str, Any] = {"type": self.type}
        if self.agent is not None:
            out["agent"] = self.agent
        if self.queue is not None:
            out["queue"] = self.queue
        out.update(self._details)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return (self.type, self.agent, self.queue, self._details) == (
            other.type,
            other.agent,
            other.queue,
            other._details,
        )

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> Any:
        return (Event, (self.type, self.agent, self.queue, self._details))

    def __repr__(self) -> str:
        return f"Event({self.to_dict()!r})"


_set_type = Event.__dict__["type"].__set__
_set_agent = Event.__dict__["agent"].__set__
_set_queue = Event.__dict__["queue"].__set__
_set_details = Event.__dict__["_details"].__set__
_new_event = object.__new__


def _event_of(
    type: str, agent: Optional[str], queue: Optional[str], details: Dict[str, Any]
) -> Event:
    """``Event(type, agent, queue, details)`` that takes ``details`` as its own
    (no copy): for pbxis code that builds a fresh dict per event."""
    event: Event = _new_event(Event)
    _set_type(event, type)
    _set_agent(event, agent)
    _set_queue(event, queue)
    _set_details(event, details)
    return event
