"""The digest on synthetic Asterisk 22 events: the cases the recordings lack.

Several calls per agent, calls the agent dials, Local/... members, anonymous
callers, recordings, originate bookkeeping, tracking and scope, the query
results, bounds, and a property test of "changes only".
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from replay import Lab, dicts, message, result, start, status_item

from pbxis import digest as digest_module
from pbxis.digest import Digest, Query
from pbxis.digest_calls import MAX_CALLS_PER_AGENT
from pbxis.protocol import Message

# -- synthetic events (header order as Asterisk 22 sends them) ---------------------


def chan(
    prefix: str, channel: str, num: str, uid: str, linked: str, **more: str
) -> list[tuple[str, str]]:
    return [
        (f"{prefix}Channel", channel),
        (f"{prefix}ChannelState", more.get("state", "6")),
        (f"{prefix}CallerIDNum", num),
        (f"{prefix}CallerIDName", more.get("name", f"Caller {num}")),
        (f"{prefix}ConnectedLineNum", more.get("cl", "<unknown>")),
        (f"{prefix}ConnectedLineName", more.get("cln", "<unknown>")),
        (f"{prefix}Exten", more.get("exten", "s")),
        (f"{prefix}Uniqueid", uid),
        (f"{prefix}Linkedid", linked),
    ]


def ev(name: str, *parts: list[tuple[str, str]], **headers: str) -> Message:
    items = [("Event", name), ("Privilege", "call,all")]
    for part in parts:
        items += part
    return message(*items, *headers.items())


def caller(num: str, uid: str, **more: str) -> list[tuple[str, str]]:
    return chan("", f"PJSIP/caller-{uid}", num, uid, uid, **more)


def leg(
    agent: str, seq: str, linked: str, prefix: str = "Dest", **more: str
) -> list[tuple[str, str]]:
    return chan(prefix, f"PJSIP/{agent}-{seq}", agent, f"{linked}{seq}", linked, **more)


def queue_call_ringing(
    d: Digest, agent: str, num: str, uid: str, seq: str, queue: str = "sales", **more: str
) -> list[Any]:
    out = d.feed(
        ev("QueueCallerJoin", caller(num, uid, **more), Queue=queue, Position="1", Count="1")
    )
    out += d.feed(
        ev(
            "AgentCalled",
            caller(num, uid, **more),
            leg(agent, seq, uid),
            Queue=queue,
            Interface=f"PJSIP/{agent}",
            MemberName="x",
        )
    )
    return dicts(out)


def hangup(channel: str, uid: str | None) -> Message:
    ids = [] if uid is None else [("Uniqueid", uid)]
    return ev("Hangup", [("Channel", channel), *ids], Cause="16")


def numbers(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["agent"], e.get("queue"), e["number"]) for e in events if e["type"] == "phoneNumber"]


def tracked(agents: tuple[str, ...] = ("1001", "1002", "1003")) -> Digest:
    d, _ = start(Lab(), agents=agents)
    return d


# -- the handler table --------------------------------------------------------------


def test_handled_events_come_from_the_handler_table() -> None:
    d = Digest()
    assert Digest.handled_events == frozenset(digest_module._HANDLERS)
    assert set(d._dispatch) == Digest.handled_events | set(Digest.narrow_filters)
    assert "VarSet" not in Digest.handled_events  # over half of all traffic
    assert "VarSet" in Digest.narrow_filters
    for name in Digest.handled_events:
        assert callable(d._dispatch[name])


def test_feed_ignores_what_it_does_not_read() -> None:
    d = tracked()
    assert d.feed(message(("Response", "Success"), ("ActionID", "x"))) == []
    assert d.feed(message()) == []
    assert d.feed(ev("VarSet", Variable="RTPAUDIOQOS", Value="x")) == []
    assert d.feed(ev("TestEvent", State="AOR_CONTACT_QUALIFY_RESULT")) == []
    # malformed: missing headers are ignored, not raised
    for name in Digest.handled_events:
        assert d.feed(ev(name)) == []


# -- phoneNumber ------------------------------------------------------------------------


def test_several_calls_report_the_newest_and_fall_back_to_the_remaining_one() -> None:
    d = tracked()
    assert numbers(queue_call_ringing(d, "1001", "555011", "1.0", "01")) == [
        ("1001", "sales", "555011")
    ]
    # a direct call rings while the queue call goes on (call waiting)
    direct = ev(
        "DialBegin",
        chan("", "PJSIP/trunk-09", "555099", "9.0", "9.0", name="Boss"),
        leg("1001", "02", "9.0"),
        DialString="PJSIP/1001",
    )
    assert numbers(dicts(d.feed(direct))) == [("1001", None, "555099")]
    assert len(d.calls_of("1001")) == 2
    # the direct call ends: the queue call's number again
    assert numbers(dicts(d.feed(hangup("PJSIP/1001-02", "9.002")))) == [("1001", "sales", "555011")]
    assert numbers(dicts(d.feed(hangup("PJSIP/1001-01", "1.001")))) == [("1001", None, None)]
    assert d.model.calls == {}


def test_a_call_the_agent_dials() -> None:
    d = tracked()
    out = d.feed(
        ev(
            "DialBegin",
            leg("1001", "05", "5.", prefix="", state="4", exten="5551234"),
            chan("Dest", "PJSIP/trunk-06", "1001", "5.6", "5.005"),
            DialString="trunk/5551234",
        )
    )
    assert dicts(out) == [
        {"type": "phoneNumber", "agent": "1001", "number": "5551234", "name": None}
    ]
    # the far end answers and presents itself
    answered = ev(
        "NewConnectedLine",
        leg(
            "1001", "05", "5.", prefix="", state="6", cl="5551234", cln="ACME Ltd", exten="5551234"
        ),
    )
    assert dicts(d.feed(answered)) == [
        {"type": "phoneNumber", "agent": "1001", "number": "5551234", "name": "ACME Ltd"}
    ]


def test_agent_to_agent_call() -> None:
    d = tracked()
    out = d.feed(
        ev(
            "DialBegin",
            leg("1001", "07", "7.", prefix="", state="4", exten="1002", name="Alice Anders"),
            leg("1002", "08", "7.", name="Bob Brown"),
            DialString="PJSIP/1002",
        )
    )
    assert numbers(dicts(out)) == [("1002", None, "1001"), ("1001", None, "1002")]
    # the dialled phone's caller id names the party at once (live Asterisk 22:
    # DialBegin DestCallerIDNum 1002 / DestCallerIDName Bob Brown), so the
    # NewConnectedLine that follows with the same party changes nothing
    assert [e["name"] for e in dicts(out)] == ["Alice Anders", "Bob Brown"]
    connected = ev(
        "NewConnectedLine",
        leg("1001", "07", "7.", prefix="", state="4", exten="1002", cl="1002", cln="Bob Brown"),
    )
    assert d.feed(connected) == []


def test_anonymous_caller_is_a_call_without_number() -> None:
    d = tracked()
    events = queue_call_ringing(d, "1001", "<unknown>", "3.0", "01", name="<unknown>")
    assert [e for e in events if e["type"] == "phoneNumber"] == [
        {"type": "phoneNumber", "agent": "1001", "queue": "sales", "number": "", "name": None}
    ]


def test_presentation_before_the_dial_is_not_the_party() -> None:
    d = tracked()
    # h2-park order: NewConnectedLine in state 0 before DialBegin
    early = ev(
        "NewConnectedLine",
        leg("1001", "01", "4.0", prefix="", state="0", cl="5550000", cln="Company"),
    )
    assert d.feed(early) == []
    # an Originate's own CallerID stays ignored while the leg rings
    d.originate_started("o-1", "1001", "5551234")
    d.feed(ev("DialBegin", leg("1001", "02", "6.", exten="s", state="0"), DialString="1001"))
    ringing = ev("NewConnectedLine", leg("1001", "02", "6.", prefix="", state="5", cl="5550000"))
    assert d.feed(ringing) == []
    assert d.calls_of("1001")[-1].caller_id_num == "5551234"


def test_an_originated_call_does_not_name_the_party_after_itself() -> None:
    # Live Asterisk 22, Originate PJSIP/1001 -> 5551234 with CallerID
    # "Sales desk" <1001>: the outside channel inherits the name, and the
    # agent leg's connected line then reads 5551234 / "Sales desk".
    d = tracked()
    d.originate_started("o-1", "1001", "5551234")
    own = {"name": "Sales desk", "cl": "1001", "cln": "Sales desk"}
    presented = ev("NewConnectedLine", leg("1001", "05", "9.", prefix="", state="0", **own))
    assert d.feed(presented) == []
    ringing = d.feed(ev("DialBegin", leg("1001", "05", "9.", state="0", **own), DialString="1001"))
    assert dicts(ringing) == [
        {"type": "phoneNumber", "agent": "1001", "number": "5551234", "name": None}
    ]
    # answered: the leg dials the number; the outside channel echoes the name
    dialled = ev(
        "DialBegin",
        leg("1001", "05", "9.", prefix="", exten="5551234", **own),
        chan(
            "Dest",
            "PJSIP/outside-06",
            "5551234",
            "9.06",
            "9.05",
            name="Sales desk",
            cl="1001",
            cln="Sales desk",
            exten="5551234",
        ),
        DialString="5551234@outside",
    )
    assert d.feed(dialled) == []
    connected = ev(
        "NewConnectedLine",
        leg(
            "1001",
            "05",
            "9.",
            prefix="",
            exten="5551234",
            name="Sales desk",
            cl="5551234",
            cln="Sales desk",
        ),
    )
    assert d.feed(connected) == []
    assert dicts(d.feed(hangup("PJSIP/1001-05", "9.05"))) == [
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None}
    ]


def test_originates_are_matched_first_in_first_out() -> None:
    d = tracked()
    d.originate_started("o-1", "1001", "111")
    d.originate_started("o-2", "1001", "222")
    first = d.feed(ev("DialBegin", leg("1001", "01", "1.", state="0"), DialString="1001"))
    second = d.feed(ev("DialBegin", leg("1001", "02", "2.", state="0"), DialString="1001"))
    assert numbers(dicts(first + second)) == [("1001", None, "111"), ("1001", None, "222")]
    # someone else's OriginateResponse is not ours to report
    assert d.feed(ev("OriginateResponse", ActionID="other", Response="Failure", Reason="5")) == []
    assert dicts(
        d.feed(ev("OriginateResponse", ActionID="o-2", Response="Failure", Reason="5"))
    ) == [{"type": "originateFailed", "actionId": "o-2", "reason": "busy"}]
    assert d.feed(ev("OriginateResponse", ActionID="o-2", Response="Failure", Reason="5")) == []


def test_local_channel_members() -> None:
    d = tracked()
    # 1001 logs into support through a Local channel (StateInterface = its phone)
    member = ev(
        "QueueMemberAdded",
        Queue="support",
        MemberName="Alice (mobile)",
        Interface="Local/1001@agents/n",
        StateInterface="PJSIP/1001",
        Status="1",
        Paused="0",
        PausedReason="",
    )
    assert dicts(d.feed(member)) == [
        {"type": "agentName", "agent": "1001", "name": "Alice (mobile)"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "support", "status": "not_inuse"},
    ]
    # the queue rings the Local channel; its ;2 half dials the phone
    d.feed(ev("QueueCallerJoin", caller("555021", "2.0"), Queue="support", Count="1"))
    local = chan("Dest", "Local/1001@agents-00000001;1", "555021", "2.1", "2.0")
    called = ev(
        "AgentCalled",
        caller("555021", "2.0"),
        local,
        Queue="support",
        Interface="Local/1001@agents/n",
    )
    assert d.feed(called) == []
    dial = ev(
        "DialBegin",
        chan("", "Local/1001@agents-00000001;2", "555021", "2.2", "2.0"),
        leg("1001", "03", "2.0"),
    )
    assert numbers(dicts(d.feed(dial))) == [("1001", "support", "555021")]
    complete = ev(
        "AgentComplete",
        caller("555021", "2.0"),
        Queue="support",
        Interface="Local/1001@agents/n",
        TalkTime="9",
        HoldTime="1",
    )
    assert [e["agent"] for e in dicts(d.feed(complete))] == ["1001"]
    removed = ev("QueueMemberRemoved", Queue="support", Interface="Local/1001@agents/n")
    assert dicts(d.feed(removed)) == [
        {"type": "queueMemberStatus", "agent": "1001", "queue": "support", "status": "loggedoff"}
    ]


def test_recording_from_channel_variables_and_from_varset() -> None:
    d = tracked()
    with_var = ev(
        "AgentComplete",
        caller("555011", "1.0"),
        [("ChanVariable", "MIXMONITOR_FILENAME=/var/spool/asterisk/monitor/1.0.wav")],
        Queue="sales",
        Interface="PJSIP/1001",
        TalkTime="5",
        HoldTime="2",
    )
    assert dicts(d.feed(with_var))[0]["recording"] == "/var/spool/asterisk/monitor/1.0.wav"
    # the narrow VarSet path (MixMonitor ran on the agent leg)
    d.feed(
        ev(
            "VarSet",
            leg("1001", "04", "8.0", prefix=""),
            Variable="MIXMONITOR_FILENAME",
            Value="/rec/8.wav",
        )
    )
    done = ev(
        "AgentComplete",
        caller("555012", "8.0"),
        Queue="sales",
        Interface="PJSIP/1001",
        TalkTime="1",
        HoldTime="0",
    )
    assert dicts(d.feed(done))[0]["recording"] == "/rec/8.wav"
    # forgotten when the call's channels are gone
    d.feed(hangup("PJSIP/1001-04", "8.004"))
    d.feed(hangup("PJSIP/caller-8.0", "8.0"))
    assert d._recordings == {}


# -- tracking and scope --------------------------------------------------------------


def test_track_asks_only_for_what_is_missing() -> None:
    d = Digest("SIP/")
    assert d.track(["1001"], ["sales"]) == [
        Query("QueueStatus", (("Queue", "sales"),)),
        Query("QueueStatus", (("Member", "SIP/1001"),)),
        Query("Getvar", (("Variable", "DEVICE_STATE(SIP/1001)"),)),
        Query("Getvar", (("Variable", "CHANNELS(^SIP/1001-)"),)),
    ]
    assert d.track(["1001"], ["sales"]) == []  # refcounted
    assert d.track(["1001", "1002"], []) == [
        Query("QueueStatus", (("Member", "SIP/1002"),)),
        Query("Getvar", (("Variable", "DEVICE_STATE(SIP/1002)"),)),
        Query("Getvar", (("Variable", "CHANNELS(^SIP/1002-)"),)),
    ]
    # references: 1001 x3, 1002 x1, sales x2
    d.untrack(["1001"], ["sales"])
    d.untrack(["1001"], ["sales"])
    assert set(d.model.agents) == {"1001", "1002"} and d.model.queues == {}
    d.untrack(["1001", "1002"], [])
    assert d.model.agents == {} and d.model.queues == {} and d.model.members == {}
    assert d._published == {} and d._loc_agent == {} and d._chan_vars == {}


def test_untracked_agents_and_queues_produce_nothing() -> None:
    d, _ = start(Lab(), agents=["1001"], queues=["sales"])
    assert queue_call_ringing(d, "1003", "555021", "5.0", "01", queue="support") == []
    member = ev(
        "QueueMemberStatus",
        Queue="support",
        MemberName="Bob Brown",
        Interface="PJSIP/1002",
        StateInterface="PJSIP/1002",
        Status="2",
        Paused="0",
    )
    assert d.feed(member) == []
    assert d.feed(ev("DeviceStateChange", Device="PJSIP/1002", State="INUSE")) == []
    assert d.model.calls == {}


def test_retracking_republishes() -> None:
    d, first = start(Lab(), agents=["1001"], queues=["sales"])
    d.untrack(["1001"], ["sales"])
    d2, again = start(Lab(), agents=["1001"], queues=["sales"], digest=d)
    assert dicts(again) == dicts(first)


def test_a_call_in_progress_learnt_from_status_with_unset_variables() -> None:
    # Live Asterisk 22: a channel opened while 1001 talks on an originated call
    # to 5551234 (Originate CallerID "Sales desk" <1001>). Status answers
    # unset variables with "(null)"; the leg's connected line echoes its own name.
    status = message(
        ("Event", "Status"),
        ("Privilege", "Call"),
        ("Channel", "PJSIP/1001-00000000"),
        ("ChannelState", "6"),
        ("CallerIDNum", "1001"),
        ("CallerIDName", "Sales desk"),
        ("ConnectedLineNum", "5551234"),
        ("ConnectedLineName", "Sales desk"),
        ("Context", "default"),
        ("Exten", "5551234"),
        ("Uniqueid", "1795771484.2"),
        ("Linkedid", "1795771484.2"),
        ("ChanVariable", "MIXMONITOR_FILENAME="),
        ("BridgeID", ""),
        ("Application", "Dial"),
        ("Data", "PJSIP/5551234@outside,30"),
        ("Variable", "QUEUENAME=(null)"),
        ("Variable", "BRIDGEPEER=(null)"),
    )
    d, learnt = start(Lab(devices={"1001": "INUSE"}, channels={"1001": [status]}), ["1001"], [])
    number = {"type": "phoneNumber", "agent": "1001", "number": "5551234", "name": None}
    assert number in dicts(learnt)
    assert number in dicts(d.introduce(["1001"], []))
    assert d.snapshot()["agents"]["1001"]["calls"] == [
        {
            "channel": "PJSIP/1001-00000000",
            "uniqueId": "1795771484.2",
            "number": "5551234",
            "name": None,
            "queue": None,
            "peerChannel": None,
        }
    ]


def test_introduce() -> None:
    d, _ = start(Lab(paused={("1002", "sales"): "lunch"}))
    queue_call_ringing(d, "1003", "555021", "5.0", "01", queue="support")
    assert dicts(d.introduce(["1002", "1003", "9999"], ["sales"])) == [
        {"type": "agentName", "agent": "1002", "name": "Bob Brown"},
        {"type": "extensionStatus", "agent": "1002", "status": "not_inuse"},
        {
            "type": "queueMemberStatus",
            "agent": "1002",
            "queue": "sales",
            "status": "paused",
            "reason": "lunch",
        },
        {"type": "agentName", "agent": "1003", "name": "Carol Clark"},
        {"type": "extensionStatus", "agent": "1003", "status": "not_inuse"},
        {"type": "queueMemberStatus", "agent": "1003", "queue": "sales", "status": "loggedoff"},
        # 1003's call came through support, which this scope does not list
        {"type": "queueCount", "queue": "sales", "count": 0},
    ]
    assert {
        "type": "phoneNumber",
        "agent": "1003",
        "queue": "support",
        "number": "555021",
        "name": "Caller 555021",
    } in dicts(d.introduce(["1003"], ["support"]))
    fresh = Digest()
    fresh.track(["1001"], ["sales"])
    assert fresh.introduce(["1001"], ["sales"]) == []  # nothing known yet: nothing said


def test_channel_queries_reconcile_the_agents_calls() -> None:
    d = Digest()
    d.track(["1001"], [])
    d.feed(ev("DialBegin", caller("555001", "1.0"), leg("1001", "01", "1.0")))  # known
    var = Query("Getvar", (("Variable", "CHANNELS(^PJSIP/1001-)"),))
    d.apply(var, result(Variable="CHANNELS(^PJSIP/1001-)", Value="PJSIP/1001-02 PJSIP/1002-09"))
    # PJSIP/1001-01 is gone; PJSIP/1001-02 is new and needs a Status
    assert [c.agent_channel for c in d.calls_of("1001")] == ["PJSIP/1001-02"]
    status = Query("Status", (("Channel", "PJSIP/1001-02"), ("Variables", "QUEUENAME,BRIDGEPEER")))
    assert d.take_queries() == [status] and d.take_queries() == []
    item = status_item(
        "PJSIP/1001-02",
        ("555002", "Two"),
        uniqueid="2.1",
        linkedid="2.0",
        bridge="b",
        variables=["QUEUENAME=", "BRIDGEPEER=PJSIP/caller-2"],
    )
    assert dicts(d.apply(status, result([item], EventList="start"))) == [
        {"type": "phoneNumber", "agent": "1001", "number": "555002", "name": "Two"}
    ]
    assert d.all_calls()[0].peer == "PJSIP/caller-2"
    # "No such channel": it ended meanwhile
    assert dicts(d.apply(status, result(Response="Error", Message="No such channel"))) == [
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None}
    ]


def test_calls_per_agent_are_bounded() -> None:
    d = tracked()
    for n in range(MAX_CALLS_PER_AGENT + 10):  # AgentCalled without Hangups (l2's filter)
        d.feed(
            ev(
                "AgentCalled",
                caller("5550", f"{n}.0"),
                leg("1001", f"{n:02}", f"{n}.0"),
                Queue="sales",
            )
        )
    assert len(d.calls_of("1001")) == MAX_CALLS_PER_AGENT


# -- property: changes only, and introduce/restore agree with what was published ----------

AGENT = st.sampled_from(["1001", "1002"])
QUEUE = st.sampled_from(["sales", "support"])


@st.composite
def ami_event(draw: Any) -> Message:
    kind = draw(st.sampled_from(["member", "device", "join", "ring", "hangup", "removed"]))
    agent, queue = draw(AGENT), draw(QUEUE)
    if kind == "member":
        return ev(
            "QueueMemberStatus",
            Queue=queue,
            MemberName=draw(st.sampled_from(["A", "B"])),
            Interface=f"PJSIP/{agent}",
            StateInterface=f"PJSIP/{agent}",
            Status=draw(st.sampled_from("012345678")),
            Paused=draw(st.sampled_from("01")),
            PausedReason=draw(st.sampled_from(["", "lunch"])),
        )
    if kind == "removed":
        return ev("QueueMemberRemoved", Queue=queue, Interface=f"PJSIP/{agent}")
    if kind == "device":
        return ev(
            "DeviceStateChange",
            Device=f"PJSIP/{agent}",
            State=draw(st.sampled_from(["INUSE", "NOT_INUSE", "RINGING"])),
        )
    if kind == "join":
        return ev(
            "QueueCallerJoin", caller("1", "1.0"), Queue=queue, Count=str(draw(st.integers(0, 3)))
        )
    seq = draw(st.sampled_from(["01", "02"]))
    if kind == "ring":
        num = draw(st.sampled_from(["555011", "555012"]))
        uid = f"{num}.{queue}"  # one caller channel per number and queue
        return ev("AgentCalled", caller(num, uid), leg(agent, seq, uid), Queue=queue)
    return hangup(f"PJSIP/{agent}-{seq}", None)


@settings(max_examples=150, deadline=None)
@given(st.lists(ami_event(), max_size=40))
def test_changes_only_and_consistent_views(stream: list[Message]) -> None:
    d, initial = start(Lab(), agents=["1001", "1002"])
    last: dict[tuple[Any, ...], dict[str, Any]] = {}

    def note(events: list[dict[str, Any]]) -> None:
        for e in events:
            key = (
                ("phoneNumber", e["agent"])
                if e["type"] == "phoneNumber"
                else (e["type"], e.get("agent"), e.get("queue"))
            )
            assert last.get(key) != e, f"repeated {e}"
            last[key] = e

    note(dicts(initial))
    for msg in stream:
        note(dicts(d.feed(msg)))
    # introduce() says exactly the last published state (phoneNumber: calls only)
    intro = dicts(d.introduce(["1001", "1002"], ["sales", "support"]))
    expected = [
        e for e in last.values() if not (e["type"] == "phoneNumber" and e["number"] is None)
    ]
    assert sorted(map(repr, intro)) == sorted(map(repr, expected))
    # a restore that finds Asterisk exactly as the model says publishes nothing
    snap = d.snapshot()
    queries = d.begin_restore()
    for query in queries:
        if query.action == "QueueStatus":
            (q,) = [v for _, v in query.headers]
            items = [
                message(
                    ("Event", "QueueParams"), ("Queue", q), ("Calls", str(d.model.queues[q].count))
                )
            ]
            for (_agent, queue), m in d.model.members.items():
                if queue == q:
                    items.append(
                        message(
                            ("Event", "QueueMember"),
                            ("Queue", q),
                            ("Name", m.name or ""),
                            ("Location", m.interface),
                            ("StateInterface", m.interface),
                            ("Status", m.status),
                            ("Paused", "1" if m.paused else "0"),
                            ("PausedReason", m.reason or ""),
                        )
                    )
            d.apply(query, result(items))
        elif query.action == "DeviceStateList":
            states = {"not_inuse": "NOT_INUSE", "inuse": "INUSE", "ringing": "RINGING"}
            items = [
                message(
                    ("Event", "DeviceStateChange"),
                    ("Device", f"PJSIP/{a}"),
                    ("State", states[s["extensionStatus"]]),
                )
                for a, s in snap["agents"].items()
            ]
            d.apply(query, result(items))
        else:
            items = []
            for call in d.model.calls.values():
                linked = call.linkedid or ""
                items.append(
                    message(
                        ("Event", "CoreShowChannel"),
                        ("Channel", call.channel),
                        ("ChannelState", "6"),
                        ("CallerIDNum", call.agent),
                        ("ConnectedLineNum", call.number or "<unknown>"),
                        ("ConnectedLineName", call.name or "<unknown>"),
                        ("Uniqueid", call.uniqueid or ""),
                        ("Linkedid", linked),
                        ("Application", "AppQueue"),
                    )
                )
                if call.queue is not None:
                    items.append(
                        message(
                            ("Event", "CoreShowChannel"),
                            ("Channel", "PJSIP/caller-" + linked),
                            ("Uniqueid", linked),
                            ("Linkedid", linked),
                            ("Application", "Queue"),
                            ("ApplicationData", f"{call.queue},,,,300"),
                        )
                    )
            d.apply(query, result(items))
    assert d.end_restore() == []
    assert d.snapshot() == snap
