"""Every recorded scenario (shared/ami-transcripts) replayed through the digest.

Each test starts a ``Digest`` tracking the lab's agents 1001-1003 and queues
sales/support, answers its own ``track`` queries from :class:`replay.Lab`
(the lab's state at the start of the scenario as the transcripts' README
describes it: all phones idle, static members sales = 1001+1002, support =
1002+1003, plus the scenario's set-up such as "1002 paused in sales"), then
feeds the recording and asserts the exact list of pbxis events, one ``# why``
per event. a-initial-state instead starts with nothing known and learns
everything from the queries the recorder made.

The big busy-period recordings (k, l1, l2) are checked by invariants in
test_digest_busy.py.
"""

from __future__ import annotations

from typing import Any

from replay import Lab, dicts, replay, start

from pbxis.digest import Digest

#: The set-up of most call scenarios: "1002 paused in sales (reason
#: not-in-this-test, done before recording) so only 1001 is rung".
PAUSED_1002 = Lab(paused={("1002", "sales"): "not-in-this-test"})


def run(name: str, lab: Lab, **kwargs: Any) -> list[dict[str, Any]]:
    digest, _ = start(lab)
    return dicts(replay(name, digest, **kwargs))


def test_lab_initial_state_events() -> None:
    _, events = start(PAUSED_1002)
    assert dicts(events) == [
        # QueueStatus Queue=sales: nobody waiting
        {"type": "queueCount", "queue": "sales", "count": 0},
        # its members: names and statuses
        {"type": "agentName", "agent": "1001", "name": "Alice Anders"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
        {"type": "agentName", "agent": "1002", "name": "Bob Brown"},
        # a paused member reads "paused" with Asterisk's reason
        {
            "type": "queueMemberStatus",
            "agent": "1002",
            "queue": "sales",
            "status": "paused",
            "reason": "not-in-this-test",
        },
        # 1003 is tracked but not listed in sales: logged off there
        {"type": "queueMemberStatus", "agent": "1003", "queue": "sales", "status": "loggedoff"},
        # QueueStatus Queue=support
        {"type": "queueCount", "queue": "support", "count": 0},
        {"type": "queueMemberStatus", "agent": "1002", "queue": "support", "status": "not_inuse"},
        {"type": "agentName", "agent": "1003", "name": "Carol Clark"},
        {"type": "queueMemberStatus", "agent": "1003", "queue": "support", "status": "not_inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "support", "status": "loggedoff"},
        # Getvar DEVICE_STATE(PJSIP/100N) per agent
        {"type": "extensionStatus", "agent": "1001", "status": "not_inuse"},
        {"type": "extensionStatus", "agent": "1002", "status": "not_inuse"},
        {"type": "extensionStatus", "agent": "1003", "status": "not_inuse"},
    ]


def test_a_initial_state() -> None:
    digest, learnt = start(None)  # nothing known: the recorded queries teach everything
    assert learnt == []
    assert dicts(replay("a-initial-state.ami", digest)) == [
        # QueueStatus (all queues): support first; caller 555021 waits there
        {"type": "queueCount", "queue": "support", "count": 1},
        {"type": "agentName", "agent": "1002", "name": "Bob Brown"},
        # 1002 is being rung for that caller (Status 6)
        {"type": "queueMemberStatus", "agent": "1002", "queue": "support", "status": "ringing"},
        {"type": "agentName", "agent": "1003", "name": "Carol Clark"},
        {"type": "queueMemberStatus", "agent": "1003", "queue": "support", "status": "not_inuse"},
        # sales: the answered call left the queue
        {"type": "queueCount", "queue": "sales", "count": 0},
        {"type": "agentName", "agent": "1001", "name": "Alice Anders"},
        # 1001 talks to 555011 (Status 2, InCall 1)
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "inuse"},
        # 1002's device rings, so its sales membership reads ringing too
        {"type": "queueMemberStatus", "agent": "1002", "queue": "sales", "status": "ringing"},
        # the unfiltered QueueStatus lists every member: the others are logged off
        {"type": "queueMemberStatus", "agent": "1001", "queue": "support", "status": "loggedoff"},
        {"type": "queueMemberStatus", "agent": "1003", "queue": "sales", "status": "loggedoff"},
        # (QueueStatus sales / sales+member repeat the same: nothing new)
        # CoreShowChannels: 1001's leg is bridged with caller 555011, whose
        # channel runs Queue(sales)
        {
            "type": "phoneNumber",
            "agent": "1001",
            "queue": "sales",
            "number": "555011",
            "name": "Caller 555011",
        },
        # 1002's ringing leg shares its Linkedid with caller 555021 in Queue(support)
        {
            "type": "phoneNumber",
            "agent": "1002",
            "queue": "support",
            "number": "555021",
            "name": "Caller 555021",
        },
        # (Status of all channels repeats it) DeviceStateList: the devices
        {"type": "extensionStatus", "agent": "1001", "status": "inuse"},
        {"type": "extensionStatus", "agent": "1002", "status": "ringing"},
        {"type": "extensionStatus", "agent": "1003", "status": "not_inuse"},
    ]
    calls = digest.calls_of("1001")
    assert [(c.agent_channel, c.peer, c.caller_id_num) for c in calls] == [
        ("PJSIP/1001-00000002", "PJSIP/caller-00000000", "555011")
    ]


def test_b_agent_management() -> None:
    assert run("b-agent-management.ami", Lab()) == [
        # QueueAdd sales PJSIP/1003 Paused=true Reason=training
        {
            "type": "queueMemberStatus",
            "agent": "1003",
            "queue": "sales",
            "status": "paused",
            "reason": "training",
        },
        # QueuePause sales Paused=false: back to the device status
        {"type": "queueMemberStatus", "agent": "1003", "queue": "sales", "status": "not_inuse"},
        # QueuePause without Queue: one QueueMemberPause per queue (support first)
        {
            "type": "queueMemberStatus",
            "agent": "1003",
            "queue": "support",
            "status": "paused",
            "reason": "lunch",
        },
        {
            "type": "queueMemberStatus",
            "agent": "1003",
            "queue": "sales",
            "status": "paused",
            "reason": "lunch",
        },
        # (QueueStatus Member=PJSIP/1003 confirms) unpause everywhere
        {"type": "queueMemberStatus", "agent": "1003", "queue": "support", "status": "not_inuse"},
        {"type": "queueMemberStatus", "agent": "1003", "queue": "sales", "status": "not_inuse"},
        # (QueueMemberPenalty changes no status) QueueRemove sales PJSIP/1003;
        # the refused actions and nosuchqueue change nothing
        {"type": "queueMemberStatus", "agent": "1003", "queue": "sales", "status": "loggedoff"},
    ]


def test_c_call_caller_hangup() -> None:
    assert run("c-call-caller-hangup.ami", PAUSED_1002) == [
        # QueueCallerJoin Count 1
        {"type": "queueCount", "queue": "sales", "count": 1},
        # AgentCalled: 1001's phone rings for 555011 via sales
        {
            "type": "phoneNumber",
            "agent": "1001",
            "queue": "sales",
            "number": "555011",
            "name": "Caller 555011",
        },
        # DeviceStateChange PJSIP/1001 RINGING
        {"type": "extensionStatus", "agent": "1001", "status": "ringing"},
        # QueueMemberStatus Status 6
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "ringing"},
        # answered: QueueCallerLeave Count 0
        {"type": "queueCount", "queue": "sales", "count": 0},
        # DeviceStateChange INUSE
        {"type": "extensionStatus", "agent": "1001", "status": "inuse"},
        # QueueMemberStatus Status 2 InCall 1
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "inuse"},
        # caller hangs up: AgentComplete (TalkTime 5, HoldTime 2, no MixMonitor)
        {
            "type": "agentComplete",
            "agent": "1001",
            "uniqueId": "1795764721.0",
            "talkTime": 5,
            "holdTime": 2,
            "recording": None,
        },
        # Hangup of PJSIP/1001-00000001: no call left
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None},
        # QueueMemberStatus Status 1
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
        # DeviceStateChange NOT_INUSE (comes last here)
        {"type": "extensionStatus", "agent": "1001", "status": "not_inuse"},
    ]


def test_d_call_agent_hangup() -> None:
    assert run("d-call-agent-hangup.ami", PAUSED_1002) == [
        # QueueCallerJoin
        {"type": "queueCount", "queue": "sales", "count": 1},
        # NewConnectedLine on the ringing leg arrives before AgentCalled; the
        # queue is known from the waiting caller's Linkedid all the same
        {
            "type": "phoneNumber",
            "agent": "1001",
            "queue": "sales",
            "number": "555011",
            "name": "Caller 555011",
        },
        # this time QueueMemberStatus comes before DeviceStateChange
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "ringing"},
        {"type": "extensionStatus", "agent": "1001", "status": "ringing"},
        # answered
        {"type": "queueCount", "queue": "sales", "count": 0},
        {"type": "extensionStatus", "agent": "1001", "status": "inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "inuse"},
        # the agent hangs up: AgentComplete (Reason agent)
        {
            "type": "agentComplete",
            "agent": "1001",
            "uniqueId": "1795764737.0",
            "talkTime": 5,
            "holdTime": 2,
            "recording": None,
        },
        # the agent channel's Hangup comes first
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
        {"type": "extensionStatus", "agent": "1001", "status": "not_inuse"},
    ]


def test_e_abandon_two_waiting() -> None:
    assert run("e-abandon-two-waiting.ami", PAUSED_1002) == [
        # caller A joins
        {"type": "queueCount", "queue": "sales", "count": 1},
        # 1001 rings for A
        {
            "type": "phoneNumber",
            "agent": "1001",
            "queue": "sales",
            "number": "555011",
            "name": "Caller 555011",
        },
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "ringing"},
        {"type": "extensionStatus", "agent": "1001", "status": "ringing"},
        # caller B joins (not rung: the only member is busy ringing)
        {"type": "queueCount", "queue": "sales", "count": 2},
        # B abandons: QueueCallerAbandon, then QueueCallerLeave Count 1
        {"type": "queueCount", "queue": "sales", "count": 1},
        # 1001 answers A
        {"type": "extensionStatus", "agent": "1001", "status": "inuse"},
        {"type": "queueCount", "queue": "sales", "count": 0},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "inuse"},
        # A hangs up (BridgeLeave before AgentComplete this time)
        {
            "type": "agentComplete",
            "agent": "1001",
            "uniqueId": "1795764837.0",
            "talkTime": 3,
            "holdTime": 6,
            "recording": None,
        },
        # agent leg hung up
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None},
        {"type": "extensionStatus", "agent": "1001", "status": "not_inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
    ]


def test_f1_ring_noanswer() -> None:
    assert run("f1-ring-noanswer.ami", PAUSED_1002) == [
        {"type": "queueCount", "queue": "sales", "count": 1},
        # first ring attempt
        {
            "type": "phoneNumber",
            "agent": "1001",
            "queue": "sales",
            "number": "555011",
            "name": "Caller 555011",
        },
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "ringing"},
        {"type": "extensionStatus", "agent": "1001", "status": "ringing"},
        # queue timeout (10 s): the leg is hung up, the phone stops ringing
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
        {"type": "extensionStatus", "agent": "1001", "status": "not_inuse"},
        # retry after 1 s: rings again
        {
            "type": "phoneNumber",
            "agent": "1001",
            "queue": "sales",
            "number": "555011",
            "name": "Caller 555011",
        },
        {"type": "extensionStatus", "agent": "1001", "status": "ringing"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "ringing"},
        # the caller gives up: Abandon + Leave Count 0
        {"type": "queueCount", "queue": "sales", "count": 0},
        # the second ringing is cancelled
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None},
        {"type": "extensionStatus", "agent": "1001", "status": "not_inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
    ]


def test_f2_agent_busy() -> None:
    rejected = [
        # AgentCalled: the queue calls 1001 for 555011 ...
        {
            "type": "phoneNumber",
            "agent": "1001",
            "queue": "sales",
            "number": "555011",
            "name": "Caller 555011",
        },
        # ... the phone answers 486 at once: Hangup (Cause 17). Its device
        # never leaves NOT_INUSE, so no status events.
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None},
    ]
    assert run("f2-agent-busy.ami", PAUSED_1002) == [
        {"type": "queueCount", "queue": "sales", "count": 1},
        # six attempts, one every ~1 s (retry 1)
        *rejected * 6,
        # the caller abandons after 6 s
        {"type": "queueCount", "queue": "sales", "count": 0},
    ]


def test_f3_paused_wait() -> None:
    assert run("f3-paused-wait.ami", PAUSED_1002) == [
        # QueuePause sales PJSIP/1001 Reason=break
        {
            "type": "queueMemberStatus",
            "agent": "1001",
            "queue": "sales",
            "status": "paused",
            "reason": "break",
        },
        # the caller waits: nobody available
        {"type": "queueCount", "queue": "sales", "count": 1},
        # (QueueStatus sales confirms both paused) unpause
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
        # 1001 is rung at once
        {
            "type": "phoneNumber",
            "agent": "1001",
            "queue": "sales",
            "number": "555011",
            "name": "Caller 555011",
        },
        {"type": "extensionStatus", "agent": "1001", "status": "ringing"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "ringing"},
        # answered
        {"type": "extensionStatus", "agent": "1001", "status": "inuse"},
        {"type": "queueCount", "queue": "sales", "count": 0},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "inuse"},
        # HoldTime 7: the caller waited through the break
        {
            "type": "agentComplete",
            "agent": "1001",
            "uniqueId": "1795764899.0",
            "talkTime": 3,
            "holdTime": 7,
            "recording": None,
        },
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None},
        {"type": "extensionStatus", "agent": "1001", "status": "not_inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
    ]


def _originate_started(action: Any, digest: Digest) -> None:
    """What pbxis's originate_call does before sending: only Async originates."""
    if action["action"] == "Originate" and "Async: true" in action["raw"]:
        headers = dict(line.split(": ", 1) for line in action["raw"].split("\r\n") if ": " in line)
        agent = headers["Channel"].split("/", 1)[1]
        digest.originate_started(action["action_id"], agent, headers["Exten"])


def test_g_originate() -> None:
    lab = Lab(devices={"1003": "UNAVAILABLE"})  # "phone 1003 is STOPPED"; nobody paused
    assert run("g-originate.ami", lab, on_action=_originate_started) == [
        # 1. synchronous Originate (not pbxis's way): 1001 rings ...
        {"type": "extensionStatus", "agent": "1001", "status": "ringing"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "ringing"},
        # ... answers; the lab's dialplan never dials 5551234, so no party is
        # ever known (Exten only shows in Newexten, a dialplan event)
        {"type": "extensionStatus", "agent": "1001", "status": "inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "inuse"},
        # Hangup action
        {"type": "extensionStatus", "agent": "1001", "status": "not_inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
        # 2. Async Originate 1001 -> 5559876: the agent leg is dialled with
        # no dialling channel; pbxis said it dials 5559876 for 1001
        {"type": "phoneNumber", "agent": "1001", "number": "5559876", "name": None},
        {"type": "extensionStatus", "agent": "1001", "status": "ringing"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "ringing"},
        # answered (OriginateResponse Success: nothing to report)
        {"type": "extensionStatus", "agent": "1001", "status": "inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "inuse"},
        # hung up after 3 s
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None},
        {"type": "extensionStatus", "agent": "1001", "status": "not_inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
        # 3. PJSIP/1099 does not exist: OriginateResponse Failure Reason 0
        {
            "type": "originateFailed",
            "actionId": "orig-async-noep",
            "reason": "failed: no such endpoint, or the endpoint is unreachable",
        },
        # 4. 1003 unreachable: Failure Reason 0 at once
        {
            "type": "originateFailed",
            "actionId": "orig-async-unreach",
            "reason": "failed: no such endpoint, or the endpoint is unreachable",
        },
        # (5. synchronous failure: a Response Error, the client's business)
        # 6. 1002 rings for pbxis's originate to 5551234 ...
        {"type": "phoneNumber", "agent": "1002", "number": "5551234", "name": None},
        {"type": "extensionStatus", "agent": "1002", "status": "ringing"},
        # 1002 is in both queues: one QueueMemberStatus each
        {"type": "queueMemberStatus", "agent": "1002", "queue": "support", "status": "ringing"},
        {"type": "queueMemberStatus", "agent": "1002", "queue": "sales", "status": "ringing"},
        # ... nobody answers in 4 s: the leg is hung up ...
        {"type": "phoneNumber", "agent": "1002", "number": None, "name": None},
        # ... and OriginateResponse Failure Reason 3
        {"type": "originateFailed", "actionId": "orig-async-noanswer", "reason": "no answer"},
        {"type": "extensionStatus", "agent": "1002", "status": "not_inuse"},
        {"type": "queueMemberStatus", "agent": "1002", "queue": "support", "status": "not_inuse"},
        {"type": "queueMemberStatus", "agent": "1002", "queue": "sales", "status": "not_inuse"},
    ]


def test_g_originate_without_phone_hint() -> None:
    """The bare ``originate_started(action_id)``: the party shows once answered."""

    def started(action: Any, digest: Digest) -> None:
        if action["action"] == "Originate" and "Async: true" in action["raw"]:
            digest.originate_started(action["action_id"])

    events = run("g-originate.ami", Lab(devices={"1003": "UNAVAILABLE"}), on_action=started)
    numbers = [e for e in events if e["type"] == "phoneNumber"]
    # OriginateResponse Success names the channel and the Exten it dials;
    # 1002's unanswered leg never learns a party
    assert numbers == [
        {"type": "phoneNumber", "agent": "1001", "number": "5559876", "name": None},
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None},
    ]
    assert [e["actionId"] for e in events if e["type"] == "originateFailed"] == [
        "orig-async-noep",
        "orig-async-unreach",
        "orig-async-noanswer",
    ]


def test_h1_redirect() -> None:
    digest, _ = start(PAUSED_1002)
    bridged: list[Any] = []

    def before(action: Any, d: Digest) -> None:
        # the call redirect_call("1001", ...) asks Asterisk about, and its dial peer
        if action["action"] == "Redirect":
            bridged.extend((c.agent_channel, c.peer) for c in d.calls_of("1001"))

    assert dicts(replay("h1-redirect.ami", digest, on_action=before)) == [
        {"type": "queueCount", "queue": "sales", "count": 1},
        {
            "type": "phoneNumber",
            "agent": "1001",
            "queue": "sales",
            "number": "555011",
            "name": "Caller 555011",
        },
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "ringing"},
        {"type": "extensionStatus", "agent": "1001", "status": "ringing"},
        {"type": "queueCount", "queue": "sales", "count": 0},
        {"type": "extensionStatus", "agent": "1001", "status": "inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "inuse"},
        # Redirect of the caller: the agent leg is hung up at once
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None},
        {"type": "extensionStatus", "agent": "1001", "status": "not_inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
        # the caller runs default,1003,1: Dial(PJSIP/1003), not through a queue
        {"type": "phoneNumber", "agent": "1003", "number": "555011", "name": "Caller 555011"},
        {"type": "extensionStatus", "agent": "1003", "status": "ringing"},
        {"type": "queueMemberStatus", "agent": "1003", "queue": "support", "status": "ringing"},
        {"type": "extensionStatus", "agent": "1003", "status": "inuse"},
        # InCall 0: not a support call, but the device is in use
        {"type": "queueMemberStatus", "agent": "1003", "queue": "support", "status": "inuse"},
        # Hangup action on the caller: only now AgentComplete for 1001
        # (Reason caller; TalkTime includes the time after the transfer)
        {
            "type": "agentComplete",
            "agent": "1001",
            "uniqueId": "1795764951.0",
            "talkTime": 8,
            "holdTime": 1,
            "recording": None,
        },
        {"type": "phoneNumber", "agent": "1003", "number": None, "name": None},
        {"type": "extensionStatus", "agent": "1003", "status": "not_inuse"},
        {"type": "queueMemberStatus", "agent": "1003", "queue": "support", "status": "not_inuse"},
    ]
    assert bridged == [("PJSIP/1001-00000001", "PJSIP/caller-00000000")]


def test_h2_park() -> None:
    digest, _ = start(PAUSED_1002)
    parked: list[Any] = []

    def before(action: Any, d: Digest) -> None:
        # the call park_and_announce("1001") asks Asterisk about, and its dial peer
        if action["action"] == "Park":
            parked.extend((c.agent_channel, c.peer) for c in d.calls_of("1001"))

    assert dicts(replay("h2-park.ami", digest, on_action=before)) == [
        # call 1: 555011 via sales, answered by 1001
        {"type": "queueCount", "queue": "sales", "count": 1},
        {
            "type": "phoneNumber",
            "agent": "1001",
            "queue": "sales",
            "number": "555011",
            "name": "Caller 555011",
        },
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "ringing"},
        {"type": "extensionStatus", "agent": "1001", "status": "ringing"},
        {"type": "queueCount", "queue": "sales", "count": 0},
        {"type": "extensionStatus", "agent": "1001", "status": "inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "inuse"},
        # parked in 701: the parker's leg is hung up after the announcement
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
        {"type": "extensionStatus", "agent": "1001", "status": "not_inuse"},
        # the recorder's Originate PJSIP/1003 -> parkedcalls,701 rings 1003
        # (not pbxis's originate: no party until it is connected)
        {"type": "queueMemberStatus", "agent": "1003", "queue": "support", "status": "ringing"},
        {"type": "extensionStatus", "agent": "1003", "status": "ringing"},
        {"type": "extensionStatus", "agent": "1003", "status": "inuse"},
        {"type": "queueMemberStatus", "agent": "1003", "queue": "support", "status": "inuse"},
        # UnParkedCall + bridge: NewConnectedLine (state Up) names the parkee
        {"type": "phoneNumber", "agent": "1003", "number": "555011", "name": "Caller 555011"},
        # Hangup action on the caller: AgentComplete is still 1001's (it
        # answered the queue call)
        {
            "type": "agentComplete",
            "agent": "1001",
            "uniqueId": "1795764971.0",
            "talkTime": 10,
            "holdTime": 1,
            "recording": None,
        },
        {"type": "phoneNumber", "agent": "1003", "number": None, "name": None},
        {"type": "extensionStatus", "agent": "1003", "status": "not_inuse"},
        {"type": "queueMemberStatus", "agent": "1003", "queue": "support", "status": "not_inuse"},
        # call 2: 555021 via sales, answered by 1001
        {"type": "queueCount", "queue": "sales", "count": 1},
        {
            "type": "phoneNumber",
            "agent": "1001",
            "queue": "sales",
            "number": "555021",
            "name": "Caller 555021",
        },
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "ringing"},
        {"type": "extensionStatus", "agent": "1001", "status": "ringing"},
        {"type": "queueCount", "queue": "sales", "count": 0},
        {"type": "extensionStatus", "agent": "1001", "status": "inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "inuse"},
        # parked with Timeout 6 s: parker's leg hung up
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None},
        {"type": "extensionStatus", "agent": "1001", "status": "not_inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
        # ParkedCallTimeOut: comebacktoorigin dials PJSIP/1001 from the caller
        # (a plain Dial now, no queue)
        {"type": "phoneNumber", "agent": "1001", "number": "555021", "name": "Caller 555021"},
        {"type": "extensionStatus", "agent": "1001", "status": "ringing"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "ringing"},
        {"type": "extensionStatus", "agent": "1001", "status": "inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "inuse"},
        # Hangup action on the caller
        {
            "type": "agentComplete",
            "agent": "1001",
            "uniqueId": "1795764985.3",
            "talkTime": 12,
            "holdTime": 1,
            "recording": None,
        },
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None},
        {"type": "extensionStatus", "agent": "1001", "status": "not_inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
    ]
    assert parked == [
        ("PJSIP/1001-00000001", "PJSIP/caller-00000000"),
        ("PJSIP/1001-00000004", "PJSIP/caller-00000003"),
    ]


def test_i_hold() -> None:
    assert run("i-hold.ami", PAUSED_1002) == [
        {"type": "queueCount", "queue": "sales", "count": 1},
        {
            "type": "phoneNumber",
            "agent": "1001",
            "queue": "sales",
            "number": "555011",
            "name": "Caller 555011",
        },
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "ringing"},
        {"type": "extensionStatus", "agent": "1001", "status": "ringing"},
        {"type": "queueCount", "queue": "sales", "count": 0},
        {"type": "extensionStatus", "agent": "1001", "status": "inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "inuse"},
        # Hold/Unhold: only the *caller's* device goes ONHOLD; 1001 stays INUSE,
        # so nothing is published for the hold (and the recorded QueueStatus
        # agrees: Status 2)
        {
            "type": "agentComplete",
            "agent": "1001",
            "uniqueId": "1795765008.0",
            "talkTime": 11,
            "holdTime": 1,
            "recording": None,
        },
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None},
        {"type": "extensionStatus", "agent": "1001", "status": "not_inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
    ]


SHUTDOWN_CALL = [
    {"type": "queueCount", "queue": "sales", "count": 1},
    {
        "type": "phoneNumber",
        "agent": "1001",
        "queue": "sales",
        "number": "555011",
        "name": "Caller 555011",
    },
]


def test_j1_sigterm_shutdown() -> None:
    assert run("j1-sigterm-shutdown.ami", PAUSED_1002) == [
        # a queue call is answered ...
        *SHUTDOWN_CALL,
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "ringing"},
        {"type": "extensionStatus", "agent": "1001", "status": "ringing"},
        {"type": "extensionStatus", "agent": "1001", "status": "inuse"},
        {"type": "queueCount", "queue": "sales", "count": 0},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "inuse"},
        # ... SIGTERM: Asterisk hangs the channels up before Shutdown and EOF
        {
            "type": "agentComplete",
            "agent": "1001",
            "uniqueId": "1795765171.0",
            "talkTime": 2,
            "holdTime": 1,
            "recording": None,
        },
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None},
        {"type": "extensionStatus", "agent": "1001", "status": "not_inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
        # (Shutdown itself is the client's: it fails commands, then reconnects)
    ]


def test_j2_kill9() -> None:
    # login only, then EOF: nothing happens
    assert run("j2-kill9.ami", Lab()) == []


def test_j3_core_restart_now() -> None:
    assert run("j3-core-restart-now.ami", PAUSED_1002) == [
        *SHUTDOWN_CALL,
        {"type": "extensionStatus", "agent": "1001", "status": "ringing"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "ringing"},
        {"type": "queueCount", "queue": "sales", "count": 0},
        {"type": "extensionStatus", "agent": "1001", "status": "inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "inuse"},
        # core restart now: channels hung up, then Shutdown (Restart: True), EOF
        {
            "type": "agentComplete",
            "agent": "1001",
            "uniqueId": "1795765585.0",
            "talkTime": 2,
            "holdTime": 1,
            "recording": None,
        },
        {"type": "phoneNumber", "agent": "1001", "number": None, "name": None},
        {"type": "extensionStatus", "agent": "1001", "status": "not_inuse"},
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
    ]


def test_j4_core_stop_gracefully() -> None:
    # the recorder stopped Asterisk itself: EOF only
    assert run("j4-core-stop-gracefully.ami", Lab()) == []


def test_m1_login_events_off() -> None:
    assert run("m1-login-events-off.ami", PAUSED_1002) == [
        # Events: off hid the call's start; the QueueStatus answer still
        # arrives and shows 1001 talking (Status 2, InCall 1)
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "inuse"},
        # Events on again: the end of the call
        {
            "type": "agentComplete",
            "agent": "1001",
            "uniqueId": "1795765054.0",
            "talkTime": 6,
            "holdTime": 1,
            "recording": None,
        },
        {"type": "queueMemberStatus", "agent": "1001", "queue": "sales", "status": "not_inuse"},
        # (DeviceStateChange NOT_INUSE: the digest never saw INUSE, no change;
        # the unknown agent leg's Hangup: no call was known, no change)
    ]


def test_m2_login_failed() -> None:
    assert run("m2-login-failed.ami", Lab()) == []  # no events at all


def test_m3_login_md5() -> None:
    assert run("m3-login-md5.ami", Lab()) == []  # FullyBooted/SuccessfulAuth only


def test_n_phone_offline_online() -> None:
    assert run("n-phone-offline-online.ami", Lab()) == [
        # qualify fails: DeviceStateChange PJSIP/1003 UNAVAILABLE
        {"type": "extensionStatus", "agent": "1003", "status": "unavailable"},
        # QueueMemberStatus Status 5 (1003 is only in support)
        {"type": "queueMemberStatus", "agent": "1003", "queue": "support", "status": "unavailable"},
        # phone back: NOT_INUSE, Status 1
        {"type": "extensionStatus", "agent": "1003", "status": "not_inuse"},
        {"type": "queueMemberStatus", "agent": "1003", "queue": "support", "status": "not_inuse"},
    ]
