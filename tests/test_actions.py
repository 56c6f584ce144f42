"""ActionID correlation: single and list actions, interleaved events, fail_all.

The list-action tests replay the recorded bytes and send offsets of
shared/ami-transcripts: each action is registered exactly where the
recorder sent it, as the client registers before it writes.
"""
from __future__ import annotations

import json
import os
import sys
import threading

import pytest
from helpers import BANNER, TRANSCRIPTS, feed_whole, transcript

from pbxis.actions import ActionResult, Correlator, Pending, new_action_ids
from pbxis.protocol import Message, Parser


def msg(*lines: str) -> Message:
    """A Message parsed from ``Key: Value`` lines (through the real parser)."""
    raw = "".join(f"{line}\r\n" for line in lines).encode() + b"\r\n"
    frames = feed_whole(BANNER + raw)
    assert len(frames) == 2, frames
    m = frames[1]
    assert isinstance(m, Message)
    return m


# --- ids ------------------------------------------------------------------------


def test_action_ids_are_unique_and_prefixed() -> None:
    first, second = new_action_ids("pbxis-"), new_action_ids("pbxis-")
    ids = [next(first) for _ in range(500)] + [next(second) for _ in range(500)]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith(f"pbxis-{os.getpid():x}-") for i in ids)
    assert next(new_action_ids()).startswith(f"{os.getpid():x}-")
    assert next(new_action_ids("{odd}-")).startswith("{odd}-")


def test_action_ids_from_many_threads() -> None:
    # regression: a generator raised "ValueError: generator already executing"
    ids = new_action_ids("t-")
    got: list[str] = []
    errors: list[BaseException] = []

    def take() -> None:
        try:
            for _ in range(20000):
                got.append(next(ids))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=take, name=f"ids-{n}") for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        sys.setswitchinterval(old)
    assert errors == []
    assert len(got) == len(set(got)) == 80000


# --- single actions -----------------------------------------------------------


def test_single_response_completes() -> None:
    c = Correlator()
    pending = c.register("a-4", "Ping")
    assert isinstance(pending, Pending) and "a-4" in c and len(c) == 1
    found = c.feed(msg("Response: Success", "ActionID: a-4", "Ping: Pong"))
    assert found is not None
    got, result = found
    assert got is pending and isinstance(result, ActionResult)
    assert result.ok and result.response.get("Ping") == "Pong"
    assert result.events == [] and result.complete is None and not result.cancelled
    assert len(c) == 0 and "a-4" not in c
    assert "0 events" in repr(result)


@pytest.mark.parametrize("status,ok", [("Error", False), ("Failure", False), ("Success", True),
                                       ("Goodbye", True), ("Follows", True)])
def test_response_status(status: str, ok: bool) -> None:
    c = Correlator()
    c.register("x", "QueueStatus")
    found = c.feed(msg(f"Response: {status}", "ActionID: x", "Message: m"))
    assert found is not None and found[1] is not None
    assert found[1].ok is ok
    assert len(c) == 0  # an error to a list action has no EventList: it completes at once


def test_messages_without_a_pending_id_are_not_consumed() -> None:
    c = Correlator()
    c.register("mine", "Ping")
    assert c.feed(msg("Response: Success", "Ping: Pong")) is None  # Ping without ActionID
    assert c.feed(msg("Event: Hangup", "Channel: PJSIP/1001-1")) is None
    assert c.feed(msg("Response: Success", "ActionID: other")) is None
    assert c.feed(msg("Event: OriginateResponse", "ActionID: other", "Response: Failure")) is None
    assert "mine" in c


def test_duplicate_register_raises() -> None:
    c = Correlator()
    c.register("dup", "Ping")
    with pytest.raises(ValueError):
        c.register("dup", "Ping")
    c.feed(msg("Response: Success", "ActionID: dup"))
    c.register("dup", "Ping")  # completed ids may be registered again


def test_discard_forgets() -> None:
    c = Correlator()
    pending = c.register("late", "Ping", on_done=print)
    assert pending.on_done is print and pending.name == "Ping"
    assert c.discard("late") is pending
    assert c.discard("late") is None
    assert c.feed(msg("Response: Success", "ActionID: late")) is None


def test_fail_all_returns_everything_pending() -> None:
    c = Correlator()
    ids = ["p1", "p2", "p3"]
    for i in ids:
        c.register(i, "QueueStatus")
    c.feed(msg("Response: Success", "ActionID: p2", "EventList: start"))
    failed = c.fail_all()
    assert sorted(p.action_id for p in failed) == ids
    assert len(c) == 0 and c.fail_all() == []
    assert c.feed(msg("Event: QueueStatusComplete", "ActionID: p2", "EventList: Complete")) is None


# --- list actions -------------------------------------------------------------


def test_list_action_with_interleaved_events() -> None:
    c = Correlator()
    c.register("qs", "QueueStatus")
    stream = [
        (msg("Response: Success", "ActionID: qs", "EventList: start",
             "Message: Queue status will follow"), "consumed"),
        (msg("Event: TestEvent", "Type: StateChange"), None),
        (msg("Event: QueueParams", "Queue: sales", "ActionID: qs"), "consumed"),
        (msg("Event: DeviceStateChange", "Device: PJSIP/1003", "State: RINGING"), None),
        (msg("Event: QueueMember", "Queue: sales", "PausedReason: ", "ActionID: qs"), "consumed"),
        (msg("Event: QueueStatusComplete", "ActionID: qs", "EventList: Complete",
             "ListItems: 2"), "done"),
    ]
    for m, expect in stream:
        found = c.feed(m)
        if expect is None:
            assert found is None
        elif expect == "consumed":
            assert found is not None and found[1] is None
        else:
            assert found is not None and found[1] is not None
            result = found[1]
    assert [e.event for e in result.events] == ["QueueParams", "QueueMember"]
    assert result.complete is not None and result.complete.get("ListItems") == "2"
    assert result.response.get("EventList") == "start"
    assert len(c) == 0


def test_list_event_before_response() -> None:
    c = Correlator()
    c.register("early", "CoreShowChannels")
    first = msg("Event: CoreShowChannel", "Channel: PJSIP/1001-1", "ActionID: early")
    found = c.feed(first)
    assert found is not None and found[1] is None
    assert c.feed(msg("Response: Success", "ActionID: early", "EventList: start")) is not None
    second = msg("Event: CoreShowChannel", "Channel: PJSIP/1002-2", "ActionID: early")
    c.feed(second)
    found = c.feed(msg("Event: CoreShowChannelsComplete", "ActionID: early",
                       "EventList: Complete", "ListItems: 2"))
    assert found is not None and found[1] is not None
    assert found[1].events == [first, second]


def test_whole_list_before_response() -> None:
    # regression: the Complete was taken as an item and the list never closed
    c = Correlator()
    c.register("all-early", "QueueSummary")
    item = msg("Event: QueueSummary", "Queue: sales", "ActionID: all-early")
    done = msg("Event: QueueSummaryComplete", "ActionID: all-early", "EventList: Complete",
               "ListItems: 1")
    assert c.feed(item) is not None and c.feed(done) is not None
    found = c.feed(msg("Response: Success", "ActionID: all-early", "EventList: start"))
    assert found is not None and found[1] is not None
    assert found[1].events == [item] and found[1].complete == done
    assert len(c) == 0


def test_cancelled_list() -> None:
    c = Correlator()
    c.register("cx", "Status")
    c.feed(msg("Response: Success", "ActionID: cx", "EventList: start"))
    c.feed(msg("Event: Status", "Channel: PJSIP/1001-1", "ActionID: cx"))
    found = c.feed(msg("Event: StatusComplete", "ActionID: cx", "EventList: Cancelled"))
    assert found is not None and found[1] is not None
    result = found[1]
    assert result.cancelled and result.complete is not None
    assert [e.get("Channel") for e in result.events] == ["PJSIP/1001-1"]
    assert len(c) == 0


def test_second_response_with_a_reused_id_is_not_taken_as_an_item() -> None:
    c = Correlator()
    c.register("r", "QueueStatus")
    c.feed(msg("Response: Success", "ActionID: r", "EventList: start"))
    assert c.feed(msg("Response: Success", "ActionID: r")) is None
    found = c.feed(msg("Event: QueueStatusComplete", "ActionID: r", "EventList: Complete"))
    assert found is not None and found[1] is not None and found[1].events == []


def test_originate_response_event_is_never_the_response() -> None:
    # regression: an event that carries "Response: Failure" was taken as the response
    c = Correlator()
    c.register("orig", "Originate")
    event = msg("Event: OriginateResponse", "ActionID: orig", "Response: Failure", "Reason: 0")
    found = c.feed(event)
    assert found is not None and found[1] is None and "orig" in c
    found = c.feed(msg("Response: Success", "ActionID: orig",
                       "Message: Originate successfully queued"))
    assert found is not None and found[1] is not None
    assert found[1].response.get("Message") == "Originate successfully queued"
    assert found[1].events == [event]


# --- replaying the recordings ---------------------------------------------------


def replay(name: str) -> tuple[dict[str, ActionResult], list[Message], Correlator]:
    """Feed a transcript through Parser + Correlator, registering each action at
    its recorded send offset. Returns the results by ActionID, the messages
    no action claimed, and the correlator."""
    data = transcript(name)
    text = (TRANSCRIPTS / name).with_suffix(".actions").read_text()
    actions = [json.loads(line) for line in text.splitlines() if line]
    parser, correlator = Parser(), Correlator()
    results: dict[str, ActionResult] = {}
    unclaimed: list[Message] = []
    pos = 0
    for action in [*actions, None]:
        end = len(data) if action is None else action["offset"]
        for frame in parser.feed(data[pos:end]) if end > pos else []:
            if not isinstance(frame, Message):
                continue
            found = correlator.feed(frame)
            if found is None:
                unclaimed.append(frame)
            elif found[1] is not None:
                results[found[0].action_id] = found[1]
        pos = end
        if action is not None and action["action_id"] is not None:
            correlator.register(action["action_id"], action["action"])
    return results, unclaimed, correlator


LIST_ACTIONS = {"QueueStatus", "QueueSummary", "ExtensionStateList", "CoreShowChannels",
                "Status", "DeviceStateList"}


def test_initial_state_lists_get_exactly_their_items() -> None:
    results, unclaimed, correlator = replay("a-initial-state.ami")
    assert len(correlator) == 0
    assert len(results) == 15  # every action with an ActionID
    lists = {i: r for i, r in results.items() if r.complete is not None}
    assert sorted(lists) == ["a-10", "a-12", "a-13", "a-14", "a-5", "a-6", "a-7", "a-8", "a-9"]
    for action_id, result in lists.items():
        assert result.response.get("EventList") == "start"
        assert len(result.events) == int(result.complete["ListItems"])
        assert all(e.action_id == action_id for e in result.events)
        assert (result.complete.event or "").endswith("Complete")
    # README: QueueStatus (all) -> 8 list events (7 items + Complete), sales -> 4, member -> 3
    assert [len(lists[i].events) for i in ("a-5", "a-6", "a-7")] == [7, 3, 2]
    assert [e.event for e in lists["a-7"].events] == ["QueueParams", "QueueMember"]
    assert len(lists["a-14"].events) == 12  # DeviceStateList: 13 list events
    # what no action claimed: the no-ActionID Ping's response and the unrelated events
    assert [m.response for m in unclaimed if m.event is None] == ["Success"]
    # (all 12 DeviceStateChange events here are DeviceStateList items)
    assert sorted(m.event or "" for m in unclaimed if m.event) == [
        "FullyBooted", "SuccessfulAuth", "TestEvent"
    ]
    assert all(m.action_id is None for m in unclaimed)


@pytest.mark.parametrize("name", ["b-agent-management.ami", "f3-paused-wait.ami",
                                  "i-hold.ami", "m1-login-events-off.ami"])
def test_recorded_lists_complete_with_listitems(name: str) -> None:
    results, unclaimed, correlator = replay(name)
    assert len(correlator) == 0
    for result in results.values():
        if result.response.get("EventList") == "start":
            assert result.complete is not None
            assert len(result.events) == int(result.complete["ListItems"])
    assert all(m.action_id is None for m in unclaimed)


def test_late_originate_response_is_not_consumed() -> None:
    results, unclaimed, correlator = replay("g-originate.ami")
    assert len(correlator) == 0
    statuses = sorted(r.response.response or "" for r in results.values())
    assert statuses == ["Error", "Goodbye"] + ["Success"] * 8  # README: as recorded
    assert not results["orig-sync-fail"].ok
    late = [m for m in unclaimed if m.event == "OriginateResponse"]
    assert [(m.action_id, m.response) for m in late] == [
        ("orig-async-ok", "Success"),
        ("orig-async-noep", "Failure"),
        ("orig-async-unreach", "Failure"),
        ("orig-async-noanswer", "Failure"),
    ]
    for m in late:
        assert results[m.action_id or ""].events == []  # completed by its Response alone


def test_pending_when_the_link_drops() -> None:
    # j4: the session stopped Asterisk itself; EOF is the only answer to stop-1
    results, _unclaimed, correlator = replay("j4-core-stop-gracefully.ami")
    assert "stop-1" in correlator and "stop-1" not in results
    failed = correlator.fail_all()
    assert [(p.action_id, p.name) for p in failed] == [("stop-1", "Command")]
    assert len(correlator) == 0
