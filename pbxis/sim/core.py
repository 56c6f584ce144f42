"""State and event plumbing shared by the simulated PBX's call flows.

Holds phones, queues, members, channels, bridges and the device-state
cache; numbers channels like Asterisk (``PJSIP/1001-00000003``, Uniqueid
``<epoch>.<seq>``); emits ``SimEvent``s to listeners; and derives the
device, extension and member status events in the order of
shared/ami-transcripts/c-call-caller-hangup.ami. Deterministic given the
seed and the virtual clock; the only thread primitive is ``lock``, which
the server and the test thread share. Imports config, frames and model.
"""
from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Callable

from .config import AgentSpec, QueueSpec
from .frames import CAUSE_TEXT, DEVICE_TO_EXTENSION, DEVICE_TO_MEMBER, Headers, SimEvent
from .model import Bridge, Channel, Member, Phone, Queue, Scheduler

__all__ = ["PbxCore", "Listener", "queue_bucket"]

Listener = Callable[[SimEvent], None]


def queue_bucket(name: str) -> int:
    """The hash bucket of app_queue's queue container (ast_str_case_hash % 53).

    QueueStatus lists queues in bucket order: ``support`` before ``sales``
    (transcript a-initial-state).
    """
    value = 5381
    for char in name.lower():
        value = ((value * 33) ^ ord(char)) & 0xFFFFFFFF
    if value >= 1 << 31:
        value -= 1 << 32
    return abs(value) % 53


class PbxCore:
    """The PBX state; subclasses add the call flows."""

    def __init__(
        self,
        agents: Sequence[AgentSpec],
        queues: Sequence[QueueSpec],
        *,
        seed: int | None = 0,
        start_time: float | None = None,
        noise: bool = True,
    ) -> None:
        self.lock = threading.RLock()
        self.seed = seed
        self.rng = random.Random(seed)
        self.sched = Scheduler()
        self.start_time = float(time.time() if start_time is None else start_time)
        self.noise = noise
        self._listeners: list[Listener] = []
        self._batch: list[SimEvent] | None = None
        self._agent_specs = list(agents)
        self._queue_specs = list(queues)
        self.events_emitted = 0
        self._boot(first=True)

    # ----------------------------------------------------------- state
    def _boot(self, first: bool = False) -> None:
        """(Re)initialise everything a restarted Asterisk forgets."""
        self.booted_at = self.sched.now
        self._seq = 0
        self.calls_processed = 0
        self.phones: dict[str, Phone] = {}
        self.phones_by_iface: dict[str, Phone] = {}
        for agent in self._agent_specs:
            phone = Phone.from_spec(agent)
            self.phones[phone.ext] = phone
            self.phones_by_iface[phone.interface] = phone
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, Bridge] = {}
        self.devices: dict[str, str] = {}
        self._dirty: set[str] = set()
        ordered = sorted(
            enumerate(self._queue_specs), key=lambda item: (queue_bucket(item[1].name), item[0])
        )
        self.queues: dict[str, Queue] = {}
        login = self.now_int()
        for _, spec in ordered:
            queue = Queue(spec.name, spec.strategy, spec.timeout, spec.retry, spec.weight,
                          spec.servicelevel, spec.maxlen)
            self.queues[spec.name] = queue
            for ext in spec.members:
                known = self.phones.get(ext)
                iface = known.interface if known else f"PJSIP/{ext}"
                member = Member(queue, iface, known.name if known else iface, iface, False,
                                login_time=login)
                reason = spec.paused.get(ext)
                if reason is not None:
                    member.paused, member.paused_reason, member.last_pause = True, reason, login
                queue.members[iface] = member
        # The cache a freshly booted Asterisk has: every hint, queue and pause device.
        for phone in self.phones.values():
            self.devices[phone.interface] = phone.device_state
            phone.ext_status = DEVICE_TO_EXTENSION[phone.device_state][0]
        for queue in self.queues.values():
            self.devices[f"Queue:{queue.name}"] = "NOT_INUSE"
            self.devices[f"Queue:{queue.name}_avail"] = self._avail_state(queue)
            for member in queue.members.values():
                self.devices[f"Queue:{queue.name}_pause_{member.interface}"] = (
                    "INUSE" if member.paused else "NOT_INUSE")
                member.last_sent = self._member_key(member)

    # ----------------------------------------------------------- clock, ids
    def wall(self) -> float:
        """The simulated wall clock (epoch seconds)."""
        return self.start_time + self.sched.now

    def now_int(self) -> int:
        return int(self.wall())

    @property
    def uptime(self) -> int:
        """Seconds since the (re)start."""
        return int(self.sched.now - self.booted_at)

    def _new_channel(
        self, base: str, *, state: int, num: str, name: str, context: str, exten: str,
        priority: int = 1, linkedid: str | None = None, phone: Phone | None = None,
    ) -> Channel:
        seq = self._seq
        self._seq += 1
        uid = f"{self.now_int()}.{seq}"
        ch = Channel(f"{base}-{seq:08x}", uid, linkedid or uid, self.sched.now, state, num, name,
                     context, exten, priority, phone=phone)
        self.channels[ch.name] = ch
        if phone is not None:
            phone.channels.append(ch)
        return ch

    def _new_bridge(self, type: str = "basic", technology: str = "simple_bridge",
                    creator: str = "<unknown>", name: str = "<unknown>") -> Bridge:
        bridge = Bridge(str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), type,
                        technology, creator, name)
        bridge.created = self.sched.now
        self.bridges[bridge.uniqueid] = bridge
        return bridge

    # ----------------------------------------------------------- events
    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every event (under ``lock``; must not block)."""
        with self.lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self.lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold the events emitted inside the block; deliver them at its end.

        The manager session uses it so that an action's response precedes
        the events the action caused, as in transcript b-agent-management.
        """
        with self.lock:
            if self._batch is not None:
                yield
                return
            self._batch = []
            try:
                yield
            finally:
                held, self._batch = self._batch, None
                for event in held:
                    self._deliver(event)

    def emit(self, name: str, category: str, body: Headers) -> SimEvent:
        """Emit one event to every listener."""
        event = SimEvent(name, category, body)
        self.events_emitted += 1
        if self._batch is not None:
            self._batch.append(event)
        else:
            self._deliver(event)
        return event

    def _deliver(self, event: SimEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    def _chan_event(self, name: str, ch: Channel, extra: Sequence[tuple[str, str]] = (),
                    cat: str = "call",
                    **override: str) -> None:
        self.emit(name, cat, ch.block(**override) + list(extra))

    def _var(self, ch: Channel, name: str, value: str) -> None:
        ch.variables[name] = value
        if self.noise:
            self.emit("VarSet", "dialplan", ch.block() + [("Variable", name), ("Value", value)])

    def _newexten(self, ch: Channel, app: str, data: str, *, context: str | None = None,
                  exten: str | None = None, priority: int | None = None) -> None:
        if context is not None:
            ch.context = context
        if exten is not None:
            ch.exten = exten
        if priority is not None:
            ch.priority = priority
        ch.application, ch.app_data = app, data
        if self.noise:
            self.emit("Newexten", "dialplan", ch.block() + [
                ("Extension", ch.exten), ("Application", app), ("AppData", data)])

    def _newstate(self, ch: Channel, state: int) -> None:
        ch.state = state
        self._chan_event("Newstate", ch)

    def _hangup_event(self, ch: Channel, cause: int, tech_cause: int | None = None) -> None:
        """``Hangup`` and forget the channel (device updates are the caller's job)."""
        extra: Headers = [("Cause", str(cause)), ("Cause-txt", CAUSE_TEXT.get(cause, "Unknown"))]
        if tech_cause is not None:
            extra.append(("TechCause", str(tech_cause)))
        self._chan_event("Hangup", ch, extra)
        self._forget(ch)

    def _forget(self, ch: Channel) -> None:
        ch.alive = False
        ch.ringing = False
        if ch.hangup_timer is not None:
            ch.hangup_timer.cancel()
        self.channels.pop(ch.name, None)
        if ch.phone is not None and ch in ch.phone.channels:
            ch.phone.channels.remove(ch)
        self.calls_processed += 1

    # ----------------------------------------------------------- devices
    def set_device(self, device: str, state: str) -> None:
        """Publish a device state; ``DeviceStateChange`` only on a change."""
        if self.devices.get(device) == state:
            return
        self.devices[device] = state
        self.emit("DeviceStateChange", "call", [("Device", device), ("State", state)])

    def _phone_dsc(self, phone: Phone) -> None:
        self.set_device(phone.interface, phone.device_state)

    def _phone_ext(self, phone: Phone) -> None:
        code, text = DEVICE_TO_EXTENSION[phone.device_state]
        if phone.ext_status == code:
            return
        phone.ext_status = code
        self.emit("ExtensionStatus", "call", [
            ("Exten", phone.ext), ("Context", "default"), ("Hint", phone.interface),
            ("Status", str(code)), ("StatusText", text)])

    def _caller_device(self) -> None:
        """``PJSIP/caller``: the callers' endpoint (no contact: UNAVAILABLE when idle)."""
        callers = [ch for ch in self.channels.values()
                   if ch.phone is None and ch.name.startswith("PJSIP/caller-")]
        if any(ch.state == 6 for ch in callers):
            self.set_device("PJSIP/caller", "INUSE")
        elif not callers and "PJSIP/caller" in self.devices:
            self.set_device("PJSIP/caller", "UNAVAILABLE")

    def member_device_state(self, member: Member) -> str:
        phone = self.phones_by_iface.get(member.state_interface)
        if phone is None:
            phone = self.phones_by_iface.get(member.interface)
        return phone.device_state if phone is not None else "INVALID"

    def member_status(self, member: Member) -> int:
        return DEVICE_TO_MEMBER[self.member_device_state(member)]

    def _member_key(self, member: Member) -> tuple[int, bool, int, bool]:
        return (self.member_status(member), member.in_call, member.calls_taken, member.paused)

    def member_block(self, member: Member, *, event: bool = True) -> Headers:
        """QueueMemberStatus-style headers (``event=False``: QueueStatus's QueueMember)."""
        head: Headers = [("Queue", member.queue.name)]
        if event:
            head += [("MemberName", member.name), ("Interface", member.interface)]
        else:
            head += [("Name", member.name), ("Location", member.interface)]
        head += [
            ("StateInterface", member.state_interface),
            ("Membership", "dynamic" if member.dynamic else "static"),
            ("Penalty", str(member.penalty)),
            ("CallsTaken", str(member.calls_taken)),
            ("LastCall", str(member.last_call)),
            ("LastPause", str(member.last_pause)),
            ("LoginTime", str(member.login_time)),
            ("InCall", "1" if member.in_call else "0"),
            ("Status", str(self.member_status(member))),
            ("Paused", "1" if member.paused else "0"),
            ("PausedReason", member.paused_reason),
        ]
        if event:
            head.append(("Ringinuse", "0"))
        head.append(("Wrapuptime", str(member.wrapuptime)))
        return head

    def _qms(self, member: Member) -> None:
        key = self._member_key(member)
        if member.last_sent == key:
            return
        member.last_sent = key
        self.emit("QueueMemberStatus", "agent", self.member_block(member))

    def members_of(self, iface: str) -> list[Member]:
        """Every membership (in queue order) whose device is ``iface``."""
        return [m for q in self.queues.values() for m in q.members.values()
                if m.state_interface == iface or m.interface == iface]

    def _members_update(self, phone: Phone) -> None:
        """QueueMemberStatus per queue, each followed by its ``_avail`` device."""
        for member in self.members_of(phone.interface):
            self._qms(member)
            self._avail(member.queue)
            if member.queue.entries:
                self._dirty.add(member.queue.name)

    def member_available(self, member: Member) -> bool:
        return not member.paused and self.member_device_state(member) in ("NOT_INUSE", "UNKNOWN")

    def _avail_state(self, queue: Queue) -> str:
        avail = any(self.member_available(m) for m in queue.members.values())
        return "NOT_INUSE" if avail else "INUSE"

    def _avail(self, queue: Queue) -> None:
        self.set_device(f"Queue:{queue.name}_avail", self._avail_state(queue))

    def _queue_device(self, queue: Queue) -> None:
        self.set_device(f"Queue:{queue.name}", "RINGING" if queue.entries else "NOT_INUSE")

    def _phone_idle_updates(self, phone: Phone) -> None:
        """After a phone's call ended: ExtensionStatus, members, then its device."""
        self._phone_ext(phone)
        self._members_update(phone)
        self._phone_dsc(phone)
