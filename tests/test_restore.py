"""Restoring tracked state after a reconnect, on the simulated PBX.

A constant number of bulk queries (independent of the number of agents),
only for what channels still track; subscriptions made during the outage
are served when the link returns; every channel receives exactly the
changes that happened meanwhile, after ``connectionRestored``, and its view
then equals Asterisk's. No sleeps: channel reads, ``SimServer.wait_until``,
and a Ping whose answer comes after everything sent before it.
"""
from __future__ import annotations

import threading

import pytest
from conftest import wait_event
from helpers import details, drain, fold, key, settle

import pbxis
from pbxis.events import CONNECTION_LOST, CONNECTION_RESTORED
from pbxis.sim import Fault, SimServer, SimulatedPbx, scenario
from pbxis.versions import DEVICE_STATES, MEMBER_STATUSES

FAST = {"keepalive": 1.0, "reconnect_base": 0.02, "reconnect_cap": 0.1}
SESSION = {"Login", "Filter", "Events", "Ping"}












def truth(pbx, agents, queues) -> dict:
    """Asterisk's own view of the scope, asked afresh (QueueStatus, DEVICE_STATE)."""
    raw = pbx.send_action("QueueStatus").events
    view: dict = {}
    names: dict = {}
    members = {}
    for ev in raw:
        if ev["Event"] == "QueueParams" and ev["Queue"] in queues:
            view[("queueCount", None, ev["Queue"])] = {"count": int(ev["Calls"])}
        elif ev["Event"] == "QueueMember":
            agent = ev["Location"].split("/", 1)[1]
            names[agent] = ev["Name"]
            members[(agent, ev["Queue"])] = ev
    for agent in agents:
        if agent in names:
            view[("agentName", agent, None)] = {"name": names[agent]}
        state = pbx.send_action("Getvar", Variable=f"DEVICE_STATE(PJSIP/{agent})")["Value"]
        view[("extensionStatus", agent, None)] = {"status": DEVICE_STATES[state]}
        for q in queues:
            m = members.get((agent, q))
            if m is None:
                value = {"status": "loggedoff"}
            elif m["Paused"] == "1":
                value = {"status": "paused"}
                if m.get("PausedReason"):
                    value["reason"] = m["PausedReason"]
            else:
                value = {"status": MEMBER_STATUSES[m["Status"]]}
            view[("queueMemberStatus", agent, q)] = value
    return view


def queries(server: SimServer, connection: int) -> list[tuple[str, tuple]]:
    return [
        (a.name, tuple((k, v) for k, v in a.message.headers if k not in ("Action", "ActionID")))
        for a in list(server.actions)
        if a.connection == connection and a.name not in SESSION
    ]


def last_connection(server: SimServer) -> int:
    return max(a.connection for a in server.actions)


@pytest.fixture
def server():
    with SimServer(pbx=scenario.create("idle", noise=False), speed=0) as srv:
        yield srv


def down(server: SimServer, *channels) -> None:
    """Start an outage: drop the link and refuse reconnects."""
    server.stop_listening()
    server.drop_all()
    for ch in channels:
        wait_event(ch, lambda e: e.type == CONNECTION_LOST, timeout=5)


def up(server: SimServer, *channels) -> list[list]:
    """End the outage; for each channel, the batch published with connectionRestored."""
    server.start_listening()
    batches = []
    for ch in channels:
        seen: list = []
        wait_event(ch, lambda e: e.type == CONNECTION_RESTORED, timeout=5, seen=seen)
        assert [e.type for e in seen] == [CONNECTION_RESTORED], seen
        batches.append(drain(ch))
    return batches


# -- cost --------------------------------------------------------------------------


@pytest.mark.parametrize("agents", [20, 300])
def test_restore_queries_do_not_depend_on_the_number_of_agents(agents):
    sim = SimulatedPbx(agents=agents, queues=5, noise=False)
    names = [str(1001 + i) for i in range(agents)]
    queue_names = list(sim.queues)
    with SimServer(pbx=sim, speed=0) as server, pbxis.connect(server.url(), **FAST) as pbx:
        ch = pbx.event_channel(agents=names, queues=queue_names)
        settle(pbx, ch)
        server.drop_all()
        wait_event(ch, lambda e: e.type == CONNECTION_RESTORED, timeout=10)
        sent = queries(server, last_connection(server))
        assert sorted(sent) == sorted(
            [("QueueStatus", (("Queue", q),)) for q in queue_names]
            + [("DeviceStateList", ()), ("CoreShowChannels", ())]
        )


# -- exactly the changes ------------------------------------------------------------------


def test_each_channel_gets_exactly_the_changes_of_the_outage_then_matches_asterisk(server):
    sim = server.pbx
    scopes = {
        "a": (["1001", "1002"], ["sales"]),
        "b": (["1003"], ["support", "sales"]),
        "c": (["1002"], ["support"]),
    }
    with pbxis.connect(server.url(), **FAST) as pbx:
        pbx.queue_action("add", agent="1003", queue="sales", member_name="Carol Clark")
        chans = {n: pbx.event_channel(agents=a, queues=q) for n, (a, q) in scopes.items()}
        before = {n: fold({}, settle(pbx, ch)) for n, ch in chans.items()}
        for n, (a, q) in scopes.items():
            assert before[n] == truth(pbx, a, q), n
        start = len(server.actions)

        down(server, *chans.values())
        with sim.lock:
            sim.pause("1001", "sales", "lunch")         # an agent paused
            sim.queue_remove("sales", "PJSIP/1003")     # a dynamic member removed
            sim.set_reachable("1002", False)            # a phone unplugged
        batches = dict(zip(chans, up(server, *chans.values())))

        for n, (a, q) in scopes.items():
            after = fold(before[n], batches[n])
            assert after == truth(pbx, a, q), n
            changed = {k: v for k, v in after.items() if before[n].get(k) != v}
            got = [(key(e), details(e)) for e in batches[n]]
            assert sorted(got) == sorted(changed.items()), n  # those changes, each once
        assert batches["a"] and batches["b"] and batches["c"]

        # Nothing else follows: the next event each channel gets is a new change.
        with sim.lock:
            sim.set_reachable("1002", True)
            sim.pause("1003", "support", "sentinel")
        for n, ch in chans.items():
            nxt = ch.get(timeout=5)
            assert nxt.type in ("extensionStatus", "queueMemberStatus", "agentName"), (n, nxt)
            assert nxt.agent in scopes[n][0]

        # Nothing was sent twice: every ActionID once, and no user command again.
        ids = [a.action_id for a in server.actions]
        assert len(ids) == len(set(ids))
        assert [a.name for a in server.actions].count("QueueAdd") == 1
        assert "QueueAdd" not in [a.name for a in server.actions[start:]]


def test_discrete_events_and_state_during_the_restore_are_not_lost(server):
    sim = server.pbx
    sim.set_phone("1001", answer_after=0.5)
    gate = threading.Event()
    hold_restore = {"on": True}

    def hook(act):
        # Keep the first restore's DeviceStateList unanswered until the test
        # has made a call complete meanwhile.
        if act.name == "DeviceStateList" and hold_restore["on"]:
            hold_restore["on"] = False
            gate.wait(5)
        return None

    with pbxis.connect(server.url(), **FAST) as pbx:
        ch = pbx.event_channel(agents=["1001"], queues=["sales"])
        settle(pbx, ch)
        server.on_action = hook
        server.drop_all()
        wait_event(ch, lambda e: e.type == CONNECTION_LOST, timeout=5)
        server.wait_for_action("DeviceStateList", since=0)
        # While the restore waits: a whole call, answered and completed.
        sim.place_call("sales", caller_num="555077", talk=2)
        sim.advance(5.0)
        gate.set()
        seen: list = []
        wait_event(ch, lambda e: e.type == CONNECTION_RESTORED, timeout=10, seen=seen)
        batch = drain(ch)
        complete = [e for e in batch if e.type == "agentComplete"]
        assert len(complete) == 1 and complete[0]["talkTime"] >= 1
        states = fold({}, batch)
        assert states.get(("phoneNumber", "1001", None), {"number": None})["number"] is None
        assert [e.type for e in seen] == [CONNECTION_RESTORED]  # nothing before it


# -- what is restored ---------------------------------------------------------------------


def test_released_tracking_is_not_restored(server):
    with pbxis.connect(server.url(), **FAST) as pbx:
        keep = pbx.event_channel(agents=["1001"], queues=["sales"])
        gone_before = pbx.event_channel(agents=["1003"], queues=["support"])
        gone_during = pbx.event_channel(agents=["1002"], queues=["q-none"])
        settle(pbx, keep)
        gone_before.close()
        down(server, keep)
        gone_during.close()
        up(server, keep)
        sent = queries(server, last_connection(server))
        text = repr(sent)
        for released in ("support", "1003", "1002", "q-none"):
            assert released not in text, (released, sent)
        assert ("QueueStatus", (("Queue", "sales"),)) in sent
        assert set(pbx.snapshot()["agents"]) == {"1001"}


def test_a_subscription_made_during_the_outage_is_served_when_the_link_returns(server):
    with pbxis.connect(server.url(), **FAST) as pbx:
        old = pbx.event_channel(agents=["1001"], queues=["sales"])
        settle(pbx, old)
        down(server, old)
        new = pbx.event_channel(agents=["1003"], queues=["support"])
        assert drain(new) == []  # nothing known yet, nothing sent
        other = pbx.event_channel(agents=["1002"], queues=["support"])
        _, batch, other_batch = up(server, old, new, other)
        sent = queries(server, last_connection(server))
        assert ("QueueStatus", (("Queue", "support"),)) in sent
        assert ("QueueStatus", (("Member", "PJSIP/1003"),)) in sent
        assert ("QueueStatus", (("Member", "PJSIP/1002"),)) in sent
        assert fold({}, batch) == truth(pbx, ["1003"], ["support"])
        assert fold({}, other_batch) == truth(pbx, ["1002"], ["support"])


def test_a_link_that_drops_again_during_the_restore_announces_one_outage(server):
    drops = {"left": 2}

    def hook(act):
        if act.name == "CoreShowChannels" and drops["left"]:
            drops["left"] -= 1
            return Fault.DROP
        return None

    with pbxis.connect(server.url(), **FAST) as pbx:
        ch = pbx.event_channel(agents=["1001", "1002"], queues=["sales"])
        before = fold({}, settle(pbx, ch))
        server.on_action = hook
        server.drop_all()
        seen: list = []
        wait_event(ch, lambda e: e.type == CONNECTION_RESTORED, timeout=10, seen=seen)
        assert [e.type for e in seen] == [CONNECTION_LOST, CONNECTION_RESTORED]
        assert drops["left"] == 0 and pbx._link.connects == 4
        assert fold(before, drain(ch)) == truth(pbx, ["1001", "1002"], ["sales"])
