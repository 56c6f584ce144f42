"""The simulated PBX over a real socket: login, actions, list shapes, filters.

Shapes are compared with shared/ami-transcripts (a, b, m3). No sleeps: every
wait is a socket read with a timeout.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Callable

import pytest
from helpers import transcript
from test_sim_support import RawAmi

from pbxis.protocol import Message, Parser
from pbxis.sim import SimServer, SimUser, scenario


def _transcript_messages(name: str) -> list[Message]:
    parser = Parser()
    return [f for f in parser.feed(transcript(name)) if isinstance(f, Message)]


def _shapes(name: str) -> dict[str, list[tuple[str, ...]]]:
    shapes: dict[str, list[tuple[str, ...]]] = {}
    for msg in _transcript_messages(name):
        if msg.event:
            shapes.setdefault(msg.event, []).append(tuple(k for k, _ in msg.headers))
    return shapes


@pytest.fixture
def server() -> Iterator[SimServer]:
    with SimServer(pbx=scenario.create("idle", start_time=1795764700.0), speed=0,
                   users={"pbxis": "pbxis-secret",
                          "limited": SimUser("limited-secret", write="call,agent,reporting")},
                   ) as srv:
        yield srv


@pytest.fixture
def connect(server: SimServer) -> Iterator[Callable[[], RawAmi]]:
    """``connect()`` opens a raw client; all are closed at teardown."""
    clients: list[RawAmi] = []

    def factory() -> RawAmi:
        client = RawAmi(server.port)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def ami(connect: Callable[[], RawAmi]) -> Iterator[RawAmi]:
    client = connect()
    resp = client.login()
    assert resp["Message"] == "Authentication accepted"
    client.event("SuccessfulAuth")
    client.events.clear()
    yield client
    client.close()


def test_greeting_is_one_line(server: SimServer, connect: Callable[[], RawAmi]) -> None:
    client = connect()
    raw = client.sock.recv(100)
    assert raw == b"Asterisk Call Manager/11.0.0\r\n"
    client.close()


def test_login_then_fully_booted_and_successful_auth(
        server: SimServer, connect: Callable[[], RawAmi]) -> None:
    client = connect()
    resp = client.login()
    assert resp.headers == [("Response", "Success"), ("ActionID", "t-1"),
                            ("Message", "Authentication accepted")]
    booted = client.event("FullyBooted")
    assert [k for k, _ in booted.headers] == ["Event", "Privilege", "Uptime", "LastReload",
                                              "Status"]
    auth = client.event("SuccessfulAuth")
    assert auth["UsingPassword"] == "0" and auth["AccountID"] == "pbxis"
    assert [k for k, _ in auth.headers] == list(_shapes("c-call-caller-hangup.ami")[
        "SuccessfulAuth"][0])
    client.close()


def test_wrong_secret_fails_and_closes(server: SimServer, connect: Callable[[], RawAmi]) -> None:
    client = connect()
    client.banner()
    resp = client.action("Login", Username="pbxis", Secret="wrong-secret", Events="on")
    assert resp.headers == [("Response", "Error"), ("ActionID", "t-1"),
                            ("Message", "Authentication failed")]
    assert client.wait_eof()


def test_action_before_login_is_denied(server: SimServer, connect: Callable[[], RawAmi]) -> None:
    client = connect()
    client.banner()
    resp = client.action("Ping")
    assert resp["Response"] == "Error" and resp["Message"] == "Permission denied"
    client.close()


def test_md5_challenge_login(server: SimServer, connect: Callable[[], RawAmi]) -> None:
    client = connect()
    client.banner()
    chal = client.action("Challenge", AuthType="MD5")
    assert chal["Response"] == "Success" and chal["Challenge"].isdigit()
    key = hashlib.md5((chal["Challenge"] + "pbxis-secret").encode()).hexdigest()
    resp = client.action("Login", Username="pbxis", AuthType="MD5", Key=key, Events="on")
    assert resp["Message"] == "Authentication accepted"
    assert client.action("Ping")["Ping"] == "Pong"
    client.close()


def test_md5_wrong_key_fails(server: SimServer, connect: Callable[[], RawAmi]) -> None:
    client = connect()
    client.banner()
    client.action("Challenge", AuthType="MD5")
    resp = client.action("Login", Username="pbxis", AuthType="MD5", Key="0" * 32)
    assert resp["Message"] == "Authentication failed"
    assert client.wait_eof()


def test_ping_with_and_without_action_id(ami: RawAmi) -> None:
    resp = ami.action("Ping")
    assert [k for k, _ in resp.headers] == ["Response", "ActionID", "Ping", "Timestamp"]
    assert float(resp["Timestamp"]) > 1.7e9
    ami.send_raw(b"Action: Ping\r\n\r\n")
    bare = ami.any_response()
    assert [k for k, _ in bare.headers] == ["Response", "Ping", "Timestamp"]


def test_unknown_action(ami: RawAmi) -> None:
    resp = ami.action("NoSuchAction")
    assert resp["Message"] == ("Invalid/unknown command: NoSuchAction. Use Action: "
                               "ListCommands to show available commands.")


def test_queue_status_shape_matches_transcript(ami: RawAmi) -> None:
    resp, items, complete = ami.list_action("QueueStatus")
    assert [k for k, _ in resp.headers] == ["Response", "ActionID", "EventList", "Message"]
    assert resp["Message"] == "Queue status will follow"
    assert [i.event for i in items] == ["QueueParams", "QueueMember", "QueueMember",
                                        "QueueParams", "QueueMember", "QueueMember"]
    assert [i["Queue"] for i in items if i.event == "QueueParams"] == ["support", "sales"]
    assert complete.headers == [("Event", "QueueStatusComplete"), ("ActionID", resp["ActionID"]),
                                ("EventList", "Complete"), ("ListItems", str(len(items)))]
    shapes = _shapes("a-initial-state.ami")
    for item in items:
        assert item.headers[-1] == ("ActionID", resp["ActionID"])  # ActionID last
        assert tuple(k for k, _ in item.headers) in shapes[item.event or ""]
    member = next(i for i in items if i.event == "QueueMember" and i["Location"] == "PJSIP/1001")
    assert member["Name"] == "Alice Anders" and member["Status"] == "1"
    assert member["Membership"] == "static"


def test_queue_status_filters(ami: RawAmi) -> None:
    _, items, _ = ami.list_action("QueueStatus", Queue="sales", Member="PJSIP/1001")
    assert [(i.event, i.get("Location")) for i in items] == [("QueueParams", None),
                                                             ("QueueMember", "PJSIP/1001")]
    _, items, complete = ami.list_action("QueueStatus", Queue="nosuchqueue")
    assert items == [] and complete["ListItems"] == "0"


def test_queue_summary_and_other_lists(ami: RawAmi) -> None:
    shapes = _shapes("a-initial-state.ami")
    _, items, _ = ami.list_action("QueueSummary")
    assert [i["Queue"] for i in items] == ["support", "sales"]
    assert tuple(k for k, _ in items[0].headers) in shapes["QueueSummary"]
    assert items[1]["LoggedIn"] == "2" and items[1]["Available"] == "2"
    resp, items, _ = ami.list_action("ExtensionStateList")
    assert resp["Message"] == "Extension Statuses will follow"
    assert [(i["Exten"], i["StatusText"]) for i in items] == [
        ("1001", "Idle"), ("1002", "Idle"), ("1003", "Idle")]
    assert tuple(k for k, _ in items[0].headers) in shapes["ExtensionStatus"]
    resp = ami.action("ExtensionState", Exten="1001", Context="default")
    assert [k for k, _ in resp.headers] == ["Response", "ActionID", "Message", "Exten",
                                            "Context", "Hint", "Status", "StatusText"]
    _, items, _ = ami.list_action("DeviceStateList")
    devices = {i["Device"]: i["State"] for i in items}
    assert devices["PJSIP/1001"] == "NOT_INUSE" and devices["Queue:sales_avail"] == "NOT_INUSE"
    assert ami.action("Getvar", Variable="DEVICE_STATE(PJSIP/1002)")["Value"] == "NOT_INUSE"
    _, items, complete = ami.list_action("CoreShowChannels")
    assert items == [] and complete["ListItems"] == "0"
    assert ami.action("CoreSettings")["AMIversion"] == "11.0.0"
    out = ami.action("Command", Command="core show version")
    assert out["Message"] == "Command output follows"
    assert out["Output"].startswith("Asterisk 22.10.1")
    bad = ami.action("Command", Command="no such thing")
    assert bad["Response"] == "Error" and bad["Output"].startswith("No such command")


def test_queue_member_management_like_transcript_b(ami: RawAmi) -> None:
    resp = ami.action("QueueAdd", Queue="sales", Interface="PJSIP/1003", Penalty="1",
                      Paused="true", Reason="training", MemberName="Carol Clark",
                      StateInterface="PJSIP/1003")
    assert resp["Message"] == "Added interface to queue"
    added = ami.event("QueueMemberAdded")
    assert added["Membership"] == "dynamic" and added["Paused"] == "1"
    assert added["PausedReason"] == "training"
    b_shapes = _shapes("b-agent-management.ami")
    assert tuple(k for k, _ in added.headers) in b_shapes["QueueMemberAdded"]
    assert ami.action("QueuePause", Queue="sales", Interface="PJSIP/1003",
                      Paused="false")["Message"] == "Interface unpaused successfully"
    assert ami.event("QueueMemberPause")["Paused"] == "0"
    assert ami.action("QueuePause", Interface="PJSIP/1003", Paused="true",
                      Reason="lunch")["Message"] == "Interface paused successfully"
    pauses = [ami.event("QueueMemberPause"), ami.event("QueueMemberPause")]
    assert [p["Queue"] for p in pauses] == ["support", "sales"]
    assert all(p["PausedReason"] == "lunch" for p in pauses)
    assert ami.action("QueuePenalty", Queue="sales", Interface="PJSIP/1003",
                      Penalty="2")["Message"] == "Interface penalty set successfully"
    assert ami.event("QueueMemberPenalty")["Penalty"] == "2"
    assert ami.action("QueueRemove", Queue="sales",
                      Interface="PJSIP/1003")["Message"] == "Removed interface from queue"
    assert ami.event("QueueMemberRemoved")["Interface"] == "PJSIP/1003"
    errors = [
        (("QueueAdd", {"Queue": "sales", "Interface": "PJSIP/1001"}),
         "Unable to add interface: Already there"),
        (("QueueRemove", {"Queue": "sales", "Interface": "PJSIP/1003"}),
         "Unable to remove interface: Not there"),
        (("QueueRemove", {"Queue": "sales", "Interface": "PJSIP/1001"}), "Member not dynamic"),
        (("QueuePause", {"Queue": "nosuchqueue", "Interface": "PJSIP/1001", "Paused": "true"}),
         "Interface not found"),
        (("QueueAdd", {"Queue": "nosuchqueue", "Interface": "PJSIP/1001"}),
         "Unable to add interface to queue: No such queue"),
        (("QueuePause", {"Queue": "sales", "Paused": "true"}),
         "Need 'Interface' and 'Paused' parameters."),
    ]
    for (name, headers), message in errors:
        resp = ami.action(name, **headers)
        assert (resp["Response"], resp["Message"]) == ("Error", message), name
    assert ami.action("QueueReset", Queue="sales")["Response"] == "Success"


def test_response_precedes_the_events_it_causes(ami: RawAmi) -> None:
    aid = ami.send("QueuePause", Queue="sales", Interface="PJSIP/1001", Paused="true",
                   Reason="break")
    ami.drain(0.05)
    frames: list[Message] = []
    aid = ami.send("QueuePause", Queue="sales", Interface="PJSIP/1001", Paused="false")
    while len(frames) < 3:
        frame = ami.next_frame()
        if isinstance(frame, Message):
            frames.append(frame)
    assert frames[0].get("ActionID") == aid
    assert [f.event for f in frames[1:]] == ["DeviceStateChange", "QueueMemberPause"]
    assert frames[1]["Device"] == "Queue:sales_pause_PJSIP/1001"


def test_events_off_at_login_then_on(server: SimServer, connect: Callable[[], RawAmi]) -> None:
    client = connect()
    client.login(events="off")
    assert client.action("Ping")["Ping"] == "Pong"
    server.pbx.pause("1001", "sales", "break")
    _, items, _ = client.list_action("QueueStatus", Queue="sales")
    assert items  # list events still arrive with Events: off
    assert client.drain(0.1) == []  # but no FullyBooted, no QueueMemberPause
    resp = client.action("Events", EventMask="on")
    assert resp.headers == [("Response", "Success"), ("ActionID", resp["ActionID"]),
                            ("Events", "On")]
    server.pbx.unpause("1001", "sales")
    assert client.event("QueueMemberPause")["Paused"] == "0"
    assert client.action("Events", EventMask="off")["Events"] == "Off"
    client.close()


def test_event_mask_classes(ami: RawAmi, server: SimServer) -> None:
    assert ami.action("Events", EventMask="agent")["Events"] == "On"
    server.pbx.pause("1001", "sales", "break")
    got = ami.drain(0.1)
    assert [e.event for e in got] == ["QueueMemberPause"]  # DeviceStateChange is class call


def test_filter_whitelist_legacy_and_match_criteria(ami: RawAmi, server: SimServer) -> None:
    assert ami.action("Filter", Operation="Add",
                      MatchCriteria="name(QueueMemberPause)")["Message"] == "Success"
    resp = ami.action("Filter", Operation="Add",
                      Filter="^Event: (Agent[A-Za-z]+|ExtensionStatus)[[:space:]]")
    assert resp.headers == [("Response", "Success"), ("ActionID", resp["ActionID"]),
                            ("Message", "Success")]
    server.pbx.pause("1001", "sales", "break")
    server.pbx.place_call("sales", talk=1.0)
    server.pbx.advance(5.0)
    names = {e.event for e in ami.drain(0.1)}
    assert names == {"QueueMemberPause", "AgentCalled", "AgentConnect", "AgentComplete",
                     "ExtensionStatus"}
    # responses are never filtered
    assert ami.action("Ping")["Ping"] == "Pong"


def test_filter_exclude_and_bad_filter(ami: RawAmi, server: SimServer) -> None:
    ami.action("Filter", Operation="Add", Filter="!Event: (VarSet|Newexten)")
    ami.action("Filter", Operation="Add",
               MatchCriteria="action(exclude),name(DeviceStateChange),header(Device),"
                             "method(starts_with)", Filter="Queue:")
    server.pbx.place_call("sales", talk=1.0)
    server.pbx.advance(5.0)
    got = ami.drain(0.1)
    names = {e.event for e in got}
    assert "VarSet" not in names and "Newexten" not in names and "AgentConnect" in names
    devices = {e["Device"] for e in got if e.event == "DeviceStateChange"}
    assert devices and not any(d.startswith("Queue:") for d in devices)
    bad = ami.action("Filter", Operation="Add", Filter="(unclosed")
    assert bad["Response"] == "Error"
    assert ami.action("Filter", Operation="Remove", Filter="x")["Message"] == "Unknown operation"


def test_filter_needs_system_write_permission(
        server: SimServer, connect: Callable[[], RawAmi]) -> None:
    client = connect()
    client.login("limited", "limited-secret")
    resp = client.action("Filter", Operation="Add", Filter="Event: Hangup")
    assert (resp["Response"], resp["Message"]) == ("Error", "Permission denied")
    assert client.action("Events", EventMask="agent,call")["Events"] == "On"
    assert client.action("QueueStatus")["Response"] == "Success"
    client.close()


def test_logoff(ami: RawAmi) -> None:
    resp = ami.action("Logoff")
    assert resp.headers == [("Response", "Goodbye"), ("ActionID", resp["ActionID"]),
                            ("Message", "Thanks for all the fish.")]
    assert ami.wait_eof()


def test_successful_auth_reaches_other_sessions(ami: RawAmi,
                                                connect: Callable[[], RawAmi]) -> None:
    other = connect()
    other.login()
    assert ami.event("SuccessfulAuth")["AccountID"] == "pbxis"
    other.close()
