"""The simulator against real Asterisk 22: same scenario, same pbxis events.

Each scenario is played twice: on ``pbxis.sim`` (the named scenario, driven
in virtual time) and on the real-Asterisk lab (sipp phones and callers set
up the same way). A fresh ``pbxis`` client records what one channel for all
agents and queues receives: the introductory events (compared as a set:
their order follows query replies) and then the live stream, which must be
the same once unique ids, action ids and times are normalised.

The live stream is compared as a sequence of *bursts*: events less than
``GAP`` seconds apart form one burst, and a burst is compared as a multiset.
Real Asterisk raises device states, queue counts and channel events on
different threads, so their order within a few milliseconds is not defined
(five runs of the same call gave four orders); the order of the bursts, the
steps a caller and an agent go through, is. Talk and hold times are compared
with a one-second tolerance.

The simulator side is deterministic: virtual time jumps from one scheduled
happening to the next and, after each, a ``Ping`` round trip proves that
every event emitted so far has reached the channel. The lab side reads
until a scenario-specific end state, then until the stream has been quiet
for a moment.

Scenarios: a sales call answered; two callers, one abandons; a caller
waiting for an agent's break to end; Originate to an unplugged phone, a busy
phone and no endpoint; a call already in progress when the client connects.
What they showed the simulator got wrong (fixed in ``pbxis.sim``): a waiting
caller was rung in the same instant an agent was unpaused (Asterisk polls
once a second); Originate to a phone answering 486 gave Reason 5 at once
(Asterisk 22: Reason 0, a SIP round trip later); ``Getvar CHANNELS(...)``
and ``Status`` ``Variables`` were not implemented.
"""
from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

import pytest
from harness import lab as lab_module

import pbxis
from pbxis.sim import SimServer, SimulatedPbx, scenario

pytestmark = pytest.mark.asterisk

AGENTS = ("1001", "1002", "1003")
QUEUES = ("sales", "support")
#: One introductory event per key: 3 agentName, 3 extensionStatus, 6
#: queueMemberStatus (agents x queues), 2 queueCount.
INTRO_KEYS = (
    {("agentName", a, None) for a in AGENTS}
    | {("extensionStatus", a, None) for a in AGENTS}
    | {("queueMemberStatus", a, q) for a in AGENTS for q in QUEUES}
    | {("queueCount", None, q) for q in QUEUES}
)
Key = tuple[str, Optional[str], Optional[str]]
#: Details whose values differ between runs by nature.
TIMES = ("talkTime", "holdTime")
#: Events closer than this (seconds, real or virtual) belong to one burst.
GAP = 0.3
#: Seconds of silence that end a recording on the lab.
QUIET = 1.5

@dataclass
class Recording:
    """What one channel received: the introduction, then timed live events."""

    channel: pbxis.EventChannel
    clock: Callable[[], float] = time.monotonic
    intro: list[pbxis.Event] = field(default_factory=list)
    timed: list[tuple[float, pbxis.Event]] = field(default_factory=list)

    @property
    def live(self) -> list[pbxis.Event]:
        return [ev for _, ev in self.timed]

    def _take(self, ev: pbxis.Event) -> None:
        self.timed.append((self.clock(), ev))

    def read_intro(self, timeout: float = 10.0, extra: frozenset[Key] = frozenset()) -> None:
        """Read until every introductory key (and ``extra``) has been seen once."""
        deadline = time.monotonic() + timeout
        seen: set[Key] = set()
        while not INTRO_KEYS | extra <= seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = (INTRO_KEYS | extra) - seen
                raise AssertionError(f"introduction incomplete: missing {missing}")
            try:
                ev = self.channel.get(timeout=remaining)
            except queue.Empty:
                continue
            self.intro.append(ev)
            seen.add((ev.type, ev.agent, ev.queue))

    def drain(self) -> None:
        """Take whatever is pending now (never blocks)."""
        while True:
            try:
                self._take(self.channel.get_nowait())
            except queue.Empty:
                return

    def wait(self, predicate: Callable[[list[pbxis.Event]], bool], timeout: float,
             what: str) -> None:
        """Read until ``predicate(self.live)``."""
        deadline = time.monotonic() + timeout
        while not predicate(self.live):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {what} within {timeout} s; got "
                                     f"{[e.to_dict() for e in self.live]}")
            try:
                self._take(self.channel.get(timeout=remaining))
            except queue.Empty:
                pass

    def until_quiet(self, quiet: float = QUIET) -> None:
        """Read until nothing arrives for ``quiet`` seconds."""
        while True:
            try:
                self._take(self.channel.get(timeout=quiet))
            except queue.Empty:
                return

    def bursts(self) -> list[list[pbxis.Event]]:
        out: list[list[pbxis.Event]] = []
        last = None
        for t, ev in self.timed:
            if last is None or t - last >= GAP:
                out.append([])
            out[-1].append(ev)
            last = t
        return out


# ----------------------------------------------------------------- normalising


def normalise(events: list[pbxis.Event], ids: dict[str, str]) -> list[dict[str, Any]]:
    """JSON dicts without what differs by nature: unique ids, action ids
    (numbered by first appearance in ``ids``) and times."""
    out = []
    for ev in events:
        d = ev.to_dict()
        d.pop("uniqueId", None)
        for key in TIMES:
            if key in d:
                d[key] = "<time>"
        if "actionId" in d:
            d["actionId"] = ids.setdefault(d["actionId"], f"<action {len(ids) + 1}>")
        out.append(d)
    return out


def canonical(rec: Recording) -> list[list[str]]:
    """The bursts, each as a sorted list of normalised events (JSON text)."""
    ids: dict[str, str] = {}
    return [sorted(json.dumps(d, sort_keys=True) for d in normalise(burst, ids))
            for burst in rec.bursts()]


def intro_set(rec: Recording) -> set[str]:
    return {json.dumps(d, sort_keys=True) for d in normalise(rec.intro, {})}


def times(events: list[pbxis.Event]) -> list[tuple[str, int]]:
    return [(k, ev[k]) for ev in events for k in TIMES if ev.get(k) is not None]


def show(bursts: list[list[str]]) -> str:
    return "\n".join(f"  {i:2d} {', '.join(b)}" for i, b in enumerate(bursts))


def assert_same(sim: Recording, real: Recording, compare_times: bool = True) -> None:
    si, ri = intro_set(sim), intro_set(real)
    assert si == ri, f"introductions differ\nsim only: {si - ri}\nreal only: {ri - si}"
    s, r = canonical(sim), canonical(real)
    assert s == r, f"live events differ\nsim:\n{show(s)}\nreal:\n{show(r)}"
    if compare_times:
        for (kind, a), (_, b) in zip(times(sim.live), times(real.live)):
            assert abs(a - b) <= 1, f"{kind}: sim {a} vs real {b}"


# ----------------------------------------------------------------- the two sides


@pytest.fixture
def sim() -> Iterator[Callable[..., tuple[SimulatedPbx, pbxis.Pbx, Recording]]]:
    """``sim(name)`` -> (model, client, recording) on a frozen simulator."""
    opened: list[Any] = []

    def start(name: str, tweak: Optional[Callable[[SimulatedPbx], None]] = None,
              extra: frozenset[Key] = frozenset()) -> tuple[SimulatedPbx, pbxis.Pbx, Recording]:
        model = scenario.create(name, seed=0)
        if tweak is not None:
            tweak(model)
        server = SimServer(pbx=model, speed=0).start()
        opened.append(server)
        client = pbxis.connect(server.url())
        opened.append(client)
        rec = Recording(client.event_channel(agents=AGENTS, queues=QUEUES),
                        clock=lambda: model.now)
        rec.read_intro(extra=extra)
        return model, client, rec

    yield start
    for thing in reversed(opened):
        thing.close() if isinstance(thing, pbxis.Pbx) else thing.stop()


def run_sim(model: SimulatedPbx, client: pbxis.Pbx, rec: Recording, seconds: float) -> None:
    """Run ``seconds`` of virtual time, one scheduled happening at a time; after
    each, every event emitted so far is in ``rec`` (stamped with its instant)."""
    end = model.now + seconds
    while True:
        client.send_action("Ping")  # answered after every event sent before it...
        client.snapshot()  # ...and the reader publishes a batch under the state lock
        rec.drain()
        if model.now >= end:
            return
        due = model.next_due()
        target = end if due is None or due > end else due
        model.advance(max(0.0, target - model.now))


@pytest.fixture
def real(lab: lab_module.Lab, ami_url: str) -> Iterator[Callable[..., tuple[pbxis.Pbx, Recording]]]:
    """``real()`` -> (client, recording) on the lab as it is set up at that moment."""
    clients: list[pbxis.Pbx] = []

    def start(extra: frozenset[Key] = frozenset()) -> tuple[pbxis.Pbx, Recording]:
        client = pbxis.connect(ami_url)
        clients.append(client)
        rec = Recording(client.event_channel(agents=AGENTS, queues=QUEUES))
        rec.read_intro(extra=extra)
        return client, rec

    yield start
    for client in clients:
        client.close()


def _has(type_: str, **details: Any) -> Callable[[list[pbxis.Event]], bool]:
    def match(events: list[pbxis.Event]) -> bool:
        return any(
            e.type == type_ and all(
                (getattr(e, k) if k in ("agent", "queue") else e.get(k)) == v
                for k, v in details.items())
            for e in events)
    return match


def _pause_1002(ami_url: str) -> Callable[[], None]:
    """The recording lab's set-up: 1002 paused in sales (the sim scenarios' default)."""
    with pbxis.connect(ami_url) as client:
        client.queue_action("pause", agent="1002", queue="sales", reason="not-in-this-test")

    def undo() -> None:
        with pbxis.connect(ami_url) as client:
            client.queue_action("unpause", agent="1002", queue="sales")

    return undo


# ----------------------------------------------------------------- scenarios


def test_call_answered(sim, real, lab, ami_url):
    """1001 answers a sales call after 2 s ringing; the caller hangs up after 5 s."""
    model, client, srec = sim("call-answered")
    run_sim(model, client, srec, 12.0)

    undo = _pause_1002(ami_url)
    try:
        lab.phone("1001", answer_after=2.0)
        _, rrec = real()
        lab.call("sales", number="555011", talk=5)
        rrec.wait(_has("agentComplete", agent="1001"), 30, "agentComplete")
        rrec.until_quiet()
    finally:
        undo()
    assert_same(srec, rrec)


def test_abandon(sim, real, lab, ami_url):
    """Two callers wait in sales; the second gives up while 1001 rings for the first."""
    model, client, srec = sim("abandon")
    run_sim(model, client, srec, 14.0)

    undo = _pause_1002(ami_url)
    try:
        lab.phone("1001", answer_after=6.0)
        _, rrec = real()
        lab.call("sales", number="555011", talk=3)
        rrec.wait(_has("extensionStatus", agent="1001", status="ringing"), 15, "1001 ringing")
        rrec.until_quiet(1.0)  # the scenario's second caller comes 3 s after the first
        second = lab.call("sales", number="555021", talk=3, abandon_after=2.5)
        rrec.wait(_has("queueCount", queue="sales", count=2), 15, "second caller queued")
        second.wait(15)
        rrec.wait(_has("agentComplete", agent="1001"), 30, "agentComplete")
        rrec.until_quiet()
    finally:
        undo()
    assert_same(srec, rrec)


def test_pause(sim, real, lab, ami_url):
    """1001 on a break in sales: the caller waits until 1001 is unpaused, then talks."""
    model, client, srec = sim("pause")
    run_sim(model, client, srec, 16.0)

    undo = _pause_1002(ami_url)
    try:
        rclient, rrec = real()
        rclient.queue_action("pause", agent="1001", queue="sales", reason="break")
        rrec.wait(_has("queueMemberStatus", agent="1001", status="paused"), 10, "1001 paused")
        rrec.until_quiet(1.0)  # the scenario's caller comes 1 s after the pause
        lab.call("sales", number="555011", talk=3)
        rrec.wait(_has("queueCount", queue="sales", count=1), 15, "caller queued")
        rrec.until_quiet()  # nobody is rung while 1001 is paused
        rclient.queue_action("unpause", agent="1001", queue="sales")
        rrec.wait(_has("agentComplete", agent="1001"), 30, "agentComplete")
        rrec.until_quiet()
    finally:
        undo()
    assert_same(srec, rrec, compare_times=False)  # the lab's caller waits less


def test_originate_failure(sim, real, lab):
    """Originate to an unplugged phone, to a busy phone and to no endpoint at all."""

    def busy_1002(model: SimulatedPbx) -> None:
        model.set_phone("1002", busy=True)

    model, client, srec = sim("originate-failure", busy_1002)
    for agent in ("1003", "1002", "1099"):
        client.originate_call(agent, "5551234")
        run_sim(model, client, srec, 2.0)

    lab.stop_phone("1003", wait_unreachable=True)
    lab.phone("1002", mode="busy")
    rclient, rrec = real()
    for n, agent in enumerate(("1003", "1002", "1099"), 1):
        rclient.originate_call(agent, "5551234")
        rrec.wait(lambda evs, n=n: sum(e.type == "originateFailed" for e in evs) == n, 40,
                  f"{agent} fails")
        rrec.until_quiet()
    assert_same(srec, rrec)


def test_call_in_progress_at_connect(sim, real, lab, ami_url):
    """A client that connects while 1001 talks to a sales caller is introduced to the call."""
    talking = frozenset({("phoneNumber", "1001", "sales")})

    def talk_first(model: SimulatedPbx) -> None:
        model.advance(3.5)  # the call-answered scenario: 1001 has answered at 3 s

    model, client, srec = sim("call-answered", talk_first, extra=talking)
    run_sim(model, client, srec, 8.0)

    undo = _pause_1002(ami_url)
    try:
        lab.phone("1001", answer_after=2.0)
        with pbxis.connect(ami_url) as watcher:
            ch = watcher.event_channel(agents=["1001"])
            lab.call("sales", number="555011", talk=5)
            Recording(ch).wait(_has("extensionStatus", agent="1001", status="inuse"), 15,
                               "1001 talking")
            _, rrec = real(extra=talking)
        rrec.wait(_has("agentComplete", agent="1001"), 30, "agentComplete")
        rrec.until_quiet()
    finally:
        undo()
    assert_same(srec, rrec, compare_times=False)  # the talk time depends on when we joined
