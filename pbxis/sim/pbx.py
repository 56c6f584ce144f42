"""``SimulatedPbx``: the pure call-center model behind the simulated AMI server.

Deterministic given ``seed`` and the virtual clock: nothing happens until
``advance(seconds)`` is called (by a test, or by SimServer's driver thread
at ``speed`` x real time). Every change is reported to listeners as a
``SimEvent`` shaped like Asterisk 22's (see frames.py). Scripted traffic:
``place_call``; random traffic: ``start_busy``. Thread-safe through
``lock`` (an RLock shared with the server); no sockets here.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

from .agents import Agents
from .config import AgentSpec, QueueSpec, default_agents, default_queues, scaled
from .model import Channel, Phone

__all__ = ["SimulatedPbx", "BusyProfile"]


@dataclass(frozen=True)
class BusyProfile:
    """Random call-center traffic (the ``busy`` mode of the demo).

    Args:
        calls_per_minute: Poisson arrival rate over all queues.
        talk: (min, max) seconds a caller talks once answered.
        patience: (min, max) seconds a caller waits before abandoning.
        ring: (min, max) seconds an agent lets a call ring before answering.
        noanswer: probability that an agent does not answer a ring at all.
        agent_hangup: probability that the agent, not the caller, ends a call.
        pause_every: mean seconds between an agent's breaks (None: never).
        pause_for: (min, max) length of a break in seconds.
    """

    calls_per_minute: float = 6.0
    talk: tuple[float, float] = (6.0, 30.0)
    patience: tuple[float, float] = (15.0, 60.0)
    ring: tuple[float, float] = (1.0, 4.0)
    noanswer: float = 0.05
    agent_hangup: float = 0.3
    pause_every: float | None = 75.0
    pause_for: tuple[float, float] = (8.0, 25.0)
    reasons: tuple[str, ...] = ("break", "lunch", "training", "meeting")


class SimulatedPbx(Agents):
    """A deterministic simulated Asterisk 22 call center.

    Args:
        agents: AgentSpecs (default: 1001 Alice Anders, 1002 Bob Brown, 1003
            Carol Clark), or a number of generated agents (see ``config.scaled``).
        queues: QueueSpecs (default: sales ringall 1001+1002, support
            rrmemory 1002+1003), or a number of generated queues.
        seed: seeds the random traffic and bridge ids (None: nondeterministic).
        start_time: epoch seconds of virtual time 0 (default: now).
        noise: also emit VarSet and Newexten events, as a real dialplan does.

    All public methods take ``lock``; events go to listeners synchronously.
    """

    def __init__(
        self,
        agents: None | int | Sequence[AgentSpec] = None,
        queues: None | int | Sequence[QueueSpec] = None,
        *,
        seed: int | None = 0,
        start_time: float | None = None,
        noise: bool = True,
    ) -> None:
        if isinstance(agents, int) or isinstance(queues, int):
            n_agents = agents if isinstance(agents, int) else len(agents or default_agents())
            n_queues = queues if isinstance(queues, int) else len(queues or default_queues())
            agent_specs, queue_specs = scaled(n_agents, n_queues)
            if not isinstance(agents, int) and agents is not None:
                agent_specs = list(agents)
            if not isinstance(queues, int) and queues is not None:
                queue_specs = list(queues)
        else:
            agent_specs = list(agents) if agents is not None else default_agents()
            queue_specs = list(queues) if queues is not None else default_queues()
        self._busy: BusyProfile | None = None
        self._busy_gen = 0
        self._caller_counts: dict[str, int] = {}
        super().__init__(agent_specs, queue_specs, seed=seed, start_time=start_time, noise=noise)

    # ------------------------------------------------------------ clock
    @property
    def now(self) -> float:
        """Virtual seconds since the simulator was created."""
        return self.sched.now

    def advance(self, seconds: float) -> int:
        """Run the call center for ``seconds`` of virtual time; returns events emitted."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self.lock:
            before = self.events_emitted
            target = self.sched.now + seconds
            while True:
                timer = self.sched.pop_due(target)
                if timer is None:
                    break
                timer.fn()
                self._settle()
            self.sched.now = target
            return self.events_emitted - before

    def next_due(self) -> float | None:
        """Virtual time of the next scheduled happening (None: nothing planned)."""
        with self.lock:
            return self.sched.next_due()

    def at(self, delay: float, fn: Callable[[], None]) -> None:
        """Schedule ``fn()`` ``delay`` virtual seconds from now (scenario scripts)."""
        with self.lock:
            self.sched.after(delay, fn)

    # ------------------------------------------------------------ scripted traffic
    def place_call(
        self,
        queue: str,
        *,
        delay: float = 0.0,
        caller_num: str | None = None,
        caller_name: str | None = None,
        patience: float | None = None,
        talk: float | None = None,
        agent_talk: float | None = None,
    ) -> None:
        """A caller dials ``queue`` after ``delay`` seconds.

        Args:
            caller_num: default ``555QQN`` (QQ: the queue's index, N: a counter),
                as the lab's callers 555011, 555021.
            patience: seconds before abandoning if unanswered (None: forever).
            talk: seconds the caller talks, then hangs up (None: forever).
            agent_talk: if set (and shorter), the agent hangs up first.
        """
        with self.lock:
            if queue not in self.queues:
                raise KeyError(f"no such queue: {queue}")
            num = caller_num or self._next_caller_num(queue)
            name = caller_name or f"Caller {num}"

            def arrive() -> None:
                if queue in self.queues:
                    self._caller_arrives(self.queues[queue], num, name, patience, talk,
                                         agent_talk)

            if delay <= 0:
                arrive()
                self._settle()
            else:
                self.sched.after(delay, arrive)

    def _next_caller_num(self, queue: str) -> str:
        index = [q.name for q in self._queue_specs].index(queue) + 1
        count = self._caller_counts.get(queue, 0) + 1
        self._caller_counts[queue] = count
        return f"555{index:02d}{count}"

    def set_phone(self, ext: str, *, answer_after: None | float | str = "keep",
                  busy: bool | None = None, hangup_after: None | float | str = "keep",
                  ) -> None:
        """Change how an agent's phone behaves (``"keep"`` leaves a field alone)."""
        with self.lock:
            phone = self.phones[ext]
            if answer_after != "keep":
                phone.answer_after = None if answer_after is None else float(answer_after)
            if busy is not None:
                phone.busy = busy
            if hangup_after != "keep":
                phone.hangup_after = None if hangup_after is None else float(hangup_after)

    def pause(self, ext: str, queue: str | None = None, reason: str = "") -> None:
        """Pause an agent (all queues when ``queue`` is None)."""
        with self.lock:
            self.queue_pause(self.phones[ext].interface, True, queue, reason)

    def unpause(self, ext: str, queue: str | None = None) -> None:
        with self.lock:
            self.queue_pause(self.phones[ext].interface, False, queue)

    def phone_channels(self, ext: str) -> list[Channel]:
        """The live channels of an agent's phone."""
        with self.lock:
            return list(self.phones[ext].channels)

    def agent_hangup(self, ext: str) -> bool:
        """The agent hangs up (every call of the phone); False if it had none."""
        with self.lock:
            chans = list(self.phones[ext].channels)
            for ch in chans:
                self._hangup_request(ch)
            self._settle()
            return bool(chans)

    def caller_hangup(self, number_or_channel: str) -> bool:
        """A caller (by number or channel name) hangs up."""
        with self.lock:
            found = [ch for ch in list(self.channels.values()) if ch.phone is None and (
                ch.name == number_or_channel or ch.caller_num == number_or_channel)]
            for ch in found:
                self._hangup_request(ch)
            self._settle()
            return bool(found)

    # ------------------------------------------------------------ random traffic
    def start_busy(self, profile: BusyProfile | None = None) -> None:
        """Start random traffic (Poisson arrivals, random rings, talks, breaks)."""
        with self.lock:
            self._busy = profile or BusyProfile()
            self._arm_busy()

    def stop_busy(self) -> None:
        """Stop generating new callers and breaks (calls in progress go on)."""
        with self.lock:
            self._busy = None
            self._busy_gen += 1

    @property
    def busy(self) -> BusyProfile | None:
        return self._busy

    def _arm_busy(self) -> None:
        self._busy_gen += 1
        gen = self._busy_gen
        profile = self._busy
        if profile is None:
            return
        self._schedule_arrival(gen, first=True)
        if profile.pause_every:
            for phone in self.phones.values():
                if self.members_of(phone.interface):
                    self._schedule_break(gen, phone)

    def _schedule_arrival(self, gen: int, first: bool = False) -> None:
        profile = self._busy
        if profile is None or profile.calls_per_minute <= 0:
            return
        rate = profile.calls_per_minute / 60.0
        wait = 1.0 if first else self.rng.expovariate(rate)

        def arrive() -> None:
            if gen != self._busy_gen or self._busy is None:
                return
            prof = self._busy
            queue = self.rng.choice(list(self.queues))
            talk = self.rng.uniform(*prof.talk)
            agent_talk = None
            if self.rng.random() < prof.agent_hangup:
                agent_talk = talk * self.rng.uniform(0.4, 0.9)
            num = self._next_caller_num(queue)
            self._caller_arrives(self.queues[queue], num, f"Caller {num}",
                                 self.rng.uniform(*prof.patience), talk, agent_talk)
            self._schedule_arrival(gen)

        self.sched.after(wait, arrive)

    def _schedule_break(self, gen: int, phone: Phone) -> None:
        profile = self._busy
        if profile is None or not profile.pause_every:
            return

        def take_break() -> None:
            prof = self._busy
            if gen != self._busy_gen or prof is None:
                return
            if self.members_of(phone.interface):
                self.queue_pause(phone.interface, True, None, self.rng.choice(prof.reasons))
                self.sched.after(self.rng.uniform(*prof.pause_for), back)

        def back() -> None:
            if self.members_of(phone.interface):
                self.queue_pause(phone.interface, False, None)
            if gen == self._busy_gen:
                self._schedule_break(gen, phone)

        self.sched.after(self.rng.expovariate(1.0 / profile.pause_every), take_break)

    def _answer_delay(self, phone: Phone) -> float | None:
        profile = self._busy
        if profile is None:
            return phone.answer_after
        if self.rng.random() < profile.noanswer:
            return None
        return self.rng.uniform(*profile.ring)

    # ------------------------------------------------------------ restart
    def restart(self) -> None:
        """Forget calls, statistics and static pauses like a restarted Asterisk.

        Dynamic members survive (persistent_members in astdb, with their
        pause); Uniqueid sequences restart; scripted timers are dropped;
        random traffic, if on, starts again. No events are emitted (the
        server sends ``Shutdown`` and closes the sessions).
        """
        with self.lock:
            dynamic = [m for q in self.queues.values() for m in q.members.values() if m.dynamic]
            self.sched.clear()
            self._boot()
            now = self.now_int()
            for member in dynamic:
                queue = self.queues.get(member.queue.name)
                if queue is None or member.interface in queue.members:
                    continue
                member.queue = queue
                member.calls_taken = member.last_call = 0
                member.in_call = False
                member.login_time = now
                queue.members[member.interface] = member
                self.devices[f"Queue:{queue.name}_pause_{member.interface}"] = (
                    "INUSE" if member.paused else "NOT_INUSE")
                member.last_sent = self._member_key(member)
            for queue in self.queues.values():
                self.devices[f"Queue:{queue.name}_avail"] = self._avail_state(queue)
            if self._busy is not None:
                self._arm_busy()

    def longest_hold(self, queue: str) -> int:
        with self.lock:
            q = self.queues[queue]
            if not q.entries:
                return 0
            return int(math.floor(self.sched.now - q.entries[0].joined))
