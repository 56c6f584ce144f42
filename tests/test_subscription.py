"""``Subscription``: one named daemon thread per callback, exceptions logged.

Waits use ``threading.Event.wait(timeout)`` and ``join(timeout)``, never sleeps.
"""

from __future__ import annotations

import gc
import logging
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from pbxis.channels import EventChannel, Hub, Subscription
from pbxis.events import AGENT_COMPLETE, CLOSED, EXTENSION_STATUS, Event
from pbxis.scope import Scope

TIMEOUT = 10.0


def subscriber_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pbxis-subscriber")]


@pytest.fixture(autouse=True)
def no_subscriber_thread_left() -> Iterator[None]:
    before = set(subscriber_threads())
    yield
    left = [t for t in subscriber_threads() if t not in before]
    for thread in left:
        thread.join(TIMEOUT)
    assert not [t for t in left if t.is_alive()]


class Recorder:
    """A callback that records events and signals when ``closed`` arrives."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.threads: set[str] = set()
        self.finished = threading.Event()

    def __call__(self, event: Event) -> None:
        self.threads.add(threading.current_thread().name)
        self.events.append(event)
        if event.type == CLOSED:
            self.finished.set()


def ev(n: int) -> Event:
    return Event(AGENT_COMPLETE, "1001", uniqueId=str(n))


def test_callback_gets_every_event_then_closed_on_a_named_daemon_thread() -> None:
    rec = Recorder()
    ch = EventChannel()
    sub = Subscription(rec, ch)
    assert re.fullmatch(r"pbxis-subscriber-\d+", sub.name)
    assert sub.channel is ch and not sub.closed
    thread = next(t for t in threading.enumerate() if t.name == sub.name)
    assert thread.daemon
    for n in range(100):
        ch.put(ev(n))
    ch.close()
    assert rec.finished.wait(TIMEOUT)
    assert rec.events == [ev(n) for n in range(100)] + [Event(CLOSED)]
    assert rec.threads == {sub.name}
    assert sub.closed
    assert sub.close(timeout=TIMEOUT) is True


def test_thread_numbers_are_unique() -> None:
    subs = [Subscription(lambda e: None, EventChannel()) for _ in range(3)]
    assert len({s.name for s in subs}) == 3
    for sub in subs:
        assert sub.close(TIMEOUT)


def test_custom_name() -> None:
    sub = Subscription(lambda e: None, EventChannel(), name="pbxis-subscriber-custom")
    assert sub.name == "pbxis-subscriber-custom"
    assert any(t.name == "pbxis-subscriber-custom" for t in threading.enumerate())
    assert sub.close(TIMEOUT)


def test_callback_exception_is_logged_and_delivery_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Event] = []
    finished = threading.Event()

    def callback(event: Event) -> None:
        seen.append(event)
        if event.type == CLOSED:
            finished.set()
        elif event["uniqueId"] in ("0", "2"):
            raise RuntimeError(f"boom {event['uniqueId']}")

    caplog.set_level(logging.ERROR, logger="pbxis.channels")
    ch = EventChannel()
    sub = Subscription(callback, ch)
    for n in range(4):
        ch.put(ev(n))
    ch.close()
    assert finished.wait(TIMEOUT)
    assert sub.close(TIMEOUT)
    assert seen == [ev(0), ev(1), ev(2), ev(3), Event(CLOSED)]
    records = [r for r in caplog.records if r.name == "pbxis.channels"]
    assert len(records) == 2
    for record, which in zip(records, ("0", "2")):
        assert record.levelno == logging.ERROR
        assert record.exc_info is not None and str(record.exc_info[1]) == f"boom {which}"
        assert sub.name in record.getMessage()


def test_close_joins_the_thread_and_runs_on_close_once() -> None:
    calls: list[EventChannel] = []
    rec = Recorder()
    ch = EventChannel(on_close=calls.append)
    sub = Subscription(rec, ch)
    ch.put(ev(1))
    assert sub.close(timeout=TIMEOUT) is True
    assert not any(t.name == sub.name for t in threading.enumerate())
    # Pending events were delivered before close returned, closed last.
    assert rec.events == [ev(1), Event(CLOSED)]
    assert calls == [ch] and sub.closed
    assert sub.close(timeout=TIMEOUT) is True  # idempotent
    assert calls == [ch]


def test_context_manager_closes() -> None:
    rec = Recorder()
    with Subscription(rec, EventChannel()) as sub:
        sub.channel.put(ev(1))
    assert sub.closed
    assert rec.events == [ev(1), Event(CLOSED)]


def test_close_from_inside_the_callback_does_not_join_itself() -> None:
    results: list[bool] = []
    rec = Recorder()
    holder: dict[str, Subscription] = {}
    ready = threading.Event()

    def callback(event: Event) -> None:
        assert ready.wait(TIMEOUT)
        rec(event)
        if event.type != CLOSED:
            results.append(holder["sub"].close(timeout=TIMEOUT))

    ch = EventChannel()
    ch.put(ev(1))
    ch.put(ev(2))
    holder["sub"] = Subscription(callback, ch)
    ready.set()
    assert rec.finished.wait(TIMEOUT)
    # Both pending events were still delivered (closed is last), no deadlock.
    assert rec.events == [ev(1), ev(2), Event(CLOSED)]
    assert results == [False, False]
    assert holder["sub"].close(TIMEOUT) is True


def test_close_with_a_blocked_callback_returns_after_the_timeout() -> None:
    release = threading.Event()
    entered = threading.Event()

    def callback(event: Event) -> None:
        entered.set()
        assert release.wait(TIMEOUT)

    sub = Subscription(callback, EventChannel())
    sub.channel.put(ev(1))
    assert entered.wait(TIMEOUT)
    assert sub.close(timeout=0.05) is False
    release.set()
    assert sub.close(timeout=TIMEOUT) is True


def test_a_blocked_callback_never_blocks_the_publisher() -> None:
    hub = Hub()
    release = threading.Event()
    entered = threading.Event()

    def callback(event: Event) -> None:
        entered.set()
        release.wait(TIMEOUT)

    ch = EventChannel(Scope(["1001"]), maxsize=10)
    sub = Subscription(callback, ch)
    hub.add(ch)
    hub.publish([ev(0)])
    assert entered.wait(TIMEOUT)
    done = threading.Event()

    def flood() -> None:
        for n in range(1, 10_001):
            hub.publish([ev(n), Event(EXTENSION_STATUS, "1001", status=str(n))])
        done.set()

    publisher = threading.Thread(target=flood, daemon=True)
    publisher.start()
    assert done.wait(TIMEOUT)  # finished while the callback is still stuck
    publisher.join(TIMEOUT)
    assert ch.qsize() <= 10 + 1 + 1  # bound + drop notice + one state key
    release.set()
    hub.close_all()
    assert sub.close(TIMEOUT)


def test_lambda_callback_survives_garbage_collection() -> None:
    rec = Recorder()
    hub = Hub()
    ch = EventChannel(Scope(["1001"]))
    hub.add(ch)
    # Only the subscription references the lambda; the hub, the channel.
    sub = Subscription(lambda e: rec(e), ch)
    name = sub.name
    del sub, ch
    gc.collect()
    hub.publish([ev(1)])
    hub.close_all()  # the Pbx's close: ends the thread through the channel
    assert rec.finished.wait(TIMEOUT)
    assert rec.events == [ev(1), Event(CLOSED)]
    assert rec.threads == {name}


# pytest reports the SystemExit that (by design) escapes the thread.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_base_exception_in_callback_ends_thread_and_closes_channel() -> None:
    calls: list[EventChannel] = []

    def callback(event: Event) -> None:
        raise SystemExit  # not an Exception: the thread ends

    ch = EventChannel(on_close=calls.append)
    sub = Subscription(callback, ch)
    ch.put(ev(1))
    assert sub.close(TIMEOUT)  # joins: the thread has ended
    assert ch.closed and calls == [ch]


@pytest.mark.parametrize("bad", [None, 42, "callback"])
def test_callback_must_be_callable(bad: Any) -> None:
    with pytest.raises(TypeError):
        Subscription(bad, EventChannel())


def test_repr() -> None:
    sub = Subscription(lambda e: None, EventChannel())
    assert sub.name in repr(sub)
    sub.close(TIMEOUT)
