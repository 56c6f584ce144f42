"""The digest on real Asterisk 22 with sipp phones: issue 3's "Show" list.

Each test opens one channel for the agents and queues a situation involves,
lets sipp play the situation, and asserts what the channel receives: the
introductory events, then per (type, agent, queue) key the exact sequence of
values, the exact set of keys (nothing else arrives), and the cross-key
order where it means something (the caller is counted before the agent
rings; the number shows while it rings; an unpaused agent is rung after the
unpause). Tolerated, because Asterisk varies it from call to call (see the
recordings c/d/e and these tests' taps): the interleaving of the device
(DeviceStateChange) and member (QueueMemberStatus) updates, and whether the
agent's leg hangs up before or after AgentComplete.

The channel is read by a thread as events arrive: pending state events of
one key conflate (API.md §3), so a test reading late would see less.

A raw AMI session taps every test (``tap`` fixture) into
``<lab workdir>/<test name>.ami``; a failure message names the file: the
evidence of what Asterisk really sent. ``-rP`` prints each test's events.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from harness import lab as lab_module

import pbxis

pytestmark = pytest.mark.asterisk

SECRET = lab_module.MANAGER_USERS["pbxis"]


# --------------------------------------------------------------------------- raw AMI tap


class AmiTap:
    """A second, raw AMI session that writes every byte Asterisk sends to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.create_connection((lab_module.AMI_HOST, lab_module.AMI_PORT), 5)
        self._sock.sendall(
            f"Action: Login\r\nUsername: pbxis\r\nSecret: {SECRET}\r\nEvents: on\r\n\r\n".encode()
        )
        self._file = open(path, "wb")  # noqa: SIM115
        self._thread = threading.Thread(target=self._run, name="ami-tap", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                data = self._sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            self._file.write(data)

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(5)
        self._file.close()


@pytest.fixture
def tap(lab: lab_module.Lab, request: pytest.FixtureRequest) -> Iterator[AmiTap]:
    path = lab.workdir / f"{request.node.name}.ami"
    the_tap = AmiTap(path)
    yield the_tap
    the_tap.close()


# --------------------------------------------------------------------------- helpers


def sync(pbx: Any) -> None:
    """Every query pbxis sent so far (and their follow-ups) has been applied.

    AMI answers in order on one session: once a Ping returns, every earlier
    response was digested (and its events published); follow-ups those
    responses caused went out before the second Ping.
    """
    pbx.send_action("Ping")
    pbx.send_action("Ping")


Key = tuple[str, "str | None", "str | None"]


def value(ev: Any) -> Any:
    """The state value an event carries (what changes for its key)."""
    d = ev.to_dict()
    for k in ("type", "agent", "queue"):
        d.pop(k, None)
    if ev.type == "phoneNumber":
        return (d["number"], ev.queue) if d["number"] is not None else None
    if ev.type in ("extensionStatus", "queueMemberStatus"):
        return d["status"] if "reason" not in d else (d["status"], d["reason"])
    if ev.type == "queueCount":
        return d["count"]
    if ev.type == "agentName":
        return d["name"]
    return d


def key(ev: Any) -> Key:
    # phoneNumber is one state per agent; its queue rides along (API.md §4).
    return (ev.type, ev.agent, None if ev.type == "phoneNumber" else ev.queue)


class Watch:
    """One pbxis event channel, read as events arrive by a thread of its own.

    A pending state event is replaced by a newer one of the same key (API.md
    §3), so the channel is read at once: what a prompt consumer sees.
    ``intro`` holds what arrived before the first :func:`sync` returned,
    ``live`` (``(monotonic time, event)``) everything after.
    """

    def __init__(self, pbx: Any, tap: AmiTap | None, agents=(), queues=()) -> None:
        self.pbx = pbx
        self.tap = tap
        self._cond = threading.Condition()
        self._all: list[tuple[float, Any]] = []
        self.ch = pbx.event_channel(agents=list(agents), queues=list(queues))
        self.started = time.monotonic()
        self._reader = threading.Thread(target=self._read, name="test-watch", daemon=True)
        self._reader.start()
        sync(pbx)
        self.drained()
        with self._cond:
            self._intro_end = len(self._all)
        self._cursor = self._intro_end

    def _read(self) -> None:
        for ev in self.ch:
            with self._cond:
                self._all.append((time.monotonic(), ev))
                self._cond.notify_all()
            self.ch.task_done()

    @property
    def intro(self) -> list[Any]:
        return [ev for _, ev in self._all[: self._intro_end]]

    @property
    def live(self) -> list[tuple[float, Any]]:
        with self._cond:
            return self._all[self._intro_end :]

    def close(self) -> None:
        self.ch.close()
        self._reader.join(5)

    def _fail(self, what: str) -> None:
        where = f"; raw AMI in {self.tap.path}" if self.tap else ""
        raise AssertionError(f"{what}; intro {self.dicts(self.intro)}; live {self.dicts()}{where}")

    def until(self, predicate: Callable[[Any], bool], timeout: float = 20.0, what: str = "event"):
        """The next live event (after the one the last ``until`` returned) that
        matches ``predicate``; waits for it at most ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                while self._cursor < len(self._all):
                    ev = self._all[self._cursor][1]
                    self._cursor += 1
                    if predicate(ev):
                        return ev
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        self._fail(f"no {what} within {timeout} s")

    def quiet(self, predicate: Callable[[Any], bool], seconds: float, what: str) -> None:
        """Assert that no live event matching ``predicate`` arrives for ``seconds``."""
        deadline = time.monotonic() + seconds
        with self._cond:
            while True:
                while self._cursor < len(self._all):
                    ev = self._all[self._cursor][1]
                    self._cursor += 1
                    if predicate(ev):
                        self._fail(f"unexpected {what}: {ev.to_dict()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)

    def settle(self, lab: lab_module.Lab) -> None:
        """After the last expected event: no channel left, and what is still due read."""
        lab_module.wait_until(lambda: lab.asterisk.active_channels() == 0, 15, "no channels")
        sync(self.pbx)
        self.drained()
        print("intro:", *self.dicts(self.intro), sep="\n  ")
        print(
            "live:", *[f"@{t - self.started:.2f} {e.to_dict()}" for t, e in self.live], sep="\n  "
        )

    def drained(self, timeout: float = 5.0) -> None:
        """Wait until the reader has recorded every event put so far."""
        ch = self.ch
        with ch.all_tasks_done:
            deadline = time.monotonic() + timeout
            while ch.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._fail("the channel was not read")
                ch.all_tasks_done.wait(remaining)

    def has(self, predicate: Callable[[Any], bool], timeout: float = 20.0, what: str = "event"):
        """The first live event (read already or still to come) matching ``predicate``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for _, ev in self._all[self._intro_end :]:
                    if predicate(ev):
                        return ev
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        self._fail(f"no {what} within {timeout} s")

    def reaches(self, state: dict[Key, Any], timeout: float = 20.0, what: str = "state") -> None:
        """Wait until the latest value (intro or live) of each key in ``state`` is the
        one given."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                latest = {key(ev): value(ev) for _, ev in self._all}
                if all(latest.get(k, ...) == v for k, v in state.items()):
                    self._cursor = len(self._all)
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        self._fail(f"no {what} ({state}) within {timeout} s")

    def events(self) -> list[Any]:
        return [ev for _, ev in self.live]

    def dicts(self, events: list[Any] | None = None) -> list[dict[str, Any]]:
        return [e.to_dict() for e in (self.events() if events is None else events)]

    def values(self, type_: str, agent: str | None = None, queue: str | None = None) -> list[Any]:
        """The live sequence of values of one key."""
        k = (type_, agent, None if type_ == "phoneNumber" else queue)
        return [value(e) for e in self.events() if key(e) == k]

    def keys(self) -> set[Key]:
        return {key(e) for e in self.events()}

    def index(self, type_: str, agent=None, queue=None, val: Any = ..., start: int = 0) -> int:
        """Position of the first live event of the key (with that value) from ``start``."""
        k = (type_, agent, None if type_ == "phoneNumber" else queue)
        for i, e in enumerate(self.events()):
            if i >= start and key(e) == k and (val is ... or value(e) == val):
                return i
        self._fail(f"no {k} = {val!r}")
        return -1

    def intro_state(self) -> dict[Key, Any]:
        return {key(e): value(e) for e in self.intro}


def is_(type_: str, agent: str | None = None, queue: str | None = None, **details: Any):
    def match(ev: Any) -> bool:
        return (
            ev.type == type_
            and (agent is None or ev.agent == agent)
            and (queue is None or ev.queue == queue)
            and all(ev.get(k) == v for k, v in details.items())
        )

    return match


# --------------------------------------------------------------------------- scenarios

UNIQUEID = r"^\d+\.\d+$"


@pytest.fixture
def paused(pbx: Any) -> Iterator[Callable[..., None]]:
    """``paused(agent, queue, reason)``: pause now, unpause after the test."""
    done: list[tuple[str, str]] = []

    def pause(agent: str, queue: str, reason: str = "not-in-this-test") -> None:
        pbx.queue_action("pause", agent=agent, queue=queue, reason=reason)
        done.append((agent, queue))

    yield pause
    for agent, queue in done:
        pbx.queue_action("unpause", agent=agent, queue=queue)


def assert_intro(w: Watch, expected: dict[Key, Any]) -> None:
    """The introductory events are exactly ``expected`` (one per key)."""
    assert len(w.intro) == len(expected), w.dicts(w.intro)
    assert w.intro_state() == expected


def idle_intro(agents: dict[str, str], queues: list[str], members: dict) -> dict[Key, Any]:
    """Intro of idle agents ``{agent: name}``; ``members`` {(agent, queue): status}."""
    out: dict[Key, Any] = {("queueCount", None, q): 0 for q in queues}
    for agent, name in agents.items():
        out[("agentName", agent, None)] = name
        out[("extensionStatus", agent, None)] = "not_inuse"
        for q in queues:
            out[("queueMemberStatus", agent, q)] = members.get((agent, q), "loggedoff")
    return out


def assert_answered_queue_call(
    w: Watch, agent: str, queue: str, number: str, talk: float, answer_after: float = 1.0
) -> Any:
    """One queue call: counted, rung, answered, completed; the agent idle again.
    Returns the agentComplete event."""
    assert w.values("queueCount", queue=queue) == [1, 0]
    assert w.values("phoneNumber", agent) == [(number, queue), None]
    assert w.values("extensionStatus", agent) == ["ringing", "inuse", "not_inuse"]
    assert w.values("queueMemberStatus", agent, queue) == ["ringing", "inuse", "not_inuse"]
    ringing = w.index("phoneNumber", agent, val=(number, queue))
    assert w.events()[ringing]["name"] == f"Caller {number}"
    # the caller is counted before the agent rings; the number shows while it rings
    assert w.index("queueCount", queue=queue, val=1) < ringing
    assert ringing < w.index("extensionStatus", agent, val="inuse")
    assert ringing < w.index("queueMemberStatus", agent, queue, val="inuse")
    assert w.index("queueCount", queue=queue, val=0) > w.index(
        "extensionStatus", agent, val="ringing"
    )
    completes = [e for e in w.events() if e.type == "agentComplete"]
    assert len(completes) == 1, w.dicts()
    done = completes[0]
    assert done.agent == agent and done.queue is None
    assert done["uniqueId"] and re.match(UNIQUEID, done["uniqueId"])
    assert abs(done["talkTime"] - talk) <= 1, done.to_dict()
    assert 0 <= done["holdTime"] <= answer_after + 2, done.to_dict()
    # the call ends after it was answered
    assert w.index("phoneNumber", agent, val=None) > w.index("extensionStatus", agent, val="inuse")
    assert w.index("agentComplete", agent) > w.index("queueCount", queue=queue, val=0)
    return done


#: Every key a channel for 1001 + sales hears about during one queue call.
QUEUE_CALL_1001_SALES = {
    ("queueCount", None, "sales"),
    ("phoneNumber", "1001", None),
    ("extensionStatus", "1001", None),
    ("queueMemberStatus", "1001", "sales"),
    ("agentComplete", "1001", None),
}

IDLE_1001_SALES = {
    ("queueCount", None, "sales"): 0,
    ("phoneNumber", "1001", None): None,
    ("extensionStatus", "1001", None): "not_inuse",
    ("queueMemberStatus", "1001", "sales"): "not_inuse",
}


def test_queue_call_the_caller_hangs_up(lab, pbx, tap, paused):
    paused("1002", "sales")
    w = Watch(pbx, tap, agents=["1001"], queues=["sales"])
    assert_intro(
        w, idle_intro({"1001": "Alice Anders"}, ["sales"], {("1001", "sales"): "not_inuse"})
    )
    caller = lab.call("sales", number="555011", talk=4)
    w.has(is_("agentComplete", "1001"), what="agentComplete")
    w.reaches(IDLE_1001_SALES, what="1001 idle again")
    assert caller.wait(10) == 0 and not caller.hung_up_by_asterisk
    w.settle(lab)
    assert w.keys() == QUEUE_CALL_1001_SALES
    done = assert_answered_queue_call(w, "1001", "sales", "555011", talk=4)
    assert done["recording"] is None


def test_recorded_queue_call_names_the_recording(lab, pbx, tap, paused):
    paused("1002", "sales")
    w = Watch(pbx, tap, agents=["1001"], queues=["sales"])
    caller = lab.call("rec-sales", number="555012", talk=3)
    w.has(is_("agentComplete", "1001"), what="agentComplete")
    w.reaches(IDLE_1001_SALES, what="1001 idle again")
    assert caller.wait(10) == 0
    w.settle(lab)
    assert w.keys() == QUEUE_CALL_1001_SALES
    done = assert_answered_queue_call(w, "1001", "sales", "555012", talk=3)
    # MixMonitor(pbxis-rec-${UNIQUEID}.wav) on the caller's channel; the path is
    # the server's (inside the chroot), absolute
    path = done["recording"]
    assert path == f"/var/spool/asterisk/monitor/pbxis-rec-{done['uniqueId']}.wav"
    assert (lab.asterisk.root / path.lstrip("/")).exists()


def test_queue_call_the_agent_hangs_up(lab, pbx, tap, paused):
    paused("1002", "sales")
    lab.phone("1001", mode="hangup", answer_after=1.0, hangup_after=3.0)
    w = Watch(pbx, tap, agents=["1001"], queues=["sales"])
    caller = lab.call("sales", number="555013", talk=30)
    w.has(is_("agentComplete", "1001"), what="agentComplete")
    w.reaches(IDLE_1001_SALES, what="1001 idle again")
    assert caller.wait(10) == 0 and caller.hung_up_by_asterisk
    w.settle(lab)
    assert w.keys() == QUEUE_CALL_1001_SALES
    done = assert_answered_queue_call(w, "1001", "sales", "555013", talk=3)
    assert done["recording"] is None


def test_two_waiting_callers_one_abandons(lab, pbx, tap, paused):
    paused("1001", "sales", "lunch")
    paused("1002", "sales")
    w = Watch(pbx, tap, agents=["1001", "1002"], queues=["sales"])
    intro = w.intro_state()
    assert intro[("queueMemberStatus", "1001", "sales")] == ("paused", "lunch")
    assert intro[("queueMemberStatus", "1002", "sales")] == ("paused", "not-in-this-test")
    assert intro[("queueCount", None, "sales")] == 0
    first = lab.call("sales", number="555011", talk=2)
    w.until(is_("queueCount", queue="sales", count=1), what="first caller queued")
    second = lab.call("sales", number="555012", abandon_after=2)
    w.until(is_("queueCount", queue="sales", count=2), what="second caller queued")
    w.until(is_("queueCount", queue="sales", count=1), what="second caller abandons")
    assert second.wait(10) == 0 and not second.answered
    # an agent comes back: the first caller is served
    pbx.queue_action("unpause", agent="1001", queue="sales")
    w.has(is_("agentComplete", "1001"), what="agentComplete")
    w.reaches(IDLE_1001_SALES, what="1001 idle again")
    assert first.wait(10) == 0 and first.answered
    w.settle(lab)
    assert w.values("queueCount", queue="sales") == [1, 2, 1, 0]
    assert w.values("queueMemberStatus", "1001", "sales") == [
        "not_inuse",
        "ringing",
        "inuse",
        "not_inuse",
    ]
    assert w.values("phoneNumber", "1001") == [("555011", "sales"), None]
    assert w.values("extensionStatus", "1001") == ["ringing", "inuse", "not_inuse"]
    # nobody rang 1002 (paused): nothing about it
    assert not [e for e in w.events() if e.agent == "1002"], w.dicts()
    done = next(e for e in w.events() if e.type == "agentComplete")
    assert abs(done["talkTime"] - 2) <= 1
    assert done["holdTime"] >= 2  # waited through the abandon


def test_agent_does_not_answer_rings_again_then_the_caller_abandons(lab, pbx, tap, paused):
    paused("1002", "sales")
    lab.phone("1001", mode="noanswer")
    w = Watch(pbx, tap, agents=["1001"], queues=["sales"])
    # queue timeout 10 s, retry 1 s: a second ring starts ~11 s in
    caller = lab.call("sales", number="555014", abandon_after=13)
    assert caller.wait(20) == 0 and not caller.answered
    w.reaches(IDLE_1001_SALES, what="the caller abandoned")
    w.settle(lab)
    rung = ("555014", "sales")
    assert w.values("queueCount", queue="sales") == [1, 0]
    assert w.values("phoneNumber", "1001") == [rung, None, rung, None]
    assert w.values("extensionStatus", "1001") == ["ringing", "not_inuse"] * 2
    assert w.values("queueMemberStatus", "1001", "sales") == ["ringing", "not_inuse"] * 2
    assert not [e for e in w.events() if e.type == "agentComplete"]
    # the second ring is cancelled by the abandon
    assert w.index("queueCount", queue="sales", val=0) > w.index(
        "phoneNumber", "1001", val=rung, start=w.index("phoneNumber", "1001", val=None)
    )


def test_agent_does_not_answer_the_next_one_rings(lab, pbx, tap):
    # support is rrmemory over 1002 and 1003: after the first one's 10 s, the other
    lab.phone("1002", mode="noanswer")
    lab.phone("1003", mode="noanswer")
    w = Watch(pbx, tap, agents=["1002", "1003"], queues=["support"])
    caller = lab.call("support", number="555024", abandon_after=13)
    assert caller.wait(20) == 0 and not caller.answered
    w.reaches(
        {
            ("queueCount", None, "support"): 0,
            ("phoneNumber", "1002", None): None,
            ("phoneNumber", "1003", None): None,
        },
        what="the caller abandoned",
    )
    w.settle(lab)
    rung = ("555024", "support")
    numbers = [(e.agent, value(e)) for e in w.events() if e.type == "phoneNumber"]
    first, second = numbers[0][0], numbers[2][0]
    assert {first, second} == {"1002", "1003"}
    assert numbers == [(first, rung), (first, None), (second, rung), (second, None)]
    assert w.values("queueCount", queue="support") == [1, 0]
    for agent in (first, second):
        assert w.values("extensionStatus", agent) == ["ringing", "not_inuse"]
        assert w.values("queueMemberStatus", agent, "support") == ["ringing", "not_inuse"]
    # the first stopped ringing before the next one rang
    assert w.index("extensionStatus", first, val="not_inuse") < w.index(
        "extensionStatus", second, val="ringing"
    )
    assert w.keys() == {("queueCount", None, "support")} | {
        (t, a, q)
        for a in ("1002", "1003")
        for t, q in (
            ("phoneNumber", None),
            ("extensionStatus", None),
            ("queueMemberStatus", "support"),
        )
    }


def test_busy_agent_rejects_every_ring(lab, pbx, tap, paused):
    paused("1002", "sales")
    lab.phone("1001", mode="busy")
    w = Watch(pbx, tap, agents=["1001"], queues=["sales"])
    caller = lab.call("sales", number="555015", abandon_after=4)
    assert caller.wait(20) == 0 and not caller.answered
    w.reaches(
        {("queueCount", None, "sales"): 0, ("phoneNumber", "1001", None): None},
        what="the caller abandoned",
    )
    w.settle(lab)
    assert w.values("queueCount", queue="sales") == [1, 0]
    numbers = w.values("phoneNumber", "1001")
    # one ring attempt per retry (~1 s), each rejected at once (486)
    assert len(numbers) >= 4 and numbers == [("555015", "sales"), None] * (len(numbers) // 2)
    assert w.keys() <= {
        ("queueCount", None, "sales"),
        ("phoneNumber", "1001", None),
        ("extensionStatus", "1001", None),
        ("queueMemberStatus", "1001", "sales"),
    }, w.dicts()
    assert not [e for e in w.events() if e.type == "agentComplete"]


def test_paused_agent_lets_the_call_wait_until_unpaused(lab, pbx, tap, paused):
    paused("1002", "sales")
    w = Watch(pbx, tap, agents=["1001"], queues=["sales"])
    pbx.queue_action("pause", agent="1001", queue="sales", reason="break")
    try:
        w.until(
            is_("queueMemberStatus", "1001", "sales", status="paused", reason="break"),
            what="1001 paused",
        )
        caller = lab.call("sales", number="555016", talk=2)
        w.until(is_("queueCount", queue="sales", count=1), what="caller queued")
        # the call waits: 3 s without the agent being rung
        w.quiet(lambda e: e.agent == "1001", 3, what="event of the paused agent")
    finally:
        pbx.queue_action("unpause", agent="1001", queue="sales")
    w.has(is_("agentComplete", "1001"), what="agentComplete")
    w.reaches(IDLE_1001_SALES, what="1001 idle again")
    assert caller.wait(10) == 0
    w.settle(lab)
    assert w.values("queueMemberStatus", "1001", "sales") == [
        ("paused", "break"),
        "not_inuse",
        "ringing",
        "inuse",
        "not_inuse",
    ]
    assert w.values("queueCount", queue="sales") == [1, 0]
    assert w.values("phoneNumber", "1001") == [("555016", "sales"), None]
    assert w.values("extensionStatus", "1001") == ["ringing", "inuse", "not_inuse"]
    # unpaused, then rung
    assert w.index("queueMemberStatus", "1001", "sales", val="not_inuse") < w.index(
        "phoneNumber", "1001", val=("555016", "sales")
    )
    done = next(e for e in w.events() if e.type == "agentComplete")
    assert done["holdTime"] >= 3 and abs(done["talkTime"] - 2) <= 1


def test_direct_call_between_agents(lab, pbx, tap, ami_url):
    w = Watch(pbx, tap, agents=["1001", "1002"])
    assert_intro(w, idle_intro({"1001": "Alice Anders", "1002": "Bob Brown"}, [], {}))
    call = lab.agent_dial("1001", "1002", talk=4)
    talking = {
        ("extensionStatus", "1001", None): "inuse",
        ("extensionStatus", "1002", None): "inuse",
    }
    w.reaches(talking, what="1002 answered")
    # a client that knows nothing yet learns the call in progress from Asterisk
    with pbxis.connect(ami_url) as fresh:
        late = Watch(fresh, None, agents=["1001", "1002"])
        assert late.intro_state() == {
            **talking,
            ("agentName", "1001", None): "Alice Anders",
            ("agentName", "1002", None): "Bob Brown",
            ("phoneNumber", "1001", None): ("1002", None),
            ("phoneNumber", "1002", None): ("1001", None),
        }
        names = {e.agent: e["name"] for e in late.intro if e.type == "phoneNumber"}
        assert names == {"1001": "Bob Brown", "1002": "Alice Anders"}
    assert call.wait(10) == 0 and call.answered
    w.reaches(
        {
            ("phoneNumber", "1001", None): None,
            ("phoneNumber", "1002", None): None,
            ("extensionStatus", "1001", None): "not_inuse",
            ("extensionStatus", "1002", None): "not_inuse",
        },
        what="both idle",
    )
    w.settle(lab)
    assert w.values("phoneNumber", "1001") == [("1002", None), None]
    assert w.values("phoneNumber", "1002") == [("1001", None), None]
    # each names the other once (the caller id of the dialled phone is known at once)
    assert [e.to_dict() for e in w.events() if e.type == "phoneNumber" and e["number"]] == [
        {"type": "phoneNumber", "agent": "1002", "number": "1001", "name": "Alice Anders"},
        {"type": "phoneNumber", "agent": "1001", "number": "1002", "name": "Bob Brown"},
    ]
    assert w.values("extensionStatus", "1002") == ["ringing", "inuse", "not_inuse"]
    assert w.values("extensionStatus", "1001") == ["inuse", "not_inuse"]
    assert not [e for e in w.events() if e.type == "agentComplete"]


def test_agent_dials_out(lab, pbx, tap):
    w = Watch(pbx, tap, agents=["1001"])
    call = lab.agent_dial("1001", "5551234", talk=2)
    assert call.wait(10) == 0 and call.answered
    w.reaches(
        {("phoneNumber", "1001", None): None, ("extensionStatus", "1001", None): "not_inuse"},
        what="1001 idle",
    )
    w.settle(lab)
    assert "5551234" in lab.outside.numbers()
    assert w.values("phoneNumber", "1001") == [("5551234", None), None]
    assert w.values("extensionStatus", "1001") == ["inuse", "not_inuse"]
    assert w.keys() == {("phoneNumber", "1001", None), ("extensionStatus", "1001", None)}


def test_agent_offline_and_back(lab, pbx, tap):
    w = Watch(pbx, tap, agents=["1003"], queues=["support"])
    lab.stop_phone("1003", wait_unreachable=True)
    w.reaches(
        {
            ("extensionStatus", "1003", None): "unavailable",
            ("queueMemberStatus", "1003", "support"): "unavailable",
        },
        what="offline",
    )
    late = Watch(pbx, None, agents=["1003"], queues=["support"])
    assert late.intro_state() == {
        ("agentName", "1003", None): "Carol Clark",
        ("extensionStatus", "1003", None): "unavailable",
        ("queueMemberStatus", "1003", "support"): "unavailable",
        ("queueCount", None, "support"): 0,
    }
    late.close()
    lab.phone("1003")
    w.reaches(
        {
            ("extensionStatus", "1003", None): "not_inuse",
            ("queueMemberStatus", "1003", "support"): "not_inuse",
        },
        what="back",
    )
    w.settle(lab)
    assert w.values("extensionStatus", "1003") == ["unavailable", "not_inuse"]
    assert w.values("queueMemberStatus", "1003", "support") == ["unavailable", "not_inuse"]
    assert w.keys() == {("extensionStatus", "1003", None), ("queueMemberStatus", "1003", "support")}


def test_originated_call_shows_the_dialled_number_once(lab, pbx, tap, ami_url):
    # test_commands_live covers originate_call itself; this is the digest's view
    w = Watch(pbx, tap, agents=["1001"])
    pbx.originate_call("1001", "5551234", caller_id='"Sales desk" <1001>')
    w.reaches(
        {
            ("phoneNumber", "1001", None): ("5551234", None),
            ("extensionStatus", "1001", None): "inuse",
        },
        what="1001 answered",
    )
    lab_module.wait_until(lambda: "5551234" in lab.outside.numbers(), 10, "outside rung")
    # a channel opened now is introduced to the call: from the model, and by a
    # client that knows nothing yet (Getvar CHANNELS, then Status of the leg)
    in_call = {
        ("agentName", "1001", None): "Alice Anders",
        ("extensionStatus", "1001", None): "inuse",
        ("phoneNumber", "1001", None): ("5551234", None),
    }
    late = Watch(pbx, None, agents=["1001"])
    assert late.intro_state() == in_call
    late.close()
    with pbxis.connect(ami_url) as fresh:
        late = Watch(fresh, None, agents=["1001"])
        assert late.intro_state() == in_call
        assert [e["name"] for e in late.intro if e.type == "phoneNumber"] == [None]
    lab.asterisk.hangup_all()
    w.reaches(
        {("phoneNumber", "1001", None): None, ("extensionStatus", "1001", None): "not_inuse"},
        what="1001 idle",
    )
    w.settle(lab)
    # rung with the number it will dial; the Originate's own CallerID name
    # ("Sales desk"), which Asterisk echoes onto the dialled channel, is no party
    assert [e.to_dict() for e in w.events() if e.type == "phoneNumber"] == [
        {"type": "phoneNumber", "agent": "1001", "number": "5551234", "name": None},
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None},
    ]
    assert w.values("extensionStatus", "1001") == ["ringing", "inuse", "not_inuse"]
