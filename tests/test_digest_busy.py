"""The busy-period recordings (k, l1, l2: the same 300 calls, three sessions).

Too long to write out, so checked by invariants: the queues drain, every
agent ends without a call, no state event repeats its previous value, event
counts match the calls, the model ends empty, the event-mask session (l1)
gives exactly the same events as the unfiltered one (k), and the Filter
session (l2) the same events of the types its whitelist kept. Also measures
``Digest.feed`` throughput on k's wanted events.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from helpers import transcript
from replay import AGENTS, QUEUES, Lab, dicts, messages, replay, start

from pbxis.digest import Digest
from pbxis.protocol import Message, Parser

_cache: dict[str, tuple[list[dict[str, Any]], Digest]] = {}


def busy(name: str) -> tuple[list[dict[str, Any]], Digest]:
    """Replay a busy-period recording once (idle lab, nobody paused) and cache it."""
    if name not in _cache:
        digest, _ = start(Lab())
        events = dicts(replay(name, digest, wanted=Digest.handled_events))
        _cache[name] = (events, digest)
    return _cache[name]


def state_key(event: dict[str, Any]) -> tuple[Any, ...]:
    # phoneNumber is one state per agent: its queue comes and goes with the call
    if event["type"] == "phoneNumber":
        return ("phoneNumber", event["agent"])
    return (event["type"], event.get("agent"), event.get("queue"))


def state_value(event: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted((k, v) for k, v in event.items() if k not in ("type", "agent")))


@pytest.mark.parametrize("name", ["k-busy.ami", "l1-busy-eventmask.ami"])
def test_busy_period_invariants(name: str) -> None:
    events, digest = busy(name)
    last: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for event in events:
        if event["type"] in ("agentComplete", "originateFailed"):
            continue
        key, value = state_key(event), state_value(event)
        assert last.get(key) != value, f"repeated state event {event}"
        last[key] = value
    # the queues drain and every agent ends without a call
    for queue in QUEUES:
        assert last[("queueCount", None, queue)] == (("count", 0), ("queue", queue))
    for agent in AGENTS:
        assert dict(last[("phoneNumber", agent)])["number"] is None
        assert dict(last[("extensionStatus", agent, None)])["status"] == "not_inuse"
    counts = Counter(e["type"] for e in events)
    # 193 answered calls (AgentConnect/AgentComplete 193 each in the recording)
    assert counts["agentComplete"] == 193
    # 300 joins + 300 leaves, each changes the count by one
    assert counts["queueCount"] == 600
    # 251 ring attempts (AgentCalled): at most a number and a None each
    assert 2 * 193 <= counts["phoneNumber"] <= 2 * 251
    # one per QueueMemberStatus at most (913 in the recording)
    assert 0 < counts["queueMemberStatus"] <= 913
    assert set(counts) == {
        "agentComplete",
        "queueCount",
        "phoneNumber",
        "queueMemberStatus",
        "extensionStatus",
    }
    # nothing left behind
    model = digest.model
    assert model.calls == {} and model.waiting == {}
    snap = digest.snapshot()
    assert all(a["calls"] == [] and a["phoneNumber"] is None for a in snap["agents"].values())


def test_eventmask_session_gives_the_same_events() -> None:
    # EventMask agent,call keeps every class the digest reads (no VarSet needed)
    assert busy("l1-busy-eventmask.ami")[0] == busy("k-busy.ami")[0]


def test_filter_session_gives_the_same_kept_events() -> None:
    # l2's whitelist (see l2-busy-filter.actions): QueueMemberStatus,
    # QueueCaller*, QueueMember*, Agent*, DeviceStateChange, ExtensionStatus.
    names = {m.event for m in messages("l2-busy-filter.ami") if m.event}
    assert names & Digest.handled_events == {
        "QueueMemberStatus",
        "QueueCallerJoin",
        "QueueCallerLeave",
        "AgentCalled",
        "AgentComplete",
        "DeviceStateChange",
    }
    kept = {"queueCount", "queueMemberStatus", "extensionStatus", "agentName", "agentComplete"}
    k_events, _ = busy("k-busy.ami")
    l2_events, l2_digest = busy("l2-busy-filter.ami")
    assert [e for e in l2_events if e["type"] in kept] == [e for e in k_events if e["type"] in kept]
    # Without Hangup events the calls AgentCalled opened never end: the model
    # still stays bounded (MAX_CALLS_PER_AGENT).
    assert len(l2_digest.model.calls) <= 32 * len(AGENTS)


def test_skip_set_is_complete() -> None:
    # Parsing only handled_events gives the very same output as parsing all.
    digest, _ = start(Lab())
    everything = dicts(replay("k-busy.ami", digest))
    assert everything == busy("k-busy.ami")[0]


def test_feed_throughput() -> None:
    """Measures Digest.feed on k-busy's wanted events (printed with -s)."""
    data = transcript("k-busy.ami")
    parser = Parser(wanted=Digest.handled_events)
    frames = parser.feed(data)
    wanted = [f for f in frames if isinstance(f, Message) and f.event]
    best = float("inf")
    for _ in range(3):
        digest, _ = start(Lab())
        feed = digest.feed
        t0 = time.perf_counter()
        for msg in wanted:
            feed(msg)
        best = min(best, time.perf_counter() - t0)
    rate = len(wanted) / best
    print(
        f"\nDigest.feed: {len(wanted)} events of {len(frames) + parser.skipped} frames "
        f"in {best * 1000:.1f} ms = {rate:,.0f} events/s ({best / len(wanted) * 1e6:.2f} us each)"
    )
    assert rate > 50_000  # loose: catches a pathological regression, not noise
