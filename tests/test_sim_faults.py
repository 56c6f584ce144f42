"""Fault hooks of the simulated PBX: drops, a silent peer, restarts, action hooks.

No sleeps: waits are socket reads with timeouts or ``server.wait_until``.
"""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Callable

import pytest
from test_sim_support import RawAmi

from pbxis.sim import Fault, ReceivedAction, SimServer, scenario

START = 1795764700.0


@pytest.fixture
def server() -> Iterator[SimServer]:
    with SimServer(pbx=scenario.create("idle", start_time=START), speed=0) as srv:
        yield srv


@pytest.fixture
def connect(server: SimServer) -> Iterator[Callable[[], RawAmi]]:
    clients: list[RawAmi] = []

    def factory() -> RawAmi:
        client = RawAmi(server.port)
        clients.append(client)
        client.login()
        client.event("SuccessfulAuth")
        client.events.clear()
        return client

    yield factory
    for client in clients:
        client.close()


def test_drop_all_resets_every_connection(server: SimServer,
                                          connect: Callable[[], RawAmi]) -> None:
    first, second = connect(), connect()
    assert server.wait_until(lambda: server.session_count == 2)
    assert server.drop_all() == 2
    assert first.wait_eof() and second.wait_eof()
    assert server.wait_until(lambda: server.connection_count == 0)
    again = connect()  # the server still listens
    assert again.action("Ping")["Ping"] == "Pong"


def test_hang_makes_a_silent_peer_until_resume(server: SimServer,
                                               connect: Callable[[], RawAmi]) -> None:
    client = connect()
    server.hang()
    aid = client.send("Ping")
    with pytest.raises(TimeoutError):
        client.response(aid, timeout=0.3)
    assert not client.eof  # the socket stays open
    server.resume()
    assert client.response(aid)["Ping"] == "Pong"


def test_restart_sends_shutdown_then_eof_and_resets_state(
        server: SimServer, connect: Callable[[], RawAmi]) -> None:
    client = connect()
    pbx = server.pbx
    assert client.action("QueueAdd", Queue="sales", Interface="PJSIP/1003",
                         MemberName="Carol Clark", Paused="true",
                         Reason="x")["Response"] == "Success"
    pbx.set_phone("1001", answer_after=None)
    pbx.place_call("sales")
    pbx.advance(3.0)
    assert pbx.channels
    client.drain(0.05)
    server.restart()
    shutdown = client.event("Shutdown")
    assert shutdown.headers == [("Event", "Shutdown"), ("Privilege", "system,all"),
                                ("Shutdown", "Cleanly"), ("Restart", "True")]
    assert client.wait_eof()
    assert not pbx.channels and not pbx.queues["sales"].entries
    assert "PJSIP/1003" in pbx.queues["sales"].members  # dynamic members persist
    fresh = RawAmi(server.port)
    fresh.login()
    assert fresh.event("FullyBooted")["Uptime"] == "0"
    pbx.set_phone("1001", answer_after=1.0)
    pbx.place_call("sales")
    assert fresh.event("Newchannel")["Uniqueid"].endswith(".0")  # sequences restart
    fresh.close()


def test_restart_without_notice_is_kill_9(server: SimServer,
                                          connect: Callable[[], RawAmi]) -> None:
    client = connect()
    server.restart(notify=False)
    frames = client.drain(0.5)
    assert client.eof and all(f.event != "Shutdown" for f in frames)


def test_restart_with_downtime_refuses_connections(server: SimServer) -> None:
    server.restart(downtime=1.0)
    assert not server.listening
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    assert server.wait_until(lambda: server.listening, timeout=5.0)
    client = RawAmi(server.port)
    assert client.login()["Response"] == "Success"
    client.close()


def test_stop_and_start_listening(server: SimServer, connect: Callable[[], RawAmi]) -> None:
    client = connect()
    server.stop_listening()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    assert client.action("Ping")["Ping"] == "Pong"  # existing sessions are untouched
    server.start_listening()
    connect()


def test_core_restart_command(server: SimServer, connect: Callable[[], RawAmi]) -> None:
    issuer, other = connect(), connect()
    issuer.send("Command", Command="core restart now")
    assert other.event("Shutdown")["Restart"] == "True"
    got = issuer.drain(0.5)
    assert issuer.eof and not [m for m in got if m.response or m.event == "Shutdown"]


def test_action_recorder_and_wait(server: SimServer, connect: Callable[[], RawAmi]) -> None:
    client = connect()
    start = len(server.actions)
    client.send("QueueStatus", Queue="sales")
    received = server.wait_for_action("QueueStatus", since=start)
    assert received.get("Queue") == "sales" and received.action_id == "t-2"
    assert server.action_names()[:1] == ["Login"]
    with pytest.raises(TimeoutError):
        server.wait_for_action("Originate", timeout=0.1)


def test_on_action_hook_overrides(server: SimServer, connect: Callable[[], RawAmi]) -> None:
    client = connect()

    def hook(action: ReceivedAction) -> bytes | Fault | None:
        if action.name == "Ping" and action.action_id == "ignored":
            return Fault.IGNORE
        if action.name == "QueuePause":
            return (f"Response: Error\r\nActionID: {action.action_id}\r\n"
                    "Message: Interface not found\r\n\r\n").encode()
        if action.name == "Originate":
            return Fault.DROP
        return None

    server.on_action = hook
    client.send("Ping", "ignored")
    assert client.action("Ping")["Ping"] == "Pong"  # the ignored one never got an answer
    resp = client.action("QueuePause", Interface="PJSIP/1001", Paused="true", Queue="sales")
    assert resp["Message"] == "Interface not found"
    assert not server.pbx.queues["sales"].members["PJSIP/1001"].paused
    client.send("Originate", Channel="PJSIP/1001", Exten="1", Context="default",
                Priority="1")
    assert client.wait_eof()


def test_send_raw_reaches_clients(server: SimServer, connect: Callable[[], RawAmi]) -> None:
    client = connect()
    server.send_raw(b"Event: Odd\r\nNo colon line\r\n\r\n")
    odd = client.event("Odd")
    assert odd.getall("Output") == ["No colon line"]


def test_slow_reader_is_disconnected() -> None:
    pbx = scenario.create("idle", start_time=START)
    with SimServer(pbx=pbx, speed=0, max_pending=4096) as server:
        client = RawAmi(server.port)
        client.login()
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        server.hang()  # bytes pile up in the server's queue
        for _ in range(20):
            pbx.pause("1001", "sales", "x")
            pbx.unpause("1001", "sales")
        server.resume()
        assert client.wait_eof()
        client.close()


def test_stop_leaves_no_threads() -> None:
    with SimServer(pbx=scenario.create("busy", seed=1, start_time=START), speed=5.0) as srv:
        client = RawAmi(srv.port)
        client.login()
        client.event("FullyBooted")
    client.close()
    assert not [t.name for t in threading.enumerate()
                if t.name.startswith("pbxis-sim") and t.is_alive()]
