"""What differs between Asterisk 16 and 22 (pbxis.versions), on the real server the
lab runs (PBXIS_ASTERISK_VERSION): pbxis's Filter really narrows on both; a Filter
form that Asterisk acknowledges but does not apply (22's MatchCriteria on 16) is
noticed and replaced by the event class mask; a member added paused keeps its
reason although 16's QueueAdd ignores it. Unit tests with the fake server:
tests/test_versions.py.
"""
from __future__ import annotations

from typing import Any

import pytest
from conftest import VERSION, wait_event

import pbxis
from pbxis import commands, versions

pytestmark = pytest.mark.asterisk

FAST = {"keepalive": 2.0, "reconnect_base": 0.2, "reconnect_cap": 1.0}


def is_(type_: str, **details: Any):  # type: ignore[no-untyped-def]
    def match(ev: Any) -> bool:
        return ev.type == type_ and all(
            (getattr(ev, k) if k in ("agent", "queue") else ev.get(k)) == v
            for k, v in details.items()
        )

    return match


def _pause_1002(pbx: Any) -> None:
    pbx.queue_action("pause", agent="1002", queue="sales", reason="not-in-this-test")


def test_the_filter_really_narrows(lab, ami_url):
    with pbxis.connect(ami_url, **FAST) as pbx:
        _pause_1002(pbx)
        try:
            ch = pbx.event_channel(agents=["1001"], queues=["sales"])
            assert pbx.send_action("Ping")["Ping"] == "Pong"  # the Filter answers came first
            assert pbx._narrowing == "filter" and pbx._filter_baseline is not None
            before = pbx._link.bytes_received
            caller = lab.call("sales", number="555011", talk=2)
            wait_event(ch, is_("agentComplete", agent="1001"), what="the call answered and over")
            wait_event(ch, is_("extensionStatus", agent="1001", status="not_inuse"))
            assert caller.wait(15) == 0
            per_call = pbx._link.bytes_received - before
            leaked = pbx._link.skipped - pbx._filter_baseline
            print(f"\nAsterisk {VERSION}: one queue call = {per_call} bytes with pbxis's Filter")
            assert leaked < versions.FILTER_LEAK_LIMIT
            assert pbx._narrowing == "filter"
            assert per_call < 20000  # unfiltered, one such call is ~45 KB (16) / ~55 KB (22)
        finally:
            pbx.queue_action("unpause", agent="1002", queue="sales")


def test_a_filter_that_asterisk_acknowledges_but_ignores_is_noticed(lab, ami_url, monkeypatch):
    """22's MatchCriteria form: applied by 22, acknowledged and ignored by 16."""

    def match_criteria(names: Any) -> commands.Action:
        return "Filter", [("Operation", "Add"), ("MatchCriteria", "name(QueueMemberStatus)")]

    monkeypatch.setattr(commands, "server_filter", match_criteria)
    with pbxis.connect(ami_url, **FAST) as pbx:
        _pause_1002(pbx)
        try:
            ch = pbx.event_channel(agents=["1001"], queues=["sales"])
            assert pbx.send_action("Ping")["Response"] == "Success"
            assert pbx._narrowing == "filter"  # acknowledged by both
            lab.call("sales", number="555011", talk=2)
            wait_event(ch, is_("queueMemberStatus", agent="1001", status="inuse"))
            wait_event(ch, is_("queueMemberStatus", agent="1001", status="not_inuse"))
            assert pbx.send_action("Ping")["Response"] == "Success"  # the Events answer, if any
            if VERSION == "16":
                # everything came through: noticed, narrowed by class instead, and
                # the events a class mask keeps still arrive
                assert pbx._narrowing == "eventmask"
                assert pbx._filter_baseline is None
                lab.call("sales", number="555012", talk=1)
                wait_event(ch, is_("extensionStatus", agent="1001", status="inuse"))
            else:
                # 22 applies it: only QueueMemberStatus (and VarSet) pass, nothing leaks
                assert pbx._narrowing == "filter"
                assert pbx._link.skipped - pbx._filter_baseline < versions.FILTER_LEAK_LIMIT
        finally:
            pbx.queue_action("unpause", agent="1002", queue="sales")


def test_a_member_added_paused_keeps_its_reason(pbx):
    ch = pbx.event_channel(agents=["1003"], queues=["sales"])
    wait_event(ch, is_("queueMemberStatus", agent="1003", queue="sales", status="loggedoff"))
    pbx.queue_action("add", agent="1003", queue="sales", member_name="Carol Clark",
                     paused=True, reason="training")
    try:
        seen: list = []
        ev = wait_event(ch, is_("queueMemberStatus", agent="1003", queue="sales",
                                reason="training"), seen=seen, what="paused with its reason")
        assert ev["status"] == "paused"
        member = next(m for q in pbx.queue_status("sales") for m in q["members"]
                      if m["agent"] == "1003")
        assert member["paused"] is True and member["pausedReason"] == "training"
    finally:
        pbx.queue_action("remove", agent="1003", queue="sales")
    wait_event(ch, is_("queueMemberStatus", agent="1003", queue="sales", status="loggedoff"))
