"""The simulated PBX's call flows against the real Asterisk 22 recordings.

The event-name sequence of the "call-answered" scenario is compared with
shared/ami-transcripts/c-call-caller-hangup.ami, and every event's header
names (and order) with the transcripts' events of the same name.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from helpers import transcript
from test_sim_support import RawAmi

from pbxis.protocol import Message, Parser
from pbxis.sim import BusyProfile, SimEvent, SimServer, SimulatedPbx, scaled, scenario

START = 1795764715.0
#: Events a real session sees that are not part of the call.
NOT_CALL = {"TestEvent", "FullyBooted", "SuccessfulAuth"}


def _events(name: str) -> list[Message]:
    return [f for f in Parser().feed(transcript(name)) if isinstance(f, Message) and f.event]


def _shapes(*names: str) -> dict[str, set[tuple[str, ...]]]:
    shapes: dict[str, set[tuple[str, ...]]] = {}
    for name in names:
        for msg in _events(name):
            assert msg.event is not None
            shapes.setdefault(msg.event, set()).add(tuple(k for k, _ in msg.headers))
    return shapes


def _run(name: str, seconds: float, **kw: object) -> tuple[SimulatedPbx, list[SimEvent]]:
    pbx = scenario.create(name, start_time=START, **kw)  # type: ignore[arg-type]
    events: list[SimEvent] = []
    pbx.add_listener(events.append)
    pbx.advance(seconds)
    return pbx, events


def _assert_shapes(events: Sequence[SimEvent], shapes: dict[str, set[tuple[str, ...]]]) -> None:
    for ev in events:
        if ev.name in shapes:
            assert tuple(k for k, _ in ev.headers) in shapes[ev.name], ev.name


def test_call_answered_matches_transcript_c_exactly() -> None:
    real = [e.event for e in _events("c-call-caller-hangup.ami") if e.event not in NOT_CALL]
    _, events = _run("call-answered", 20.0)
    assert [e.name for e in events] == real
    _assert_shapes(events, _shapes("c-call-caller-hangup.ami"))


def test_call_answered_queue_agent_device_sequence() -> None:
    """The brief's comparison: queue/agent/device/bridge/dial/hangup events only."""
    keep = ("Queue", "Agent", "Device", "Extension", "Bridge", "Dial", "Hangup", "Newchannel")
    real = [e.event for e in _events("c-call-caller-hangup.ami")
            if e.event and e.event.startswith(keep)]
    _, events = _run("call-answered", 20.0, noise=False)
    assert [e.name for e in events if e.name.startswith(keep)] == real


def test_call_answered_values() -> None:
    _, events = _run("call-answered", 20.0)
    by_name = {e.name: e for e in events}
    connect, complete = by_name["AgentConnect"], by_name["AgentComplete"]
    assert (connect.get("HoldTime"), connect.get("RingTime")) == ("2", "2")
    assert (complete.get("TalkTime"), complete.get("Reason")) == ("5", "caller")
    assert connect.get("Channel") == "PJSIP/caller-00000000"
    assert connect.get("DestChannel") == "PJSIP/1001-00000001"
    assert connect.get("Uniqueid") == "1795764716.0"
    assert connect.get("DestUniqueid") == "1795764716.1"
    statuses = [e.get("Status") for e in events if e.name == "QueueMemberStatus"]
    assert statuses == ["6", "2", "1"]
    last = [e for e in events if e.name == "QueueMemberStatus"][-1]
    assert last.get("CallsTaken") == "1" and last.get("LastCall") == "1795764723"


def test_agent_hangup_reason_agent() -> None:
    _, events = _run("agent-hangup", 20.0)
    complete = next(e for e in events if e.name == "AgentComplete")
    assert complete.get("Reason") == "agent" and complete.get("TalkTime") == "5"
    hangups = [e.get("Channel") for e in events if e.name == "Hangup"]
    assert hangups == ["PJSIP/1001-00000001", "PJSIP/caller-00000000"]
    _assert_shapes(events, _shapes("d-call-agent-hangup.ami"))


def test_abandon_scenario() -> None:
    pbx, events = _run("abandon", 20.0)
    names = [e.name for e in events if e.name.startswith("QueueCaller")]
    assert names == ["QueueCallerJoin", "QueueCallerJoin", "QueueCallerAbandon",
                     "QueueCallerLeave", "QueueCallerLeave"]
    counts = [e.get("Count") for e in events if e.name.startswith(("QueueCallerJoin",
                                                                   "QueueCallerLeave"))]
    assert counts == ["1", "2", "1", "0"]
    abandon = next(e for e in events if e.name == "QueueCallerAbandon")
    assert (abandon.get("Position"), abandon.get("OriginalPosition"),
            abandon.get("HoldTime")) == ("2", "2", "2")
    hangup = next(e for e in events if e.name == "Hangup")
    assert (hangup.get("Cause"), hangup.get("TechCause")) == ("127", "487")
    assert next(e for e in events if e.name == "AgentConnect").get("HoldTime") == "6"
    assert pbx.queues["sales"].abandoned == 1 and pbx.queues["sales"].completed == 1
    _assert_shapes(events, _shapes("e-abandon-two-waiting.ami"))


def test_pause_scenario() -> None:
    _, events = _run("pause", 20.0)
    pauses = [e for e in events if e.name == "QueueMemberPause"]
    assert [(p.get("Paused"), p.get("PausedReason")) for p in pauses] == [("1", "break"),
                                                                         ("0", "")]
    order = [e.name for e in events]
    assert order.index("AgentCalled") > order.index("QueueMemberPause", 1)
    assert next(e for e in events if e.name == "AgentConnect").get("HoldTime") == "8"
    _assert_shapes(events, _shapes("f3-paused-wait.ami", "b-agent-management.ami"))


def test_ring_noanswer_and_busy_phone() -> None:
    _, events = _run("ring-noanswer", 20.0)
    rna = next(e for e in events if e.name == "AgentRingNoAnswer")
    assert rna.get("RingTime") == "10000"
    assert [e.get("DialStatus") for e in events if e.name == "DialEnd"][:2] == ["NOANSWER",
                                                                               "CANCEL"]
    assert sum(e.name == "AgentCalled" for e in events) == 2  # retried after 1 s
    assert any(e.name == "QueueCallerAbandon" for e in events)
    _assert_shapes(events, _shapes("f1-ring-noanswer.ami"))
    _, events = _run("agent-busy", 20.0)
    hang = [e for e in events if e.name == "Hangup" and e.get("Cause") == "17"]
    assert hang and hang[0].get("Cause-txt") == "User busy"
    assert {e.get("DialStatus") for e in events if e.name == "DialEnd"} == {"NOANSWER"}
    _assert_shapes(events, _shapes("f2-agent-busy.ami"))


def test_busy_mode_is_deterministic() -> None:
    texts = []
    for _ in range(2):
        pbx = SimulatedPbx(seed=7, start_time=START)
        out: list[str] = []
        pbx.add_listener(lambda e, out=out: out.append(e.text))  # type: ignore[misc]
        pbx.start_busy()
        pbx.advance(600.0)
        texts.append(out)
    assert texts[0] == texts[1]
    names = {t.split("\r\n", 1)[0] for t in texts[0]}
    assert {"Event: AgentConnect", "Event: AgentComplete", "Event: QueueMemberPause"} <= names


def test_demo_profile_looks_alive_in_30_seconds() -> None:
    _, events = _run("busy", 30.0, seed=1)
    names = {e.name for e in events}
    assert {"QueueCallerJoin", "AgentCalled", "AgentConnect"} <= names


def test_scale_thousand_agents() -> None:
    agents, queues = scaled(1000, 50)
    pbx = SimulatedPbx(agents, queues, seed=3, start_time=START, noise=False)
    count = 0

    def listener(_: SimEvent) -> None:
        nonlocal count
        count += 1

    pbx.add_listener(listener)
    pbx.start_busy(BusyProfile(calls_per_minute=600.0, pause_every=300.0))
    pbx.advance(60.0)
    assert len(pbx.phones) == 1000 and len(pbx.queues) == 50
    assert count > 5000
    assert sum(q.completed for q in pbx.queues.values()) > 50


# --------------------------------------------------------------------------- over a socket


@pytest.fixture
def lab() -> Iterator[tuple[SimServer, RawAmi]]:
    pbx = scenario.create("call-answered", start_time=START)
    with SimServer(pbx=pbx, speed=0) as server:
        client = RawAmi(server.port)
        client.login()
        client.event("SuccessfulAuth")
        client.events.clear()
        yield server, client
        client.close()


def test_call_answered_over_the_socket(lab: tuple[SimServer, RawAmi]) -> None:
    server, client = lab
    real = [e.event for e in _events("c-call-caller-hangup.ami") if e.event not in NOT_CALL]
    server.pbx.advance(3.0)
    connect = client.event("AgentConnect")
    assert connect["MemberName"] == "Alice Anders"
    _, items, _ = client.list_action("QueueStatus", Queue="sales", Member="PJSIP/1001")
    member = items[1]
    assert (member["InCall"], member["Status"]) == ("1", "2")
    shapes = _shapes("a-initial-state.ami")
    resp, chans, done = client.list_action("Status")
    assert resp["Message"] == "Channel status will follow" and done["Items"] == "2"
    assert [c["Channel"] for c in chans] == ["PJSIP/1001-00000001", "PJSIP/caller-00000000"]
    for item in chans:
        assert tuple(k for k, _ in item.headers) in shapes["Status"]
    _, chans, _ = client.list_action("CoreShowChannels")
    assert {c["BridgeId"] for c in chans} == {connect_bridge(client)}
    for item in chans:
        assert tuple(k for k, _ in item.headers) in shapes["CoreShowChannel"]
    var = client.action("Getvar", Channel=connect["Channel"], Variable="MEMBERNAME")
    assert var["Value"] == "Alice Anders"
    assert client.action("Getvar", Channel="PJSIP/gone-1", Variable="X")["Response"] == "Error"
    _, bridges, _ = client.list_action("BridgeList")
    _, members, info = client.list_action("BridgeInfo", BridgeUniqueid=bridges[0]["BridgeUniqueid"])
    assert len(members) == 2 and info["BridgeNumChannels"] == "2"
    server.pbx.advance(10.0)
    client.event("AgentComplete")
    got = client.drain(0.1)
    assert got[-1].event == "DeviceStateChange" and got[-1]["State"] == "NOT_INUSE"
    _, channels, _ = client.list_action("CoreShowChannels")
    assert channels == []
    assert real  # the exact sequence is checked by the pure test above


def connect_bridge(client: RawAmi) -> str:
    _, bridges, _ = client.list_action("BridgeList")
    assert len(bridges) == 1
    return bridges[0]["BridgeUniqueid"]


def test_speed_runs_the_clock_by_itself() -> None:
    pbx = scenario.create("call-answered", start_time=START)
    with SimServer(pbx=pbx, speed=20.0) as server:
        client = RawAmi(server.port)
        client.login()
        assert client.event("AgentComplete", timeout=5.0)["Reason"] == "caller"
        client.close()


def _lab_of(name: str) -> Iterator[tuple[SimServer, RawAmi]]:
    pbx = scenario.create(name, start_time=START)
    with SimServer(pbx=pbx, speed=0) as server:
        client = RawAmi(server.port)
        client.login()
        client.event("SuccessfulAuth")
        client.events.clear()
        yield server, client
        client.close()


@pytest.fixture
def originate_lab() -> Iterator[tuple[SimServer, RawAmi]]:
    yield from _lab_of("originate-failure")


@pytest.fixture
def idle_lab() -> Iterator[tuple[SimServer, RawAmi]]:
    yield from _lab_of("idle")


def test_originate_failures(originate_lab: tuple[SimServer, RawAmi]) -> None:
    server, client = originate_lab
    resp = client.response(client.send(
        "Originate", "x", Channel="PJSIP/1003", Context="default", Exten="5551234",
        Priority="1", Async="true", Timeout="8000"))
    assert resp["Message"] == "Originate successfully queued"
    failed = client.event("OriginateResponse")
    assert [k for k, _ in failed.headers] == [
        "Event", "Privilege", "ActionID", "Response", "Channel", "Context", "Exten", "Reason",
        "Uniqueid", "CallerIDNum", "CallerIDName"]
    assert (failed["Response"], failed["Reason"], failed["Uniqueid"]) == ("Failure", "0",
                                                                          "<unknown>")
    sync = client.action("Originate", Channel="PJSIP/1099", Context="default",
                         Exten="5551234", Priority="1")
    assert (sync["Response"], sync["Message"]) == ("Error", "Originate failed")
    aid = client.send("Originate", Channel="PJSIP/1002", Context="default", Exten="5551234",
                      Priority="1", Async="true", Timeout="4000")
    assert client.response(aid)["Response"] == "Success"
    server.pbx.advance(4.0)
    noanswer = client.event("OriginateResponse", ActionID=aid)
    assert (noanswer["Response"], noanswer["Reason"]) == ("Failure", "3")
    shapes = _shapes("g-originate.ami")
    _assert_shapes([SimEvent(m.event or "", "call", m.headers[2:]) for m in client.drain(0.1)],
                   shapes)


def test_originate_success_sync_and_async(originate_lab: tuple[SimServer, RawAmi]) -> None:
    server, client = originate_lab
    aid = client.send("Originate", Channel="PJSIP/1001", Context="default", Exten="5559876",
                      Priority="1", CallerID='"Alice Anders" <1001>', Async="true")
    assert client.response(aid)["Response"] == "Success"
    server.pbx.advance(1.0)
    ok = client.event("OriginateResponse", ActionID=aid)
    assert (ok["Response"], ok["Reason"], ok["Channel"]) == ("Success", "4",
                                                            "PJSIP/1001-00000000")
    assert client.action("Hangup", Channel="PJSIP/1001-00000000")["Message"] == "Channel Hungup"
    assert client.action("Hangup", Channel="PJSIP/nope-1")["Message"] == "No such channel"
    # synchronous: the response only comes once the phone answered, events after it
    aid = client.send("Originate", Channel="PJSIP/1001", Context="default", Exten="5551234",
                      Priority="1")
    client.drain(0.05)
    server.pbx.advance(1.0)
    frame = client.next_frame()
    assert isinstance(frame, Message) and frame.get("ActionID") == aid
    assert frame["Message"] == "Originate successfully queued"
    assert client.event("DialEnd")["DialStatus"] == "ANSWER"


def test_redirect_bridged_caller_to_another_agent(
        idle_lab: tuple[SimServer, RawAmi]) -> None:
    server, client = idle_lab
    pbx = server.pbx
    pbx.set_phone("1003", answer_after=1.0)
    pbx.pause("1002", "sales", "not-in-this-test")
    pbx.place_call("sales", caller_num="555011", talk=14.0)
    pbx.advance(3.0)
    caller = client.event("AgentConnect", Queue="sales")["Channel"]
    client.events.clear()  # the queue's own DialEnd ANSWER came before
    resp = client.action("Redirect", Channel=caller, Context="default",
                         Exten="1003", Priority="1")
    assert resp["Message"] == "Redirect successful"
    assert client.action("Redirect", Channel="PJSIP/x-1", Context="default", Exten="1",
                         Priority="1")["Message"] == "Channel does not exist: PJSIP/x-1"
    pbx.advance(1.0)
    dial_end = client.event("DialEnd", Channel=caller, DialStatus="ANSWER")
    assert dial_end["DestChannel"].startswith("PJSIP/1003-")
    pbx.advance(12.0)
    complete = client.event("AgentComplete", Channel=caller)
    assert complete["TalkTime"] == "14"
    assert (complete["Reason"], complete["MemberName"]) == ("caller", "Alice Anders")
    _assert_shapes([SimEvent(m.event or "", "call", m.headers[2:])
                    for m in client.drain(0.1) if m.event], _shapes("h1-redirect.ami"))


def test_park_then_timeout_back_to_parker(idle_lab: tuple[SimServer, RawAmi]) -> None:
    server, client = idle_lab
    pbx = server.pbx
    pbx.set_phone("1001", answer_after=1.0)
    pbx.place_call("sales", caller_num="555021", talk=60.0, delay=0.5)
    pbx.advance(4.0)
    connect = client.event("AgentConnect", CallerIDNum="555021")
    resp = client.action("Park", Channel=connect["Channel"],
                         TimeoutChannel=connect["DestChannel"],
                         AnnounceChannel=connect["DestChannel"], Timeout="6000")
    assert resp["Message"] == "Park successful"  # the real value ends in a bare LF
    parked = client.event("ParkedCall")
    assert (parked["ParkingSpace"], parked["ParkingTimeout"],
            parked["ParkerDialString"]) == ("701", "6", "PJSIP/1001")
    pbx.advance(6.0)
    timeout = client.event("ParkedCallTimeOut")
    assert (timeout["ParkeeContext"], timeout["ParkeeExten"]) == ("park-dial", "PJSIP_1001")
    pbx.advance(2.0)
    back = client.event("DialEnd", Channel=connect["Channel"], DialStatus="ANSWER")
    assert back["DestChannel"].startswith("PJSIP/1001-")
    _assert_shapes([SimEvent(m.event or "", "call", m.headers[2:])
                    for m in client.drain(0.1) if m.event], _shapes("h2-park.ami"))


def test_phone_offline_online() -> None:
    pbx = SimulatedPbx(start_time=START)
    events: list[SimEvent] = []
    pbx.add_listener(events.append)
    pbx.set_reachable("1003", False)
    pbx.set_reachable("1003", True)
    assert [e.name for e in events][:5] == ["PeerStatus", "ContactStatus", "DeviceStateChange",
                                           "QueueMemberStatus", "ExtensionStatus"]
    assert [e.get("Status") for e in events if e.name == "QueueMemberStatus"] == ["5", "1"]
    _assert_shapes(events, _shapes("n-phone-offline-online.ami"))


def test_unknown_scenario() -> None:
    with pytest.raises(KeyError, match="call-answered"):
        scenario.create("nope")
    assert "busy" in scenario.names()





def test_originate_to_a_busy_agent_fails_with_reason_5() -> None:
    pbx = scenario.create("call-answered", start_time=START)
    pbx.advance(4.0)  # 1001 is now talking to the caller
    results: list[object] = []
    events: list[SimEvent] = []
    pbx.add_listener(events.append)
    pbx.originate("PJSIP/1001", "default", "5551234", action_id="o1", on_result=results.append)
    response = next(e for e in events if e.name == "OriginateResponse")
    assert (response.get("ActionID"), response.get("Response"),
            response.get("Reason")) == ("o1", "Failure", "5")
    assert len(results) == 1
