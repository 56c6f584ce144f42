"""Reconnect on the simulated PBX, the scripted fake server and the fault proxy:
backoff, interruptible waits, connectionLost/connectionRestored everywhere,
commands failing at once during an outage, nothing replayed, Shutdown,
server-side narrowing on every login, and 50 cycles without leaks.

No sleeps: waits are channel reads, ``SimServer.wait_until`` and the fake
server's blocking ``expect``.
"""
from __future__ import annotations

import gc
import logging
import os
import queue
import re
import socket
import threading
import time
import tracemalloc

import pytest
from conftest import wait_event
from fakeami import FakeAMI
from faultproxy import FaultProxy
from helpers import drain

import pbxis
from pbxis import client as client_module
from pbxis import commands
from pbxis.backoff import Backoff
from pbxis.commands import FALLBACK_EVENT_MASK
from pbxis.digest import Digest
from pbxis.events import CONNECTION_LOST, CONNECTION_RESTORED
from pbxis.sim import Fault, SimServer, SimUser, scenario
from pbxis.sim.filters import accepts, parse_filter
from pbxis.sim.frames import SimEvent

FAST = {"keepalive": 1.0, "reconnect_base": 0.02, "reconnect_cap": 0.1}
LIMITED = SimUser("limited-secret", write="call,agent,reporting,originate")


def library_threads() -> list[threading.Thread]:
    """pbxis's own threads (the simulator's are ``pbxis-sim-*``)."""
    return [
        t for t in threading.enumerate()
        if t.name.startswith("pbxis-") and not t.name.startswith("pbxis-sim")
    ]


def is_(kind: str):
    return lambda ev: ev.type == kind


def outage(server: SimServer, ch, seen=None) -> None:
    """Drop every connection and keep refusing; wait for connectionLost."""
    server.stop_listening()
    server.drop_all()
    wait_event(ch, is_(CONNECTION_LOST), timeout=5, what="connectionLost", seen=seen)


def actions_of(server: SimServer, connection: int) -> list[tuple[str, dict]]:
    return [
        (a.name, {k: v for k, v in a.message.headers if k not in ("Action", "ActionID")})
        for a in list(server.actions) if a.connection == connection
    ]


@pytest.fixture
def server():
    with SimServer(pbx=scenario.create("idle", noise=False), speed=0,
                   users={"pbxis": "pbxis-secret", "limited": LIMITED}) as srv:
        yield srv


@pytest.fixture(autouse=True)
def no_thread_left():
    yield
    left = library_threads()
    for thread in left:
        thread.join(5)
    assert not [t.name for t in left if t.is_alive()]


# -- connectionLost / connectionRestored ----------------------------------------


def test_every_channel_and_subscriber_gets_lost_then_restored(server):
    got: queue.Queue = queue.Queue()
    with pbxis.connect(server.url(), **FAST) as pbx:
        channels = [
            pbx.event_channel(),
            pbx.event_channel(agents=["1001"]),
            pbx.event_channel(queues=["sales"]),
            pbx.event_channel(agents=["1002", "1003"], queues=["support"]),
        ]
        pbx.subscribe(got.put, agents=["1003"])
        server.drop_all()
        for ch in channels:
            seen: list = []
            wait_event(ch, is_(CONNECTION_RESTORED), timeout=5, seen=seen)
            links = [e.type for e in seen if e.type in (CONNECTION_LOST, CONNECTION_RESTORED)]
            assert links == [CONNECTION_LOST, CONNECTION_RESTORED]
        seen = []
        wait_event(got, is_(CONNECTION_RESTORED), timeout=5, seen=seen)
        assert [e.type for e in seen].count(CONNECTION_LOST) == 1
        assert pbx.connected
        assert pbx.send_action("Ping")["Ping"] == "Pong"


def test_one_connection_lost_per_outage_however_many_attempts_fail(server):
    with pbxis.connect(server.url(), **FAST) as pbx:
        ch = pbx.event_channel()
        recorder = pbx._link._backoff = RecordingBackoff(until=4)
        outage(server, ch)
        assert recorder.reached.wait(5)  # three refused attempts, a fourth coming
        server.start_listening()
        seen: list = []
        wait_event(ch, is_(CONNECTION_RESTORED), timeout=5, seen=seen)
        assert [e.type for e in seen] == [CONNECTION_RESTORED]


# -- during the outage --------------------------------------------------------------


def test_commands_fail_at_once_while_the_link_is_down(server):
    with pbxis.connect(server.url(), action_timeout=30, **FAST) as pbx:
        ch = pbx.event_channel()
        outage(server, ch)
        calls = [
            lambda: pbx.send_action("Ping"),
            lambda: pbx.queue_action("pause", agent="1001", queue="sales"),
            lambda: pbx.originate_call("1001", "5551234"),
            lambda: pbx.queue_status(),
            lambda: pbx.redirect_call("PJSIP/1001-00000001", "700"),
        ]
        for call in calls:
            started = time.monotonic()
            with pytest.raises(pbxis.NotConnectedError):
                call()
            assert time.monotonic() - started < 0.5
        assert not pbx.connected and not ch.closed  # channels stay open
        server.start_listening()
        wait_event(ch, is_(CONNECTION_RESTORED), timeout=5)
        assert pbx.send_action("Ping")["Ping"] == "Pong"


def test_a_pending_action_fails_when_the_link_drops_and_is_never_replayed(server):
    server.on_action = lambda act: Fault.IGNORE if act.name == "QueueSummary" else None
    with pbxis.connect(server.url(), action_timeout=30, **FAST) as pbx:
        ch = pbx.event_channel()
        errors: list = []

        def call() -> None:
            try:
                pbx.send_action("QueueSummary", Queue="sales")
            except pbxis.PBXISError as exc:
                errors.append(exc)

        caller = threading.Thread(target=call)
        started = time.monotonic()
        caller.start()
        server.wait_for_action("QueueSummary")
        server.drop_all()
        caller.join(5)
        assert len(errors) == 1 and isinstance(errors[0], pbxis.NotConnectedError)
        assert time.monotonic() - started < 5
        wait_event(ch, is_(CONNECTION_RESTORED), timeout=5)
        server.on_action = None
        assert pbx.send_action("Ping")["Ping"] == "Pong"  # a barrier: all sent so far arrived
        assert server.action_names().count("QueueSummary") == 1
        ids = [a.action_id for a in server.actions]
        assert len(ids) == len(set(ids))


# -- backoff and close ----------------------------------------------------------------


def test_close_during_the_backoff_wait_returns_promptly(server):
    pbx = pbxis.connect(server.url(), reconnect_base=30.0, reconnect_cap=60.0)
    ch = pbx.event_channel()
    outage(server, ch)
    started = time.monotonic()
    pbx.close()
    assert time.monotonic() - started < 1.0
    assert not library_threads()
    assert [e.type for e in ch] == ["closed"]


def test_close_during_a_login_that_never_completes_returns_promptly(server):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # accepts (kernel backlog), never greets
    with FaultProxy(server.port) as proxy:
        pbx = pbxis.connect("127.0.0.1", "pbxis", "pbxis-secret", port=proxy.port,
                            connect_timeout=30, reconnect_base=0.01, reconnect_cap=0.02)
        try:
            proxy.target = silent.getsockname()
            proxy.drop()
            assert proxy.wait_connections(2)  # pbxis is now waiting for a greeting
            started = time.monotonic()
            pbx.close()
            assert time.monotonic() - started < 1.0
            assert not library_threads()
        finally:
            pbx.close()
            silent.close()


class RecordingBackoff:
    """A Backoff that remembers which attempt numbers it was asked for and
    sets ``reached`` once asked for attempt ``until``."""

    def __init__(self, until: int = -1) -> None:
        self.inner = Backoff(0.005, 0.02, rand=lambda: 0.0)
        self.asked: list[int] = []
        self.until = until
        self.reached = threading.Event()

    def delay(self, attempt: int) -> float:
        self.asked.append(attempt)
        if attempt == self.until:
            self.reached.set()
        return self.inner.delay(attempt)


def test_a_server_that_drops_every_login_is_retried_with_growing_delays():
    def login_then_drop(conn, msg):
        fake._login(conn, msg)
        if len(fake.conns) > 1:
            conn.drop()

    fake = FakeAMI(auto={"Login": login_then_drop})
    try:
        pbx = pbxis.connect(fake.url())
        recorder = RecordingBackoff()
        pbx._link._backoff = recorder
        fake.conns[0].drop()
        fake.wait_connections(7)
        pbx.close()
        # The short sessions do not reset the backoff: it escalates, it never
        # busy-loops at the base delay.
        assert recorder.asked[:6] == [0, 1, 2, 3, 4, 5]
    finally:
        fake.close()


def test_backoff_is_capped_exponential_with_jitter():
    low = Backoff(0.5, 30.0, jitter=0.5, rand=lambda: 1.0)
    high = Backoff(0.5, 30.0, jitter=0.5, rand=lambda: 0.0)
    assert [high.delay(n) for n in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert [low.delay(n) for n in range(3)] == [0.25, 0.5, 1.0]
    assert high.delay(10_000) == 30.0  # no overflow


# -- Asterisk's Shutdown event ----------------------------------------------------------


def test_after_shutdown_commands_fail_at_once_and_a_silent_peer_is_dropped(monkeypatch):
    monkeypatch.setattr(client_module, "SHUTDOWN_GRACE", 0.3)
    with FakeAMI() as fake, pbxis.connect(fake.url(), action_timeout=30, **FAST) as pbx:
        ch = pbx.event_channel()
        answered = threading.Event()

        def call() -> None:
            pbx.send_action("CoreSettings")
            answered.set()

        caller = threading.Thread(target=call)
        caller.start()
        conn, msg = fake.expect("CoreSettings")
        # Asterisk announces the restart, then (here) never closes the socket.
        conn.event("Shutdown", ("Shutdown", "Cleanly"), ("Restart", "True"))
        conn.reply(msg, ("AMIversion", "11.0.0"))
        assert answered.wait(5)  # the Shutdown came first, so it has been read
        started = time.monotonic()
        with pytest.raises(pbxis.NotConnectedError):
            pbx.send_action("Ping")
        assert time.monotonic() - started < 0.5
        assert not pbx.connected
        seen: list = []
        wait_event(ch, is_(CONNECTION_RESTORED), timeout=5, seen=seen)
        assert [e.type for e in seen] == [CONNECTION_LOST, CONNECTION_RESTORED]
        assert "shutdown" in seen[0]["reason"]
        assert len(fake.conns) == 2
        assert pbx.send_action("Ping")["Ping"] == "Pong"


def test_core_restart_shutdown_then_the_truth(server):
    sim = server.pbx
    sim.set_phone("1001", answer_after=1.0)
    with pbxis.connect(server.url(), **FAST) as pbx:
        ch = pbx.event_channel(agents=["1001"], queues=["sales"])
        # The simulator has no CHANNELS(): let the tracking queries be
        # answered before the call starts (a Ping answer comes after theirs).
        pbx.send_action("Ping")
        sim.place_call("sales", caller_num="555011")
        sim.advance(3.0)
        wait_event(ch, lambda e: e.type == "phoneNumber" and e["number"] == "555011")
        wait_event(ch, lambda e: e.type == "extensionStatus" and e["status"] == "inuse")
        server.restart()  # Shutdown (Restart: True), EOF; calls are gone
        seen: list = []
        wait_event(ch, is_(CONNECTION_RESTORED), timeout=5, seen=seen)
        assert [e.type for e in seen if e.type.startswith("connection")] == [
            CONNECTION_LOST, CONNECTION_RESTORED]
        restored = drain(ch)
        states = {(e.type, e.agent, e.queue): e.to_dict() for e in restored}
        assert states[("phoneNumber", "1001", None)]["number"] is None
        assert states[("extensionStatus", "1001", None)]["status"] == "not_inuse"
        assert states[("queueMemberStatus", "1001", "sales")]["status"] == "not_inuse"




# -- server-side narrowing ------------------------------------------------------------------


def whitelist_names(regex: str) -> set[str]:
    match = re.fullmatch(r"\^Event: \(([A-Za-z|]+)\)\[\[:space:\]\]", regex)
    assert match, regex
    return set(match.group(1).split("|"))


def test_the_filter_whitelist_is_what_the_digest_and_client_read(server):
    with pbxis.connect(server.url(), **FAST) as pbx:
        assert pbx.send_action("Ping")["Ping"] == "Pong"  # Filter answers came first
        filters = [h for name, h in actions_of(server, 1) if name == "Filter"]
        wanted = Digest.handled_events | client_module._CLIENT_EVENTS
        assert whitelist_names(filters[0]["Filter"]) == wanted
        # then the exclusions of what the digest ignores, then the narrow filters
        excludes = [commands.server_filter_exclude(*item)[1] for item in Digest.ignored.items()]
        assert [f["Filter"] for f in filters[1 : 1 + len(excludes)]] == [
            dict(h)["Filter"] for h in excludes
        ]
        assert [f["Filter"] for f in filters[1 + len(excludes) :]] == list(
            Digest.narrow_filters.values()
        )
        assert pbx._narrowing == "filter"
        # The parser reads exactly the whitelist, plus VarSet once Asterisk
        # agreed to send only the recording's VarSet.
        parser_wanted = {n.decode() for n in pbx._link._parser._wanted}
        assert parser_wanted == wanted | set(Digest.narrow_filters)
        # Asterisk's regex engine (as the simulator runs it) lets every
        # wanted event through and stops the rest.
        compiled = [parse_filter(None, f["Filter"]) for f in filters]
        for name in sorted(wanted):
            assert accepts(compiled, SimEvent(name, "call", [("Channel", "PJSIP/1001-1")]))
        for name in ("VarSet", "Newexten", "TestEvent", "QueueMemberStatusX", "Hangups"):
            assert not accepts(compiled, SimEvent(name, "call", [("Variable", "FOO")]))
        assert accepts(compiled, SimEvent("VarSet", "dialplan", [
            ("Channel", "PJSIP/1001-1"), ("Variable", "MIXMONITOR_FILENAME"), ("Value", "/x")]))
        # a queue's pseudo devices are excluded, the agents' devices are not
        assert not accepts(compiled, SimEvent("DeviceStateChange", "call", [
            ("Device", "Queue:sales_pause_PJSIP/1001"), ("State", "NOT_INUSE")]))
        assert accepts(compiled, SimEvent("DeviceStateChange", "call", [
            ("Device", "PJSIP/1001"), ("State", "INUSE")]))


def test_narrowing_is_applied_again_after_every_reconnect(server):
    with pbxis.connect(server.url(), **FAST) as pbx:
        ch = pbx.event_channel(agents=["1001"], queues=["sales"])
        pbx.send_action("Ping")  # the simulator saw everything before this
        for _ in range(3):
            server.drop_all()
            wait_event(ch, is_(CONNECTION_RESTORED), timeout=5)
        assert pbx.send_action("Ping")["Ping"] == "Pong"
        numbers = sorted({a.connection for a in server.actions})
        assert len(numbers) == 4
        for number in numbers:
            names = [name for name, _ in actions_of(server, number)]
            assert names[:3] == ["Login", "Filter", "Filter"], names
            assert "Events" not in names
        assert pbx._narrowing == "filter"


def test_eventmask_fallback_when_filter_is_refused_on_every_login(server):
    with pbxis.connect(server.url("limited"), **FAST) as pbx:
        ch = pbx.event_channel(agents=["1001"], queues=["sales"])
        for attempt in range(3):
            if attempt:
                server.drop_all()
                wait_event(ch, is_(CONNECTION_RESTORED), timeout=5)
            last = max(a.connection for a in server.actions)
            assert server.wait_until(
                lambda n=last: "Events" in [name for name, _ in actions_of(server, n)],
                timeout=5)
        assert pbx.send_action("Ping")["Ping"] == "Pong"  # the Events answer came first
        for number in sorted({a.connection for a in server.actions}):
            acts = actions_of(server, number)
            names = [n for n, _ in acts]
            assert names[:3] == ["Login", "Filter", "Filter"]
            assert ("Events", {"EventMask": FALLBACK_EVENT_MASK}) in acts
        assert pbx._narrowing == "eventmask"
        # and the model still works through the class mask
        server.pbx.pause("1001", "sales", "lunch")
        wait_event(ch, lambda e: e.type == "queueMemberStatus" and e["status"] == "paused")


# -- half-open links (fault proxy) ------------------------------------------------------------


def test_a_half_open_link_is_detected_by_keepalive_and_restored(server):
    with FaultProxy(server.port) as proxy:
        with pbxis.connect("127.0.0.1", "pbxis", "pbxis-secret", port=proxy.port,
                           keepalive=0.3, reconnect_base=0.02, reconnect_cap=0.1) as pbx:
            ch = pbx.event_channel(agents=["1001"], queues=["sales"])
            proxy.hold()
            started = time.monotonic()
            seen: list = []
            wait_event(ch, is_(CONNECTION_LOST), timeout=5, seen=seen)
            assert time.monotonic() - started < 2.0  # two keepalive periods and a bit
            with pytest.raises(pbxis.NotConnectedError):
                pbx.send_action("Ping")
            proxy.drop()  # the server side of the held connection goes too
            wait_event(ch, is_(CONNECTION_RESTORED), timeout=5)
            assert pbx.send_action("Ping")["Ping"] == "Pong"
            assert pbx._link.connects == 2


# -- many cycles ------------------------------------------------------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def live_objects() -> dict[str, int]:
    """How many frames, events, results, futures and sockets are alive."""
    from concurrent.futures import Future

    from pbxis.actions import ActionResult, Pending
    from pbxis.events import Event
    from pbxis.protocol import Message

    gc.collect()
    kinds = (Message, Event, ActionResult, Pending, Future, socket.socket)
    counts = {k.__name__: 0 for k in kinds}
    for obj in gc.get_objects():
        for kind in kinds:
            if isinstance(obj, kind):
                counts[kind.__name__] += 1
    return counts


def test_fifty_reconnect_cycles_leak_no_thread_socket_or_memory(server, caplog):
    caplog.set_level(logging.ERROR, logger="pbxis")  # pytest keeps every record it captures
    with pbxis.connect(server.url(), **FAST) as pbx:
        ch = pbx.event_channel(agents=["1001", "1002"], queues=["sales"])
        sub = pbx.subscribe(lambda ev: None, agents=["1003"], queues=["support"])

        def cycle() -> None:
            server.drop_all()
            wait_event(ch, is_(CONNECTION_RESTORED), timeout=5)
            assert server.wait_until(lambda: server.connection_count == 1)

        for _ in range(5):  # warm up caches, ids, logging
            cycle()
        drain(ch)
        server.actions.clear()  # the simulator's record of every action it got
        gc.collect()
        threads = {t.name for t in library_threads()}
        fds = open_fds()
        objects = live_objects()
        tracemalloc.start(16)
        try:
            before = tracemalloc.take_snapshot()
            for _ in range(50):
                cycle()
            drain(ch)
            server.actions.clear()
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        assert {t.name for t in library_threads()} == threads
        assert open_fds() == fds
        now = live_objects()
        assert all(now[kind] <= objects[kind] + 30 for kind in now), (objects, now)
        # What pbxis itself keeps: allocations made on behalf of the
        # simulator (its recorded actions) or of this test do not count.
        ignore = [tracemalloc.Filter(False, "*/pbxis/sim/*", all_frames=True),
                  tracemalloc.Filter(False, "*/tests/*", all_frames=True),
                  tracemalloc.Filter(False, tracemalloc.__file__)]
        stats = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "filename")
        growth = sum(s.size_diff for s in stats)
        # The last reads and frames of the session in progress come and go
        # (up to ~70 KB); a leak of 4 KB a cycle would show as 200 KB.
        assert growth < 200 * 1024, (growth, [str(s) for s in stats[:8]])
        assert pbx._link.connects == 56
        sub.close()


# -- a restarting Asterisk: restore once fully booted -------------------------------------------


def answer_queue_status(conn, msg, calls: str = "0") -> None:
    aid = msg["ActionID"]
    conn.reply(msg, ("EventList", "start"), ("Message", "Queue status will follow"))
    conn.event("QueueParams", ("Queue", msg["Queue"]), ("Calls", calls), ("ActionID", aid))
    conn.event("QueueStatusComplete", ("ActionID", aid), ("EventList", "Complete"),
               ("ListItems", "1"))


class BootingAMI(FakeAMI):
    """A fake Asterisk whose logins after the first come before it is fully
    booted (no FullyBooted after the login response); ``filtered`` counts Filters."""

    def __init__(self) -> None:
        super().__init__(auto={"Login": self._maybe_booted, "Filter": self._filter})
        self.filtered = threading.Semaphore(0)

    def _maybe_booted(self, conn, msg) -> None:
        if len(self.conns) == 1:
            self._login(conn, msg)
        else:
            conn.logged_in = True
            conn.reply(msg, ("Message", "Authentication accepted"))

    def _filter(self, conn, msg) -> None:
        conn.reply(msg, ("Message", "Filter Added"))
        self.filtered.release()


def connect_and_track_sales(fake):
    pbx = pbxis.connect(fake.url(), **FAST)
    ch = pbx.event_channel(queues=["sales"])
    conn, msg = fake.expect("QueueStatus")
    answer_queue_status(conn, msg)
    wait_event(ch, lambda e: e.type == "queueCount")
    for _ in range(2):
        assert fake.filtered.acquire(timeout=5)
    return pbx, ch


def test_after_a_reconnect_the_restore_waits_for_fully_booted():
    with BootingAMI() as fake:
        pbx, ch = connect_and_track_sales(fake)
        with pbx:
            fake.conns[0].drop()
            wait_event(ch, is_(CONNECTION_LOST), timeout=5)
            for _ in range(2):  # the new session's Filters: login done
                assert fake.filtered.acquire(timeout=5)
            mark = len(fake.received)
            fake.conns[1].event("FullyBooted", ("Uptime", "0"), ("Status", "Fully Booted"))
            conn, msg = fake.expect("QueueStatus")
            assert any(m is msg for m in fake.received[mark:]), "restored before FullyBooted"
            answer_queue_status(conn, msg, calls="2")
            wait_event(ch, is_(CONNECTION_RESTORED), timeout=5)
            assert [e.to_dict() for e in drain(ch)] == [
                {"type": "queueCount", "queue": "sales", "count": 2}]


def test_without_fully_booted_the_restore_starts_after_boot_wait(monkeypatch, caplog):
    monkeypatch.setattr(client_module, "BOOT_WAIT", 0.3)
    caplog.set_level(logging.WARNING, logger="pbxis")
    with BootingAMI() as fake:
        pbx, ch = connect_and_track_sales(fake)
        with pbx:
            fake.conns[0].drop()
            for _ in range(2):
                assert fake.filtered.acquire(timeout=5)
            logged_in = time.monotonic()
            conn, msg = fake.expect("QueueStatus")
            assert time.monotonic() - logged_in >= 0.25
            answer_queue_status(conn, msg)
            wait_event(ch, is_(CONNECTION_RESTORED), timeout=5)
            assert "no FullyBooted" in caplog.text
