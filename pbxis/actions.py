"""Correlates responses and list events with their actions, by ActionID only.

Pure bookkeeping (layer 2): no sockets, no threads, no clocks. The client
registers an ActionID *before* writing the action's bytes, feeds every
received ``Message`` to ``Correlator.feed``, and gets back the completed
``ActionResult`` (or None when the message belongs to no pending action).
"""
from __future__ import annotations

import itertools
import os
from typing import Callable, Dict, Iterator, List, Optional

from .protocol import Message

__all__ = ["ActionResult", "Pending", "Correlator", "new_action_ids"]


class ActionResult:
    """A completed action: its response and, for list actions, the list events."""

    __slots__ = ("response", "events", "complete", "cancelled")

    def __init__(
        self,
        response: Message,
        events: List[Message],
        complete: Optional[Message] = None,
        cancelled: bool = False,
    ) -> None:
        self.response = response
        #: The list items, without the closing ``*Complete`` event.
        self.events = events
        #: The closing ``*Complete`` event of a list action (None otherwise).
        self.complete = complete
        self.cancelled = cancelled

    @property
    def ok(self) -> bool:
        """True unless Asterisk answered ``Response: Error`` (or ``Failure``)."""
        return (self.response.get("Response") or "").lower() not in ("error", "failure")

    def __repr__(self) -> str:
        return f"ActionResult({self.response!r}, {len(self.events)} events)"


class Pending:
    """One registered action waiting for completion."""

    __slots__ = ("action_id", "name", "response", "events", "on_done")

    def __init__(
        self, action_id: str, name: str, on_done: Optional[Callable[[ActionResult], None]]
    ) -> None:
        self.action_id = action_id
        self.name = name
        self.response: Optional[Message] = None
        self.events: List[Message] = []
        self.on_done = on_done


_sequence = itertools.count(1)  # shared: ids never repeat within the process


def new_action_ids(prefix: str = "") -> Iterator[str]:
    """Unique ActionIDs: ``<prefix><pid>-<n>`` (never reused in a process).

    ``next()`` on the result is safe from any thread: it is a C-level
    ``map`` over ``itertools.count`` (a generator raised ``ValueError:
    generator already executing`` when two threads asked at once).
    """
    return map(f"{prefix}{os.getpid():x}-".__add__, map(str, _sequence))


class Correlator:
    """The pending-action table.

    A plain response completes its action. A response with ``EventList:
    start`` opens a list: events carrying the same ActionID are collected
    until one has ``EventList: Complete`` (or ``cancelled``). Events with an
    unknown ActionID (e.g. a late ``OriginateResponse``) are not consumed.
    """

    def __init__(self) -> None:
        self._pending: Dict[str, Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, action_id: object) -> bool:
        return action_id in self._pending

    def register(
        self,
        action_id: str,
        name: str,
        on_done: Optional[Callable[[ActionResult], None]] = None,
    ) -> Pending:
        """Track ``action_id``; call before its bytes are written."""
        if action_id in self._pending:
            raise ValueError(f"ActionID {action_id!r} is already pending")
        pending = Pending(action_id, name, on_done)
        self._pending[action_id] = pending
        return pending

    def discard(self, action_id: str) -> Optional[Pending]:
        """Forget an action (e.g. after its caller timed out)."""
        return self._pending.pop(action_id, None)

    def feed(self, msg: Message) -> Optional[tuple[Pending, Optional[ActionResult]]]:
        """Offer a received message.

        Returns None when the message is not part of any pending action;
        ``(pending, None)`` when it was consumed but the action goes on (list
        items); ``(pending, result)`` when the action completed (it is then
        removed from the table).
        """
        action_id = msg.get("ActionID")
        if action_id is None:
            return None
        pending = self._pending.get(action_id)
        if pending is None:
            return None
        if pending.response is None:
            # An Event header makes it an event even when it carries a
            # ``Response`` header too (OriginateResponse does, with the
            # Originate's ActionID).
            if msg.get("Response") is None or msg.get("Event") is not None:
                # An event before the response (Asterisk does not do this for
                # list actions, but keep it rather than lose it).
                pending.events.append(msg)
                return pending, None
            pending.response = msg
            if (msg.get("EventList") or "").lower() == "start":
                if pending.events:
                    # The whole list (Complete included) came before the response.
                    marker = (pending.events[-1].get("EventList") or "").lower()
                    if marker in ("complete", "cancelled"):
                        last = pending.events.pop()
                        return pending, self._complete(pending, marker == "cancelled", last)
                return pending, None
            return pending, self._complete(pending, cancelled=False)
        marker = (msg.get("EventList") or "").lower()
        if marker == "complete":
            return pending, self._complete(pending, cancelled=False, last=msg)
        if marker == "cancelled":
            return pending, self._complete(pending, cancelled=True, last=msg)
        if msg.get("Response") is not None:
            return None  # a second response with a reused id: not ours to judge
        pending.events.append(msg)
        return pending, None

    def _complete(
        self, pending: Pending, cancelled: bool, last: Optional[Message] = None
    ) -> ActionResult:
        del self._pending[pending.action_id]
        assert pending.response is not None
        return ActionResult(pending.response, pending.events, last, cancelled)

    def fail_all(self) -> List[Pending]:
        """Remove and return every pending action (the link dropped)."""
        pending = list(self._pending.values())
        self._pending.clear()
        return pending


