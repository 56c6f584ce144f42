"""``EventChannel`` (coalescing, bound, drop notice, closed-last) and ``Hub``.

Mostly deterministic and single-threaded; the few threads are waited for with
``join(timeout)`` / ``get(timeout=...)``, never with sleeps.
"""

from __future__ import annotations

import gc
import queue
import threading
import time
from collections.abc import Hashable
from functools import partial
from typing import Any, Callable

import blinker
import pytest
from helpers import drain
from hypothesis import given, settings
from hypothesis import strategies as st

from pbxis.channels import DEFAULT_MAXSIZE, EventChannel, Hub
from pbxis.events import (
    AGENT_COMPLETE,
    CLOSED,
    CONNECTION_LOST,
    EVENTS_DROPPED,
    EXTENSION_STATUS,
    ORIGINATE_FAILED,
    PHONE_NUMBER,
    QUEUE_COUNT,
    QUEUE_MEMBER_STATUS,
    Event,
    is_state_event,
)
from pbxis.scope import Scope

TIMEOUT = 10.0


def ext(agent: str, status: str) -> Event:
    return Event(EXTENSION_STATUS, agent, status=status)


def done(n: int, agent: str | None = "1001") -> Event:
    return Event(AGENT_COMPLETE, agent, uniqueId=str(n), talkTime=n, holdTime=0, recording=None)




def in_thread(fn: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """Run ``fn`` on a thread; fail (instead of hanging) if it blocks."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # re-raised on the test thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{fn} blocked"
    if errors:
        raise errors[0]
    return result[0]


# -- EventChannel: order and coalescing --------------------------------------


def test_is_a_queue_with_fifo_order_for_discrete_events() -> None:
    ch = EventChannel()
    assert isinstance(ch, queue.Queue)
    assert ch.maxsize == DEFAULT_MAXSIZE and ch.scope == Scope()
    assert ch.empty() and ch.qsize() == 0
    for n in range(5):
        ch.put(done(n))
    assert ch.qsize() == 5
    assert drain(ch) == [done(n) for n in range(5)]


def test_state_event_with_same_key_replaces_and_moves_to_end() -> None:
    ch = EventChannel()
    ch.put(ext("1001", "ringing"))
    ch.put(ext("1002", "inuse"))
    ch.put(done(1))
    ch.put(ext("1001", "inuse"))
    assert ch.qsize() == 3
    assert drain(ch) == [ext("1002", "inuse"), done(1), ext("1001", "inuse")]


def test_different_keys_are_kept_in_order() -> None:
    # The key is (type, agent, queue): each of these differs in one part.
    events = [
        Event(QUEUE_MEMBER_STATUS, "1001", "sales", status="paused"),
        Event(QUEUE_MEMBER_STATUS, "1001", "support", status="inuse"),
        Event(QUEUE_MEMBER_STATUS, "1002", "sales", status="inuse"),
        Event(EXTENSION_STATUS, "1001", status="inuse"),
        Event(PHONE_NUMBER, "1001", number="555"),
        Event(QUEUE_COUNT, None, "sales", count=1),
        Event(QUEUE_COUNT, None, "support", count=1),
    ]
    assert len({ev.coalesce_key for ev in events}) == len(events)
    ch = EventChannel()
    for ev in events:
        ch.put(ev)
    assert drain(ch) == events


def test_coalescing_keeps_the_newest_details() -> None:
    ch = EventChannel()
    for count in range(10):
        ch.put(Event(QUEUE_COUNT, None, "sales", count=count))
    assert drain(ch) == [Event(QUEUE_COUNT, None, "sales", count=9)]


def test_discrete_events_never_coalesce() -> None:
    ch = EventChannel()
    same = Event(ORIGINATE_FAILED, actionId="1", reason="busy")
    ch.put(same)
    ch.put(same)
    ch.put(Event(CONNECTION_LOST))
    ch.put(Event(CONNECTION_LOST))
    assert ch.qsize() == 4


def test_put_after_get_of_same_key_is_a_new_event() -> None:
    ch = EventChannel()
    ch.put(ext("1001", "ringing"))
    assert ch.get_nowait() == ext("1001", "ringing")
    ch.put(ext("1001", "inuse"))
    assert drain(ch) == [ext("1001", "inuse")]


# -- EventChannel: bound and drop notice -------------------------------------


def test_discrete_events_beyond_the_bound_are_dropped_and_announced_first() -> None:
    ch = EventChannel(maxsize=3)
    for n in range(5):
        ch.put(done(n))
    assert ch.full()
    assert ch.qsize() == 4  # three events + the notice
    assert drain(ch) == [Event(EVENTS_DROPPED, count=2), done(0), done(1), done(2)]
    assert not ch.full()


def test_each_drop_run_gets_its_own_notice() -> None:
    ch = EventChannel(maxsize=1)
    ch.put(done(0))
    ch.put(done(1))
    assert ch.get_nowait() == Event(EVENTS_DROPPED, count=1)
    ch.put(done(2))  # still full: done(0) pending
    ch.put(done(3))
    assert drain(ch) == [Event(EVENTS_DROPPED, count=2), done(0)]
    ch.put(done(4))
    assert drain(ch) == [done(4)]


def test_state_events_are_never_dropped_when_discrete_bound_is_reached() -> None:
    ch = EventChannel(maxsize=2)
    for n in range(3):
        ch.put(done(n))
    ch.put(ext("1001", "inuse"))
    ch.put(ext("1002", "inuse"))
    assert drain(ch) == [
        Event(EVENTS_DROPPED, count=1),
        done(0),
        done(1),
        ext("1001", "inuse"),
        ext("1002", "inuse"),
    ]


def test_put_never_blocks_nor_raises_full() -> None:
    ch = EventChannel(maxsize=10)

    def flood() -> int:
        for n in range(20_000):
            ch.put(done(n))  # block=True, no timeout: must still return
            ch.put(done(n), block=True, timeout=None)
            ch.put_nowait(done(n))
        return ch.qsize()

    assert in_thread(flood) == 11
    assert ch.get_nowait() == Event(EVENTS_DROPPED, count=60_000 - 10)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10"])
def test_maxsize_must_be_a_positive_int(bad: Any) -> None:
    with pytest.raises(ValueError):
        EventChannel(maxsize=bad)


def test_task_done_and_join_count_replaced_and_dropped_events_as_done() -> None:
    ch = EventChannel(maxsize=1)
    ch.put(ext("1001", "ringing"))
    ch.put(ext("1001", "inuse"))  # replaces
    ch.put(done(1))
    ch.put(done(2))  # dropped: notice
    ch.put(done(3))  # dropped: same notice
    assert ch.unfinished_tasks == ch.qsize() == 3
    for _ in drain(ch):
        ch.task_done()
    in_thread(ch.join)
    with pytest.raises(ValueError):
        ch.task_done()


# -- EventChannel: get, close, iteration ---------------------------------------


def test_get_timeout_raises_empty() -> None:
    ch = EventChannel()
    start = time.monotonic()
    with pytest.raises(queue.Empty):
        ch.get(timeout=0.05)
    assert time.monotonic() - start >= 0.04
    with pytest.raises(queue.Empty):
        ch.get(block=False)
    with pytest.raises(queue.Empty):
        ch.get_nowait()
    with pytest.raises(queue.Empty):
        ch.get(timeout=0)
    with pytest.raises(ValueError):
        ch.get(timeout=-1)


def test_get_wakes_up_on_put_from_another_thread() -> None:
    ch = EventChannel()
    started = threading.Event()

    def consume() -> Event:
        started.set()
        return ch.get(timeout=TIMEOUT)

    result: list[Event] = []
    thread = threading.Thread(target=lambda: result.append(consume()), daemon=True)
    thread.start()
    assert started.wait(TIMEOUT)
    ch.put(done(1))
    thread.join(TIMEOUT)
    assert result == [done(1)]


def test_closed_comes_last_after_pending_events_then_iteration_stops() -> None:
    ch = EventChannel()
    ch.put(done(1))
    ch.put(ext("1001", "inuse"))
    ch.close()
    assert ch.closed
    ch.put(done(2))  # ignored after close
    ch.put(ext("1001", "busy"))
    assert ch.qsize() == 3
    assert in_thread(lambda: list(ch)) == [done(1), ext("1001", "inuse"), Event(CLOSED)]
    assert ch.qsize() == 0 and ch.empty()


def test_get_after_the_final_closed_raises_empty_at_once() -> None:
    ch = EventChannel()
    ch.close()
    assert ch.get_nowait() == Event(CLOSED)
    with pytest.raises(queue.Empty):
        in_thread(ch.get)  # block=True, no timeout: must not block
    assert in_thread(lambda: list(ch)) == []


def test_closed_follows_the_drop_notice_and_pending_events() -> None:
    ch = EventChannel(maxsize=1)
    ch.put(done(1))
    ch.put(done(2))
    ch.close()
    assert drain(ch) == [Event(EVENTS_DROPPED, count=1), done(1), Event(CLOSED)]


def test_close_ends_a_blocked_iteration() -> None:
    ch = EventChannel()
    got: list[Event] = []
    first = threading.Event()

    def consume() -> None:
        for ev in ch:
            got.append(ev)
            first.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    ch.put(done(1))
    assert first.wait(TIMEOUT)
    ch.close()
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    assert got == [done(1), Event(CLOSED)]


def test_close_wakes_every_blocked_reader() -> None:
    ch = EventChannel()
    results: list[object] = []
    lock = threading.Lock()

    def reader() -> None:
        try:
            ev: object = ch.get()
        except queue.Empty:
            ev = "empty"
        with lock:
            results.append(ev)

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    ch.close()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive()
    assert sorted(map(str, results)) == sorted([str(Event(CLOSED))] + ["empty"] * 3)


def test_close_is_idempotent_and_calls_on_close_once() -> None:
    calls: list[EventChannel] = []
    ch = EventChannel(on_close=calls.append)
    ch.close()
    ch.close()
    assert calls == [ch]
    assert drain(ch) == [Event(CLOSED)]


def test_context_manager_closes() -> None:
    calls: list[EventChannel] = []
    with EventChannel(on_close=calls.append) as ch:
        ch.put(done(1))
    assert ch.closed and calls == [ch]
    assert drain(ch) == [done(1), Event(CLOSED)]


def test_close_from_hub_skips_on_close() -> None:
    calls: list[EventChannel] = []
    ch = EventChannel(on_close=calls.append)
    ch._close_from_hub()
    ch.close()
    assert calls == []
    assert drain(ch) == [Event(CLOSED)]


def test_repr() -> None:
    ch = EventChannel(Scope(["1001"]))
    ch.put(done(1))
    assert "pending=1" in repr(ch) and "1001" in repr(ch)
    ch.close()
    assert "closed" in repr(ch)


# -- EventChannel against a reference model (hypothesis) -----------------------

KEYS = st.sampled_from(["1001", "1002", "1003"])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("state"), KEYS, st.integers(0, 9)),
        st.tuples(st.just("discrete"), KEYS, st.integers(0, 9)),
        st.tuples(st.just("get"), st.just(""), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(ops=OPS, maxsize=st.integers(1, 4), close_at_end=st.booleans())
def test_matches_reference_model(
    ops: list[tuple[str, str, int]], maxsize: int, close_at_end: bool
) -> None:
    ch = EventChannel(maxsize=maxsize)
    # The spec, written as simply as possible: a list of pending events.
    model: list[Event] = []
    dropped = 0
    got: list[Event] = []
    expected: list[Event] = []

    def model_get() -> None:
        nonlocal dropped
        if dropped:
            expected.append(Event(EVENTS_DROPPED, count=dropped))
            dropped = 0
        elif model:
            expected.append(model.pop(0))

    for op, agent, value in ops:
        if op == "get":
            model_get()
            try:
                got.append(ch.get_nowait())
            except queue.Empty:
                pass
            continue
        ev = ext(agent, str(value)) if op == "state" else done(value, agent)
        ch.put(ev)
        if is_state_event(ev.type):
            model[:] = [m for m in model if m.coalesce_key != ev.coalesce_key] + [ev]
        elif sum(not is_state_event(m.type) for m in model) < maxsize:
            model.append(ev)
        else:
            dropped += 1
        assert ch.qsize() == len(model) + (1 if dropped else 0)
    if close_at_end:
        ch.close()
    got.extend(drain(ch))
    while dropped or model:
        model_get()
    if close_at_end:
        expected.append(Event(CLOSED))
    assert got == expected


# -- Slow consumer ------------------------------------------------------------


def test_slow_consumer_stays_bounded_and_converges_to_the_latest_state() -> None:
    hub = Hub()
    agents = ["1001", "1002", "1003", "1004"]
    slow = EventChannel(Scope(agents, ["sales"]))  # never read while publishing
    other = EventChannel(Scope(["2001"]))  # gets only its own, discrete events
    live = EventChannel(Scope(agents, ["sales"]))  # read concurrently
    for ch in (slow, other, live):
        hub.add(ch)
    keys = len(agents) * 2 + 1  # extensionStatus + phoneNumber per agent, queueCount

    live_seen: list[Event] = []
    reader = threading.Thread(target=lambda: live_seen.extend(live), daemon=True)
    reader.start()

    latest: dict[Hashable, Event] = {}
    max_pending = 0
    for n in range(100_000):
        agent = agents[n % len(agents)]
        if n % 3 == 0:
            ev = Event(EXTENSION_STATUS, agent, status=f"s{n}")
        elif n % 3 == 1:
            ev = Event(PHONE_NUMBER, agent, number=str(n))
        else:
            ev = Event(QUEUE_COUNT, None, "sales", count=n)
        latest[ev.coalesce_key] = ev
        batch = [ev]
        if n % 100 == 0:
            batch.append(done(n, "2001"))
        hub.publish(batch)
        if n % 1000 == 0:
            max_pending = max(max_pending, slow.qsize())

    assert len(latest) == keys
    assert max_pending <= keys and slow.qsize() <= keys
    hub.close_all()
    reader.join(TIMEOUT)
    assert not reader.is_alive()

    slow_seen = in_thread(lambda: list(slow))
    assert slow_seen[-1] == Event(CLOSED)
    assert len(slow_seen) <= keys + 1
    assert {ev.coalesce_key: ev for ev in slow_seen[:-1]} == latest

    # The live reader may have seen intermediate states, but ends on the truth.
    final: dict[Hashable, Event] = {}
    for ev in live_seen[:-1]:
        final[ev.coalesce_key] = ev
    assert live_seen[-1] == Event(CLOSED) and final == latest

    # The unrelated channel lost nothing and saw nothing of the flood.
    assert in_thread(lambda: list(other)) == [done(n, "2001") for n in range(0, 100_000, 100)] + [
        Event(CLOSED)
    ]


# -- Hub -----------------------------------------------------------------------

EVENT_SHAPES = [
    (None, None),
    ("1001", None),
    ("1002", None),
    (None, "sales"),
    (None, "support"),
    ("1001", "sales"),
    ("1001", "support"),
    ("1002", "sales"),
    ("1003", "sales"),
]
SCOPES = [
    Scope(),
    Scope(["1001"]),
    Scope(queues=["sales"]),
    Scope(["1001"], ["sales"]),
    Scope(["1001", "1002"], ["sales", "support"]),
    Scope(["1003"], ["support"]),
]


@pytest.mark.parametrize("batched", [False, True])
def test_publish_delivers_exactly_by_the_scope_rule(batched: bool) -> None:
    hub = Hub()
    channels = [EventChannel(scope) for scope in SCOPES]
    for ch in channels:
        hub.add(ch)
    events = [Event(AGENT_COMPLETE, a, q, n=i) for i, (a, q) in enumerate(EVENT_SHAPES)]
    if batched:
        hub.publish(events)
    else:
        for ev in events:
            hub.publish([ev])
    for ch in channels:
        assert drain(ch) == [ev for ev in events if ch.scope.accepts(ev)], ch.scope


@settings(max_examples=100, deadline=None)
@given(
    scopes=st.lists(
        st.tuples(
            st.frozensets(st.sampled_from(["1001", "1002", "1003"])),
            st.frozensets(st.sampled_from(["sales", "support"])),
        ),
        max_size=6,
    ),
    shapes=st.lists(st.sampled_from(EVENT_SHAPES), max_size=20),
    state=st.booleans(),
)
def test_publish_matches_scope_accepts(
    scopes: list[tuple[frozenset[str], frozenset[str]]],
    shapes: list[tuple[str | None, str | None]],
    state: bool,
) -> None:
    hub = Hub()
    channels = [EventChannel(Scope(a, q)) for a, q in scopes]
    for ch in channels:
        hub.add(ch)
    kind = QUEUE_MEMBER_STATUS if state else AGENT_COMPLETE
    events = [Event(kind, a, q, n=i) for i, (a, q) in enumerate(shapes)]
    hub.publish(events)
    for ch in channels:
        reference = EventChannel()
        for ev in events:
            if ch.scope.accepts(ev):
                reference.put(ev)
        assert drain(ch) == drain(reference)


def test_publish_accepts_any_iterable_and_empty() -> None:
    hub = Hub()
    ch = EventChannel()
    hub.add(ch)
    hub.publish([])
    hub.publish(iter([done(1, None), done(2, None)]))
    hub.publish((done(3, None),))
    assert drain(ch) == [done(1, None), done(2, None), done(3, None)]


def test_publish_all_ignores_scope() -> None:
    hub = Hub()
    channels = [EventChannel(scope) for scope in SCOPES]
    for ch in channels:
        hub.add(ch)
    lost = Event(CONNECTION_LOST, "1001", "elsewhere", reason="eof")
    hub.publish_all(lost)
    for ch in channels:
        assert drain(ch) == [lost]


def test_remove_stops_delivery_and_is_idempotent() -> None:
    hub = Hub()
    ch = EventChannel(Scope(["1001"], ["sales"]))
    hub.add(ch)
    hub.add(ch)  # idempotent
    assert len(hub) == 1 and hub.agents == {"1001"} and hub.queues == {"sales"}
    hub.remove(ch)
    hub.remove(ch)
    assert len(hub) == 0 and hub.agents == frozenset() and hub.queues == frozenset()
    hub.publish([done(1), done(2, None)])
    hub.publish_all(Event(CONNECTION_LOST))
    assert drain(ch) == [] and not ch.closed


def test_tracked_agents_and_queues_are_the_union_of_scopes() -> None:
    hub = Hub()
    a = EventChannel(Scope(["1001"], ["sales"]))
    b = EventChannel(Scope(["1001", "1002"]))
    hub.add(a)
    hub.add(b)
    assert hub.agents == {"1001", "1002"} and hub.queues == {"sales"}
    hub.remove(b)
    assert hub.agents == {"1001"} and hub.queues == {"sales"}
    assert hub.channels == [a]


def test_a_channel_closed_by_its_user_is_pruned_and_gets_nothing_more() -> None:
    hub = Hub()
    ch = EventChannel()
    hub.add(ch)
    ch.close()
    hub.publish([done(1, None)])
    assert len(hub) == 0
    assert drain(ch) == [Event(CLOSED)]


def test_close_all_ends_every_channel_with_closed_last() -> None:
    calls: list[EventChannel] = []
    hub = Hub()
    channels = [EventChannel(scope, on_close=calls.append) for scope in SCOPES]
    for ch in channels:
        hub.add(ch)
    hub.publish([done(1, None)])
    hub.close_all()
    hub.close_all()  # idempotent
    assert len(hub) == 0 and calls == []
    for ch in channels:
        assert ch.closed
        assert in_thread(partial(list, ch)) == [done(1, None), Event(CLOSED)]
    # A channel added after close_all is ended at once.
    late = EventChannel()
    hub.add(late)
    assert len(hub) == 0 and drain(late) == [Event(CLOSED)]
    assert "closed" in repr(hub)


def test_hub_holds_channels_strongly() -> None:
    hub = Hub()
    hub.add(EventChannel())
    hub.add(EventChannel(Scope(["1001"])))
    gc.collect()
    assert len(hub) == 2
    hub.publish([done(1)])
    hub.publish_all(Event(CONNECTION_LOST))
    counts = sorted(ch.qsize() for ch in hub.channels)
    assert counts == [1, 2]


def test_each_hub_owns_an_anonymous_signal() -> None:
    first, second = Hub(), Hub()
    assert isinstance(first._signal, blinker.Signal)
    assert not isinstance(first._signal, blinker.NamedSignal)
    assert first._signal is not second._signal
    first.add(EventChannel())
    assert not second._signal.receivers
