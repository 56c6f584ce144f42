"""The digest: Asterisk AMI events -> a small model -> pbxis ``Event``s (changes only).

Layer 2, pure: no sockets, threads, clocks or randomness; imports only
``pbxis.protocol``, ``pbxis.events``, ``pbxis.model`` and its own two halves
(``digest_queues``, ``digest_calls``); ``pbxis.actions``' result type for type
checking only. The client serialises every call under its state lock.

One handler table (``_HANDLERS``) drives ``feed`` and yields
``handled_events`` (the server-side Filter whitelist and the parser's
skip-by-name set), so they cannot drift. State events (agentName,
extensionStatus, queueMemberStatus, phoneNumber, queueCount) are published
only when the value differs from what was last published for its
(type, agent, queue) -- phoneNumber is one state per agent, the queue of the
call riding along. What is learnt by queries (``track`` -> ``apply``) is
published the same way; a restore (``begin_restore`` ... ``end_restore``)
publishes only the net changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

from .digest_calls import CallDigest, PendingOriginate
from .digest_queues import QueueDigest
from .events import (
    AGENT_NAME,
    EXTENSION_STATUS,
    PHONE_NUMBER,
    QUEUE_COUNT,
    QUEUE_MEMBER_STATUS,
    Event,
    _event_of,
)
from .model import NO_CALL, Agent, Model, Queue
from .protocol import Message, regex_literal
from .versions import RECORDING_VARS

if TYPE_CHECKING:  # the result type only; no runtime dependency on pbxis.actions
    from .actions import ActionResult

__all__ = ["Query", "CallInfo", "Digest"]

Key = tuple[str, Optional[str], Optional[str]]
_Handler = Callable[[Message], None]

#: AMI event -> handler. feed() reads exactly these; see the module docstring.
_HANDLERS: Mapping[str, str] = {
    "QueueMemberStatus": "_on_member",
    "QueueMemberAdded": "_on_member",
    "QueueMemberPause": "_on_member",
    "QueueMemberPenalty": "_on_member",
    "QueueMemberRinginuse": "_on_member",
    "QueueMemberRemoved": "_on_member_removed",
    "QueueCallerJoin": "_on_queue_join",
    "QueueCallerLeave": "_on_queue_leave",
    "DeviceStateChange": "_on_device_state",
    "NewConnectedLine": "_on_connected_line",
    "DialBegin": "_on_dial_begin",
    "AgentCalled": "_on_agent_called",
    "AgentComplete": "_on_agent_complete",
    "Hangup": "_on_hangup",
    "OriginateResponse": "_on_originate_response",
}

#: Events feed() also reads, but only worth receiving through a narrow Filter
#: (VarSet is over half of all AMI traffic): name -> (handler, legacy Filter
#: regex that Asterisk 16 and 22 both accept).
_NARROW: Mapping[str, tuple[str, str]] = {
    "VarSet": (
        "_on_varset",
        "^Event: VarSet[[:space:]].*Variable: MIXMONITOR_FILENAME[[:space:]]",
    ),
}

#: Events feed() reads, but not all of them: name -> the header line that
#: marks those it never needs, as its first header after ``Privilege``. A
#: queue's own pseudo devices (``Queue:sales_avail``,
#: ``Queue:sales_pause_PJSIP/1001``) send two in five DeviceStateChange.
#: Excluded server-side by the client's Filter, skipped by its parser.
_IGNORED: Mapping[str, str] = {"DeviceStateChange": "Device: Queue:"}

_STATUS_VARIABLES = "QUEUENAME,BRIDGEPEER"


@dataclass(frozen=True)
class Query:
    """One AMI action the digest wants sent; give its result to ``Digest.apply``."""

    action: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CallInfo:
    """One live call of an agent, for redirect/park resolution (API.md §5).

    ``peer`` is the channel at the other end of the dial; who the agent's
    channel is bridged with is Asterisk's to say when a command acts (the
    digest reads no bridge events, see ``pbxis.digest_calls``).
    """

    agent_channel: str
    peer: str | None
    caller_id_num: str | None
    agent: str | None = None
    queue: str | None = None


class Digest(QueueDigest, CallDigest):
    """AMI events and query results in, pbxis events out (see the module docstring).

    Args:
        location_prefix: prepended to an agent to form its location
            (``"PJSIP/"`` + ``"1001"``); also the prefix of its channels.
        recording_vars: channel variables that hold a call's recording path.

    Not thread-safe: the caller serialises all calls. Nothing here blocks.
    """

    #: Every AMI event name feed() reads.
    handled_events: frozenset[str] = frozenset(_HANDLERS)
    #: Events feed() reads only when narrowed server-side: name -> Filter regex.
    #: A client that installs these filters adds the names to its parser's set.
    narrow_filters: Mapping[str, str] = {name: regex for name, (_, regex) in _NARROW.items()}
    #: Handled events of which feed() never needs some: name -> the header
    #: line that marks those (see ``pbxis.protocol.Parser``'s ``ignore``).
    ignored: Mapping[str, str] = _IGNORED

    def __init__(
        self, location_prefix: str = "PJSIP/", recording_vars: Iterable[str] = RECORDING_VARS
    ) -> None:
        self.prefix = location_prefix
        self._plen = len(location_prefix)
        self.model = Model()
        self._loc_agent: dict[str, str] = {}
        self._published: dict[Key, object] = {}
        self._restoring = False
        self._out: list[Event] = []
        self._followups: list[Query] = []
        self._chan_vars: dict[str, str] = {}
        self._originates: dict[str, PendingOriginate] = {}
        self._recordings: dict[str, str] = {}
        self._recording_vars = frozenset(recording_vars)
        table = dict(_HANDLERS)
        table.update((name, handler) for name, (handler, _) in _NARROW.items())
        self._dispatch: dict[str, _Handler] = {n: getattr(self, m) for n, m in table.items()}

    # -- the event stream --------------------------------------------------

    def feed(self, msg: Message, event: str | None = None) -> list[Event]:
        """Digest one unsolicited AMI event; return the pbxis events it causes.

        ``event``: the message's ``Event`` header, if the caller has read it
        already (saves a lookup per frame). Events not in the handler table
        cost one dict lookup. Never raises on odd input: missing or malformed
        headers are ignored.
        """
        if event is None:
            event = msg.get("Event") or ""
        handler = self._dispatch.get(event)
        if handler is None:
            return []
        out = self._out = []
        handler(msg)
        return out

    def _state(self, kind: str, agent: str | None, queue: str | None, value: object) -> None:
        """Publish a state value unless it equals the last one published for its key."""
        key = (kind, agent, queue)
        if self._published.get(key, NO_CALL) == value or self._restoring:
            return
        self._published[key] = value
        self._out.append(_event(kind, agent, queue, value))

    # -- tracking ------------------------------------------------------------

    def track(self, agents: Iterable[str], queues: Iterable[str]) -> list[Query]:
        """Add a reference to each agent and queue (refcounted).

        Returns the queries that learn the state of what was not tracked
        before, and only that: per new queue ``QueueStatus Queue=q``; per new
        agent ``QueueStatus Member=<location>`` (name, memberships),
        ``Getvar DEVICE_STATE(<location>)`` and ``Getvar CHANNELS(^<location>-)``
        (its live channels; each one not known yet is then asked with a
        ``Status``, see :meth:`take_queries`).
        """
        model = self.model
        queries: list[Query] = []
        for name in queues:
            q = model.queues.get(name)
            if q is None:
                q = model.queues[name] = Queue(name)
                queries.append(Query("QueueStatus", (("Queue", name),)))
            q.refs += 1
        for name in agents:
            a = model.agents.get(name)
            if a is None:
                location = self.prefix + name
                a = model.agents[name] = Agent(name, location)
                self._loc_agent[location] = name
                channels = f"CHANNELS(^{regex_literal(location)}-)"
                self._chan_vars[channels] = name
                queries += [
                    Query("QueueStatus", (("Member", location),)),
                    Query("Getvar", (("Variable", f"DEVICE_STATE({location})"),)),
                    Query("Getvar", (("Variable", channels),)),
                ]
            a.refs += 1
        return queries

    def untrack(self, agents: Iterable[str], queues: Iterable[str]) -> None:
        """Release references; forget whatever is no longer referenced."""
        model = self.model
        gone_agents = set()
        gone_queues = set()
        for name in agents:
            a = model.agents.get(name)
            if a is not None:
                a.refs -= 1
                if a.refs <= 0:
                    gone_agents.add(name)
        for name in queues:
            q = model.queues.get(name)
            if q is not None:
                q.refs -= 1
                if q.refs <= 0:
                    gone_queues.add(name)
        if not gone_agents and not gone_queues:
            return
        for name in gone_agents:
            a = model.agents.pop(name)
            del self._loc_agent[a.location]
            self._chan_vars = {k: v for k, v in self._chan_vars.items() if v != name}
            for channel in a.calls:
                model.calls.pop(channel, None)
        for name in gone_queues:
            del model.queues[name]
        for agent, queue in list(model.members):
            if agent not in model.agents and queue not in model.queues:
                member = model.members.pop((agent, queue))
                if not any(m.interface == member.interface for m in model.members.values()):
                    model.iface_agent.pop(member.interface, None)
        self._published = {
            k: v
            for k, v in self._published.items()
            if k[1] not in gone_agents and k[2] not in gone_queues
        }

    def take_queries(self) -> list[Query]:
        """Follow-up queries that ``apply`` asked for (and forget them).

        After applying a ``Getvar CHANNELS(...)`` result, one ``Status`` per
        live channel of the agent not known yet. Send them and ``apply`` their
        results like the others.
        """
        queries, self._followups = self._followups, []
        return queries

    # -- query results -----------------------------------------------------

    def apply(self, query: Query, result: ActionResult) -> list[Event]:
        """Digest the result of a query; return the state changes it reveals.

        Understands QueueStatus (any Queue/Member filter), DeviceStateList,
        CoreShowChannels, Status (one channel or all) and Getvar of
        DEVICE_STATE()/CHANNELS(), whoever asked; other actions are ignored.
        Each result is authoritative for what it covers (members no longer
        listed are removed, channels no longer listed have ended).
        """
        out = self._out = []
        headers = dict(query.headers)
        action = query.action
        if action == "QueueStatus":
            if result.ok:
                self._apply_queue_status(headers, result)
        elif action == "DeviceStateList":
            self._apply_device_list(result)
        elif action == "CoreShowChannels" or (action == "Status" and "Channel" not in headers):
            if result.ok:
                self._apply_core_show_channels(result)
        elif action == "Status":
            self._apply_status(headers["Channel"], result)
        elif action == "Getvar" and "Channel" not in headers:
            var = headers.get("Variable", "")
            if var.startswith("DEVICE_STATE(") and var.endswith(")"):
                self._apply_device_var(var[13:-1], result)
            elif var in self._chan_vars:
                for channel in self._apply_channel_names(self._chan_vars[var], result):
                    self._followups.append(
                        Query("Status", (("Channel", channel), ("Variables", _STATUS_VARIABLES)))
                    )
        return out

    # -- reconnect -------------------------------------------------------------

    def begin_restore(self) -> list[Query]:
        """After a reconnect: hold state events and return the restore queries.

        A constant number of bulk queries, independent of the number of
        tracked agents: ``QueueStatus Queue=q`` per tracked queue, then
        ``DeviceStateList`` and ``CoreShowChannels`` when agents are tracked.
        Each result is authoritative for what it covers, so ``apply`` drops
        calls that ended and members that were removed meanwhile.
        """
        self._restoring = True
        self._followups = []
        queries = [Query("QueueStatus", (("Queue", q),)) for q in self.model.queues]
        if self.model.agents:
            queries += [Query("DeviceStateList"), Query("CoreShowChannels")]
        return queries

    def end_restore(self) -> list[Event]:
        """After every restore result was applied: the net changes since the outage."""
        self._restoring = False
        out = self._out = []
        for key, value in self._current():
            self._state(key[0], key[1], key[2], value)
        return out

    def _current(
        self, agents: Iterable[str] | None = None, queues: Iterable[str] | None = None
    ) -> list[tuple[Key, object]]:
        """(key, value) of every known state value in scope (default: all tracked)."""
        model = self.model
        agent_names = [a for a in (model.agents if agents is None else agents) if a in model.agents]
        queue_names = [q for q in (model.queues if queues is None else queues) if q in model.queues]
        items: list[tuple[Key, object]] = []
        for name in agent_names:
            a = model.agents[name]
            if a.name is not None:
                items.append(((AGENT_NAME, name, None), a.name))
            if a.device is not None:
                items.append(((EXTENSION_STATUS, name, None), a.device))
            for queue in queue_names:
                value = model.member_value(name, queue)
                if value is not None:
                    items.append(((QUEUE_MEMBER_STATUS, name, queue), value))
            call = model.current_call(name)
            items.append(((PHONE_NUMBER, name, None), NO_CALL if call is None else call.value()))
        for queue in queue_names:
            count = model.queues[queue].count
            if count is not None:
                items.append(((QUEUE_COUNT, None, queue), count))
        return items

    # -- views -------------------------------------------------------------------

    def introduce(self, agents: Iterable[str], queues: Iterable[str]) -> list[Event]:
        """The current state for a new channel's scope, as events (API.md §3).

        agentName, extensionStatus, queueMemberStatus for each agent x queue
        (loggedoff when not a member), phoneNumber for calls in progress (only
        those the scope can receive), queueCount. During a restore, the state
        last published (the restore's changes follow for every channel).
        """
        queue_list = list(queues)
        scope = set(queue_list)
        events = []
        for (kind, agent, queue), value in self._current(agents, queue_list):
            if self._restoring:
                key = (kind, agent, queue)
                if key not in self._published and kind != PHONE_NUMBER:
                    continue
                value = self._published.get(key, NO_CALL)
            if kind == PHONE_NUMBER:
                assert isinstance(value, tuple)
                if value == NO_CALL or (value[2] is not None and value[2] not in scope):
                    continue
            events.append(_event(kind, agent, queue, value))
        return events

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready tracked state: agents (name, status, memberships, calls), queues."""
        return self.model.snapshot()

    def calls_of(self, agent: str) -> list[CallInfo]:
        """The agent's live calls (oldest first), for redirect/park."""
        a = self.model.agents.get(agent)
        return [] if a is None else [self._info(c) for c in a.calls.values()]

    def all_calls(self) -> list[CallInfo]:
        """Every tracked agent's live calls."""
        return [self._info(c) for c in self.model.calls.values()]

    def _info(self, call: Any) -> CallInfo:
        return CallInfo(call.channel, call.peer, call.number, call.agent, call.queue)


def _event(kind: str, agent: str | None, queue: str | None, value: Any) -> Event:
    """The pbxis Event for a state value (API.md §4 detail keys); each gets a new dict."""
    if kind == QUEUE_MEMBER_STATUS:
        status, reason = value
        details = {"status": status} if reason is None else {"status": status, "reason": reason}
        return _event_of(kind, agent, queue, details)
    if kind == PHONE_NUMBER:
        number, name, call_queue = value
        return _event_of(kind, agent, call_queue, {"number": number, "name": name})
    if kind == QUEUE_COUNT:
        return _event_of(kind, None, queue, {"count": value})
    if kind == AGENT_NAME:
        return _event_of(kind, agent, None, {"name": value})
    return _event_of(kind, agent, None, {"status": value})
