"""Queue call flows: a caller joins, members ring, one answers, the call ends.

Event order copies Asterisk 22 (shared/ami-transcripts c, d, e, f1, f2 and
k-busy): QueueCallerJoin -> AgentCalled/DialBegin/DialState -> DialEnd ->
QueueCallerLeave -> AgentConnect -> Bridge* -> AgentComplete -> Hangup.
Pure (virtual clock only). Imports core, frames and model.
"""
from __future__ import annotations

import math
from typing import Callable

from .core import PbxCore
from .frames import Headers
from .model import Channel, Member, Phone, Queue, QueueCall

__all__ = ["QueueFlows", "STRATEGIES"]

STRATEGIES = ("ringall", "rrmemory", "roundrobin", "leastrecent", "fewestcalls", "random",
              "linear", "wrandom", "rrordered")

_RTP_QOS = (
    ("RTPAUDIOQOS", "ssrc=0;themssrc=0;lp=0;rxjitter=0.000000;rxcount=0;txjitter=0.000000;"
     "txcount=0;rlp=0;rtt=0.000000;rxmes=0.000000;txmes=0.000000"),
    ("RTPAUDIOQOSJITTER", "minrxjitter=000.000000;maxrxjitter=000.000000;avgrxjitter=000.000000;"
     "stdevrxjitter=000.000000;mintxjitter=000.000000;maxtxjitter=000.000000;"
     "avgtxjitter=000.000000;stdevtxjitter=000.000000;"),
    ("RTPAUDIOQOSLOSS", "  minrxlost=000.000000;  maxrxlost=000.000000;  avgrxlost=000.000000;"
     "  stdevrxlost=000.000000;  mintxlost=000.000000;  maxtxlost=000.000000;"
     "  avgtxlost=000.000000;  stdevtxlost=000.000000;"),
    ("RTPAUDIOQOSRTT", "     minrtt=000.000000;     maxrtt=000.000000;     avgrtt=000.000000;"
     "     stdevrtt=000.000000;"),
    ("RTPAUDIOQOSMES", "   minrxmes=000.000000;   maxrxmes=000.000000;   avgrxmes=000.000000;"
     "   stdevrxmes=000.000000;   mintxmes=000.000000;   maxtxmes=000.000000;"
     "   avgtxmes=000.000000;   stdevtxmes=000.000000;"),
)


class QueueFlows(PbxCore):
    """Callers in queues and the agents that answer them."""

    # ------------------------------------------------------------ hooks
    def _answer_delay(self, phone: Phone) -> float | None:
        """Seconds until ``phone`` answers a ringing call (None: never)."""
        return phone.answer_after

    def _start_talk(self, ch: Channel) -> None:
        """Arm the caller's own hang-up (its talk time), once, at its first answer."""
        talk = ch.variables.get("__SIM_TALK")
        if talk and ch.hangup_timer is None:
            ch.hangup_timer = self.sched.after(float(talk), lambda: self._hangup_request(ch))

    def _hangup_request(self, ch: Channel, cause: int = 16, by_action: bool = False) -> None:
        raise NotImplementedError  # telephony.py

    def _settle(self) -> None:
        """Ring members for waiting callers of every queue marked dirty."""
        guard = 0
        while self._dirty and guard < 10000:
            guard += 1
            name = min(self._dirty)
            self._dirty.discard(name)
            queue = self.queues.get(name)
            if queue is not None:
                self._kick(queue)

    # ------------------------------------------------------------ arrival
    def _caller_arrives(self, queue: Queue, num: str, name: str, patience: float | None,
                        talk: float | None, agent_talk: float | None) -> Channel:
        ch = self._new_channel("PJSIP/caller", state=4, num=num, name=name,
                               context="from-callers", exten=queue.name)
        ch.dnid = queue.name
        if talk is not None:
            ch.variables["__SIM_TALK"] = str(talk)
        if agent_talk is not None:
            ch.variables["__SIM_AGENT_TALK"] = str(agent_talk)
        self._chan_event("Newchannel", ch)
        self._var(ch, "SIPDOMAIN", "127.0.0.1")
        self._newexten(ch, "Goto", f"default,{queue.name},1")
        self._newexten(ch, "NoOp", f'queue call from "{name}" <{num}>', context="default")
        self._enter_queue(ch, queue, patience)
        return ch

    def _enter_queue(self, ch: Channel, queue: Queue, patience: float | None) -> QueueCall:
        self._newexten(ch, "Queue", f"{queue.name},,,,300", priority=2)
        for var in ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS",
                    "QUEUEWAIT", "QUEUEWAIT_MS"):
            self._var(ch, var, "")
        qc = QueueCall(ch, queue, self.sched.now, len(queue.entries) + 1, patience, None)
        ch.owner = qc
        queue.entries.append(qc)
        self._queue_device(queue)
        self._chan_event("QueueCallerJoin", ch, [
            ("Queue", queue.name), ("Position", str(len(queue.entries))),
            ("Count", str(len(queue.entries)))], cat="agent")
        self._chan_event("MusicOnHoldStart", ch, [("Class", "default")])
        if patience is not None:
            qc.timers.append(self.sched.after(patience, lambda: self._abandon(qc)))
        self._dirty.add(queue.name)
        self._settle()
        return qc

    # ------------------------------------------------------------ ringing
    def _pick(self, queue: Queue, qc: QueueCall) -> list[Member]:
        members = list(queue.members.values())
        avail = [m for m in members if self.member_available(m)]
        if not avail:
            return []
        if queue.strategy == "ringall":
            best = min(m.penalty for m in avail)
            return [m for m in avail if m.penalty == best]
        if queue.strategy in ("rrmemory", "roundrobin", "rrordered"):
            n = len(members)
            for k in range(n):
                member = members[(queue.rr_next + k) % n]
                if member in avail:
                    queue.rr_next = (members.index(member) + 1) % n
                    return [member]
            return []
        if queue.strategy == "leastrecent":
            return [min(avail, key=lambda m: m.last_call)]
        if queue.strategy == "fewestcalls":
            return [min(avail, key=lambda m: m.calls_taken)]
        if queue.strategy in ("random", "wrandom"):
            return [self.rng.choice(avail)]
        return [avail[0]]  # linear

    def _kick(self, queue: Queue) -> None:
        for qc in list(queue.entries):
            if qc.state != "waiting" or qc.legs or qc.retry_until > self.sched.now:
                continue
            chosen = self._pick(queue, qc)
            if not chosen:
                break
            qc.ring_started = self.sched.now
            for member in chosen:
                self._ring(qc, member)
            if qc.legs:
                qc.timers.append(self.sched.after(queue.timeout, self._ring_timeout_cb(qc)))
            elif qc.state == "waiting":
                self._retry_later(qc)

    def _poll_waiting(self, queue: Queue) -> None:
        """Look for a member at each waiting caller's next poll, not at once.

        A caller nobody rings sits in app_queue's wait_our_turn, which checks
        for an available member once a second (RECHECK) from the moment it
        joined: on Asterisk 22 an unpaused agent is rung 0-1 s after the
        QueueMemberPause, never in the same instant (tests/live/
        test_differential_live.py, pause).
        """
        for qc in queue.entries:
            if qc.state != "waiting" or qc.legs:
                continue
            elapsed = self.sched.now - qc.joined
            wait = math.floor(elapsed) + 1.0 - elapsed  # in (0, 1]

            def poll(qc: QueueCall = qc) -> None:
                if qc.state == "waiting":
                    self._dirty.add(qc.queue.name)
                    self._settle()

            qc.timers.append(self.sched.after(wait, poll))

    def _ring_timeout_cb(self, qc: QueueCall) -> Callable[[], None]:
        return lambda: self._ring_timeout(qc)

    def _retry_later(self, qc: QueueCall) -> None:
        qc.retry_until = self.sched.now + qc.queue.retry

        def retry() -> None:
            if qc.state == "waiting":
                self._dirty.add(qc.queue.name)
                self._settle()

        qc.timers.append(self.sched.after(qc.queue.retry, retry))

    def _ring(self, qc: QueueCall, member: Member) -> None:
        caller, queue = qc.caller, qc.queue
        phone = self.phones_by_iface.get(member.state_interface) or self.phones_by_iface.get(
            member.interface)
        if phone is None:
            return
        leg = self._new_channel(phone.interface, state=0, num=phone.ext, name=phone.name,
                                context="default", exten="s", linkedid=caller.linkedid,
                                phone=phone)
        leg.owner = qc
        self._chan_event("Newchannel", leg)
        self._var(leg, "DIALEDPEERNUMBER", phone.ext)
        dest_q = leg.block("Dest", exten=queue.name, connected_num=caller.caller_num,
                           connected_name=caller.caller_name)
        who: Headers = [("Queue", queue.name), ("Interface", member.interface),
                        ("MemberName", member.name)]
        in_use = phone.device_state not in ("NOT_INUSE", "UNKNOWN")
        if phone.busy or in_use:
            # 486 Busy Here (transcript f2): no ringing, DialEnd NOANSWER, Cause 17.
            self._chan_event("HangupRequest", leg, [("Cause", "17"), ("TechCause", "486")])
            self.emit("AgentCalled", "agent", caller.block() + dest_q + who)
            self.emit("DialBegin", "call", caller.block() + leg.block("Dest") +
                      [("DialString", member.interface)])
            self.emit("DialEnd", "call", caller.block() + leg.block("Dest") +
                      [("DialStatus", "NOANSWER")])
            self.emit("AgentRingNoAnswer", "agent", caller.block() + dest_q + who +
                      [("RingTime", "0")])
            leg.exten, leg.connected_num, leg.connected_name = (
                queue.name, caller.caller_num, caller.caller_name)
            self._hangup_event(leg, 17, 486)
            self._chan_event("NewConnectedLine", leg)
            return
        qc.legs[member.interface] = leg
        leg.ringing = True
        self.emit("AgentCalled", "agent", caller.block() + dest_q + who)
        self.emit("DialBegin", "call", caller.block() + leg.block("Dest") +
                  [("DialString", member.interface)])
        leg.exten, leg.connected_num, leg.connected_name = (
            queue.name, caller.caller_num, caller.caller_name)
        self._newstate(leg, 5)
        self._newexten(leg, "AppQueue", "(Outgoing Line)")
        self._chan_event("NewConnectedLine", leg)
        self._phone_dsc(phone)
        self._phone_ext(phone)
        self._members_update(phone)
        self.emit("DialState", "call", caller.block() + leg.block("Dest") +
                  [("DialStatus", "RINGING")])
        if queue.strategy != "ringall":
            caller.connected_num, caller.connected_name = phone.ext, phone.name
            self._chan_event("NewConnectedLine", caller)
        delay = self._answer_delay(phone)
        if delay is not None and delay < queue.timeout:
            qc.timers.append(self.sched.after(delay, lambda: self._answer(qc, member, leg)))

    def _drop_leg(self, qc: QueueCall, leg: Channel, cause: int) -> None:
        """Hang up an unanswered queue leg (events after the DialEnd)."""
        qc.legs = {k: v for k, v in qc.legs.items() if v is not leg}
        self._hangup_event(leg, cause)
        if leg.phone is not None:
            self._phone_idle_updates(leg.phone)

    def _ring_timeout(self, qc: QueueCall) -> None:
        if qc.state != "waiting" or not qc.legs:
            return
        caller, queue = qc.caller, qc.queue
        ring_ms = int(round((self.sched.now - qc.ring_started) * 1000))
        for iface, leg in list(qc.legs.items()):
            member = queue.members.get(iface)
            who: Headers = [("Queue", queue.name), ("Interface", iface),
                            ("MemberName", member.name if member else iface)]
            self.emit("AgentRingNoAnswer", "agent", caller.block() + leg.block("Dest") + who +
                      [("RingTime", str(ring_ms))])
            for status in ("NOANSWER", "CANCEL"):
                self.emit("DialEnd", "call", caller.block() + leg.block("Dest") +
                          [("DialStatus", status)])
            self._drop_leg(qc, leg, 0)
        self._retry_later(qc)
        self._settle()

    # ------------------------------------------------------------ answer
    def _answer(self, qc: QueueCall, member: Member, leg: Channel) -> None:
        if qc.state != "waiting" or not leg.alive or leg not in qc.legs.values():
            return
        caller, queue = qc.caller, qc.queue
        phone = leg.phone
        assert phone is not None
        for timer in qc.timers:
            timer.cancel()
        qc.timers = []
        leg.ringing = False
        self._newstate(leg, 6)
        self.emit("DialEnd", "call", caller.block() + leg.block("Dest") +
                  [("DialStatus", "ANSWER")])
        losers = [ch for ch in qc.legs.values() if ch is not leg]
        for lost in losers:
            for _ in range(2):  # Asterisk 22 sends the CANCEL twice (k-busy)
                self.emit("DialEnd", "call", caller.block() + lost.block("Dest") +
                          [("DialStatus", "CANCEL")])
        qc.legs = {}
        if caller.connected_num != phone.ext:
            caller.connected_num, caller.connected_name = phone.ext, phone.name
            self._chan_event("NewConnectedLine", caller)
        self._chan_event("MusicOnHoldStop", caller)
        hold = int(round(self.sched.now - qc.joined))
        if self.noise:
            self._member_vars(caller, leg, member, queue, hold, qc.original_position)
        position = queue.entries.index(qc) + 1
        queue.entries.remove(qc)
        self._queue_device(queue)
        self._chan_event("QueueCallerLeave", caller, [
            ("Queue", queue.name), ("Position", str(position)),
            ("Count", str(len(queue.entries)))], cat="agent")
        self._var(caller, "QUEUEPOSITION", str(position))
        wait = self.sched.now - qc.joined
        self._var(caller, "QUEUEWAIT", str(int(wait)))
        self._var(caller, "QUEUEWAIT_MS", str(int(wait * 1000)))
        if queue.completed + queue.abandoned == 0:
            queue.holdtime = hold
        else:
            queue.holdtime = (queue.holdtime * 3 + hold) >> 2
        ring = int(round(self.sched.now - qc.ring_started))
        self.emit("AgentConnect", "agent", caller.block() + leg.block("Dest") + [
            ("Queue", queue.name), ("Interface", member.interface), ("MemberName", member.name),
            ("HoldTime", str(hold)), ("RingTime", str(ring))])
        member.in_call = True
        qc.state, qc.member, qc.agent_leg = "connected", member, leg
        qc.connected_at, qc.hold_time = self.sched.now, hold
        self._phone_ext(phone)
        self._phone_dsc(phone)
        self._members_update(phone)
        self._newstate(caller, 6)
        self._caller_device()
        for lost in losers:
            self._drop_leg(qc, lost, 26)
        self._bridge_pair(leg, caller)
        self._start_talk(caller)
        agent_talk = caller.variables.get("__SIM_AGENT_TALK")
        if agent_talk:
            leg.hangup_timer = self.sched.after(float(agent_talk),
                                                lambda: self._hangup_request(leg))
        elif phone.hangup_after is not None:
            leg.hangup_timer = self.sched.after(phone.hangup_after,
                                                lambda: self._hangup_request(leg))
        self._settle()

    def _member_vars(self, caller: Channel, leg: Channel, member: Member, queue: Queue,
                     hold: int, original: int) -> None:
        for ch in (caller, leg):
            for name, value in (("MEMBERINTERFACE", member.interface), ("MEMBERNAME", member.name),
                                ("MEMBERCALLS", str(member.calls_taken)),
                                ("MEMBERLASTCALL", str(member.last_call)),
                                ("MEMBERPENALTY", str(member.penalty)),
                                ("MEMBERDYNAMIC", "1" if member.dynamic else "0"),
                                ("MEMBERREALTIME", "0")):
                self._var(ch, name, value)
        for ch in (caller, leg):
            self._var(ch, "QEHOLDTIME", str(hold))
            self._var(ch, "QEORIGINALPOS", str(original))
        for ch in (caller, leg):
            self._queue_vars(ch, queue, calls=len(queue.entries))

    def _queue_vars(self, ch: Channel, queue: Queue, calls: int) -> None:
        perf = (100.0 * queue.completed_in_sl / queue.completed) if queue.completed else 0.0
        for name, value in (("QUEUENAME", queue.name), ("QUEUEMAX", str(queue.maxlen)),
                            ("QUEUESTRATEGY", queue.strategy), ("QUEUECALLS", str(calls)),
                            ("QUEUEHOLDTIME", str(queue.holdtime)),
                            ("QUEUETALKTIME", str(queue.talktime)),
                            ("QUEUECOMPLETED", str(queue.completed)),
                            ("QUEUEABANDONED", str(queue.abandoned)),
                            ("QUEUESRVLEVEL", str(queue.servicelevel)),
                            ("QUEUESRVLEVELPERF", f"{perf:.1f}")):
            self._var(ch, name, value)

    def _bridge_pair(self, first: Channel, second: Channel) -> None:
        bridge = self._new_bridge()
        self.emit("BridgeCreate", "call", bridge.block())
        for ch in (first, second):
            bridge.channels.append(ch)
            ch.bridge = bridge
            self.emit("BridgeEnter", "call", bridge.block() + ch.block())
        if self.noise:
            for _ in range(3):
                for ch, peer in ((first, second), (second, first)):
                    self._var(ch, "BRIDGEPEER", peer.name)
                    self._var(ch, "BRIDGEPVTCALLID", f"{peer.uniqueid}@127.0.0.1")

    def _bridge_leave(self, ch: Channel) -> None:
        bridge = ch.bridge
        if bridge is None:
            return
        if ch in bridge.channels:
            bridge.channels.remove(ch)
        ch.bridge = None
        tech = "native_rtp" if bridge.type == "basic" else None
        self.emit("BridgeLeave", "call", bridge.block(tech) + ch.block())

    def _bridge_destroy(self, bridge_id: str | None) -> None:
        bridge = self.bridges.pop(bridge_id, None) if bridge_id else None
        if bridge is not None:
            tech = "native_rtp" if bridge.type == "basic" else None
            self.emit("BridgeDestroy", "call", bridge.block(tech))

    # ------------------------------------------------------------ endings
    def _complete(self, qc: QueueCall, reason: str, with_dest: bool = True) -> None:
        """AgentComplete plus the member's and queue's statistics."""
        caller, queue, member, leg = qc.caller, qc.queue, qc.member, qc.agent_leg
        if qc.state == "done" or member is None:
            return
        qc.state = "done"
        talk = int(round(self.sched.now - qc.connected_at))
        body = caller.block()
        if with_dest and leg is not None and leg.alive:
            body += leg.block("Dest")
        body += [("Queue", queue.name), ("Interface", member.interface),
                 ("MemberName", member.name), ("HoldTime", str(qc.hold_time)),
                 ("TalkTime", str(talk)), ("Reason", reason)]
        self.emit("AgentComplete", "agent", body)
        queue.completed += 1
        if queue.servicelevel and qc.hold_time <= queue.servicelevel:
            queue.completed_in_sl += 1
        queue.talktime = talk if queue.completed == 1 else (queue.talktime * 3 + talk) >> 2

    def _member_done(self, qc: QueueCall) -> None:
        member = qc.member
        if member is not None and member.in_call:
            member.in_call = False
            member.calls_taken += 1
            member.last_call = self.now_int()

    def _end_queue_call(self, qc: QueueCall, by: str) -> None:
        """A bridged queue call ends; ``by`` is ``caller`` (c) or ``agent`` (d)."""
        caller, leg = qc.caller, qc.agent_leg
        assert leg is not None
        bridge = caller.bridge
        bridge_id = bridge.uniqueid if bridge else None
        phone = leg.phone
        if by == "caller":
            if self.noise:
                for name, value in _RTP_QOS:
                    self._var(caller, name, value)
                    self._var(leg, name + "BRIDGED", value)
            self._chan_event("HangupRequest", caller)
            self._complete(qc, "caller")
            if self.noise:
                for ch in (caller, leg):
                    self._var(ch, "BRIDGEPEER", "")
                    self._var(ch, "BRIDGEPVTCALLID", "")
            self._bridge_leave(caller)
            if self.noise:
                answered = self.sched.now - qc.connected_at
                dialed = self.sched.now - qc.ring_started
                self._queue_vars(caller, qc.queue, len(qc.queue.entries))
                for name, value in (("ANSWEREDTIME", str(int(answered))),
                                    ("ANSWEREDTIME_MS", str(int(answered * 1000))),
                                    ("DIALEDTIME", str(int(dialed))),
                                    ("DIALEDTIME_MS", str(int(dialed * 1000)))):
                    self._var(caller, name, value)
                self._queue_vars(caller, qc.queue, len(qc.queue.entries))
            self._bridge_leave(leg)
            self._chan_event("SoftHangupRequest", caller, [("Cause", "16")])
            self._bridge_destroy(bridge_id)
            if self.noise:
                for name, value in _RTP_QOS:
                    self._var(leg, name, value)
            self._member_done(qc)
            self._detach(caller)
            self._detach(leg)
            if phone is not None:
                self._phone_ext(phone)
            self._hangup_event(caller, 16)
            self._hangup_event(leg, 16)
            self._caller_device()
            if phone is not None:
                self._members_update(phone)
                self._phone_dsc(phone)
        else:
            self._chan_event("HangupRequest", leg)
            self._complete(qc, "agent")
            self._bridge_leave(leg)
            self._bridge_leave(caller)
            self._bridge_destroy(bridge_id)
            self._chan_event("SoftHangupRequest", caller, [("Cause", "16")])
            self._member_done(qc)
            self._detach(leg)
            if phone is not None:
                self._phone_ext(phone)
            self._hangup_event(leg, 16)
            if phone is not None:
                self._members_update(phone)
                self._phone_dsc(phone)
            self._hangup_event(caller, 16)
            self._caller_device()
        self._settle()

    def _detach(self, ch: Channel) -> None:
        """Take a channel off its phone before its Hangup (so the hint reads Idle)."""
        if ch.phone is not None and ch in ch.phone.channels:
            ch.phone.channels.remove(ch)

    def _abandon(self, qc: QueueCall, cause: int = 127, tech: int | None = 487) -> None:
        """The waiting caller hangs up (transcripts e and f1)."""
        if qc.state != "waiting":
            return
        caller, queue = qc.caller, qc.queue
        for timer in qc.timers:
            timer.cancel()
        qc.timers = []
        req: Headers = [("Cause", str(cause))]
        if tech is not None:
            req.append(("TechCause", str(tech)))
        self._chan_event("HangupRequest", caller, req)
        self._chan_event("MusicOnHoldStop", caller)
        legs = list(qc.legs.values())
        for leg in legs:
            for _ in range(2):
                self.emit("DialEnd", "call", caller.block() + leg.block("Dest") +
                          [("DialStatus", "CANCEL")])
        position = queue.entries.index(qc) + 1
        self._chan_event("QueueCallerAbandon", caller, [
            ("Queue", queue.name), ("Position", str(position)),
            ("OriginalPosition", str(qc.original_position)),
            ("HoldTime", str(int(round(self.sched.now - qc.joined))))], cat="agent")
        queue.entries.remove(qc)
        queue.abandoned += 1
        qc.state = "done"
        self._queue_device(queue)
        self._chan_event("QueueCallerLeave", caller, [
            ("Queue", queue.name), ("Position", str(position)),
            ("Count", str(len(queue.entries)))], cat="agent")
        soft: Headers = [("Cause", "16")]
        if tech is not None:
            soft.append(("TechCause", str(tech)))
        self._chan_event("SoftHangupRequest", caller, soft)
        phones: list[Phone] = []
        for leg in legs:
            self._detach(leg)
            self._hangup_event(leg, 0)
            if leg.phone is not None:
                self._phone_ext(leg.phone)
                self._phone_dsc(leg.phone)
                phones.append(leg.phone)
        qc.legs = {}
        self._hangup_event(caller, cause, tech)
        self._caller_device()
        for phone in phones:
            self._members_update(phone)
        self._settle()

    def _leave_queue(self, qc: QueueCall) -> None:
        """The caller leaves the queue without hanging up (Redirect while waiting)."""
        caller, queue = qc.caller, qc.queue
        for timer in qc.timers:
            timer.cancel()
        qc.timers = []
        self._chan_event("MusicOnHoldStop", caller)
        legs = list(qc.legs.values())
        for leg in legs:
            self.emit("DialEnd", "call", caller.block() + leg.block("Dest") +
                      [("DialStatus", "CANCEL")])
        position = queue.entries.index(qc) + 1
        queue.entries.remove(qc)
        qc.state = "done"
        self._queue_device(queue)
        self._chan_event("QueueCallerLeave", caller, [
            ("Queue", queue.name), ("Position", str(position)),
            ("Count", str(len(queue.entries)))], cat="agent")
        for leg in legs:
            self._drop_leg(qc, leg, 0)
        caller.owner = None
        self._settle()
