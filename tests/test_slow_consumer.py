"""A channel nobody reads (API.md §3: "A slow consumer never slows the reader
or other channels, and memory stays bounded ... it always converges to the
latest state"), end to end: ``pbxis.connect`` to the simulated PBX, 100,000
raw AMI events streamed through the real socket, parser, digest and hub.

Also: the hub's batched publishing (one conflated batch per group of equal
scopes, merged into each channel) gives exactly what one ``put`` per event
would, whatever the interleaving of reads -- the property that the slow path
relies on.

No sleeps: the reading thread reports through ``threading.Event``s and
everything waits with a timeout.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Hashable
from typing import Any

from helpers import drain
from hypothesis import given, settings
from hypothesis import strategies as st

import pbxis
from pbxis.channels import EventChannel, Hub
from pbxis.events import (
    AGENT_COMPLETE,
    EVENTS_DROPPED,
    EXTENSION_STATUS,
    QUEUE_COUNT,
    QUEUE_MEMBER_STATUS,
    STATE_EVENT_TYPES,
    Event,
)
from pbxis.scope import Scope
from pbxis.sim import SimServer, scenario

TIMEOUT = 15.0
EVENTS = 100_000
SLOW_MAXSIZE = 50
AGENTS = ("1001", "1002", "1003")
QUEUES = ("sales", "support")
MEMBERS = (("1001", "sales"), ("1002", "sales"), ("1002", "support"), ("1003", "support"))
NAMES = {"1001": "Alice Anders", "1002": "Bob Brown", "1003": "Carol Clark"}
#: Asterisk device states and the words pbxis reports for them.
DEVICES = (("NOT_INUSE", "not_inuse"), ("INUSE", "inuse"), ("RINGING", "ringing"), ("BUSY", "busy"))
#: app_queue member Status codes and their words.
MEMBER_CODES = (("1", "not_inuse"), ("2", "inuse"), ("6", "ringing"), ("3", "busy"))
END_COUNT = 1_000_000  # the last queueCount of sales: the end of the stream

#: agentName, extensionStatus and phoneNumber per agent, one queueMemberStatus
#: per agent x queue, one queueCount per queue.
STATE_KEYS = 3 * len(AGENTS) + len(AGENTS) * len(QUEUES) + len(QUEUES)


def _frame(*headers: tuple[str, Any]) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode()


def stream() -> tuple[list[bytes], dict[tuple[str, str | None, str | None], object], int]:
    """The raw events, the last value per state key they set, and the
    number of agentComplete events they cause."""
    frames: list[bytes] = []
    last: dict[tuple[str, str | None, str | None], object] = {}
    completes = 0
    for n in range(EVENTS - 1):
        agent = AGENTS[n % 3]
        kind = n % 4
        if n % 100 == 99:
            frames.append(
                _frame(
                    ("Event", "AgentComplete"),
                    ("Privilege", "agent,all"),
                    ("Channel", f"PJSIP/caller-{n:08x}"),
                    ("Uniqueid", f"u.{n}"),
                    ("Linkedid", f"u.{n}"),
                    ("DestChannel", f"PJSIP/{agent}-{n:08x}"),
                    ("Queue", "sales"),
                    ("Interface", f"PJSIP/{agent}"),
                    ("MemberName", NAMES[agent]),
                    ("HoldTime", "1"),
                    ("TalkTime", "2"),
                    ("Reason", "caller"),
                )
            )
            completes += 1
        elif kind == 0:
            state, word = DEVICES[(n // 4) % len(DEVICES)]
            frames.append(
                _frame(
                    ("Event", "DeviceStateChange"),
                    ("Privilege", "call,all"),
                    ("Device", f"PJSIP/{agent}"),
                    ("State", state),
                )
            )
            last[(EXTENSION_STATUS, agent, None)] = word
        elif kind == 1:
            queue_name = QUEUES[(n // 4) % 2]
            count = n % 7
            name = "QueueCallerJoin" if n % 8 == 1 else "QueueCallerLeave"
            frames.append(
                _frame(
                    ("Event", name),
                    ("Privilege", "agent,all"),
                    ("Channel", f"PJSIP/caller-{n:08x}"),
                    ("Uniqueid", f"c.{n}"),
                    ("Linkedid", f"c.{n}"),
                    ("Queue", queue_name),
                    ("Position", "1"),
                    ("Count", count),
                )
            )
            last[(QUEUE_COUNT, None, queue_name)] = count
        else:
            member, queue_name = MEMBERS[(n // 4) % len(MEMBERS)]
            code, word = MEMBER_CODES[n % len(MEMBER_CODES)]
            paused = n % 3 == 0
            frames.append(
                _frame(
                    ("Event", "QueueMemberStatus"),
                    ("Privilege", "agent,all"),
                    ("Queue", queue_name),
                    ("MemberName", NAMES[member]),
                    ("Interface", f"PJSIP/{member}"),
                    ("StateInterface", f"PJSIP/{member}"),
                    ("Membership", "static"),
                    ("Penalty", "0"),
                    ("CallsTaken", "0"),
                    ("InCall", "0"),
                    ("Status", code),
                    ("Paused", "1" if paused else "0"),
                    ("PausedReason", "lunch" if paused else ""),
                )
            )
            last[(QUEUE_MEMBER_STATUS, member, queue_name)] = (
                {"status": "paused", "reason": "lunch"} if paused else {"status": word}
            )
    frames.append(
        _frame(
            ("Event", "QueueCallerJoin"),
            ("Privilege", "agent,all"),
            ("Channel", "PJSIP/caller-end"),
            ("Uniqueid", "c.end"),
            ("Linkedid", "c.end"),
            ("Queue", "sales"),
            ("Position", "1"),
            ("Count", END_COUNT),
        )
    )
    last[(QUEUE_COUNT, None, "sales")] = END_COUNT
    return frames, last, completes


def value(event: Event) -> object:
    """What a state event says, in the form ``stream()`` records it."""
    if event.type == EXTENSION_STATUS:
        return event["status"]
    if event.type == QUEUE_COUNT:
        return event["count"]
    if event.type == QUEUE_MEMBER_STATUS:
        return event.details
    return event.to_dict()


def final_state(events: list[Event]) -> dict[Hashable, object]:
    state: dict[Hashable, object] = {}
    for event in events:
        if event.type in STATE_EVENT_TYPES:
            state[event.coalesce_key] = value(event)
    return state




def test_an_unread_channel_stays_bounded_delays_nobody_and_converges() -> None:
    frames, last, completes = stream()
    with SimServer(pbx=scenario.create("idle"), speed=0) as server:
        with pbxis.connect(server.url()) as pbx:
            slow = pbx.event_channel(AGENTS, QUEUES, maxsize=SLOW_MAXSIZE)
            fast = pbx.event_channel(AGENTS, QUEUES)
            pbx.send_action("Ping")  # the subscribe queries are answered and applied
            intro = drain(fast)
            assert {e.coalesce_key for e in intro} >= {
                (QUEUE_COUNT, None, "sales"),
                (EXTENSION_STATUS, "1001", None),
            }

            seen: list[Event] = list(intro)
            finished = threading.Event()
            slow_pending_when_fast_finished: list[int] = []

            def read_fast() -> None:
                for event in fast:
                    seen.append(event)
                    if event.type == QUEUE_COUNT and event.get("count") == END_COUNT:
                        slow_pending_when_fast_finished.append(slow.qsize())
                        finished.set()
                        return

            reader = threading.Thread(target=read_fast, name="test-fast-reader", daemon=True)
            reader.start()

            bound = STATE_KEYS + SLOW_MAXSIZE + 2  # + the drop notice and ``closed``
            most = 0
            for start in range(0, len(frames), 1000):
                server.send_raw(b"".join(frames[start : start + 1000]))
                most = max(most, slow.qsize())
            assert finished.wait(TIMEOUT), "the read channel fell behind the unread one"
            reader.join(TIMEOUT)
            most = max(most, slow.qsize())

            # The reader never waited for the unread channel, which stayed
            # bounded: conflated state keys plus at most maxsize discrete events.
            assert 0 < slow_pending_when_fast_finished[0] <= bound
            assert most <= bound

            # The read channel lost nothing: every agentComplete, and it
            # ends on the last value of every key.
            assert sum(e.type == AGENT_COMPLETE for e in seen) == completes
            fast_final = final_state(seen)
            assert {k: fast_final[k] for k in last} == last

            # Once read, the unread channel announces what it dropped first,
            # keeps the first maxsize agentCompletes, and ends on the truth.
            got = drain(slow)
            assert got[0] == Event(EVENTS_DROPPED, count=completes - SLOW_MAXSIZE)
            assert sum(e.type == AGENT_COMPLETE for e in got) == SLOW_MAXSIZE
            assert len(got) <= bound
            assert final_state(got) == {k: v for k, v in fast_final.items()}

            snap = pbx.snapshot()
            assert snap["queues"]["sales"]["count"] == END_COUNT
            for agent in AGENTS:
                assert (
                    snap["agents"][agent]["extensionStatus"]
                    == last[(EXTENSION_STATUS, agent, None)]
                )
            for agent, queue_name in MEMBERS:
                member = snap["agents"][agent]["queues"][queue_name]
                expected = last[(QUEUE_MEMBER_STATUS, agent, queue_name)]
                assert isinstance(expected, dict)
                assert {k: v for k, v in member.items() if k != "interface" and v is not None} == (
                    expected
                )


# -- batched publishing == one put per event -----------------------------------

SHAPES = [
    (EXTENSION_STATUS, "1001", None),
    (EXTENSION_STATUS, "1002", None),
    (QUEUE_COUNT, None, "sales"),
    (QUEUE_MEMBER_STATUS, "1001", "sales"),
    (AGENT_COMPLETE, "1001", None),
    (AGENT_COMPLETE, "1002", None),
    (AGENT_COMPLETE, None, None),
]
SCOPES = [
    Scope(["1001"], ["sales"]),
    Scope(["1001", "1002"], ["sales"]),
    Scope(["1002"]),
]

OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("publish"),
            st.lists(st.tuples(st.integers(0, len(SHAPES) - 1), st.integers(0, 3)), max_size=8),
        ),
        st.tuples(st.just("get"), st.integers(0, 2 * len(SCOPES) - 1)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(ops=OPS, maxsize=st.integers(1, 4))
def test_batched_publish_equals_one_put_per_event(ops: list[tuple[str, Any]], maxsize: int) -> None:
    hub = Hub()
    # Two channels per scope (one group each), each with a reference fed by put().
    channels = [EventChannel(scope, maxsize=maxsize) for scope in SCOPES for _ in range(2)]
    references = [EventChannel(ch.scope, maxsize=maxsize) for ch in channels]
    for ch in channels:
        hub.add(ch)
    got: list[list[Event]] = [[] for _ in channels]
    expected: list[list[Event]] = [[] for _ in channels]
    serial = 0
    for op, arg in ops:
        if op == "publish":
            events = []
            for shape, n in arg:
                kind, agent, queue_name = SHAPES[shape]
                serial += 1
                events.append(Event(kind, agent, queue_name, n=n, serial=serial))
            hub.publish(events)
            for ch, ref in zip(channels, references):
                for event in events:
                    if ch.scope.accepts(event):
                        ref.put(event)
        else:
            for out, source in ((got, channels), (expected, references)):
                try:
                    out[arg].append(source[arg].get_nowait())
                except queue.Empty:
                    pass
        for ch, ref in zip(channels, references):
            assert ch.qsize() == ref.qsize()
            assert ch.unfinished_tasks == ref.unfinished_tasks
    for i, (ch, ref) in enumerate(zip(channels, references)):
        got[i] += drain(ch)
        expected[i] += drain(ref)
    assert got == expected


def test_wake_up_chain_never_stalls_when_gets_time_out() -> None:
    """Consumers that keep timing out while the hub chains their wake-ups
    (a bell taken off the chain, or rung after its get() gave up) still get
    every later event promptly."""
    hub = Hub()
    channels = [EventChannel(Scope(["1001"])) for _ in range(20)]
    for ch in channels:
        hub.add(ch)
    last = 600
    finished = [threading.Event() for _ in channels]

    def consume(i: int) -> None:
        ch = channels[i]
        timeout = 0.0001 * (1 + i % 4)  # 0.1 to 0.4 ms: all race the chain
        while True:
            try:
                event = ch.get(timeout=timeout)
            except queue.Empty:
                continue
            if event["n"] == last:
                finished[i].set()
                return

    threads = [threading.Thread(target=consume, args=(i,), daemon=True) for i in range(20)]
    for t in threads:
        t.start()
    for n in range(last + 1):
        hub.publish([Event(AGENT_COMPLETE, "1001", n=n)])
        if n % 3 == 0:
            hub.publish([Event(AGENT_COMPLETE, "1001", n=-1), Event(QUEUE_COUNT, None, "x", n=n)])
    for i, done in enumerate(finished):
        assert done.wait(TIMEOUT), f"consumer {i} stalled"
    for t in threads:
        t.join(TIMEOUT)
    # Nothing is left on the chain for consumers that are gone.
    assert not hub._chain
