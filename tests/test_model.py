"""The plain-data model and the AMI vocabulary (pbxis.model)."""

from __future__ import annotations

import json

from pbxis.model import (
    LOGGED_OFF,
    Agent,
    Call,
    Member,
    Model,
    Queue,
    first,
    originate_reason,
)
from pbxis.versions import DEVICE_STATES, MEMBER_STATUSES

API_STATUSES = {
    "not_inuse",
    "ringing",
    "inuse",
    "ringinuse",
    "busy",
    "onhold",
    "unavailable",
    "unknown",
}


def test_vocabulary_speaks_api_words_only() -> None:
    # API.md §4: extensionStatus / queueMemberStatus device words
    assert set(DEVICE_STATES.values()) <= API_STATUSES
    assert set(MEMBER_STATUSES.values()) <= API_STATUSES
    # asterisk-22-notes: 0 unknown .. 8 on hold
    assert [MEMBER_STATUSES[str(n)] for n in range(9)] == [
        "unknown",
        "not_inuse",
        "inuse",
        "busy",
        "unavailable",
        "unavailable",
        "ringing",
        "ringinuse",
        "onhold",
    ]


def test_originate_reasons_in_words() -> None:
    assert originate_reason("3") == "no answer"
    assert originate_reason("5") == "busy"
    assert originate_reason("42") == "failed (reason 42)"
    assert originate_reason(None) == "failed"


def test_header_lookups() -> None:
    assert first({"Location": "PJSIP/1001"}, ("Interface", "Location")) == "PJSIP/1001"
    assert first({}, ("Interface", "Location")) is None


def test_member_value() -> None:
    member = Member("PJSIP/1001")
    assert member.value() == ("unknown", None)
    member.status = "2"
    assert member.value() == ("inuse", None)
    member.paused, member.reason = True, "lunch"
    assert member.value() == ("paused", "lunch")
    member.status = "99"
    member.paused = False
    assert member.value() == ("unknown", None)


def model_with_calls() -> Model:
    model = Model()
    model.agents["1001"] = Agent("1001", "PJSIP/1001")
    model.queues["sales"] = Queue("sales")
    for seq, number in (("01", "555011"), ("02", None), ("03", "555012")):
        call = Call(f"PJSIP/1001-{seq}", "1001", f"1.{seq}")
        call.number = number
        model.calls[call.channel] = model.agents["1001"].calls[call.channel] = call
    return model


def test_current_call_is_the_newest_with_a_known_party() -> None:
    model = model_with_calls()
    current = model.current_call("1001")
    assert current is not None and current.number == "555012"
    del model.agents["1001"].calls["PJSIP/1001-03"]
    current = model.current_call("1001")
    assert current is not None and current.number == "555011"
    assert model.current_call("9999") is None


def test_member_value_known_and_unknown() -> None:
    model = model_with_calls()
    assert model.member_value("1001", "sales") is None  # nobody said yet
    model.queues["sales"].members_known = True
    assert model.member_value("1001", "sales") == LOGGED_OFF
    model.members[("1001", "sales")] = Member("PJSIP/1001")
    assert model.member_value("1001", "sales") == ("unknown", None)


def test_snapshot_is_json_ready() -> None:
    model = model_with_calls()
    model.members[("1001", "sales")] = Member("PJSIP/1001")
    model.queues["sales"].count = 2
    snap = json.loads(json.dumps(model.snapshot()))
    assert snap["queues"] == {"sales": {"count": 2, "members": ["1001"]}}
    agent = snap["agents"]["1001"]
    assert agent["phoneNumber"] == {"number": "555012", "name": None, "queue": None}
    assert [c["channel"] for c in agent["calls"]] == [
        "PJSIP/1001-01",
        "PJSIP/1001-02",
        "PJSIP/1001-03",
    ]
    assert agent["queues"] == {
        "sales": {"status": "unknown", "reason": None, "interface": "PJSIP/1001"}
    }
