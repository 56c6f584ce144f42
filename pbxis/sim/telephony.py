"""Calls outside the queue engine: Originate, Redirect, Park, Hangup, Dial.

Event order follows shared/ami-transcripts g-originate (Originate),
h1-redirect (Redirect of a bridged queue caller: AgentComplete only when
the caller finally hangs up) and h2-park (ParkedCall, UnParkedCall,
ParkedCallTimeOut, comeback to the parker). Pure (virtual clock only).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .frames import Headers
from .model import Bridge, Channel, Parked, Phone, QueueCall, Timer
from .queueing import QueueFlows

__all__ = ["Telephony", "OriginateResult", "OUTSIDE_SECONDS", "PARKING_SPACES"]

#: How long an "outside number" (any unknown extension) stays up: the lab's
#: dialplan ``_X.`` is Answer, Wait(20).
OUTSIDE_SECONDS = 20.0
PARKING_SPACES = tuple(range(701, 721))
PARKING_TIMEOUT = 45
#: Virtual seconds between sending an INVITE and a phone's final refusal.
SIP_ROUND_TRIP = 0.02


@dataclass
class OriginateResult:
    """What an Originate ended with (Reason is an AST_CONTROL code: 4 answered,
    0 no such/unreachable endpoint, and a phone answering 486 Busy Here;
    1 hung up, 3 no answer, 5 busy (the phone is in use))."""

    success: bool
    reason: int
    channel: str
    uniqueid: str = "<unknown>"
    caller_num: str = "<unknown>"
    caller_name: str = "<unknown>"


@dataclass(eq=False)
class _Origination:
    channel: str
    context: str
    exten: str
    action_id: str | None
    async_: bool
    on_result: Callable[[OriginateResult], None] | None
    application: str = ""
    data: str = ""
    leg: Channel | None = None
    timers: list[Timer] = field(default_factory=list)
    done: bool = False


@dataclass(eq=False)
class _Dial:
    caller: Channel
    leg: Channel
    phone: Phone
    timers: list[Timer] = field(default_factory=list)
    done: bool = False


class Telephony(QueueFlows):
    """Originate, Redirect, Park, Hangup and plain Dial between channels."""

    def _boot(self, first: bool = False) -> None:
        super()._boot(first)
        self.parked: dict[int, Parked] = {}
        self.parking_bridge: Bridge | None = None

    # ------------------------------------------------------------ hangup
    def _hangup_request(self, ch: Channel, cause: int = 16, by_action: bool = False) -> None:
        """A channel hangs up (its party sent BYE, or the Hangup action)."""
        if not ch.alive:
            return
        owner = ch.owner
        if isinstance(owner, QueueCall):
            qc = owner
            if qc.state == "waiting" and ch is qc.caller:
                self._abandon(qc, cause, None) if by_action else self._abandon(qc)
                return
            if qc.state == "waiting" and ch in qc.legs.values():
                self._reject_leg(qc, ch)
                return
            if qc.state == "connected" and qc.agent_leg is not None and qc.agent_leg.alive \
                    and qc.caller.alive and ch.bridge is not None:
                self._end_queue_call(qc, "caller" if ch is qc.caller else "agent")
                return
        for parked in list(self.parked.values()):
            if parked.parkee is ch:
                self._parked_hangup(parked)
                return
        if isinstance(owner, _Dial) and not owner.done:
            self._dial_cancel(owner, ch)
            return
        if isinstance(owner, _Origination) and not owner.done:
            self._originate_fail(owner, 1, hangup=True)
            return
        if ch.bridge is not None and len(ch.bridge.channels) == 2:
            self._end_bridge(ch, cause)
            return
        self._lone_hangup(ch, cause)

    def _reject_leg(self, qc: QueueCall, leg: Channel) -> None:
        """A ringing queue leg is declined at the phone."""
        self._chan_event("HangupRequest", leg, [("Cause", "21")])
        self.emit("DialEnd", "call", qc.caller.block() + leg.block("Dest") +
                  [("DialStatus", "NOANSWER")])
        self._drop_leg(qc, leg, 21)
        if not qc.legs:
            for timer in qc.timers:
                timer.cancel()
            qc.timers = []
            self._retry_later(qc)
        self._settle()

    def _emit_pending(self, ch: Channel, reason: str) -> None:
        for qc in ch.pending:
            self._complete(qc, reason, with_dest=False)
        ch.pending = []

    def _lone_hangup(self, ch: Channel, cause: int) -> None:
        self._chan_event("SoftHangupRequest", ch, [("Cause", str(cause))])
        self._emit_pending(ch, "caller")
        phone = ch.phone
        self._hangup_event(ch, cause)
        if phone is not None:
            self._phone_dsc(phone)
            self._phone_ext(phone)
            self._members_update(phone)
        self._caller_device()
        self._settle()

    def _end_bridge(self, ch: Channel, cause: int) -> None:
        """Two channels in a basic bridge; ``ch`` hangs up, the peer follows (h1 end)."""
        bridge = ch.bridge
        assert bridge is not None
        peer = next(c for c in bridge.channels if c is not ch)
        self._bridge_leave(ch)
        self._bridge_leave(peer)
        self._chan_event("SoftHangupRequest", ch, [("Cause", str(cause))])
        self._bridge_destroy(bridge.uniqueid)
        self._emit_pending(ch, "caller" if ch.phone is None else "agent")
        self._emit_pending(peer, "caller" if peer.phone is None else "agent")
        for first in (peer, ch):
            phone = first.phone
            self._detach(first)
            if phone is not None:
                self._phone_ext(phone)
            self._hangup_event(first, cause)
            if phone is not None:
                self._phone_dsc(phone)
                self._members_update(phone)
        self._caller_device()
        self._settle()

    def hangup(self, name: str, cause: int = 16) -> bool:
        """The Hangup action; False when there is no such channel."""
        ch = self.channels.get(name)
        if ch is None:
            return False
        self._hangup_request(ch, cause, by_action=True)
        return True

    # ------------------------------------------------------------ dialplan
    def _goto(self, ch: Channel, context: str, exten: str) -> None:
        """Run ``exten@context`` on ``ch`` (the simulator's whole dialplan)."""
        ch.owner = None
        if context == "parkedcalls" or (exten.isdigit() and int(exten) in self.parked):
            space = int(exten) if exten.isdigit() else 0
            if space in self.parked:
                self._retrieve(ch, space, context, exten)
            else:
                self._newexten(ch, "ParkedCall", f"default,{exten}", context=context,
                               exten=exten, priority=1)
                self._lone_hangup(ch, 16)
            return
        queue = self.queues.get(exten)
        if queue is not None:
            ch.context, ch.exten = context, exten
            self._enter_queue(ch, queue, None)
            return
        phone = self.phones.get(exten)
        if phone is not None:
            self._dial_phone(ch, phone, exten, context)
            return
        self._newexten(ch, "Answer", "", context=context, exten=exten, priority=1)
        if ch.state != 6:
            self._newstate(ch, 6)
            self._caller_device()
        self._newexten(ch, "Wait", str(int(OUTSIDE_SECONDS)), priority=2)
        if ch.hangup_timer is not None:
            ch.hangup_timer.cancel()
        ch.hangup_timer = self.sched.after(OUTSIDE_SECONDS, lambda: self._hangup_request(ch))

    def _dial_phone(self, caller: Channel, phone: Phone, exten: str, context: str,
                    timeout: float = 30.0) -> None:
        """``Dial(PJSIP/<ext>,30)`` from ``caller`` (h1: redirect to 1003)."""
        self._newexten(caller, "Dial", f"{phone.interface},{int(timeout)}", context=context,
                       exten=exten, priority=1)
        if not phone.reachable:
            self._lone_hangup(caller, 16)
            return
        leg = self._new_channel(phone.interface, state=0, num=phone.ext, name=phone.name,
                                context="default", exten=exten, linkedid=caller.linkedid,
                                phone=phone)
        dial = _Dial(caller, leg, phone)
        leg.owner = dial
        caller.owner = dial
        self._chan_event("Newchannel", leg)
        self._newexten(leg, "AppDial", "(Outgoing Line)")
        leg.connected_num, leg.connected_name = caller.caller_num, caller.caller_name
        self._chan_event("NewConnectedLine", leg)
        self.emit("DialBegin", "call", caller.block() + leg.block("Dest") +
                  [("DialString", phone.ext)])
        if phone.busy or phone.device_state not in ("NOT_INUSE", "UNKNOWN"):
            self._chan_event("HangupRequest", leg, [("Cause", "17"), ("TechCause", "486")])
            self.emit("DialEnd", "call", caller.block() + leg.block("Dest") +
                      [("DialStatus", "BUSY")])
            self._hangup_event(leg, 17, 486)
            dial.done = True
            caller.owner = None
            self._lone_hangup(caller, 17)
            return
        caller.connected_num, caller.connected_name = phone.ext, phone.name
        self._chan_event("NewConnectedLine", caller)
        leg.ringing = True
        self._newstate(leg, 5)
        self._phone_ext(phone)
        self._phone_dsc(phone)
        self._members_update(phone)
        self.emit("DialState", "call", caller.block() + leg.block("Dest") +
                  [("DialStatus", "RINGING")])
        delay = self._answer_delay(phone)
        if delay is not None and delay < timeout:
            dial.timers.append(self.sched.after(delay, lambda: self._dial_answer(dial)))
        else:
            dial.timers.append(self.sched.after(timeout, lambda: self._dial_noanswer(dial)))

    def _dial_answer(self, dial: _Dial) -> None:
        if dial.done or not dial.leg.alive or not dial.caller.alive:
            return
        dial.done = True
        caller, leg, phone = dial.caller, dial.leg, dial.phone
        caller.owner = leg.owner = None
        leg.ringing = False
        self._newstate(leg, 6)
        self.emit("DialEnd", "call", caller.block() + leg.block("Dest") +
                  [("DialStatus", "ANSWER")])
        bridge = self._new_bridge()
        self.emit("BridgeCreate", "call", bridge.block())
        self._newexten(leg, "AppDial", "(Outgoing Line)", exten="")
        self._bridge_enter(bridge, leg)
        self._phone_dsc(phone)
        self._phone_ext(phone)
        self._members_update(phone)
        if caller.state != 6:
            self._newstate(caller, 6)
            self._caller_device()
        self._bridge_enter(bridge, caller)
        self._start_talk(caller)
        if phone.hangup_after is not None:
            leg.hangup_timer = self.sched.after(phone.hangup_after,
                                                lambda: self._hangup_request(leg))
        self._settle()

    def _dial_noanswer(self, dial: _Dial) -> None:
        if dial.done:
            return
        dial.done = True
        caller, leg = dial.caller, dial.leg
        self.emit("DialEnd", "call", caller.block() + leg.block("Dest") +
                  [("DialStatus", "NOANSWER")])
        self._detach(leg)
        self._phone_ext(dial.phone)
        self._hangup_event(leg, 0)
        self._phone_dsc(dial.phone)
        self._members_update(dial.phone)
        caller.owner = None
        self._lone_hangup(caller, 16)

    def _dial_cancel(self, dial: _Dial, ch: Channel) -> None:
        """Either side hangs up while the dial is still ringing."""
        dial.done = True
        for timer in dial.timers:
            timer.cancel()
        caller, leg = dial.caller, dial.leg
        status = "CANCEL" if ch is caller else "NOANSWER"
        self.emit("DialEnd", "call", caller.block() + leg.block("Dest") +
                  [("DialStatus", status)])
        self._detach(leg)
        self._hangup_event(leg, 0 if ch is caller else 21)
        self._phone_idle_updates(dial.phone)
        caller.owner = None
        self._lone_hangup(caller, 16)

    def _bridge_enter(self, bridge: Bridge, ch: Channel) -> None:
        bridge.channels.append(ch)
        ch.bridge = bridge
        self.emit("BridgeEnter", "call", bridge.block() + ch.block())

    # ------------------------------------------------------------ redirect
    def redirect(self, name: str, context: str, exten: str) -> tuple[bool, str]:
        """The Redirect action: ``(ok, message)`` with Asterisk's words."""
        ch = self.channels.get(name)
        if ch is None:
            return False, f"Channel does not exist: {name}"
        self._redirect(ch, context, exten)
        return True, "Redirect successful"

    def _redirect(self, ch: Channel, context: str, exten: str) -> None:
        owner = ch.owner
        if isinstance(owner, QueueCall) and owner.state == "waiting" and ch is owner.caller:
            self._leave_queue(owner)
        for parked in list(self.parked.values()):
            if parked.parkee is ch:
                self._unpark(parked)
                self._leave_parking(parked)
        if isinstance(owner, _Origination) and not owner.done:
            self._originate_fail(owner, 1, hangup=False)
        if ch.hangup_timer is not None and ch.phone is not None:
            ch.hangup_timer.cancel()
            ch.hangup_timer = None
        if ch.bridge is not None and len(ch.bridge.channels) == 2:
            bridge = ch.bridge
            peer = next(c for c in bridge.channels if c is not ch)
            self._newexten(ch, "Queue" if isinstance(owner, QueueCall) else ch.application,
                           ch.app_data, exten=exten)
            self._bridge_leave(ch)
            self._bridge_leave(peer)
            self._bridge_destroy(bridge.uniqueid)
            qc = owner if isinstance(owner, QueueCall) else peer.owner
            if isinstance(qc, QueueCall) and qc.state == "connected":
                self._member_done(qc)
                if ch is qc.caller:
                    qc.state = "transferred"
                    ch.pending.append(qc)
                else:
                    self._complete(qc, "transfer")
            phone = peer.phone
            self._detach(peer)
            if peer.phone is None and peer.pending:
                self._emit_pending(peer, "caller")
            self._hangup_event(peer, 16)
            if phone is not None:
                self._phone_dsc(phone)
                self._members_update(phone)
                self._phone_ext(phone)
            self._caller_device()
        ch.owner = None
        self._goto(ch, context, exten)
        self._settle()

    # ------------------------------------------------------------ park
    def park(self, name: str, timeout_channel: str = "", timeout_ms: int | None = None,
             ) -> tuple[bool, str]:
        """The Park action (res_parking); ``(ok, message)``."""
        parkee = self.channels.get(name)
        if parkee is None:
            return False, f"Channel does not exist: {name}"
        free = [s for s in PARKING_SPACES if s not in self.parked]
        if not free:
            return False, "Failed to park"
        parker = self.channels.get(timeout_channel) if timeout_channel else None
        if parker is not None and parker.phone is not None:
            parker_dial = parker.phone.interface
        elif timeout_channel:
            parker_dial = timeout_channel.rsplit("-", 1)[0]
        elif parkee.bridge is not None and len(parkee.bridge.channels) == 2:
            other = next(c for c in parkee.bridge.channels if c is not parkee)
            parker_dial = other.name.rsplit("-", 1)[0]
        else:
            parker_dial = parkee.name.rsplit("-", 1)[0]
        timeout = PARKING_TIMEOUT if not timeout_ms else max(1, int(timeout_ms) // 1000)
        self._park(parkee, free[0], parker_dial, timeout)
        return True, "Park successful\n"

    def _park_block(self, parked: Parked, *, remaining: int | None = None,
                    prefix_chan: Channel | None = None) -> Headers:
        elapsed = int(self.sched.now - parked.parked_at)
        left = parked.timeout - elapsed if remaining is None else remaining
        body = parked.parkee.block("Parkee")
        if prefix_chan is not None:
            body += prefix_chan.block("Retriever")
        body += [("ParkerDialString", parked.parker_dial), ("Parkinglot", "default"),
                 ("ParkingSpace", str(parked.space)), ("ParkingTimeout", str(max(0, left))),
                 ("ParkingDuration", str(elapsed))]
        return body

    def _park(self, parkee: Channel, space: int, parker_dial: str, timeout: int) -> None:
        if self.parking_bridge is None:
            self.parking_bridge = self._new_bridge(type="parking", technology="holding_bridge",
                                                   creator="Parking", name="default")
            self.emit("BridgeCreate", "call", self.parking_bridge.block())
        old = parkee.bridge
        peer = None
        if old is not None:
            peer = next((c for c in old.channels if c is not parkee), None)
            self._bridge_leave(parkee)
        parked = Parked(parkee, space, parker_dial, timeout, self.sched.now)
        self.parked[space] = parked
        owner = parkee.owner
        self.set_device(f"park:{space}@parkedcalls", "INUSE")
        self.emit("ParkedCall", "call", self._park_block(parked))
        self._bridge_enter(self.parking_bridge, parkee)
        self._chan_event("MusicOnHoldStart", parkee, [("Class", "default")])
        if old is not None and peer is not None:
            self._bridge_leave(peer)
            self.bridges.pop(old.uniqueid, None)
            self.emit("BridgeDestroy", "call", old.block())
            qc = owner if isinstance(owner, QueueCall) else peer.owner
            if isinstance(qc, QueueCall) and qc.state == "connected":
                self._member_done(qc)
                qc.state = "transferred"
                parkee.pending.append(qc)
            phone = peer.phone
            self._detach(peer)
            self._hangup_event(peer, 16)
            if phone is not None:
                self._phone_ext(phone)
                self._members_update(phone)
                self._phone_dsc(phone)
        parkee.owner = None
        parked.timer = self.sched.after(timeout, lambda: self._park_timeout(parked))
        self._settle()

    def _unpark(self, parked: Parked) -> None:
        self.parked.pop(parked.space, None)
        if parked.timer is not None:
            parked.timer.cancel()
        self._chan_event("MusicOnHoldStop", parked.parkee)
        self.set_device(f"park:{parked.space}@parkedcalls", "NOT_INUSE")

    def _leave_parking(self, parked: Parked) -> None:
        if self.parking_bridge is not None and parked.parkee.bridge is self.parking_bridge:
            self._bridge_leave(parked.parkee)

    def _park_timeout(self, parked: Parked) -> None:
        if parked.space not in self.parked or not parked.parkee.alive:
            return
        parkee = parked.parkee
        self._unpark(parked)
        back = parked.parker_dial.replace("/", "_")
        parkee.context, parkee.exten, parkee.priority = "park-dial", back, 1
        self.emit("ParkedCallTimeOut", "call", self._park_block(parked, remaining=0))
        self._leave_parking(parked)
        phone = self.phones_by_iface.get(parked.parker_dial)
        if phone is None:
            self._lone_hangup(parkee, 16)
            return
        self._dial_phone(parkee, phone, back, "park-dial", timeout=20.0)

    def _parked_hangup(self, parked: Parked) -> None:
        parkee = parked.parkee
        self._chan_event("HangupRequest", parkee)
        self._unpark(parked)
        self.emit("ParkedCallGiveUp", "call", self._park_block(parked))
        self._leave_parking(parked)
        self._lone_hangup(parkee, 16)

    def _retrieve(self, ch: Channel, space: int, context: str, exten: str) -> None:
        parked = self.parked[space]
        parkee = parked.parkee
        self._newexten(ch, "ParkedCall", f"default,{space}", context=context, exten=exten,
                       priority=1)
        bridge = self._new_bridge()
        self.emit("BridgeCreate", "call", bridge.block())
        self._unpark(parked)
        self._leave_parking(parked)
        self._bridge_enter(bridge, parkee)
        if ch.phone is not None:
            self._phone_dsc(ch.phone)
        self.emit("UnParkedCall", "call", self._park_block(parked, prefix_chan=ch))
        if ch.phone is not None:
            self._members_update(ch.phone)
        self._bridge_enter(bridge, ch)
        parkee.connected_num, parkee.connected_name = ch.caller_num, ch.caller_name
        ch.connected_num, ch.connected_name = parkee.caller_num, parkee.caller_name
        self._chan_event("NewConnectedLine", parkee)
        self._chan_event("NewConnectedLine", ch)
        self._start_talk(parkee)

    # ------------------------------------------------------------ originate
    def originate(
        self,
        channel: str,
        context: str = "default",
        exten: str = "s",
        *,
        timeout_ms: int = 30000,
        caller_id: str | None = None,
        variables: dict[str, str] | None = None,
        application: str = "",
        data: str = "",
        action_id: str | None = None,
        async_: bool = True,
        on_result: Callable[[OriginateResult], None] | None = None,
    ) -> None:
        """Ring ``channel`` (``PJSIP/1001``); when answered run ``exten@context``.

        ``async_``: an ``OriginateResponse`` event (with ``action_id``) reports
        the outcome. ``on_result`` is called in both modes.
        """
        orig = _Origination(channel, context, exten, action_id, async_, on_result,
                            application, data)
        phone = self.phones_by_iface.get(channel)
        if phone is None or not phone.reachable:
            # No such endpoint / unreachable by qualify: fails at once (g-originate).
            self._originate_fail(orig, 0, hangup=False)
            return
        num, name = phone.ext, phone.name
        if caller_id:
            num, name = _parse_caller_id(caller_id, num, name)
        leg = self._new_channel(phone.interface, state=0, num=num, name=name,
                                context="default", exten="s", phone=phone)
        orig.leg = leg
        leg.owner = orig
        for key, value in (variables or {}).items():
            leg.variables[key] = value
        self._chan_event("Newchannel", leg)
        self._newexten(leg, "AppDial2", "(Outgoing Line)")
        if caller_id:
            leg.connected_num, leg.connected_name = num, name
            self._chan_event("NewConnectedLine", leg)
        self.emit("DialBegin", "call", leg.block("Dest") + [("DialString", phone.ext)])
        if phone.busy:
            # The phone answers 486 one SIP round trip later, and Asterisk 22.10
            # reports it as OriginateResponse Reason 0, not 5 (measured on the
            # lab: tests/live/test_differential_live.py, originate failure).
            orig.timers.append(self.sched.after(SIP_ROUND_TRIP,
                                                lambda: self._originate_rejected(orig, 0)))
            return
        if phone.device_state not in ("NOT_INUSE", "UNKNOWN"):
            self._originate_rejected(orig, 5)
            return
        leg.ringing = True
        self._newstate(leg, 5)
        self.emit("DialState", "call", leg.block("Dest") + [("DialStatus", "RINGING")])
        self._phone_dsc(phone)
        self._phone_ext(phone)
        self._members_update(phone)
        delay = self._answer_delay(phone)
        timeout = max(0.001, timeout_ms / 1000.0)
        if delay is not None and delay < timeout:
            orig.timers.append(self.sched.after(delay, lambda: self._originate_answer(orig)))
        else:
            orig.timers.append(self.sched.after(timeout,
                                                lambda: self._originate_noanswer(orig)))
        self._settle()

    def _originate_rejected(self, orig: _Origination, reason: int) -> None:
        """The called phone rejected the Originate with 486 Busy Here."""
        leg = orig.leg
        if orig.done or leg is None or not leg.alive:
            return
        self._chan_event("HangupRequest", leg, [("Cause", "17"), ("TechCause", "486")])
        self.emit("DialEnd", "call", leg.block("Dest") + [("DialStatus", "BUSY")])
        self._hangup_event(leg, 17, 486)
        self._originate_fail(orig, reason, hangup=False)

    def _originate_answer(self, orig: _Origination) -> None:
        leg = orig.leg
        if orig.done or leg is None or not leg.alive:
            return
        orig.done = True
        leg.owner = None
        leg.ringing = False
        self._newstate(leg, 6)
        self.emit("DialEnd", "call", leg.block("Dest") + [("DialStatus", "ANSWER")])
        phone = leg.phone
        if orig.application:
            self._newexten(leg, orig.application, orig.data, context=orig.context,
                           exten=orig.exten)
            leg.hangup_timer = self.sched.after(OUTSIDE_SECONDS,
                                                lambda: self._hangup_request(leg))
        else:
            self._goto(leg, orig.context, orig.exten)
        self._originate_report(orig, OriginateResult(True, 4, leg.name, leg.uniqueid,
                                                     leg.caller_num, leg.caller_name))
        if phone is not None and leg.alive:
            self._phone_ext(phone)
            self._phone_dsc(phone)
            self._members_update(phone)
        self._settle()

    def _originate_noanswer(self, orig: _Origination) -> None:
        leg = orig.leg
        if orig.done or leg is None:
            return
        phone = leg.phone
        self._hangup_event(leg, 19, 480)
        self._originate_fail(orig, 3, hangup=False)
        if phone is not None:
            self._phone_ext(phone)
            self._phone_dsc(phone)
            self._members_update(phone)
        self._settle()

    def _originate_fail(self, orig: _Origination, reason: int, *, hangup: bool) -> None:
        if orig.done:
            return
        orig.done = True
        for timer in orig.timers:
            timer.cancel()
        leg = orig.leg
        if hangup and leg is not None and leg.alive:
            phone = leg.phone
            self._chan_event("SoftHangupRequest", leg, [("Cause", "16")])
            self._hangup_event(leg, 16)
            if phone is not None:
                self._phone_idle_updates(phone)
        self._originate_report(orig, OriginateResult(False, reason, orig.channel))

    def _originate_report(self, orig: _Origination, result: OriginateResult) -> None:
        if orig.async_:
            body: Headers = []
            if orig.action_id is not None:
                body.append(("ActionID", orig.action_id))
            body += [("Response", "Success" if result.success else "Failure"),
                     ("Channel", result.channel), ("Context", orig.context),
                     ("Exten", orig.exten), ("Reason", str(result.reason)),
                     ("Uniqueid", result.uniqueid), ("CallerIDNum", result.caller_num),
                     ("CallerIDName", result.caller_name)]
            self.emit("OriginateResponse", "call", body)
        if orig.on_result is not None:
            orig.on_result(result)


def _parse_caller_id(text: str, num: str, name: str) -> tuple[str, str]:
    """``"Alice Anders" <1001>`` -> (``1001``, ``Alice Anders``)."""
    text = text.strip()
    if "<" in text and text.endswith(">"):
        head, _, tail = text.rpartition("<")
        return tail[:-1].strip() or num, head.strip().strip('"') or name
    if text.isdigit():
        return text, name
    return num, text.strip('"') or name
