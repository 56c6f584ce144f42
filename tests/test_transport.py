"""The link and client against a scripted fake AMI server: connect failures,
timeouts, drops, keepalive, reconnect, close."""
from __future__ import annotations

import queue
import socket
import threading
import time

import pytest

import pbxis
from pbxis.events import CONNECTION_LOST, CONNECTION_RESTORED
from tests.fakeami import FakeAMI, frame


def pbxis_threads() -> list:
    return [t for t in threading.enumerate() if t.name.startswith("pbxis-")]


@pytest.fixture
def fake():
    with FakeAMI() as server:
        yield server


def test_refused_port_fails_fast_with_connect_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    started = time.monotonic()
    with pytest.raises(pbxis.ConnectError) as info:
        pbxis.connect("127.0.0.1", "pbxis", "x", port=port)
    assert time.monotonic() - started < 2
    assert isinstance(info.value, ConnectionError)
    assert str(port) in str(info.value)


def test_non_ami_peer_is_rejected():
    with FakeAMI(banner=b"SSH-2.0-OpenSSH_9.2\r\n") as server:
        with pytest.raises(pbxis.ConnectError, match="not an AMI server"):
            pbxis.connect(server.url())


def test_peer_that_never_greets_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        started = time.monotonic()
        with pytest.raises(pbxis.ConnectError, match="timed out"):
            pbxis.connect("127.0.0.1", "u", "s", port=listener.getsockname()[1],
                          connect_timeout=0.5)
        assert time.monotonic() - started < 2
    finally:
        listener.close()


def test_wrong_secret_raises_authentication_error_without_the_secret(fake):
    with pytest.raises(pbxis.AuthenticationError) as info:
        pbxis.connect("127.0.0.1", "pbxis", "wrong-pass", port=fake.port)
    assert "wrong-pass" not in str(info.value)
    assert isinstance(info.value, pbxis.ConnectError)


def test_md5_login_never_sends_the_secret(fake):
    with pbxis.connect(fake.url(auth="md5")) as pbx:
        assert pbx.connected
    login = [m for m in fake.received if m.get("Action") == "Login"][0]
    assert login.get("AuthType") == "MD5" and login.get("Secret") is None
    assert all("secret" not in v for m in fake.received for _, v in m.headers)


def test_action_timeout(fake):
    with pbxis.connect(fake.url(), action_timeout=0.3) as pbx:
        with pytest.raises(pbxis.ActionTimeout) as info:
            pbx.send_action("CoreSettings")
        assert isinstance(info.value, TimeoutError)
        fake.expect("CoreSettings")


def test_response_matched_by_action_id_not_order(fake):
    with pbxis.connect(fake.url()) as pbx:
        results = {}

        def call(name):
            results[name] = pbx.send_action(name)["Echo"]

        threads = [threading.Thread(target=call, args=(n,)) for n in ("First", "Second")]
        for t in threads:
            t.start()
        got = [fake.expect_any() for _ in range(2)]
        for conn, msg in reversed(got):  # answer in reverse order
            conn.reply(msg, ("Echo", msg["Action"]))
        for t in threads:
            t.join(5)
        assert results == {"First": "First", "Second": "Second"}


def test_error_response_raises_action_error_with_asterisks_words(fake):
    with pbxis.connect(fake.url()) as pbx:
        errors = []

        def call():
            try:
                pbx.send_action("QueueAdd", Queue="sales", Interface="PJSIP/1001")
            except pbxis.ActionError as exc:
                errors.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        conn, msg = fake.expect("QueueAdd")
        conn.reply(msg, ("Message", "Unable to add interface: Already there"), response="Error")
        caller.join(5)
        assert errors and errors[0].message == "Unable to add interface: Already there"
        assert errors[0].response["Response"] == "Error"


def test_drop_mid_action_fails_pending_at_once(fake):
    with pbxis.connect(fake.url(), action_timeout=30, reconnect=False) as pbx:
        errors = []

        def call():
            try:
                pbx.send_action("Originate", Channel="PJSIP/1001")
            except pbxis.NotConnectedError as exc:
                errors.append(exc)

        caller = threading.Thread(target=call)
        started = time.monotonic()
        caller.start()
        conn, _ = fake.expect("Originate")
        conn.drop()
        caller.join(5)
        assert errors, "pending action did not fail"
        assert time.monotonic() - started < 5
        # and nothing is re-sent
        assert [m.get("Action") for m in fake.received].count("Originate") == 1
        with pytest.raises(pbxis.NotConnectedError):
            pbx.send_action("Ping")


def test_value_with_crlf_is_rejected_before_sending(fake):
    with pbxis.connect(fake.url()) as pbx:
        sent = pbx._link.bytes_sent
        with pytest.raises(ValueError):
            pbx.send_action("Originate", CallerID="x\r\nAction: Command\r\nCommand: core stop now")
        assert pbx._link.bytes_sent == sent  # nothing was written
        assert pbx.send_action("Ping")["Ping"] == "Pong"
        names = [m.get("Action") for m in fake.received]
        assert "Originate" not in names and "Command" not in names


def test_silent_peer_is_caught_by_keepalive_and_reconnected(fake):
    with pbxis.connect(fake.url(), keepalive=0.3, reconnect_base=0.05, reconnect_cap=0.1) as pbx:
        ch = pbx.event_channel()
        conn = fake.wait_connections(1)
        conn.silent = True
        fake.responders["Ping"] = lambda c, m: None  # nobody answers
        started = time.monotonic()
        ev = ch.get(timeout=5)
        assert ev.type == CONNECTION_LOST
        assert time.monotonic() - started < 2
        fake.responders["Ping"] = lambda c, m: c.reply(m, ("Ping", "Pong"))
        ev = ch.get(timeout=5)
        assert ev.type == CONNECTION_RESTORED
        assert pbx.send_action("Ping")["Ping"] == "Pong"


def test_idle_link_stays_alive_with_keepalive_pings(fake):
    # asterisk-ami's reader dies after 4 s of silence; ours pings and lives.
    with pbxis.connect(fake.url(), keepalive=0.5) as pbx:
        ch = pbx.event_channel()
        # 4 s of silence from the server: nothing may arrive, not even connectionLost.
        with pytest.raises(queue.Empty):
            ch.get(timeout=4.0)
        pings = [m for m in fake.received if m.get("Action") == "Ping"]
        assert len(pings) >= 3
        assert pbx.connected and len(fake.conns) == 1
        assert pbx.send_action("Ping")["Ping"] == "Pong"


def test_close_right_after_goodbye_neither_raises_nor_hangs(fake):
    pbx = pbxis.connect(fake.url(), reconnect=False)
    conn = fake.wait_connections(1)
    conn.send(frame(("Response", "Goodbye"), ("Message", "Thanks for all the fish.")))
    conn.drop()
    started = time.monotonic()
    pbx.close()
    assert time.monotonic() - started < 2
    assert not pbxis_threads()


def test_close_leaves_no_thread_and_ends_channels(fake):
    pbx = pbxis.connect(fake.url())
    ch = pbx.event_channel()
    sub_events = []
    done = threading.Event()

    def cb(ev):
        sub_events.append(ev.type)
        if ev.type == "closed":
            done.set()

    pbx.subscribe(cb)
    pbx.close()
    assert [e.type for e in ch] == ["closed"]
    assert done.wait(2) and sub_events[-1] == "closed"
    assert not pbxis_threads()
    with pytest.raises(pbxis.NotConnectedError):
        pbx.send_action("Ping")
