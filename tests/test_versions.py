"""What pbxis does about the differences between Asterisk 16 and 22 (pbxis.versions),
against the scripted fake server: a Filter that is acknowledged but not applied
(Asterisk 16 with 22's MatchCriteria form) is noticed and replaced by the event
class mask; QueueAdd's pause reason, which 16 ignores, is said again with
QueuePause; a Park waits for the queue call's bridge, which 16 reports after
the agent's phone is already in use. The same on real Asterisk 16 and 22:
tests/live/test_versions_live.py.
"""
from __future__ import annotations

import contextlib
import logging
import queue
import threading
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest
from fakeami import FakeAMI, FakeConn
from replay import message, messages

import pbxis
from pbxis import client as client_module
from pbxis import commands, versions
from pbxis.digest import Digest
from pbxis.protocol import Message

FAST = {"keepalive": 5.0, "reconnect_base": 0.02, "reconnect_cap": 0.1}

#: Events pbxis never reads (not in any whitelist): a working Filter stops them.
UNWANTED = ("Newexten", "TestEvent", "Newstate", "MusicOnHoldStart", "RTCPSent")


def _recording_events(fake: FakeAMI) -> queue.Queue[str]:
    """Answer ``Events`` like Asterisk and report each EventMask asked for."""
    masks: queue.Queue[str] = queue.Queue()

    def events(conn: FakeConn, msg: Message) -> None:
        masks.put(msg.get("EventMask") or "")
        conn.reply(msg, ("Events", "On"))

    fake.responders["Events"] = events
    return masks


def _names(fake: FakeAMI) -> List[str]:
    return [m.get("Action") or "" for m in list(fake.received)]


@pytest.fixture
def fake() -> Iterator[FakeAMI]:
    with FakeAMI() as server:
        yield server


# -- the Filter must really narrow ----------------------------------------------------


@contextlib.contextmanager
def client_warnings() -> Iterator[List[logging.LogRecord]]:
    """pbxis.client's warnings, whatever other tests did to the "pbxis" logger
    (the CLI sets its level and stops propagation)."""
    logger = logging.getLogger("pbxis.client")
    records: List[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    level = logger.level
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_an_acknowledged_filter_that_lets_everything_through_falls_back_to_the_mask(
    fake: FakeAMI,
) -> None:
    masks = _recording_events(fake)
    with client_warnings() as warned, pbxis.connect(fake.url(), **FAST) as pbx:
        conn = fake.wait_connections(1)
        assert pbx.send_action("Ping")["Ping"] == "Pong"  # every Filter was answered before
        assert pbx._narrowing == "filter"
        for name in UNWANTED[: versions.FILTER_LEAK_LIMIT]:
            conn.event(name, ("Channel", "PJSIP/caller-00000001"))
        # checked when frames arrive: any response or wanted event after the leak
        conn.event("DeviceStateChange", ("Device", "PJSIP/1001"), ("State", "INUSE"))
        assert masks.get(timeout=5) == versions.FALLBACK_EVENT_MASK
        assert pbx.send_action("Ping")["Ping"] == "Pong"  # the Events answer came first
        assert pbx._narrowing == "eventmask"
        # checked once: the mask does not stop every unwanted event, and that is fine
        for name in UNWANTED * 3:
            conn.event(name)
        assert pbx.send_action("Ping")["Ping"] == "Pong"
        assert _names(fake).count("Events") == 1
    text = "\n".join(r.getMessage() for r in warned)
    assert "acknowledged the event Filter but does not apply it" in text


def test_a_working_filter_is_kept(fake: FakeAMI) -> None:
    _recording_events(fake)
    with pbxis.connect(fake.url(), **FAST) as pbx:
        conn = fake.wait_connections(1)
        assert pbx.send_action("Ping")["Ping"] == "Pong"
        # wanted events pass a working filter; a stray unwanted one or two is tolerated
        for _ in range(50):
            conn.event("DeviceStateChange", ("Device", "PJSIP/1001"), ("State", "INUSE"))
        for name in UNWANTED[: versions.FILTER_LEAK_LIMIT - 1]:
            conn.event(name)
        assert pbx.send_action("Ping")["Ping"] == "Pong"
        assert "Events" not in _names(fake)
        assert pbx._narrowing == "filter"


def test_events_skipped_before_the_filters_are_answered_do_not_count(fake: FakeAMI) -> None:
    """Asterisk sends what it had queued before the Filter took effect."""
    _recording_events(fake)
    held: queue.Queue[Tuple[FakeConn, Message]] = queue.Queue()
    fake.responders["Filter"] = lambda conn, msg: held.put((conn, msg))
    with pbxis.connect(fake.url(), **FAST) as pbx:
        filters = [held.get(timeout=5) for _ in range(1 + len(Digest.narrow_filters))]
        conn = filters[0][0]
        for name in UNWANTED * 4:  # before any answer
            conn.event(name)
        conn.reply(filters[0][1], ("Message", "Success"))
        for name in UNWANTED * 4:  # between the answers: still not armed
            conn.event(name)
        for _, msg in filters[1:]:
            conn.reply(msg, ("Message", "Success"))
        assert pbx.send_action("Ping")["Ping"] == "Pong"
        assert pbx._narrowing == "filter"
        assert "Events" not in _names(fake)
        assert pbx._link.skipped >= 8 * len(UNWANTED)  # they were skipped, not counted


def test_the_check_is_armed_again_on_every_login(fake: FakeAMI) -> None:
    masks = _recording_events(fake)
    with pbxis.connect(fake.url(), **FAST) as pbx:
        ch = pbx.event_channel()  # nothing tracked: the restore is immediate
        fake.wait_connections(1).drop()
        while ch.get(timeout=5).type != "connectionRestored":
            pass
        assert pbx.send_action("Ping")["Ping"] == "Pong"
        assert pbx._narrowing == "filter"
        for name in UNWANTED:
            fake.wait_connections(2).event(name)
        assert pbx.send_action("Ping")["Ping"] == "Pong"
        assert masks.get(timeout=5) == versions.FALLBACK_EVENT_MASK


def test_a_refused_filter_is_not_checked(fake: FakeAMI) -> None:
    masks = _recording_events(fake)
    fake.responders["Filter"] = lambda conn, msg: conn.reply(
        msg, ("Message", "Permission denied"), response="Error"
    )
    with pbxis.connect(fake.url(), **FAST) as pbx:
        assert masks.get(timeout=5) == versions.FALLBACK_EVENT_MASK
        conn = fake.wait_connections(1)
        for name in UNWANTED * 2:
            conn.event(name)
        assert pbx.send_action("Ping")["Ping"] == "Pong"
        assert pbx._narrowing == "eventmask"
        assert _names(fake).count("Events") == 1


def test_the_whitelist_uses_the_form_both_versions_apply() -> None:
    name, headers = commands.server_filter({"Hangup", "AgentCalled"})
    assert name == "Filter"
    assert headers == [("Operation", "Add"), ("Filter", "^Event: (AgentCalled|Hangup)[[:space:]]")]
    assert "MatchCriteria" not in dict(headers)  # 22 only: Asterisk 16 acknowledges, ignores
    assert commands.event_mask() == ("Events", [("EventMask", "agent,call,system")])


# -- QueueAdd's reason ------------------------------------------------------------------


def _answer(*names: str):  # type: ignore[no-untyped-def]
    def reply(conn: FakeConn, msg: Message) -> None:
        conn.reply(msg, ("Message", "ok"))

    return {name: reply for name in names}


def test_a_paused_add_with_a_reason_says_the_reason_again_with_queuepause() -> None:
    with FakeAMI(auto=_answer("QueueAdd", "QueuePause")) as fake:
        with pbxis.connect(fake.url(), **FAST) as pbx:
            pbx.queue_action(
                "add", agent="1003", queue="sales", member_name="Carol Clark",
                paused=True, reason="training",
            )
            pbx.queue_action("add", agent="1002", queue="sales", paused=True)
            pbx.queue_action("add", agent="1001", queue="sales", reason="ignored: not paused")
        sent = [
            (m.get("Action"), {k: v for k, v in m.headers if k not in ("Action", "ActionID")})
            for m in fake.received
            if m.get("Action") in ("QueueAdd", "QueuePause")
        ]
    assert sent[:2] == [
        (
            "QueueAdd",
            {
                "Queue": "sales",
                "Interface": "PJSIP/1003",
                "MemberName": "Carol Clark",
                "StateInterface": "PJSIP/1003",
                "Paused": "true",
                "Reason": "training",
            },
        ),
        (
            "QueuePause",
            {"Queue": "sales", "Interface": "PJSIP/1003", "Paused": "true", "Reason": "training"},
        ),
    ]
    # no reason, or not paused: the QueueAdd says it all
    assert [name for name, _ in sent[2:]] == ["QueueAdd", "QueueAdd"]


def test_a_refused_add_sends_no_queuepause() -> None:
    def refuse(conn: FakeConn, msg: Message) -> None:
        conn.reply(msg, ("Message", "Unable to add interface: Already there"), response="Error")

    with FakeAMI(auto={"QueueAdd": refuse}) as fake:
        with pbxis.connect(fake.url(), **FAST) as pbx:
            with pytest.raises(pbxis.ActionError, match="Already there"):
                pbx.queue_action("add", agent="1001", queue="sales", paused=True, reason="x")
            assert pbx.send_action("Ping")["Ping"] == "Pong"
        assert "QueuePause" not in _names(fake)


# -- Park waits for the bridge --------------------------------------------------------


def _track_1001(fake: FakeAMI, pbx: Any) -> Any:
    """Track agent 1001; answer its queries (no membership, idle, no channels)."""
    ch = pbx.event_channel(agents=["1001"])
    for _ in range(3):  # QueueStatus Member=, Getvar DEVICE_STATE(), Getvar CHANNELS()
        conn, msg = fake.expect_any()
        if msg.get("Action") == "QueueStatus":
            conn.reply(msg, ("Message", "No such queue"), response="Error")
        else:
            conn.reply(msg, ("Variable", msg.get("Variable") or ""), ("Value", ""))
    # from now on: the agent's leg is answered (CHANNEL(state) asked before a bridge)
    fake.responders["Getvar"] = lambda conn, msg: conn.reply(
        msg, ("Variable", msg.get("Variable") or ""), ("Value", "Up")
    )
    return ch


def _ring_and_answer(conn: FakeConn) -> None:
    """A queue call reaches 1001 and is answered, as Asterisk 16 reports it:
    the phone is in use before the legs are bridged."""
    conn.event(
        "DialBegin",
        ("Channel", "PJSIP/caller-00000000"),
        ("CallerIDNum", "555011"),
        ("CallerIDName", "Caller 555011"),
        ("Uniqueid", "1.0"),
        ("Linkedid", "1.0"),
        ("DestChannel", "PJSIP/1001-00000001"),
        ("DestUniqueid", "1.1"),
        ("DestLinkedid", "1.0"),
    )
    conn.event("DeviceStateChange", ("Device", "PJSIP/1001"), ("State", "INUSE"))


def _bridge(conn: FakeConn) -> None:
    for channel in ("PJSIP/1001-00000001", "PJSIP/caller-00000000"):
        conn.event("BridgeEnter", ("BridgeUniqueid", "b-1"), ("Channel", channel))


def _park_in_thread(pbx: Any) -> Tuple[threading.Thread, List[Any]]:
    out: List[Any] = []

    def park() -> None:
        try:
            out.append(pbx.park_and_announce("1001", timeout=30))
        except Exception as exc:  # pragma: no cover - reported by the assertion
            out.append(exc)

    thread = threading.Thread(target=park, name="test-park")
    thread.start()
    return thread, out


def _answer_park(fake: FakeAMI) -> Message:
    conn, msg = fake.expect("Park", timeout=5)
    conn.reply(msg, ("Message", "Park successful"))
    conn.event("ParkedCall", ("ParkeeChannel", msg.get("Channel") or ""), ("ParkingSpace", "701"))
    return msg


def test_park_waits_until_the_legs_are_bridged(fake: FakeAMI) -> None:
    with pbxis.connect(fake.url(), **FAST) as pbx:
        ch = _track_1001(fake, pbx)
        conn = fake.wait_connections(1)
        _ring_and_answer(conn)
        while ch.get(timeout=5).get("status") != "inuse":
            pass
        thread, out = _park_in_thread(pbx)
        with pytest.raises(queue.Empty):  # no Park while the bridge is missing
            fake.expect_any(timeout=0.5)
        _bridge(conn)
        park = _answer_park(fake)
        thread.join(5)
    assert out == ["701"]
    assert park.get("Channel") == "PJSIP/caller-00000000"
    assert park.get("TimeoutChannel") == "PJSIP/1001-00000001"


def test_park_of_a_bridged_call_goes_at_once_and_a_missing_bridge_only_delays_it(
    fake: FakeAMI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "BRIDGE_WAIT", 0.3)
    with pbxis.connect(fake.url(), **FAST) as pbx:
        _track_1001(fake, pbx)
        conn = fake.wait_connections(1)
        _ring_and_answer(conn)
        _bridge(conn)
        assert pbx.send_action("Ping")["Ping"] == "Pong"  # the events were digested
        thread, out = _park_in_thread(pbx)
        _answer_park(fake)  # expect() would fail if Park were held back
        thread.join(5)
        assert out == ["701"]
        conn.event("BridgeLeave", ("BridgeUniqueid", "b-1"), ("Channel", "PJSIP/caller-00000000"))
        assert pbx.send_action("Ping")["Ping"] == "Pong"
        thread, out = _park_in_thread(pbx)  # the dial still names the party: park after 0.3 s
        _answer_park(fake)
        thread.join(5)
        assert out == ["701"]


def test_digest_bridged_with() -> None:
    digest = Digest("PJSIP/")
    digest.track(["1001"], [])
    digest.feed(
        message(
            ("Event", "DialBegin"),
            ("Channel", "PJSIP/caller-00000000"),
            ("CallerIDNum", "555011"),
            ("DestChannel", "PJSIP/1001-00000001"),
        )
    )
    assert not digest.bridged_with("PJSIP/1001-00000001", "PJSIP/caller-00000000")
    for channel in ("PJSIP/1001-00000001", "PJSIP/caller-00000000"):
        enter = message(("Event", "BridgeEnter"), ("BridgeUniqueid", "b"), ("Channel", channel))
        digest.feed(enter)
    assert digest.bridged_with("PJSIP/1001-00000001", "PJSIP/caller-00000000")
    assert not digest.bridged_with("PJSIP/1001-00000001", "PJSIP/caller-00000009")
    assert not digest.bridged_with("PJSIP/1002-00000001", "PJSIP/caller-00000000")


# -- AgentComplete without the caller's fields --------------------------------------


def test_agent_complete_without_the_callers_fields_still_names_the_call() -> None:
    """Asterisk 16 sometimes omits the caller's half of AgentComplete (its snapshot is
    gone): the agent leg's Linkedid is the caller's Uniqueid (versions.CALL_UNIQUEID)."""
    t16 = Path(__file__).resolve().parent / "harness" / "transcripts16"
    recorded = next(
        m for m in messages(str(t16 / "c-call-caller-hangup.ami")) if m.event == "AgentComplete"
    )
    caller = {"Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
              "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context",
              "Exten", "Priority", "Uniqueid", "Linkedid", "ChanVariable"}
    stripped = Message([(k, v) for k, v in recorded.headers if k not in caller])
    assert stripped.get("Uniqueid") is None and stripped.get("Interface") == "PJSIP/1001"
    for msg, expected in ((recorded, recorded["Uniqueid"]), (stripped, recorded["Uniqueid"])):
        digest = Digest("PJSIP/")
        digest.track(["1001"], [])
        (event,) = digest.feed(msg)
        assert event.type == "agentComplete" and event["uniqueId"] == expected
        assert (event["talkTime"], event["holdTime"]) == (5, 2)
    assert recorded["DestLinkedid"] == recorded["Uniqueid"]
