"""``Scope``: API.md §3's rule, every combination, and argument validation."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbxis.events import AGENT_COMPLETE, CLOSED, PHONE_NUMBER, QUEUE_COUNT, Event
from pbxis.scope import Scope

SCOPE = Scope(agents=["1001", "1002"], queues=["sales"])

# (event agent, event queue, accepted by SCOPE): every combination of
# "absent", "listed" and "not listed" for each of the two scope properties.
RULE_TABLE = [
    (None, None, True),  # neither: every channel
    ("1001", None, True),  # agent listed
    ("2001", None, False),  # agent not listed
    (None, "sales", True),  # queue listed
    (None, "support", False),  # queue not listed
    ("1002", "sales", True),  # both listed
    ("1001", "support", False),  # agent listed, queue not
    ("2001", "sales", False),  # queue listed, agent not
    ("2001", "support", False),  # neither listed
]


@pytest.mark.parametrize(("agent", "queue", "accepted"), RULE_TABLE)
def test_rule_table(agent: str | None, queue: str | None, accepted: bool) -> None:
    assert SCOPE.accepts(Event(PHONE_NUMBER, agent, queue, number="555")) is accepted


@pytest.mark.parametrize(("agent", "queue", "accepted"), RULE_TABLE)
def test_rule_does_not_depend_on_type_or_details(
    agent: str | None, queue: str | None, accepted: bool
) -> None:
    for event_type in (QUEUE_COUNT, AGENT_COMPLETE, CLOSED, "anythingElse"):
        assert SCOPE.accepts(Event(event_type, agent, queue, x=1)) is accepted


@pytest.mark.parametrize(
    ("scope", "agent", "queue", "accepted"),
    [
        # An empty list means none, not all.
        (Scope(), None, None, True),
        (Scope(), "1001", None, False),
        (Scope(), None, "sales", False),
        (Scope(agents=["1001"]), "1001", None, True),
        (Scope(agents=["1001"]), None, "sales", False),
        (Scope(agents=["1001"]), "1001", "sales", False),
        (Scope(queues=["sales"]), None, "sales", True),
        (Scope(queues=["sales"]), "1001", None, False),
        (Scope(queues=["sales"]), "1001", "sales", False),
    ],
)
def test_one_sided_and_empty_scopes(
    scope: Scope, agent: str | None, queue: str | None, accepted: bool
) -> None:
    assert scope.accepts(Event(PHONE_NUMBER, agent, queue)) is accepted


NAMES = st.sampled_from(["1001", "1002", "1003", "sales", "support", "x"])


@given(
    agents=st.frozensets(NAMES),
    queues=st.frozensets(NAMES),
    agent=st.none() | NAMES,
    queue=st.none() | NAMES,
)
def test_rule_property(
    agents: frozenset[str], queues: frozenset[str], agent: str | None, queue: str | None
) -> None:
    scope = Scope(agents, queues)
    props = {"agent": agent, "queue": queue}
    lists = {"agent": agents, "queue": queues}
    expected = all(v in lists[k] for k, v in props.items() if v is not None)
    assert scope.accepts(Event("x", agent, queue)) is expected


def test_attributes_are_frozensets_of_the_given_names() -> None:
    scope = Scope(agents=iter(["1001", "1002", "1001"]), queues=("sales",))
    assert scope.agents == frozenset({"1001", "1002"})
    assert scope.queues == frozenset({"sales"})
    assert isinstance(scope.agents, frozenset) and isinstance(scope.queues, frozenset)
    assert Scope().agents == frozenset() and Scope().queues == frozenset()
    assert Scope(None, None) == Scope()


def test_frozen_hashable_and_comparable() -> None:
    scope = Scope(["1001"], ["sales"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        scope.agents = frozenset()  # type: ignore[misc]
    assert scope == Scope(("1001",), {"sales"})
    assert hash(scope) == hash(Scope(["1001"], ["sales"]))
    assert scope != Scope(["1001"])
    assert pickle.loads(pickle.dumps(scope)) == scope
    assert copy.deepcopy(scope) == scope
    assert repr(scope) == "Scope(agents=['1001'], queues=['sales'])"


@pytest.mark.parametrize("field", ["agents", "queues"])
@pytest.mark.parametrize("bare", ["1001", b"1001", ""])
def test_bare_string_instead_of_list_is_rejected(field: str, bare: object) -> None:
    # agents="1001" would otherwise mean {"1", "0"}.
    with pytest.raises(TypeError, match=field):
        Scope(**{field: bare})  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["agents", "queues"])
@pytest.mark.parametrize("bad", [[1001], [None], [b"1001"], 1001])
def test_non_str_items_are_rejected(field: str, bad: object) -> None:
    with pytest.raises(TypeError):
        Scope(**{field: bad})  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["agents", "queues"])
@pytest.mark.parametrize("bad", ["", "10\r01", "1001\n", "10\x0001", "a\r\nAction: Logoff"])
def test_empty_and_control_characters_are_rejected(field: str, bad: str) -> None:
    with pytest.raises(ValueError):
        Scope(**{field: ["ok", bad]})
