"""API.md §5 commands on real Asterisk 22 with sipp phones (issue 4)."""
from __future__ import annotations

import pytest
from conftest import wait_event
from harness import lab as lab_module

import pbxis

pytestmark = pytest.mark.asterisk


def is_(type_, **details):
    def match(ev):
        return ev.type == type_ and all(
            (getattr(ev, k) if k in ("agent", "queue") else ev.get(k)) == v
            for k, v in details.items()
        )

    return match


def test_originate_rings_the_agent_then_dials_the_number(lab, pbx):
    ch = pbx.event_channel(agents=["1001"])
    action_id = pbx.originate_call("1001", "5551234", caller_id='"Sales desk" <1001>')
    assert isinstance(action_id, str) and action_id
    seen: list = []  # the number may come before or after the ringing (16 and 22 alike)
    wait_event(ch, is_("extensionStatus", agent="1001", status="ringing"), what="1001 ringing",
               seen=seen)
    if not any(is_("phoneNumber", agent="1001", number="5551234")(e) for e in seen):
        wait_event(ch, is_("phoneNumber", agent="1001", number="5551234"), what="number patched")
    lab_module.wait_until(lambda: "5551234" in lab.outside.numbers(), 10, "outside rung")
    lab.asterisk.hangup_all()
    wait_event(ch, is_("phoneNumber", agent="1001", number=None), what="call ended")


def test_originate_to_a_missing_endpoint_reports_failure(pbx):
    ch = pbx.event_channel()
    action_id = pbx.originate_call("1099", "5551234")
    ev = wait_event(ch, lambda e: e.type == "originateFailed", what="originateFailed")
    assert ev["actionId"] == action_id
    assert ev["reason"]


def test_originate_to_a_busy_agent_reports_failure(lab, pbx):
    lab.phone("1002", mode="busy")
    ch = pbx.event_channel()
    action_id = pbx.originate_call("1002", "5551234")
    ev = wait_event(ch, lambda e: e.type == "originateFailed", what="originateFailed")
    assert ev["actionId"] == action_id
    assert ev["reason"]


def test_redirect_a_queue_call_to_another_agent(lab, pbx):
    pbx.queue_action("pause", agent="1002", queue="sales", reason="redirect test")
    try:
        ch = pbx.event_channel(agents=["1001", "1002"], queues=["sales"])
        lab.call("sales", number="555011", talk=30)
        wait_event(ch, is_("extensionStatus", agent="1001", status="inuse"), what="1001 talks")
        pbx.redirect_call("1001", "1002")
        seen: list = []
        wait_event(ch, is_("phoneNumber", agent="1002", number="555011"), what="1002 gets call",
                   seen=seen)
        wait_event(ch, is_("extensionStatus", agent="1002", status="inuse"), what="1002 talks",
                   seen=seen)
        if not any(is_("phoneNumber", agent="1001", number=None)(e) for e in seen):
            wait_event(ch, is_("phoneNumber", agent="1001", number=None), what="1001 free")
    finally:
        pbx.queue_action("unpause", agent="1002", queue="sales")


def test_two_calls_are_ambiguous_and_a_channel_name_resolves(lab, pbx):
    ch = pbx.event_channel(agents=["1001", "1003"])
    lab.call("1001", number="555011", talk=30)
    lab.call("1001", number="555012", talk=30)
    # A lagging reader gets only the newest phoneNumber of 1001 (API.md §3: pending
    # state events coalesce), and both calls may ring within a millisecond (seen on
    # Asterisk 16): wait until pbxis knows both calls.
    def both_calls(e) -> bool:
        calls = pbx.snapshot()["agents"]["1001"]["calls"]
        return e.agent == "1001" and {c["number"] for c in calls} >= {"555011", "555012"}

    wait_event(ch, both_calls, what="both calls on 1001")
    wait_event(ch, is_("extensionStatus", agent="1001", status="inuse"), what="1001 answers")
    with pytest.raises(pbxis.AmbiguousCallError) as info:
        pbx.redirect_call("1001", "1003")
    candidates = info.value.candidates
    assert sorted(c["callerIdNum"] for c in candidates) == ["555011", "555012"]
    assert all(c["agentChannel"].startswith("PJSIP/1001-") for c in candidates)
    chosen = next(c for c in candidates if c["callerIdNum"] == "555012")
    pbx.redirect_call(chosen["bridgedChannel"], "1003")
    wait_event(ch, is_("phoneNumber", agent="1003", number="555012"), what="1003 gets 555012")
    # 1001 keeps the other call: its number is (or becomes) 555011
    calls = pbx.snapshot()["agents"]["1001"]["calls"]
    assert [c["number"] for c in calls] == ["555011"]
    assert pbx.snapshot()["agents"]["1001"]["phoneNumber"]["number"] == "555011"


def test_no_call_raises(pbx):
    with pytest.raises(pbxis.NoCallError):
        pbx.redirect_call("1003", "1002")
    with pytest.raises(pbxis.NoCallError):
        pbx.park_and_announce("1003")


def test_park_and_announce_then_the_call_comes_back(lab, pbx):
    pbx.queue_action("pause", agent="1002", queue="sales", reason="park test")
    try:
        ch = pbx.event_channel(agents=["1001"], queues=["sales"])
        lab.call("sales", number="555011", talk=60)
        wait_event(ch, is_("extensionStatus", agent="1001", status="inuse"), what="1001 talks")
        space = pbx.park_and_announce("1001", timeout=4)
        assert space.isdigit() and 701 <= int(space) <= 720
        assert space in lab.asterisk.cli("parking show")
        wait_event(ch, is_("phoneNumber", agent="1001", number=None), what="agent leg gone")
        # not retrieved: after the timeout it rings the agent again
        wait_event(ch, is_("phoneNumber", agent="1001", number="555011"), timeout=20,
                   what="call back from the parking lot")
    finally:
        pbx.queue_action("unpause", agent="1002", queue="sales")


def test_queue_membership_lifecycle(pbx):
    ch = pbx.event_channel(agents=["1003"], queues=["sales"])
    wait_event(ch, is_("queueMemberStatus", agent="1003", queue="sales", status="loggedoff"))
    pbx.queue_action("add", agent="1003", queue="sales", member_name="Carol Clark")
    try:
        wait_event(ch, is_("queueMemberStatus", agent="1003", queue="sales", status="not_inuse"))
        with pytest.raises(pbxis.ActionError, match="Already there"):
            pbx.queue_action("add", agent="1003", queue="sales")
        pbx.queue_action("pause", agent="1003", queue="sales", reason="lunch")
        ev = wait_event(ch, is_("queueMemberStatus", agent="1003", queue="sales",
                                status="paused"))
        assert ev["reason"] == "lunch"
        pbx.queue_action("unpause", agent="1003", queue="sales")
        wait_event(ch, is_("queueMemberStatus", agent="1003", queue="sales", status="not_inuse"))
        pbx.queue_action("penalty", agent="1003", queue="sales", penalty=3)
        member = next(m for q in pbx.queue_status("sales") for m in q["members"]
                      if m["agent"] == "1003")
        assert member["penalty"] == 3
        pbx.queue_action("reset", queue="sales")
    finally:
        pbx.queue_action("remove", agent="1003", queue="sales")
    wait_event(ch, is_("queueMemberStatus", agent="1003", queue="sales", status="loggedoff"))
    with pytest.raises(pbxis.ActionError, match="Not there"):
        pbx.queue_action("remove", agent="1003", queue="sales")
    with pytest.raises(pbxis.ActionError, match="Interface not found"):
        pbx.queue_action("pause", agent="1001", queue="nosuchqueue")


@pytest.mark.parametrize("bad", [
    {"type": "explode", "agent": "1001", "queue": "sales"},
    {"type": "add", "agent": "", "queue": "sales"},
    {"type": "add", "agent": "1001", "queue": ""},
    {"type": "add", "agent": "1001"},
    {"type": "pause", "agent": "1001", "queue": "sales", "reason": "x\r\nAction: Command"},
])
def test_bad_queue_action_arguments_raise_value_error(pbx, bad):
    sent = pbx._link.bytes_sent
    with pytest.raises(ValueError):
        pbx.queue_action(bad.pop("type"), **bad)
    assert pbx._link.bytes_sent == sent


def test_injection_through_caller_id_is_refused_and_asterisk_untouched(lab, pbx):
    sent = pbx._link.bytes_sent
    with pytest.raises(ValueError):
        pbx.originate_call("1001", "5551234",
                           caller_id="x\r\nAction: Command\r\nCommand: core stop now")
    assert pbx._link.bytes_sent == sent  # nothing was written
    assert pbx.send_action("Ping")["Ping"] == "Pong"
    assert lab.asterisk.running
