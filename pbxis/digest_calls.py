"""The digest's call side: the agents' live channels, who is on the other end,
originates, completed queue calls and their recordings.

A mixin of :class:`pbxis.digest.Digest` (layer 2). Imports only
``pbxis.events``, ``pbxis.model`` and ``pbxis.protocol`` (``pbxis.actions``'
result type for type checking only); never the client, transport or channels.

The remote party of an agent's channel, from the events Asterisk 22 sends
(shared/ami-transcripts c, d, g, h1, h2):

* Asterisk dials the agent (queue, Dial, redirect, parked call coming back):
  ``DialBegin`` names the dialling channel, whose CallerID is the party;
  ``AgentCalled`` adds the queue.
* The agent's channel dials (its phone placed the call, or an originated leg
  dials the far party): ``DialBegin`` from it, with the dialled ``Exten``.
* ``NewConnectedLine`` updates the party afterwards (answer, transfer, parked
  call picked up) -- except the presentation Asterisk reports on a channel
  before it is dialled (state 0), and an Originate's own CallerID.
* ``Originate``: ``DialBegin`` without a dialling channel rings the agent leg;
  the party is the number pbxis is about to dial (``originate_started``) and,
  once the leg dials out, its ``Exten``.

Bridges are not tracked: BridgeEnter/BridgeLeave of every channel were a
sixth of the narrowed traffic per queue call, and only redirect/park need to
know who an agent is bridged with -- they ask Asterisk when they act
(``Status ... Variables: BRIDGEPEER``), which is also never stale. The model
keeps the dial's far end (``Call.peer``) for the moment between answer and
bridge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .events import AGENT_COMPLETE, ORIGINATE_FAILED, PHONE_NUMBER, Event, _event_of
from .model import NO_CALL, Call, Headers, Model, first, originate_reason
from .protocol import Message
from .versions import (
    APP_DATA,
    BRIDGE_ID,
    CALL_UNIQUEID,
    DOWN_STATE,
    MEMBER_EVENT_IFACE,
    QUEUE_APP,
    QUEUE_LEG_APP,
    UNKNOWN_IDS,
    UNSET_VAR,
    UP_STATE,
)

if TYPE_CHECKING:  # the result type only; no runtime dependency on pbxis.actions
    from .actions import ActionResult

__all__ = ["CallDigest", "PendingOriginate"]


#: Bounds that keep the model finite even if Asterisk's events go missing.
MAX_CALLS_PER_AGENT = 32
MAX_PENDING = 1024


def _num(value: str | None) -> str:
    """A caller-id number; "" when withheld or unknown (the call still exists)."""
    return "" if value is None or value in UNKNOWN_IDS else value


def _name(value: str | None) -> str | None:
    return None if value is None or value in UNKNOWN_IDS else value


def _party_name(value: str | None, *own: str | None) -> str | None:
    """The remote party's name, unless it merely echoes the agent leg's own
    presentation: a number dialled from an Originate's leg inherits the
    Originate's CallerID name ("Sales desk" <1001>: the outside channel's
    CallerIDName, then the leg's ConnectedLineName, read "Sales desk" on
    Asterisk 22), which names the agent side, not the party."""
    name = _name(value)
    return None if name is not None and name in own else name


def _secs(value: str | None) -> int:
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


def _dialled(exten: str | None) -> bool:
    return bool(exten) and exten != "s"


class PendingOriginate:
    """An Originate pbxis sent, until its OriginateResponse."""

    __slots__ = ("agent", "phone", "claimed")

    def __init__(self, agent: str | None, phone: str | None) -> None:
        self.agent = agent
        self.phone = phone
        self.claimed = False


class CallDigest:
    """Handlers for channel, dial and agent events (mixed into ``Digest``)."""

    model: Model
    prefix: str
    _plen: int
    _out: list[Event]
    _originates: dict[str, PendingOriginate]
    _recordings: dict[str, str]
    _recording_vars: frozenset[str]

    def _state(
        self, kind: str, agent: str | None, queue: str | None, value: object
    ) -> None:  # pragma: no cover - provided by Digest
        raise NotImplementedError

    def _member_agent(
        self, iface: str | None, state_iface: str | None = None
    ) -> str | None:  # pragma: no cover - provided by QueueDigest
        raise NotImplementedError

    # -- channel bookkeeping -------------------------------------------------

    def _agent_chan(self, channel: str | None) -> str | None:
        """The tracked agent whose phone ``channel`` (``PJSIP/1001-0000002a``) is, or None."""
        if channel is None or not channel.startswith(self.prefix):
            return None
        dash = channel.rfind("-")
        if dash <= self._plen:
            return None
        agent = channel[self._plen : dash]
        return agent if agent in self.model.agents else None

    def _call(self, channel: str, agent: str, uniqueid: str | None, linkedid: str | None) -> Call:
        """The agent's call on ``channel``, created on first sight."""
        model = self.model
        call = model.calls.get(channel)
        if call is not None:
            if not uniqueid or not call.uniqueid or call.uniqueid == uniqueid:
                if call.uniqueid is None:
                    call.uniqueid = uniqueid
                if call.linkedid is None and linkedid is not None:
                    call.linkedid = linkedid
                    if call.queue is None:
                        call.queue = model.waiting.get(linkedid)
                return call
            self._drop_call(call)  # the name was reused (Asterisk restarted)
        call = model.calls[channel] = Call(channel, agent, uniqueid)
        if linkedid is not None:
            # A leg rung for a caller waiting in a queue (its Linkedid): the
            # queue is known before AgentCalled (d-call-agent-hangup order).
            call.linkedid = linkedid
            call.queue = model.waiting.get(linkedid)
        calls = model.agents[agent].calls
        if len(calls) >= MAX_CALLS_PER_AGENT:
            self._drop_call(next(iter(calls.values())))
        calls[channel] = call
        return call

    def _drop_call(self, call: Call) -> None:
        self.model.calls.pop(call.channel, None)
        a = self.model.agents.get(call.agent)
        if a is not None:
            a.calls.pop(call.channel, None)

    def _phone(self, agent: str) -> None:
        """Publish the agent's phoneNumber: the newest call whose party is known."""
        for call in reversed(self.model.agents[agent].calls.values()):
            if call.number is not None:
                self._state(PHONE_NUMBER, agent, None, (call.number, call.name, call.queue))
                return
        self._state(PHONE_NUMBER, agent, None, NO_CALL)

    # -- event handlers (hot path) ---------------------------------------------
    # They read the few headers they need with ``msg.get``: on a message from
    # the parser that searches the frame's text, cheaper than splitting all
    # of its 5-36 lines into a dict (see ``pbxis.protocol.Message``).

    def _on_connected_line(self, msg: Message) -> None:
        channel = msg.get("Channel")
        agent = self._agent_chan(channel)
        if agent is None or channel is None:
            return
        number = msg.get("ConnectedLineNum")
        if number is None or number in UNKNOWN_IDS or number in (agent, msg.get("CallerIDNum")):
            return
        call = self._call(channel, agent, msg.get("Uniqueid"), msg.get("Linkedid"))
        state = msg.get("ChannelState")
        if state != UP_STATE and (call.originated or (state == DOWN_STATE and not call.dialled)):
            # Before the dial (h2: state 0, ahead of DialBegin) or an Originate's
            # own CallerID (g): a presentation, not the party.
            return
        call.number = number
        call.name = _party_name(msg.get("ConnectedLineName"), msg.get("CallerIDName"))
        self._phone(agent)

    def _on_dial_begin(self, msg: Message) -> None:
        dest = msg.get("DestChannel")
        source = msg.get("Channel")
        agent = self._agent_chan(dest)
        if agent is not None and dest is not None:
            call = self._call(dest, agent, msg.get("DestUniqueid"), msg.get("DestLinkedid"))
            call.dialled = True
            if source is not None:
                call.peer = source
                call.number = _num(msg.get("CallerIDNum"))
                call.name = _name(msg.get("CallerIDName"))
            else:
                # Originate: nobody dials the agent leg (g-originate).
                call.originated = True
                phone = self._claim_originate(agent)
                if phone is not None:
                    call.number, call.name = phone, None
            self._phone(agent)
        agent = self._agent_chan(source)
        if agent is not None and source is not None:
            # The agent's channel dials out (its phone placed the call, or an
            # originated leg dials the far party): Exten is the dialled number.
            call = self._call(source, agent, msg.get("Uniqueid"), msg.get("Linkedid"))
            if dest is not None:
                call.peer = dest
            exten = msg.get("Exten")
            if (call.number is None or call.originated) and _dialled(exten):
                # A dialled phone presents its own caller id (another agent:
                # "Bob Brown" <1002>), which Asterisk copies to this channel's
                # connected line a moment later: take the name now, or the
                # party is reported twice (live direct call 1001 -> 1002).
                named = msg.get("DestCallerIDNum") == exten
                call.number = exten
                call.name = (
                    _party_name(
                        msg.get("DestCallerIDName"),
                        msg.get("CallerIDName"),
                        msg.get("ConnectedLineName"),
                    )
                    if named
                    else None
                )
            call.originated = False  # from now on the far party's connected line counts
            self._phone(agent)

    def _on_agent_called(self, msg: Message) -> None:
        # For a Local/... member DestChannel is the Local channel; its PJSIP
        # leg gets the queue through the waiting caller's Linkedid instead.
        dest = msg.get("DestChannel")
        agent = self._agent_chan(dest)
        if agent is not None and dest is not None:
            call = self._call(dest, agent, msg.get("DestUniqueid"), msg.get("DestLinkedid"))
            call.dialled = True
            call.queue = msg.get("Queue")
            call.number, call.name = _num(msg.get("CallerIDNum")), _name(msg.get("CallerIDName"))
            self._phone(agent)

    def _on_agent_complete(self, msg: Message) -> None:
        agent = self._member_agent(first(msg, MEMBER_EVENT_IFACE))
        if agent is None or agent not in self.model.agents:
            return
        self._out.append(
            _event_of(
                AGENT_COMPLETE,
                agent,
                None,
                {
                    "uniqueId": first(msg, CALL_UNIQUEID),
                    "talkTime": _secs(msg.get("TalkTime")),
                    "holdTime": _secs(msg.get("HoldTime")),
                    "recording": self._recording(msg),
                },
            )
        )

    def _recording(self, msg: Message) -> str | None:
        # manager.conf ``channelvars = MIXMONITOR_FILENAME`` puts it in the
        # event's ChanVariable/DestChanVariable headers; otherwise a VarSet
        # seen earlier (narrow filter, see Digest.narrow_filters).
        if "ChanVariable" in msg or "DestChanVariable" in msg:
            wanted = self._recording_vars
            for key, value in msg.headers:
                if key.endswith("ChanVariable"):
                    var, _, path = value.partition("=")
                    if var in wanted and path:
                        return path
        recordings = self._recordings
        if recordings:
            for key in ("Uniqueid", "DestUniqueid", "Linkedid"):
                uid = msg.get(key)
                if uid is not None and uid in recordings:
                    return recordings[uid]
        return None

    def _on_varset(self, msg: Message) -> None:
        if msg.get("Variable") not in self._recording_vars:
            return
        path = msg.get("Value")
        if not path:
            return
        recordings = self._recordings
        while len(recordings) >= MAX_PENDING:
            del recordings[next(iter(recordings))]
        for key in ("Uniqueid", "Linkedid"):
            uid = msg.get(key)
            if uid is not None:
                recordings[uid] = path

    def _on_hangup(self, msg: Message) -> None:
        channel = msg.get("Channel")
        call = self.model.calls.get(channel) if channel is not None else None
        if call is None and not self._recordings:
            return
        uniqueid = msg.get("Uniqueid")
        if uniqueid is not None and self._recordings:
            self._recordings.pop(uniqueid, None)
        if call is None or (uniqueid and call.uniqueid and call.uniqueid != uniqueid):
            return
        self._drop_call(call)
        self._phone(call.agent)

    def _on_originate_response(self, msg: Message) -> None:
        action_id = msg.get("ActionID")
        pending = self._originates.pop(action_id, None) if action_id is not None else None
        if pending is None:
            return  # not one of ours
        if msg.get("Response") != "Success":
            self._out.append(
                Event(
                    ORIGINATE_FAILED,
                    details={"actionId": action_id, "reason": originate_reason(msg.get("Reason"))},
                )
            )
            return
        channel = msg.get("Channel")
        agent = self._agent_chan(channel)
        exten = msg.get("Exten")
        if agent is not None and channel is not None and _dialled(exten):
            call = self._call(channel, agent, msg.get("Uniqueid"), None)
            if call.number is None or call.originated:
                call.number, call.name = exten, None
                self._phone(agent)

    # -- originates ------------------------------------------------------------

    def originate_started(
        self, action_id: str, agent: str | None = None, phone: str | None = None
    ) -> None:
        """pbxis sent an ``Async`` Originate with this ActionID.

        Its ``OriginateResponse`` Failure becomes ``originateFailed``. Given
        ``agent`` and ``phone``, the agent's ringing leg shows ``phone`` as its
        phoneNumber before the far party is dialled.
        """
        while len(self._originates) >= MAX_PENDING:
            del self._originates[next(iter(self._originates))]
        self._originates[action_id] = PendingOriginate(agent, phone)

    def _claim_originate(self, agent: str) -> str | None:
        for pending in self._originates.values():
            if pending.agent == agent and not pending.claimed:
                pending.claimed = True
                return pending.phone
        return None

    # -- channel list results ----------------------------------------------------

    def _channel_info(self, h: Headers, queue: str | None, peer: str | None) -> None:
        """One channel of a Status / CoreShowChannels answer (``peer``: the
        channel bridged with it, if the answer tells)."""
        channel = h.get("Channel")
        agent = self._agent_chan(channel)
        if agent is None or channel is None:
            return
        call = self._call(channel, agent, h.get("Uniqueid"), h.get("Linkedid"))
        call.dialled = True
        number = h.get("ConnectedLineNum")
        own = (agent, h.get("CallerIDNum"))
        if number is not None and number not in UNKNOWN_IDS and number not in own:
            call.number = number
            call.name = _party_name(h.get("ConnectedLineName"), h.get("CallerIDName"))
        elif call.number is None and _dialled(h.get("Exten")):
            call.number = h.get("Exten")
        if queue is not None:
            call.queue = queue
        if peer:
            call.peer = peer

    def _apply_status(self, channel: str, result: ActionResult) -> None:
        """Status Channel=<agent channel> Variables=QUEUENAME,BRIDGEPEER."""
        agent = self._agent_chan(channel)
        if agent is None:
            return
        found = False
        for ev in result.events:
            h = dict(ev.headers)
            if h.get("Event") != "Status" or h.get("Channel") != channel:
                continue
            found = True
            variables = {
                name: value
                for name, _, value in (v.partition("=") for v in ev.getall("Variable"))
                if value and value != UNSET_VAR
            }
            # BRIDGEPEER lists every other channel of a multi-party bridge.
            peer = (variables.get("BRIDGEPEER") or "").split(",")[0] or None
            self._channel_info(h, variables.get("QUEUENAME"), peer)
        if not found:
            call = self.model.calls.get(channel)
            if call is not None:
                self._drop_call(call)  # "No such channel": it ended meanwhile
        self._phone(agent)

    def _apply_channel_names(self, agent: str, result: ActionResult) -> list[str]:
        """Getvar CHANNELS(^<location>-): the agent's live channel names.

        Returns the channels not known yet (their details need a Status).
        """
        if not result.ok or agent not in self.model.agents:
            return []
        listed = [
            n for n in (result.response.get("Value") or "").split() if self._agent_chan(n) == agent
        ]
        a = self.model.agents[agent]
        for call in list(a.calls.values()):
            if call.channel not in listed:
                self._drop_call(call)  # ended while we were not looking
        unknown = [n for n in listed if n not in a.calls]
        for channel in unknown:
            self._call(channel, agent, None, None)
        self._phone(agent)
        return unknown

    def _apply_core_show_channels(self, result: ActionResult) -> None:
        """CoreShowChannels (or Status of all channels): every live channel;
        authoritative for the agents' calls (and who each is bridged with)."""
        entries = [
            dict(ev.headers)
            for ev in result.events
            if ev.get("Event") in ("CoreShowChannel", "Status")
        ]
        by_uniqueid = {e.get("Uniqueid"): e for e in entries}
        bridge_of = {e.get("Channel"): first(e, BRIDGE_ID) for e in entries}
        bridges: dict[str, list[str]] = {}
        for channel, bridge in bridge_of.items():
            if bridge and channel:
                bridges.setdefault(bridge, []).append(channel)
        listed = set()
        for e in entries:
            if self._agent_chan(e.get("Channel")) is None:
                continue
            queue = None
            caller = by_uniqueid.get(e.get("Linkedid"))
            if e.get("Application") == QUEUE_LEG_APP and caller is not None:
                if caller.get("Application") == QUEUE_APP:
                    queue = (first(caller, APP_DATA) or "").split(",")[0] or None
            channel = e.get("Channel")
            bridge = bridge_of.get(channel)
            peers = [c for c in bridges.get(bridge, ()) if c != channel] if bridge else []
            self._channel_info(e, queue, peers[0] if peers else None)
            listed.add(channel)
        for call in list(self.model.calls.values()):
            if call.channel not in listed:
                self._drop_call(call)
        for agent in self.model.agents:
            self._phone(agent)
