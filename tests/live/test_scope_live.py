"""API.md §3 on real Asterisk 22: scope filtering and introductory events.

* Three channels with different (agents, queues) watch one queue call next to
  a channel that sees everything: each receives exactly the events the scope
  rule lets through, in the same order, and nothing else.
* A channel opened in the middle of a call is introduced to the call in
  progress (number, queue, device in use), then sees it end -- both when the
  agent is already tracked (the model answers) and when it is not (pbxis
  asks Asterisk).
"""

from __future__ import annotations

from typing import Any

import pytest
from harness import lab as lab_module
from test_scenarios_live import (  # the shared live helpers
    IDLE_1001_SALES,
    Watch,
    idle_intro,
    is_,
    paused,  # noqa: F401 - fixture
    tap,  # noqa: F401 - fixture
)

import pbxis

pytestmark = pytest.mark.asterisk

NAMES = {agent: name for agent, (name, _) in lab_module.AGENTS.items()}


def accepts(agents: list[str], queues: list[str], ev: Any) -> bool:
    """API.md §3, written out independently of pbxis.scope: every scope
    property the event has must be listed by the channel."""
    return (ev.agent is None or ev.agent in agents) and (ev.queue is None or ev.queue in queues)


SCOPES = {
    "A": (["1001"], ["sales"]),
    "B": (["1002", "1003"], ["support"]),
    "C": ([], ["sales"]),
}


def test_three_scopes_during_one_call(lab, pbx, tap):  # noqa: F811
    # ringall: 1001 answers, 1002 rings (never answers) until the queue cancels it
    lab.phone("1002", mode="noanswer")
    everything = Watch(pbx, tap, agents=["1001", "1002", "1003"], queues=["sales", "support"])
    watches = {name: Watch(pbx, None, agents=a, queues=q) for name, (a, q) in SCOPES.items()}

    # introductions: the (idle) state of each scope, from the model
    members = {
        ("1001", "sales"): "not_inuse",
        ("1002", "sales"): "not_inuse",
        ("1002", "support"): "not_inuse",
        ("1003", "support"): "not_inuse",
    }
    for name, (agents, queues) in SCOPES.items():
        expected = idle_intro({a: NAMES[a] for a in agents}, queues, members)
        assert watches[name].intro_state() == expected, name
        assert len(watches[name].intro) == len(expected), name

    caller = lab.call("sales", number="555021", talk=3)
    everything.has(is_("agentComplete", "1001"), what="agentComplete")
    everything.reaches(
        {
            **IDLE_1001_SALES,
            ("phoneNumber", "1002", None): None,
            ("extensionStatus", "1002", None): "not_inuse",
        },
        what="all idle",
    )
    assert caller.wait(10) == 0 and caller.answered
    everything.settle(lab)
    for w in watches.values():
        w.drained()

    seen = everything.events()
    assert everything.values("phoneNumber", "1002") == [("555021", "sales"), None]
    assert everything.values("extensionStatus", "1002") == ["ringing", "not_inuse"]
    assert everything.values("queueMemberStatus", "1002", "support") == ["ringing", "not_inuse"]
    assert everything.values("phoneNumber", "1001") == [("555021", "sales"), None]
    for name, (agents, queues) in SCOPES.items():
        got = watches[name].dicts()
        assert got == [e.to_dict() for e in seen if accepts(agents, queues, e)], name

    # what that means, spelled out
    a, b, c = (watches[n] for n in "ABC")
    assert a.keys() == {
        ("queueCount", None, "sales"),
        ("phoneNumber", "1001", None),
        ("extensionStatus", "1001", None),
        ("queueMemberStatus", "1001", "sales"),
        ("agentComplete", "1001", None),
    }
    # B lists 1002 but not sales: 1002's ringing number came through sales, so
    # only its end (no queue) reaches B; nothing of 1001, nothing of sales
    assert b.values("phoneNumber", "1002") == [None]
    assert b.keys() == {
        ("extensionStatus", "1002", None),
        ("queueMemberStatus", "1002", "support"),
        ("phoneNumber", "1002", None),
    }
    assert c.values("queueCount", queue="sales") == [1, 0]
    assert c.keys() == {("queueCount", None, "sales")}
    # and the others' events did happen
    assert ("queueMemberStatus", "1002", "sales") in everything.keys()
    assert not [e for e in seen if e.agent == "1003"]


def _answered_call(lab, observer) -> Any:
    caller = lab.call("sales", number="555031", talk=5)
    observer.reaches(
        {
            ("extensionStatus", "1001", None): "inuse",
            ("queueMemberStatus", "1001", "sales"): "inuse",
            ("queueCount", None, "sales"): 0,
        },
        what="1001 talking",
    )
    return caller


IN_CALL = {
    ("agentName", "1001", None): "Alice Anders",
    ("extensionStatus", "1001", None): "inuse",
    ("queueMemberStatus", "1001", "sales"): "inuse",
    ("phoneNumber", "1001", None): ("555031", "sales"),
    ("queueCount", None, "sales"): 0,
}


def _check_mid_call(w: Watch, lab) -> None:
    assert w.intro_state() == IN_CALL
    assert len(w.intro) == len(IN_CALL), w.dicts(w.intro)
    number = next(e for e in w.intro if e.type == "phoneNumber")
    assert number["name"] == "Caller 555031"
    w.has(is_("agentComplete", "1001"), what="agentComplete")
    w.reaches(IDLE_1001_SALES, what="1001 idle")
    w.settle(lab)
    assert w.values("phoneNumber", "1001") == [None]
    assert w.values("extensionStatus", "1001") == ["not_inuse"]
    assert w.values("queueMemberStatus", "1001", "sales") == ["not_inuse"]
    assert w.values("queueCount", queue="sales") == []
    done = next(e for e in w.events() if e.type == "agentComplete")
    assert abs(done["talkTime"] - 5) <= 1
    assert len(w.events()) == 4, w.dicts()


def test_channel_opened_mid_call_agent_already_tracked(lab, pbx, tap, paused):  # noqa: F811
    paused("1002", "sales")
    observer = Watch(pbx, tap, agents=["1001"], queues=["sales"])
    caller = _answered_call(lab, observer)
    _check_mid_call(Watch(pbx, None, agents=["1001"], queues=["sales"]), lab)
    assert caller.wait(10) == 0


def test_channel_opened_mid_call_agent_not_tracked(lab, pbx, ami_url, tap, paused):  # noqa: F811
    paused("1002", "sales")
    observer = Watch(pbx, tap, agents=["1001"], queues=["sales"])
    caller = _answered_call(lab, observer)
    with pbxis.connect(ami_url) as fresh:  # knows nothing: asks Asterisk
        w = Watch(fresh, None, agents=["1001"], queues=["sales"])
        _check_mid_call(w, lab)
    assert caller.wait(10) == 0
