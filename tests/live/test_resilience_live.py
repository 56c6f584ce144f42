"""Server-side narrowing, reconnect and restore on real Asterisk 22 (issue 5).

* What an include ``Filter`` does to the answers of our own actions: list
  items (QueueStatus, DeviceStateList, CoreShowChannels, Status) always
  pass; OriginateResponse and ParkedCall -- events, though they answer our
  actions -- are hidden unless whitelisted. pbxis whitelists them.
* The EventMask fallback for a user without ``system`` write; narrowing on
  every login.
* SIGKILL and ``core restart now`` in the middle of a queue call: every
  channel gets connectionLost, connectionRestored, then the truth.
* A half-open link (tests/faultproxy.py) while an agent is paused and a
  dynamic member removed through Asterisk's CLI: after the restore each
  channel got exactly those changes, its view equals a fresh QueueStatus,
  and no action was sent twice.
"""
from __future__ import annotations

import logging
import queue
import socket
import time

import pytest
from conftest import wait_event
from faultproxy import FaultProxy
from harness import lab as lab_module
from helpers import details, drain, fold, key, settle

import pbxis
from pbxis.commands import FALLBACK_EVENT_MASK
from pbxis.events import CONNECTION_LOST, CONNECTION_RESTORED
from pbxis.protocol import Message, Parser, encode_action
from pbxis.versions import DEVICE_STATES

pytestmark = pytest.mark.asterisk

SECRET = lab_module.MANAGER_USERS["pbxis"]
FAST = {"keepalive": 1.0, "reconnect_base": 0.2, "reconnect_cap": 1.0}
AGENTS = ("1001", "1002", "1003")


# -- helpers ---------------------------------------------------------------------------


class RawAmi:
    """One raw AMI session, frames parsed by pbxis.protocol (no pbxis client)."""

    def __init__(self, user: str = "pbxis") -> None:
        self.sock = socket.create_connection((lab_module.AMI_HOST, lab_module.AMI_PORT), 10)
        self.parser = Parser()
        self.frames: list[Message] = []
        self.n = 0
        reply = self.action("Login", Username=user, Secret=lab_module.MANAGER_USERS[user])
        assert reply[0]["Response"] == "Success"

    def send(self, name: str, **headers: str) -> str:
        self.n += 1
        action_id = f"raw-{self.n}"
        self.sock.sendall(encode_action(name, action_id, list(headers.items())))
        return action_id

    def until(self, predicate, timeout: float = 10.0) -> Message:
        deadline = time.monotonic() + timeout
        while True:
            for frame in self.frames:
                if predicate(frame):
                    return frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("AMI frame not received in time")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            assert data, "AMI closed the connection"
            self.frames += [f for f in self.parser.feed(data) if isinstance(f, Message)]

    def action(self, name: str, **headers: str) -> list[Message]:
        """Send, wait for the response (and a list's Complete); return them all."""
        action_id = self.send(name, **headers)

        def done(f: Message) -> bool:
            if f.get("ActionID") != action_id:
                return False
            if f.get("Response") is not None and (f.get("EventList") or "").lower() != "start":
                return True
            return (f.get("EventList") or "").lower() == "complete"

        self.until(done)
        return [f for f in self.frames if f.get("ActionID") == action_id]

    def events(self, name: str) -> list[Message]:
        return [f for f in self.frames if f.get("Event") == name]

    def close(self) -> None:
        self.sock.close()












def truth(pbx, agents, queues) -> dict:
    """A fresh ground truth: pbx.queue_status() and DEVICE_STATE() per agent."""
    status = {q["queue"]: q for q in pbx.queue_status()}
    view: dict = {}
    for q in queues:
        view[("queueCount", None, q)] = {"count": status[q]["calls"]}
    for agent in agents:
        members = {q: m for q, s in status.items() for m in s["members"] if m["agent"] == agent}
        names = {m["name"] for m in members.values() if m["name"] != m["location"]}
        if names:
            view[("agentName", agent, None)] = {"name": names.pop()}
        value = pbx.send_action("Getvar", Variable=f"DEVICE_STATE(PJSIP/{agent})")["Value"]
        view[("extensionStatus", agent, None)] = {"status": DEVICE_STATES[value]}
        for q in queues:
            m = members.get(q)
            if m is None:
                state = {"status": "loggedoff"}
            elif m["paused"]:
                state = {"status": "paused"}
                if m["pausedReason"]:
                    state["reason"] = m["pausedReason"]
            else:
                state = {"status": m["status"]}
            view[("queueMemberStatus", agent, q)] = state
    return view


def converge(pbx, ch, view: dict, agents, queues, timeout: float = 20.0) -> dict:
    """Read ``ch`` until its view equals the truth (Asterisk may still be
    settling, e.g. qualifying the phones after a restart)."""
    deadline = time.monotonic() + timeout
    while True:
        view = fold(view, settle(pbx, ch))
        expected = truth(pbx, agents, queues)
        if all(view.get(k) == v for k, v in expected.items()):
            return view
        left = deadline - time.monotonic()
        if left <= 0:
            diff = {k: (view.get(k), v) for k, v in expected.items() if view.get(k) != v}
            raise AssertionError(f"view never matched Asterisk: {diff}")
        try:
            view = fold(view, [ch.get(timeout=min(left, 2.0))])
        except queue.Empty:
            pass


def restored(ch, timeout: float = 30.0, lost_read: bool = False) -> tuple[list, list]:
    """connectionLost (unless already read), then connectionRestored.

    Returns (the events before connectionRestored -- e.g. the hangups Asterisk
    sent between Shutdown and EOF --, the batch published with it).
    """
    seen: list = []
    wait_event(ch, lambda e: e.type == CONNECTION_RESTORED, timeout=timeout, seen=seen)
    links = [e.type for e in seen if e.type.startswith("connection")]
    assert links == ([] if lost_read else [CONNECTION_LOST]) + [CONNECTION_RESTORED], links
    return seen[:-1], drain(ch)


@pytest.fixture
def dynamic_1003(lab):
    """1003 added to sales as a dynamic member (removed again afterwards)."""
    yield "1003"
    try:
        lab.asterisk.cli("queue remove member PJSIP/1003 from sales")
    except lab_module.LabError:
        pass


# -- what an include Filter hides --------------------------------------------------------


def test_include_filter_keeps_list_items_but_hides_originateresponse_and_parkedcall(lab):
    filtered, control = RawAmi(), RawAmi()
    try:
        ok = filtered.action("Filter", Operation="Add",
                             Filter="^Event: (QueueMemberStatus)[[:space:]]")
        assert ok[0]["Response"] == "Success"
        since = len(filtered.frames)  # FullyBooted etc. came before the filter
        caller = lab.call("sales", number="555071", talk=30)
        control.until(lambda f: f.get("Event") == "BridgeEnter"
                      and (f.get("Channel") or "").startswith("PJSIP/caller-"), 20)
        # 1. The list items of our own actions: all there, as without a filter.
        lists = {"QueueStatus": {}, "DeviceStateList": {}, "CoreShowChannels": {}, "Status": {}}
        for name, headers in lists.items():
            got, want = filtered.action(name, **headers), control.action(name, **headers)
            items = [f for f in got if f.get("Event")]
            assert items and items[-1]["EventList"] == "Complete", name
            assert len(items) == len(
                [f for f in want if f.get("Event")]) == int(items[-1]["ListItems"]) + 1, name
        channels = [f["Channel"] for f in control.events("CoreShowChannel")]
        caller_chan = next(c for c in channels if c.startswith("PJSIP/caller-"))
        agent_chan = next(c for c in channels if c.startswith("PJSIP/100"))
        one = filtered.action("Status", Channel=caller_chan)
        assert [f.get("Event") for f in one][1:] == ["Status", "StatusComplete"]
        # 2. OriginateResponse: the control session gets it, the filtered one not.
        for session in (filtered, control):
            session.send("Originate", Channel="PJSIP/nosuch", Exten="1001",
                         Context="default", Priority="1", Async="true")
        control.until(lambda f: f.get("Event") == "OriginateResponse")
        filtered.action("Ping")  # anything Asterisk queued for it came before this answer
        assert filtered.events("OriginateResponse") == []
        # 3. ParkedCall: same.
        park = filtered.action("Park", Channel=caller_chan, TimeoutChannel=agent_chan,
                               AnnounceChannel=agent_chan)
        assert park[0]["Response"] == "Success"
        control.until(lambda f: f.get("Event") == "ParkedCall")
        filtered.action("Ping")
        assert filtered.events("ParkedCall") == []
        unsolicited = {f.get("Event") for f in filtered.frames[since:] if f.get("ActionID") is None}
        assert unsolicited <= {"QueueMemberStatus"}, unsolicited
        caller.hangup()
    finally:
        filtered.close()
        control.close()


def test_pbxis_whitelist_lets_its_own_answers_through(lab, ami_url):
    with pbxis.connect(ami_url, **FAST) as pbx:
        ch = pbx.event_channel(agents=["1001", "1002"], queues=["sales"])
        settle(pbx, ch)
        assert pbx._narrowing == "filter"
        action_id = pbx.originate_call("1099", "5551234")
        ev = wait_event(ch, lambda e: e.type == "originateFailed", what="originateFailed")
        assert ev["actionId"] == action_id
        # Only 1001 rings: a ringall race would leave the losing leg to resolve.
        pbx.queue_action("pause", agent="1002", queue="sales", reason="park test")
        try:
            lab.call("sales", number="555072", talk=30)
            wait_event(ch, lambda e: e.type == "extensionStatus" and e.agent == "1001"
                       and e["status"] == "inuse", what="1001 talks")
            space = pbx.park_and_announce("1001", timeout=20)  # needs ParkedCall
            assert space.isdigit()
        finally:
            pbx.queue_action("unpause", agent="1002", queue="sales")


# -- narrowing on every login ------------------------------------------------------------


def test_eventmask_fallback_for_a_user_without_system_write_on_every_login(lab):
    secret = lab_module.MANAGER_USERS["limited"]
    with FaultProxy(lab_module.AMI_PORT) as proxy:
        url = f"ami://limited:{secret}@127.0.0.1:{proxy.port}"
        with pbxis.connect(url, **FAST) as pbx:
            ch = pbx.event_channel(agents=["1001"], queues=["sales"])
            settle(pbx, ch)
            proxy.drop()
            restored(ch)
            settle(pbx, ch)
            assert pbx._narrowing == "eventmask"
            for number in (1, 2):
                acts = [m for n, m in proxy.actions() if n == number]
                names = [m["Action"] for m in acts]
                assert names[:2] == ["Login", "Filter"], names
                masks = [m["EventMask"] for m in acts if m["Action"] == "Events"]
                assert masks == [FALLBACK_EVENT_MASK]
            # The model works through the class mask.
            pbx.queue_action("pause", agent="1001", queue="sales", reason="mask")
            try:
                wait_event(ch, lambda e: e.type == "queueMemberStatus"
                           and e["status"] == "paused", what="paused via EventMask")
            finally:
                pbx.queue_action("unpause", agent="1001", queue="sales")


def test_the_filter_is_applied_again_after_a_reconnect(lab):
    with FaultProxy(lab_module.AMI_PORT) as proxy:
        url = f"ami://pbxis:{SECRET}@127.0.0.1:{proxy.port}"
        with pbxis.connect(url, **FAST) as pbx:
            ch = pbx.event_channel(agents=list(AGENTS), queues=["sales"])
            settle(pbx, ch)
            proxy.drop()
            restored(ch)
            settle(pbx, ch)
            assert pbx._narrowing == "filter"
            names = [m["Action"] for n, m in proxy.actions() if n == 2]
            assert names[:3] == ["Login", "Filter", "Filter"]
            # Asterisk itself now sends only the whitelist: during a whole
            # call (VarSet, Newexten, Newstate, TestEvent...) the parser skips
            # nothing.
            skipped = pbx._link._parser.skipped
            caller = lab.call("sales", number="555073", talk=1)
            wait_event(ch, lambda e: e.type == "agentComplete", what="agentComplete")
            caller.wait(20)
            settle(pbx, ch)
            assert pbx._link._parser.skipped == skipped


# -- Asterisk restarts in the middle of a queue call ------------------------------------------


def call_in_progress(lab, pbx, chans: dict, views: dict, number: str) -> None:
    """A caller talks to 1001 through sales (1002 and 1003 only ring); every
    view has followed."""
    lab.phone("1002", mode="noanswer")
    lab.phone("1003", mode="noanswer")
    lab.call("sales", number=number, talk=60)
    first = next(iter(chans))
    seen: list = []
    wait_event(chans[first], lambda e: e.type == "extensionStatus" and e.agent == "1001"
               and e["status"] == "inuse", what="1001 talks", seen=seen)
    views[first] = fold(views[first], seen)
    for n, ch in chans.items():
        views[n] = fold(views[n], settle(pbx, ch))
    assert any(v["number"] == number for view in views.values() for k, v in view.items()
               if k[0] == "phoneNumber")


def scopes():
    return {"a": (["1001", "1002"], ["sales"]), "b": (["1003"], ["sales", "support"])}


def test_sigkill_mid_call_then_restart_gives_lost_restored_then_the_truth(lab, ami_url,
                                                                         dynamic_1003):
    with pbxis.connect(ami_url, **FAST) as pbx:
        pbx.queue_action("add", agent="1003", queue="sales", member_name="Carol Clark")
        chans = {n: pbx.event_channel(agents=a, queues=q) for n, (a, q) in scopes().items()}
        views = {n: fold({}, settle(pbx, ch)) for n, ch in chans.items()}
        assert views["b"][("queueMemberStatus", "1003", "sales")]["status"] == "not_inuse"
        call_in_progress(lab, pbx, chans, views, "555074")

        lab.asterisk.kill()
        started = time.monotonic()
        for n, ch in chans.items():
            # The call's last events may still be on their way to the channel
            # (e.g. the QueueCallerLeave of the answer): they are part of the view.
            seen: list = []
            wait_event(ch, lambda e: e.type == CONNECTION_LOST, timeout=5, seen=seen)
            views[n] = fold(views[n], seen)
        assert time.monotonic() - started < 3.0  # keepalive: 2 x 1 s
        with pytest.raises(pbxis.NotConnectedError):
            pbx.send_action("Ping")
        lab.asterisk.start()
        for n, ch in chans.items():
            before, batch = restored(ch, lost_read=True)
            views[n] = fold(views[n], before + batch)
        lab.wait_reachable(*AGENTS)
        for n, (agents, queues) in scopes().items():
            views[n] = converge(pbx, chans[n], views[n], agents, queues)
            for agent in agents:
                assert views[n].get(("phoneNumber", agent, None), {"number": None})[
                    "number"] is None
                assert views[n][("extensionStatus", agent, None)]["status"] == "not_inuse"
        # persistentmembers = no in the lab's queues.conf: the restart dropped
        # the dynamic member.
        assert views["b"][("queueMemberStatus", "1003", "sales")] == {"status": "loggedoff"}
        assert views["b"][("queueMemberStatus", "1003", "support")]["status"] == "not_inuse"


def test_core_restart_now_mid_call_goes_through_the_shutdown_event(lab, ami_url, dynamic_1003,
                                                                   caplog):
    caplog.set_level(logging.WARNING, logger="pbxis")
    with pbxis.connect(ami_url, **FAST) as pbx:
        pbx.queue_action("add", agent="1003", queue="sales", member_name="Carol Clark")
        chans = {n: pbx.event_channel(agents=a, queues=q) for n, (a, q) in scopes().items()}
        views = {n: fold({}, settle(pbx, ch)) for n, ch in chans.items()}
        call_in_progress(lab, pbx, chans, views, "555075")
        pid = lab.asterisk.pid
        try:
            lab.asterisk.cli("core restart now", timeout=10)
        except lab_module.LabError:
            pass  # the console may be cut off by the restart
        for n, ch in chans.items():
            before, batch = restored(ch)
            views[n] = fold(views[n], before + batch)
        assert lab.asterisk.pid == pid  # re-exec in place
        assert any("shutting down (restart: True)" in r.getMessage() for r in caplog.records)
        lab.wait_reachable(*AGENTS)
        for n, (agents, queues) in scopes().items():
            views[n] = converge(pbx, chans[n], views[n], agents, queues)
            for agent in agents:
                assert views[n].get(("phoneNumber", agent, None), {"number": None})[
                    "number"] is None
        assert views["b"][("queueMemberStatus", "1003", "sales")] == {"status": "loggedoff"}


# -- a half-open link while Asterisk's CLI changes things ----------------------------------------


def test_half_open_link_changes_made_meanwhile_arrive_exactly_once(lab, dynamic_1003):
    cli = lab.asterisk.cli
    chosen = {"a": (["1001", "1002"], ["sales"]), "b": (["1003"], ["sales", "support"]),
              "c": (["1002"], ["support"])}
    with FaultProxy(lab_module.AMI_PORT) as proxy:
        url = f"ami://pbxis:{SECRET}@127.0.0.1:{proxy.port}"
        with pbxis.connect(url, **FAST) as pbx:
            pbx.queue_action("add", agent="1003", queue="sales", member_name="Carol Clark")
            chans = {n: pbx.event_channel(agents=a, queues=q) for n, (a, q) in chosen.items()}
            before = {n: fold({}, settle(pbx, ch)) for n, ch in chans.items()}
            for n, (agents, queues) in chosen.items():
                assert before[n] == truth(pbx, agents, queues), n
            sent_before = len(proxy.actions())

            proxy.hold()      # half-open: both sockets open, nothing flows
            proxy.refuse()    # and reconnects are refused for now
            cli("queue pause member PJSIP/1001 queue sales reason lunch")
            cli("queue remove member PJSIP/1003 from sales")
            for ch in chans.values():
                wait_event(ch, lambda e: e.type == CONNECTION_LOST, timeout=10)
            with pytest.raises(pbxis.NotConnectedError):
                pbx.queue_status()
            proxy.drop()
            proxy.accept()
            batches = {}
            for n, ch in chans.items():
                before_restored, batches[n] = restored(ch, lost_read=True)
                assert before_restored == []  # the held events never arrived

            for n, (agents, queues) in chosen.items():
                after = fold(before[n], batches[n])
                assert after == truth(pbx, agents, queues), n
                changed = {k: v for k, v in after.items() if before[n].get(k) != v}
                got = [(key(e), details(e)) for e in batches[n]]
                assert sorted(got) == sorted(changed.items()), n
            assert dict([(key(e), details(e)) for e in batches["a"]])[
                ("queueMemberStatus", "1001", "sales")] == {"status": "paused", "reason": "lunch"}
            assert dict([(key(e), details(e)) for e in batches["b"]])[
                ("queueMemberStatus", "1003", "sales")] == {"status": "loggedoff"}
            assert batches["c"] == []  # nothing in its scope changed

            # Nothing else follows: the next event is a new change.
            cli("queue unpause member PJSIP/1001 queue sales")
            nxt = chans["a"].get(timeout=10)
            assert (key(nxt), details(nxt)) == (("queueMemberStatus", "1001", "sales"),
                                                {"status": "not_inuse"})

            # Nothing was sent twice.
            actions = proxy.actions()
            ids = [m["ActionID"] for _, m in actions]
            assert len(ids) == len(set(ids))
            assert [m["Action"] for _, m in actions].count("QueueAdd") == 1
            again = [m["Action"] for _, m in actions[sent_before:]]
            assert set(again) <= {"Ping", "Login", "Filter", "QueueStatus", "DeviceStateList",
                                  "CoreShowChannels", "Getvar"}, again
