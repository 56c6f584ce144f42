"""The AMI client core on real Asterisk: logins, concurrency, list actions,
a killed server, close()."""
from __future__ import annotations

import threading
import time

import pytest
from conftest import pbxis_threads
from harness import lab as lab_module

import pbxis
from pbxis.events import CONNECTION_LOST, CONNECTION_RESTORED

pytestmark = pytest.mark.asterisk

SECRET = lab_module.MANAGER_USERS["pbxis"]


def test_plain_login(lab):
    with pbxis.connect("127.0.0.1", "pbxis", SECRET, port=lab_module.AMI_PORT) as pbx:
        assert pbx.connected
        assert pbx.send_action("Ping")["Ping"] == "Pong"


def test_md5_login(lab):
    with pbxis.connect("127.0.0.1", "pbxis", SECRET, auth="md5") as pbx:
        assert pbx.send_action("Ping")["Response"] == "Success"


def test_wrong_secret(lab):
    with pytest.raises(pbxis.AuthenticationError, match="Authentication failed"):
        pbxis.connect("127.0.0.1", "pbxis", "not-the-secret")


def test_16_threads_x_50_actions_each_get_their_own_response(pbx):
    errors: list[str] = []

    def worker(i: int) -> None:
        for j in range(50):
            name = f"PBXIS_T{i}_{j}"
            resp = pbx.send_action("Getvar", Variable=name)
            if resp["Variable"] != name:
                errors.append(f"{name} got {resp['Variable']}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


def test_queue_status_list_is_complete(pbx):
    resp = pbx.send_action("QueueStatus")
    assert resp.complete is not None
    assert len(resp.events) == int(resp.complete["ListItems"]) > 0
    names = {e["Event"] for e in resp.events}
    assert names == {"QueueParams", "QueueMember"}
    status = {q["queue"]: q for q in pbx.queue_status()}
    assert {m["agent"] for m in status["sales"]["members"]} == {"1001", "1002"}


def test_sigkill_is_noticed_and_the_link_comes_back(lab, ami_url):
    with pbxis.connect(ami_url, keepalive=1.0, reconnect_base=0.1, reconnect_cap=0.5) as pbx:
        ch = pbx.event_channel()
        started = time.monotonic()
        lab.asterisk.kill()
        ev = ch.get(timeout=2.0)  # within the keepalive deadline (2 x 1 s)
        assert ev.type == CONNECTION_LOST
        assert time.monotonic() - started < 2.0
        with pytest.raises(pbxis.NotConnectedError):
            pbx.send_action("Ping")
        lab.asterisk.start()
        ev = ch.get(timeout=15)
        assert ev.type == CONNECTION_RESTORED
        assert pbx.send_action("Ping")["Ping"] == "Pong"
    lab.wait_reachable("1001", "1002", "1003")


def test_close_leaves_no_thread(ami_url):
    pbx = pbxis.connect(ami_url)
    pbx.subscribe(lambda ev: None, agents=["1001"], queues=["sales"])
    ch = pbx.event_channel(agents=["1002"])
    pbx.close()
    assert list(ch)[-1].type == "closed"
    assert pbxis_threads() == []
