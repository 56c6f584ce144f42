"""Attaching in the middle of a call, and restoring after a reconnect.

``begin_restore`` holds state events and returns a constant number of bulk
queries; their results are applied; ``end_restore`` returns exactly the
changes against what was published before the outage.
"""

from __future__ import annotations

from typing import Any

from replay import Lab, dicts, message, replay, result, start, status_item

from pbxis.digest import Digest, Query
from pbxis.protocol import Message

P = {("1002", "sales"): "not-in-this-test"}


# -- attach mid-stream ------------------------------------------------------------


def after_answer(msg: Message) -> bool:
    """c-call-caller-hangup: the caller's BridgeEnter, i.e. the call is up."""
    return msg.event == "BridgeEnter" and msg.get("Channel") == "PJSIP/caller-00000000"


def test_attach_in_the_middle_of_a_call() -> None:
    # What Asterisk would answer track()'s queries right after the answer in
    # c-call-caller-hangup: 1001 INUSE and InCall in sales, one live channel
    # bridged with the caller, QUEUENAME set on it by app_queue.
    lab = Lab(
        paused=P,
        devices={"1001": "INUSE"},
        in_call=[("1001", "sales")],
        channels={
            "1001": [
                status_item(
                    "PJSIP/1001-00000001",
                    ("555011", "Caller 555011"),
                    uniqueid="1795764721.1",
                    linkedid="1795764721.0",
                    bridge="4d7e2e12-4c55-40d8-a563-b67d0d35203f",
                    variables=["QUEUENAME=sales", "BRIDGEPEER=PJSIP/caller-00000000"],
                )
            ]
        },
    )
    digest, learnt = start(lab)
    learnt_1001 = [e for e in dicts(learnt) if e.get("agent") == "1001"]
    assert learnt_1001 == [
        {"type": "agentName", "agent": "1001", "name": "Alice Anders"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "support", "status": "loggedoff"},
        # Getvar DEVICE_STATE(PJSIP/1001)
        {"type": "extensionStatus", "agent": "1001", "status": "inuse"},
        # Getvar CHANNELS(^PJSIP/1001-) then Status of the one channel
        {
            "type": "phoneNumber",
            "agent": "1001",
            "queue": "sales",
            "number": "555011",
            "name": "Caller 555011",
        },
    ]
    calls = digest.calls_of("1001")
    assert [(c.agent_channel, c.peer, c.caller_id_num) for c in calls] == [
        ("PJSIP/1001-00000001", "PJSIP/caller-00000000", "555011")
    ]
    assert dicts(replay("c-call-caller-hangup.ami", digest, skip_until=after_answer)) == [
        # the rest of the call as it happened
        {
            "type": "agentComplete",
            "agent": "1001",
            "uniqueId": "1795764721.0",
            "talkTime": 5,
            "holdTime": 2,
            "recording": None,
        },
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
        {"type": "extensionStatus", "agent": "1001", "status": "not_inuse"},
    ]
    # converged: the same state as a digest that saw the whole call
    whole, _ = start(Lab(paused=P))
    replay("c-call-caller-hangup.ami", whole)
    assert digest.snapshot() == whole.snapshot()
    assert digest.model.calls == {}


# -- restore ------------------------------------------------------------------------


def core_show_channel(
    channel: str,
    connected: tuple[str, str],
    *,
    uniqueid: str,
    linkedid: str,
    app: str = "AppQueue",
    data: str = "(Outgoing Line)",
    bridge: str = "",
    state: str = "6",
) -> Message:
    number = channel.split("/")[1].split("-")[0]
    return message(
        ("Event", "CoreShowChannel"),
        ("Channel", channel),
        ("ChannelState", state),
        ("CallerIDNum", number),
        ("ConnectedLineNum", connected[0]),
        ("ConnectedLineName", connected[1]),
        ("Uniqueid", uniqueid),
        ("Linkedid", linkedid),
        ("Application", app),
        ("ApplicationData", data),
        ("BridgeId", bridge),
    )


def talking_1001(bridge: str = "b1") -> list[Message]:
    """1001 talking to 555011 through sales: its leg and the caller's."""
    return [
        core_show_channel(
            "PJSIP/1001-00000001",
            ("555011", "Caller 555011"),
            uniqueid="100.1",
            linkedid="100.0",
            bridge=bridge,
        ),
        core_show_channel(
            "PJSIP/caller-00000000",
            ("1001", "Alice Anders"),
            uniqueid="100.0",
            linkedid="100.0",
            app="Queue",
            data="sales,,,,300",
            bridge=bridge,
        ),
    ]


def device_list(**states: str) -> Any:
    items = [
        message(("Event", "DeviceStateChange"), ("Device", f"PJSIP/{a}"), ("State", s))
        for a, s in states.items()
    ]
    items.append(
        message(("Event", "DeviceStateChange"), ("Device", "Queue:sales"), ("State", "INUSE"))
    )
    return result(items, EventList="start")


def restore(digest: Digest, lab: Lab, channels: list[Message], **devices: str) -> list[Any]:
    """Run a whole restore; the restore queries are answered from ``lab`` etc."""
    queries = digest.begin_restore()
    held = []
    for query in queries:
        if query.action == "QueueStatus":
            res = lab.answer(query)
        elif query.action == "DeviceStateList":
            res = device_list(**{a: devices.get(a, "NOT_INUSE") for a in ("1001", "1002", "1003")})
        else:
            assert query == Query("CoreShowChannels")
            res = result(channels, EventList="start")
        held += digest.apply(query, res)
    assert held == []  # state events wait for end_restore
    return dicts(digest.end_restore())


def talking_lab() -> Lab:
    return Lab(
        paused=P, devices={"1001": "INUSE"}, in_call=[("1001", "sales")], counts={"sales": 1}
    )


def digest_talking() -> Digest:
    """A digest that has published: 1001 talking to 555011 via sales, 1 waiting."""
    digest, _ = start(Lab(paused=P))
    events = digest.apply(Query("CoreShowChannels"), result(talking_1001(), EventList="start"))
    events += digest.apply(
        Query("QueueStatus", (("Queue", "sales"),)),
        talking_lab().answer(Query("QueueStatus", (("Queue", "sales"),))),
    )
    events += digest.apply(Query("DeviceStateList"), device_list(**{"1001": "INUSE"}))
    assert {e.type for e in events} == {
        "phoneNumber",
        "queueCount",
        "queueMemberStatus",
        "extensionStatus",
    }
    return digest


def test_restore_queries_are_bulk_and_constant() -> None:
    digest, _ = start(None)
    assert digest.begin_restore() == [
        Query("QueueStatus", (("Queue", "sales"),)),
        Query("QueueStatus", (("Queue", "support"),)),
        Query("DeviceStateList"),
        Query("CoreShowChannels"),
    ]
    digest.end_restore()
    many = Digest()
    many.track([str(n) for n in range(2000, 2300)], ["sales", "support"])
    assert len(many.begin_restore()) == 4  # independent of the number of agents


def test_restore_without_changes_publishes_nothing() -> None:
    digest = digest_talking()
    assert restore(digest, talking_lab(), talking_1001(), **{"1001": "INUSE"}) == []


def test_restore_publishes_exactly_the_changes() -> None:
    digest = digest_talking()
    # meanwhile: the call ended, the waiting caller was answered elsewhere,
    # 1001 went to lunch, 1002 was removed from sales, 1003 went offline
    lab = Lab(paused={("1001", "sales"): "lunch"})
    lab_members = lab.queue_status

    def without_1002(queue: Any = None, member: Any = None) -> Any:
        res = lab_members(queue, member)
        res.events[:] = [
            e for e in res.events if e.get("Location") != "PJSIP/1002" or e.get("Queue") != "sales"
        ]
        return res

    lab.queue_status = without_1002  # type: ignore[method-assign]
    assert restore(digest, lab, [], **{"1003": "UNAVAILABLE"}) == [
        # agent by agent: 1001's device, membership, call
        {"type": "extensionStatus", "agent": "1001", "status": "not_inuse"},
        {
            "type": "queueMemberStatus",
            "agent": "1001",
            "queue": "sales",
            "status": "paused",
            "reason": "lunch",
        },
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None},
        {"type": "queueMemberStatus", "agent": "1002", "queue": "sales", "status": "loggedoff"},
        {"type": "extensionStatus", "agent": "1003", "status": "unavailable"},
        # (1003's support membership reads "unavailable" only when Asterisk
        # says so; the lab's QueueStatus keeps Status 1)
        {"type": "queueCount", "queue": "sales", "count": 0},
    ]
    # and the state is now published: a second identical restore is silent
    assert restore(digest, lab, [], **{"1003": "UNAVAILABLE"}) == []


def test_live_events_during_restore_are_held_and_netted() -> None:
    digest = digest_talking()
    digest.begin_restore()
    pause = message(
        ("Event", "QueueMemberPause"),
        ("Queue", "sales"),
        ("MemberName", "Alice Anders"),
        ("Interface", "PJSIP/1001"),
        ("StateInterface", "PJSIP/1001"),
        ("Status", "2"),
        ("Paused", "1"),
        ("PausedReason", "x"),
    )
    unpause = message(*[(k, "0" if k == "Paused" else v) for k, v in pause.headers])
    complete = message(
        ("Event", "AgentComplete"),
        ("Uniqueid", "100.0"),
        ("Queue", "sales"),
        ("Interface", "PJSIP/1001"),
        ("HoldTime", "3"),
        ("TalkTime", "42"),
    )
    assert digest.feed(pause) == []  # held
    assert digest.feed(unpause) == []  # ... and undone: nothing to publish
    # discrete events are not state: they flow
    assert dicts(digest.feed(complete)) == [
        {
            "type": "agentComplete",
            "agent": "1001",
            "uniqueId": "100.0",
            "talkTime": 42,
            "holdTime": 3,
            "recording": None,
        }
    ]
    # a new channel meanwhile sees what was last published
    intro = dicts(digest.introduce(["1001"], ["sales"]))
    assert {"type": "queueCount", "queue": "sales", "count": 1} in intro
    assert dicts(digest.end_restore()) == []


def test_restore_after_asterisk_restart() -> None:
    digest = digest_talking()
    # Asterisk restarted: uniqueids restart, and the channel name is reused
    # by a new call from 555099 (ringing, not through a queue)
    ringing = core_show_channel(
        "PJSIP/1001-00000001",
        ("555099", "Other"),
        uniqueid="7.1",
        linkedid="7.0",
        app="AppDial",
        data="(Outgoing Line)",
        state="5",
    )
    lab = Lab(paused=P)
    assert restore(digest, lab, [ringing], **{"1001": "RINGING"}) == [
        {"type": "extensionStatus", "agent": "1001", "status": "ringing"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
        {"type": "phoneNumber", "agent": "1001", "number": "555099", "name": "Other"},
        {"type": "queueCount", "queue": "sales", "count": 0},
    ]
    assert [c.peer for c in digest.calls_of("1001")] == [None]


def test_restore_of_a_queue_that_is_gone() -> None:
    digest = digest_talking()
    gone = result([], EventList="start")  # Asterisk 22: Success + empty list

    queries = digest.begin_restore()
    for query in queries:
        if query.action == "QueueStatus":
            digest.apply(query, gone)
        elif query.action == "DeviceStateList":
            digest.apply(query, device_list(**{"1001": "INUSE"}))
        else:
            digest.apply(query, result(talking_1001(), EventList="start"))
    assert dicts(digest.end_restore()) == [
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "loggedoff"},
        {"type": "queueMemberStatus", "agent": "1002", "queue": "sales", "status": "loggedoff"},
        {"type": "queueMemberStatus", "agent": "1002", "queue": "support", "status": "loggedoff"},
        {"type": "queueMemberStatus", "agent": "1003", "queue": "support", "status": "loggedoff"},
        {"type": "queueCount", "queue": "sales", "count": 0},
    ]
