"""Subscription-driven tracking through the client, on the simulated PBX:
a channel asks only for what is not tracked yet; introductions are complete;
a callback never runs on the reader and its exceptions don't stop delivery."""
from __future__ import annotations

import logging
import queue
import threading

import pytest

import pbxis
from pbxis.sim import SimServer, scenario


@pytest.fixture
def server():
    with SimServer(pbx=scenario.create("idle"), speed=0) as srv:
        yield srv


def drain_intro(ch, until_quiet: float = 0.5):
    got = []
    while True:
        try:
            got.append(ch.get(timeout=until_quiet))
        except queue.Empty:
            return got


def queries_since(server, start):
    return [(a.name, tuple(sorted((k, v) for k, v in a.message.headers
                                  if k not in ("Action", "ActionID"))))
            for a in server.actions[start:]]


def test_a_channel_queries_only_what_is_not_tracked(server):
    with pbxis.connect(server.url()) as pbx:
        start = len(server.actions)
        ch1 = pbx.event_channel(agents=["1001"], queues=["sales"])
        intro = drain_intro(ch1)
        first = queries_since(server, start)
        assert ("QueueStatus", (("Queue", "sales"),)) in first
        assert any(name == "QueueStatus" and ("Member", "PJSIP/1001") in h for name, h in first)
        assert not any(name in ("DeviceStateList", "CoreShowChannels", "ExtensionStateList")
                       for name, _ in first), "no PBX-wide sweep per subscriber"
        types = {(e.type, e.agent, e.queue) for e in intro}
        assert ("agentName", "1001", None) in types
        assert ("queueMemberStatus", "1001", "sales") in types
        assert ("extensionStatus", "1001", None) in types
        assert ("queueCount", None, "sales") in types

        start = len(server.actions)
        ch2 = pbx.event_channel(agents=["1001"], queues=["sales"])
        intro2 = drain_intro(ch2)
        assert queries_since(server, start) == []  # everything already tracked
        assert {(e.type, e.agent, e.queue) for e in intro2} == types

        start = len(server.actions)
        ch3 = pbx.event_channel(agents=["1001", "1002"], queues=["sales"])
        drain_intro(ch3)
        third = queries_since(server, start)
        assert third and all("PJSIP/1001" not in str(h) for _, h in third)
        assert any("PJSIP/1002" in str(h) for _, h in third)
        for ch in (ch1, ch2, ch3):
            ch.close()
        assert pbx.snapshot()["agents"] == {}


def test_callbacks_run_on_pbxis_threads_and_survive_exceptions(server, caplog):
    seen = []
    done = threading.Event()

    def callback(ev):
        seen.append((ev.type, threading.current_thread().name))
        if ev.type == "agentName":
            raise RuntimeError("user bug")
        if ev.type == "phoneNumber" and ev["number"] == "555011":
            done.set()

    with pbxis.connect(server.url()) as pbx:
        with caplog.at_level(logging.ERROR):
            sub = pbx.subscribe(callback, agents=["1001"], queues=["sales"])
            server.pbx.place_call("sales", caller_num="555011", patience=3)
            server.pbx.advance(10)
            assert done.wait(5), seen
        sub.close()
    assert all(name.startswith("pbxis-subscriber-") for _, name in seen)
    assert "user bug" in caplog.text
