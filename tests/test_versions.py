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
import dataclasses
import logging
import queue
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator, List, Tuple

import pytest
from fakeami import FakeAMI, FakeConn
from replay import message, messages

import pbxis
from pbxis import commands, control, versions
from pbxis.actions import ActionResult
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
    return ch


class _Lines:
    """Answers ``Status Channel=... Variables=BRIDGEPEER`` as Asterisk does:
    ``bridged`` maps a channel to its BRIDGEPEER (unset: ``(null)``); every
    channel of ``up`` is answered (state 6), others ring (5), and a channel
    in neither is unknown (``No such channel``). ``asked`` counts the Status
    actions per channel."""

    def __init__(self, fake: FakeAMI) -> None:
        self.up = {"PJSIP/1001-00000001", "PJSIP/caller-00000000"}
        self.ringing: set[str] = set()
        self.bridged: dict[str, str] = {}
        self.asked: Counter[str] = Counter()
        fake.responders["Status"] = self.answer

    def bridge(self, *channels: str) -> None:
        for channel in channels:
            self.bridged[channel] = ",".join(c for c in channels if c != channel)

    def answer(self, conn: FakeConn, msg: Message) -> None:
        channel = msg.get("Channel") or ""
        self.asked[channel] += 1
        if channel not in self.up | self.ringing:
            conn.reply(msg, ("Message", "No such channel"), response="Error")
            return
        aid = msg.get("ActionID") or ""
        conn.reply(msg, ("EventList", "start"), ("Message", "Channel status will follow"))
        state = "6" if channel in self.up else "5"
        peer = self.bridged.get(channel) or "(null)"
        conn.event(
            "Status",
            ("Channel", channel),
            ("ChannelState", state),
            ("BridgeID", "b-1" if channel in self.bridged else ""),
            ("Variable", f"BRIDGEPEER={peer}"),
            ("ActionID", aid),
        )
        conn.event(
            "StatusComplete", ("EventList", "Complete"), ("ListItems", "1"), ("ActionID", aid)
        )


def _ring_and_answer(conn: FakeConn, agent_channel: str = "PJSIP/1001-00000001") -> None:
    """A queue call reaches 1001 and is answered, as Asterisk 16 reports it:
    the phone is in use before the legs are bridged."""
    conn.event(
        "DialBegin",
        ("Channel", "PJSIP/caller-00000000"),
        ("CallerIDNum", "555011"),
        ("CallerIDName", "Caller 555011"),
        ("Uniqueid", "1.0"),
        ("Linkedid", "1.0"),
        ("DestChannel", agent_channel),
        ("DestUniqueid", "1.1"),
        ("DestLinkedid", "1.0"),
    )
    conn.event("DeviceStateChange", ("Device", "PJSIP/1001"), ("State", "INUSE"))


def _in_thread(fn: Callable[[], Any]) -> Tuple[threading.Thread, List[Any]]:
    out: List[Any] = []

    def run() -> None:
        try:
            out.append(fn())
        except Exception as exc:  # reported by the test's assertion on out
            out.append(exc)

    thread = threading.Thread(target=run, name="test-command")
    thread.start()
    return thread, out


def _park_in_thread(pbx: Any) -> Tuple[threading.Thread, List[Any]]:
    return _in_thread(lambda: pbx.park_and_announce("1001", timeout=30))


def _answer_park(fake: FakeAMI) -> Message:
    conn, msg = fake.expect("Park", timeout=5)
    conn.reply(msg, ("Message", "Park successful"))
    conn.event("ParkedCall", ("ParkeeChannel", msg.get("Channel") or ""), ("ParkingSpace", "701"))
    return msg


def test_park_waits_until_the_legs_are_bridged(fake: FakeAMI) -> None:
    lines = _Lines(fake)
    with pbxis.connect(fake.url(), **FAST) as pbx:
        ch = _track_1001(fake, pbx)
        conn = fake.wait_connections(1)
        _ring_and_answer(conn)
        while ch.get(timeout=5).get("status") != "inuse":
            pass
        thread, out = _park_in_thread(pbx)
        with pytest.raises(queue.Empty):  # no Park while Asterisk has no bridge
            fake.expect("Park", timeout=0.5)
        assert lines.asked["PJSIP/1001-00000001"] >= 2  # it asked again meanwhile
        lines.bridge("PJSIP/1001-00000001", "PJSIP/caller-00000000")
        park = _answer_park(fake)
        thread.join(5)
    assert out == ["701"]
    assert park.get("Channel") == "PJSIP/caller-00000000"
    assert park.get("TimeoutChannel") == "PJSIP/1001-00000001"


def test_park_of_a_bridged_call_goes_at_once_and_a_missing_bridge_only_delays_it(
    fake: FakeAMI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "BRIDGE_WAIT", 0.3)
    lines = _Lines(fake)
    lines.bridge("PJSIP/1001-00000001", "PJSIP/caller-00000000")
    with pbxis.connect(fake.url(), **FAST) as pbx:
        _track_1001(fake, pbx)
        conn = fake.wait_connections(1)
        _ring_and_answer(conn)
        assert pbx.send_action("Ping")["Ping"] == "Pong"  # the events were digested
        thread, out = _park_in_thread(pbx)
        _answer_park(fake)  # expect() would fail if Park were held back
        thread.join(5)
        assert out == ["701"]
        assert lines.asked["PJSIP/1001-00000001"] == 1
        lines.bridged.clear()
        thread, out = _park_in_thread(pbx)  # the dial still names the party: park after 0.3 s
        _answer_park(fake)
        thread.join(5)
        assert out == ["701"]


@contextlib.contextmanager
def _answered_call(fake: FakeAMI) -> Iterator[Any]:
    """A client tracking 1001, who has answered a queue call (events digested)."""
    with pbxis.connect(fake.url(), **FAST) as pbx:
        _track_1001(fake, pbx)
        _ring_and_answer(fake.wait_connections(1))
        assert pbx.send_action("Ping")["Ping"] == "Pong"
        yield pbx


def test_redirect_acts_on_who_asterisk_says_is_bridged_with_the_agent(fake: FakeAMI) -> None:
    """Bridges are not in pbxis's event stream: redirect asks Asterisk (BRIDGEPEER),
    which wins over the dial (a transfer put another party in the bridge)."""
    lines = _Lines(fake)
    lines.up.add("PJSIP/other-00000005")
    lines.bridge("PJSIP/1001-00000001", "PJSIP/other-00000005")
    with _answered_call(fake) as pbx:
        thread, out = _in_thread(lambda: pbx.redirect_call("1001", "1003"))
        conn, msg = fake.expect("Redirect")
        conn.reply(msg, ("Message", "Redirect successful"))
        thread.join(5)
        assert out == [None]
        assert msg.get("Channel") == "PJSIP/other-00000005"
        # a conference: every other channel of the bridge is a candidate
        lines.bridge("PJSIP/1001-00000001", "PJSIP/other-00000005", "PJSIP/caller-00000000")
        with pytest.raises(pbxis.AmbiguousCallError) as err:
            pbx.redirect_call("1001", "1003")
        assert [c["bridgedChannel"] for c in err.value.candidates] == [
            "PJSIP/other-00000005",
            "PJSIP/caller-00000000",
        ]
        # the call ended meanwhile (Asterisk: No such channel): no call
        lines.up.clear()
        with pytest.raises(pbxis.NoCallError):
            pbx.redirect_call("1001", "1003")


def test_a_ringing_leg_is_no_call_to_redirect(fake: FakeAMI) -> None:
    """A losing ringall leg is not answered: not a candidate (Asterisk 22.10.1
    crashed when a Park named one as TimeoutChannel)."""
    lines = _Lines(fake)
    lines.up = {"PJSIP/caller-00000000"}
    lines.ringing = {"PJSIP/1001-00000001"}
    with _answered_call(fake) as pbx:
        with pytest.raises(pbxis.NoCallError):
            pbx.redirect_call("1001", "1003")


def test_a_silent_asterisk_is_a_timeout_not_no_call(fake: FakeAMI) -> None:
    """Asking who the agent is bridged with gets no answer: ActionTimeout, not
    a NoCallError that would tell the user there is no call."""
    with _answered_call(fake) as pbx:
        fake.responders["Status"] = lambda conn, msg: None  # never answers
        pbx.options = dataclasses.replace(pbx.options, action_timeout=0.3)
        with pytest.raises(pbxis.ActionTimeout):
            pbx.redirect_call("1001", "1003")


def test_park_of_a_channel_announces_to_the_agent_bridged_with_it(fake: FakeAMI) -> None:
    lines = _Lines(fake)
    lines.bridge("PJSIP/1001-00000001", "PJSIP/caller-00000000")
    with _answered_call(fake) as pbx:
        thread, out = _in_thread(
            lambda: pbx.park_and_announce("PJSIP/caller-00000000", timeout=30)
        )
        park = _answer_park(fake)
        thread.join(5)
    assert out == ["701"]
    assert park.get("TimeoutChannel") == "PJSIP/1001-00000001"
    assert park.get("AnnounceChannel") == "PJSIP/1001-00000001"


def test_line_of_a_status_answer() -> None:
    def status(*pairs: Tuple[str, str]) -> Message:
        return message(("Event", "Status"), ("Channel", "PJSIP/1001-01"), *pairs)

    def result(*events: Message, ok: bool = True) -> ActionResult:
        response = message(("Response", "Success" if ok else "Error"))
        return ActionResult(response, list(events), None)

    assert commands.line_of(result(ok=False), "PJSIP/1001-01") is None
    assert commands.line_of(result(), "PJSIP/1001-01") is None
    unset = status(("ChannelState", "6"), ("Variable", "BRIDGEPEER=(null)"))
    assert commands.line_of(result(unset), "PJSIP/1001-01") == commands.Line(True, ())
    empty = status(("ChannelState", "5"), ("Variable", "BRIDGEPEER="))
    assert commands.line_of(result(empty), "PJSIP/1001-01") == commands.Line(False, ())
    two = status(("ChannelState", "6"), ("Variable", "BRIDGEPEER=PJSIP/a-1,PJSIP/b-2"))
    assert commands.line_of(result(two), "PJSIP/1001-01") == commands.Line(
        True, ("PJSIP/a-1", "PJSIP/b-2")
    )


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
