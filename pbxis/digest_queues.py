"""The digest's queue side: memberships, pauses, queue counts, device states.

A mixin of :class:`pbxis.digest.Digest` (layer 2). It reads AMI events and
list results (QueueStatus, DeviceStateList, Getvar DEVICE_STATE) into the
model and reports state values through ``_state``. Imports only
``pbxis.events``, ``pbxis.model`` and ``pbxis.protocol`` (``pbxis.actions``'
result type for type checking only); never the client, transport or channels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .events import AGENT_NAME, EXTENSION_STATUS, QUEUE_COUNT, QUEUE_MEMBER_STATUS
from .model import LOGGED_OFF, Headers, Member, Model, first
from .protocol import Message
from .versions import (
    DEVICE_STATES,
    MEMBER_EVENT_IFACE,
    MEMBER_EVENT_NAME,
    MEMBER_LIST_IFACE,
    MEMBER_LIST_NAME,
)

if TYPE_CHECKING:  # the result type only; no runtime dependency on pbxis.actions
    from .actions import ActionResult

__all__ = ["QueueDigest"]

#: Bound on remembered waiting callers (QueueCallerLeave normally removes them).
MAX_WAITING = 4096


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class QueueDigest:
    """Handlers for queue, member and device events (mixed into ``Digest``)."""

    model: Model
    prefix: str
    _plen: int
    _loc_agent: dict[str, str]

    def _state(
        self, kind: str, agent: str | None, queue: str | None, value: object
    ) -> None:  # pragma: no cover - provided by Digest
        raise NotImplementedError

    # -- identities --------------------------------------------------------

    def _member_agent(self, iface: str | None, state_iface: str | None = None) -> str | None:
        """The agent a member interface belongs to (API.md §1), tracked or not.

        ``PJSIP/1001`` -> ``1001``; a ``Local/...`` member belongs to the agent
        its StateInterface names, or that an earlier member record mapped.
        """
        if iface is None:
            return None
        prefix = self.prefix
        if iface.startswith(prefix):
            return iface[self._plen :]
        if state_iface is not None and state_iface.startswith(prefix):
            return state_iface[self._plen :]
        return self.model.iface_agent.get(iface)

    # -- member records ----------------------------------------------------

    def _upsert_member(
        self, h: Headers, queue: str, iface: str, agent: str, name: str | None
    ) -> None:
        model = self.model
        a = model.agents.get(agent)
        tracked_queue = queue in model.queues
        if a is None and not tracked_queue:
            return
        key = (agent, queue)
        member = model.members.get(key)
        if member is None or member.interface != iface:
            member = model.members[key] = Member(iface)
            model.iface_agent[iface] = agent
        renamed = name != member.name
        member.name = name
        member.status = h.get("Status") or "0"
        member.paused = h.get("Paused") == "1"
        member.reason = h.get("PausedReason") or None
        if a is not None:
            # Asterisk defaults MemberName to the interface: that is no name.
            # A name that differs per queue follows the latest change, not the
            # latest event that repeats one.
            if name and name != iface and (renamed or a.name is None) and name != a.name:
                a.name = name
                self._state(AGENT_NAME, agent, None, name)
            if tracked_queue:
                self._state(QUEUE_MEMBER_STATUS, agent, queue, member.value())

    def _remove_member(self, agent: str, queue: str) -> None:
        model = self.model
        member = model.members.pop((agent, queue), None)
        if member is None:
            return
        if not any(m.interface == member.interface for m in model.members.values()):
            model.iface_agent.pop(member.interface, None)
        if agent in model.agents and queue in model.queues:
            self._state(QUEUE_MEMBER_STATUS, agent, queue, LOGGED_OFF)

    # -- event handlers (hot path) -----------------------------------------

    def _event_member(self, msg: Message) -> tuple[str | None, str | None]:
        """(interface, agent) of a member event; reads StateInterface only
        when the interface does not name the agent itself (``Local/...``)."""
        iface = first(msg, MEMBER_EVENT_IFACE)
        if iface is not None and iface.startswith(self.prefix):
            return iface, iface[self._plen :]
        return iface, self._member_agent(iface, msg.get("StateInterface"))

    def _on_member(self, msg: Message) -> None:
        """QueueMemberStatus/Added/Pause/Penalty/Ringinuse: full member state."""
        iface, agent = self._event_member(msg)
        queue = msg.get("Queue")
        if agent is None or queue is None or iface is None:
            return
        self._upsert_member(msg, queue, iface, agent, first(msg, MEMBER_EVENT_NAME))

    def _on_member_removed(self, msg: Message) -> None:
        iface, agent = self._event_member(msg)
        queue = msg.get("Queue")
        if agent is None or queue is None:
            return
        member = self.model.members.get((agent, queue))
        if member is not None and member.interface == iface:
            self._remove_member(agent, queue)

    def _on_queue_join(self, msg: Message) -> None:
        """QueueCallerJoin: remember the waiting caller by its Linkedid, which
        the agent legs the queue rings inherit (they may ring before AgentCalled)."""
        name = msg.get("Queue")
        linkedid = msg.get("Linkedid")
        if name is not None and linkedid is not None:
            self._remember_waiting(linkedid, name)
        self._queue_count(name, msg)

    def _remember_waiting(self, linkedid: str, queue: str) -> None:
        waiting = self.model.waiting
        if len(waiting) >= MAX_WAITING:
            del waiting[next(iter(waiting))]
        waiting[linkedid] = queue

    def _on_queue_leave(self, msg: Message) -> None:
        """QueueCallerLeave (QueueCallerAbandon is always followed by one)."""
        linkedid = msg.get("Linkedid")
        if linkedid is not None:
            self.model.waiting.pop(linkedid, None)
        self._queue_count(msg.get("Queue"), msg)

    def _queue_count(self, name: str | None, h: Headers) -> None:
        """The queue's Count, from a QueueCallerJoin/Leave naming queue ``name``."""
        q = self.model.queues.get(name) if name is not None else None
        if q is None:
            return
        count = _int(h.get("Count"))
        if count is not None:
            q.count = count
            self._state(QUEUE_COUNT, None, q.name, count)

    def _on_device_state(self, msg: Message) -> None:
        device = msg.get("Device")
        agent = self._loc_agent.get(device) if device is not None else None
        if agent is not None:
            self._set_device(agent, msg.get("State"))

    def _set_device(self, agent: str, state: str | None) -> None:
        word = DEVICE_STATES.get(state or "", "unknown")
        self.model.agents[agent].device = word
        self._state(EXTENSION_STATUS, agent, None, word)

    # -- list results --------------------------------------------------------

    def _apply_queue_status(self, filters: Mapping[str, str], result: ActionResult) -> None:
        """QueueStatus [Queue=q] [Member=iface]: authoritative for what it covers.

        Asterisk lists QueueParams for every queue matching ``Queue`` and, in
        each, the members whose interface or name equals ``Member``
        (app_queue manager_queues_status). An unknown queue gives an empty
        list (b-agent-management, nosuchqueue).
        """
        model = self.model
        queue_filter = filters.get("Queue")
        member_filter = filters.get("Member")
        listed: dict[str, None] = {}  # ordered: events come out in list order
        seen: set[tuple[str, str]] = set()
        if queue_filter is not None:
            listed[queue_filter] = None
        for ev in result.events:
            h = dict(ev.headers)
            name = h.get("Event")
            queue = h.get("Queue")
            if queue is None:
                continue
            if name == "QueueParams":
                listed[queue] = None
                q = model.queues.get(queue)
                count = _int(h.get("Calls"))
                if q is not None and count is not None:
                    q.count = count
                    self._state(QUEUE_COUNT, None, queue, count)
            elif name == "QueueEntry":
                # A waiting caller: its agent legs carry its id as Linkedid.
                uniqueid = h.get("Uniqueid")
                if uniqueid is not None:
                    self._remember_waiting(uniqueid, queue)
            elif name == "QueueMember":
                iface = first(h, MEMBER_LIST_IFACE)
                agent = self._member_agent(iface, h.get("StateInterface"))
                if agent is not None and iface is not None:
                    seen.add((agent, queue))
                    self._upsert_member(h, queue, iface, agent, first(h, MEMBER_LIST_NAME))
        for (agent, queue), member in list(model.members.items()):
            if queue in listed and (agent, queue) not in seen:
                if member_filter is None or member_filter in (member.interface, member.name):
                    self._remove_member(agent, queue)
        if member_filter is None:
            for queue in listed:
                q = model.queues.get(queue)
                if q is not None:
                    q.members_known = True
            covered = list(model.agents)
        else:
            agent = self._loc_agent.get(member_filter)
            if agent is not None:
                model.agents[agent].members_known = True
            covered = [agent] if agent is not None else []
        # Newly known non-memberships read as loggedoff (API.md §3 introduction).
        for queue in listed:
            if queue in model.queues:
                for agent in covered:
                    if (agent, queue) not in model.members:
                        self._state(QUEUE_MEMBER_STATUS, agent, queue, LOGGED_OFF)
        if (
            queue_filter is not None
            and queue_filter in model.queues
            and not any(ev.get("Event") == "QueueParams" for ev in result.events)
        ):
            # No such queue (any more): nobody can be waiting in it.
            model.queues[queue_filter].count = 0
            self._state(QUEUE_COUNT, None, queue_filter, 0)

    def _apply_device_list(self, result: ActionResult) -> None:
        """DeviceStateList: DeviceStateChange list items (Device, State)."""
        loc_agent = self._loc_agent
        for ev in result.events:
            agent = loc_agent.get(ev.get("Device") or "")
            if agent is not None:
                self._set_device(agent, ev.get("State"))

    def _apply_device_var(self, location: str, result: ActionResult) -> None:
        """Getvar DEVICE_STATE(<location>) -> ``Value: NOT_INUSE``."""
        agent = self._loc_agent.get(location)
        value = result.response.get("Value")
        if agent is not None and result.ok and value:
            self._set_device(agent, value)
