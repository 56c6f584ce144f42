"""Smoke test of the real-Asterisk lab itself, without pbxis: raw AMI over a socket.

Proves that the lab (tests/harness/lab.py) starts Asterisk with the project's
configuration, that the sipp phones are reachable, that a caller put into queue
``sales`` is answered by an agent (AgentConnect / AgentComplete with the caller's
number), and that the ``limited`` AMI user may not use ``Filter``.

Needs root and the chroot built by ``tests/harness/provision.sh``; skipped otherwise
(unless PBXIS_REQUIRE_LAB=1, then it fails).  PBXIS_ASTERISK_VERSION picks the chroot.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

TESTS_DIR = Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from harness import lab  # noqa: E402

pytestmark = pytest.mark.asterisk

VERSION = os.environ.get("PBXIS_ASTERISK_VERSION", "22")

Message = dict[str, str]


class RawAmi:
    """Just enough AMI for the smoke test: one TCP session, messages as dicts
    (first value of a repeated header wins), everything received kept in ``seen``."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((lab.AMI_HOST, lab.AMI_PORT), timeout=timeout)
        self.buf = b""
        self.seen: list[Message] = []
        end = self._fill_until(b"\r\n", timeout)
        self.greeting = self.buf[:end].decode()
        self.buf = self.buf[end + 2 :]

    def close(self) -> None:
        self.sock.close()

    def _fill_until(self, marker: bytes, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while marker not in self.buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {marker!r} from AMI within {timeout} s")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("AMI closed the connection")
            self.buf += chunk
        return self.buf.index(marker)

    def send(self, action: str, **headers: str) -> None:
        lines = [f"Action: {action}"] + [f"{key}: {value}" for key, value in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def read(self, timeout: float) -> Message:
        end = self._fill_until(b"\r\n\r\n", timeout)
        raw, self.buf = self.buf[:end].decode(errors="replace"), self.buf[end + 4 :]
        message: Message = {}
        for line in raw.split("\r\n"):
            key, _, value = line.partition(":")
            message.setdefault(key.strip(), value.strip())
        self.seen.append(message)
        return message

    def wait_for(self, predicate: Callable[[Message], bool], timeout: float, what: str) -> Message:
        deadline = time.monotonic() + timeout
        for message in self.seen:
            if predicate(message):
                return message
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                names = [m.get("Event") or m.get("Response") for m in self.seen]
                raise AssertionError(f"no {what} within {timeout} s; got {names}")
            message = self.read(remaining)
            if predicate(message):
                return message

    def response(self, action_id: str, timeout: float = 10.0) -> Message:
        return self.wait_for(
            lambda m: "Response" in m and m.get("ActionID") == action_id,
            timeout,
            f"response to {action_id}",
        )

    def login(self, user: str, events: str = "on") -> Message:
        self.send(
            "Login",
            ActionID="login",
            Username=user,
            Secret=lab.MANAGER_USERS[user],
            Events=events,
        )
        return self.response("login")


@pytest.fixture
def ami(running_lab: lab.Lab) -> Iterator[RawAmi]:
    session = RawAmi()
    try:
        yield session
    finally:
        session.close()


def test_lab_is_up(running_lab: lab.Lab) -> None:
    ast = running_lab.asterisk
    assert ast.running and ast.pid
    for agent in ("1001", "1002", "1003"):
        assert ast.contact_status(agent) == "Avail"
        assert ast.hint_state(agent) == "Idle"
    assert "Alice Anders (PJSIP/1001)" in ast.cli("queue show sales")
    assert "Carol Clark (PJSIP/1003)" in ast.cli("queue show support")


def test_queue_call_is_answered_by_an_agent(running_lab: lab.Lab, ami: RawAmi) -> None:
    assert ami.greeting.startswith("Asterisk Call Manager/")
    login = ami.login("pbxis")
    assert login["Response"] == "Success", login

    caller = running_lab.call("sales", number="555011", talk=2.0)

    connect = ami.wait_for(lambda m: m.get("Event") == "AgentConnect", 15, "AgentConnect")
    assert connect["Queue"] == "sales"
    assert connect["Interface"] in ("PJSIP/1001", "PJSIP/1002")
    assert connect["CallerIDNum"] == "555011"
    assert connect["CallerIDName"] == "Caller 555011"
    assert connect["Channel"].startswith("PJSIP/caller-")

    complete = ami.wait_for(lambda m: m.get("Event") == "AgentComplete", 15, "AgentComplete")
    assert complete["Interface"] == connect["Interface"]
    # Asterisk 16 now and then leaves out the caller's half of AgentComplete; the agent
    # leg's Linkedid still names the call (pbxis.versions.CALL_UNIQUEID)
    assert complete.get("Uniqueid", complete.get("DestLinkedid")) in (connect["Uniqueid"], None)
    assert complete.get("CallerIDNum", "555011") == "555011"
    assert complete["Reason"] == "caller"

    assert caller.wait(10) == 0
    assert caller.answered
    ami.send("Logoff", ActionID="bye")
    assert ami.response("bye")["Response"] == "Goodbye"


def test_limited_user_may_not_filter(running_lab: lab.Lab, ami: RawAmi) -> None:
    assert ami.login("limited")["Response"] == "Success"
    ami.send("Filter", ActionID="f1", Operation="Add", Filter="Event: Newchannel")
    refused = ami.response("f1")
    assert refused["Response"] == "Error"
    assert refused["Message"] == "Permission denied"
    ami.send("Ping", ActionID="p1")
    assert ami.response("p1")["Response"] == "Success"


def test_full_user_may_filter(running_lab: lab.Lab, ami: RawAmi) -> None:
    assert ami.login("pbxis")["Response"] == "Success"
    ami.send("Filter", ActionID="f1", Operation="Add", Filter="Event: Newchannel")
    assert ami.response("f1")["Response"] == "Success"


def test_originate_reaches_the_outside(running_lab: lab.Lab, ami: RawAmi) -> None:
    assert ami.login("pbxis")["Response"] == "Success"
    outside = running_lab.outside
    assert outside is not None
    before = len(outside.numbers())
    ami.send(
        "Originate",
        ActionID="o1",
        Channel="PJSIP/1001",
        Context="default",
        Exten="5551234",
        Priority="1",
        CallerID='"Alice Anders" <1001>',
        Timeout="10000",
    )
    assert ami.response("o1", timeout=15)["Message"] == "Originate successfully queued"
    dial_end = ami.wait_for(
        lambda m: (
            m.get("Event") == "DialEnd" and m.get("DestChannel", "").startswith("PJSIP/outside-")
        ),
        10,
        "DialEnd to PJSIP/outside",
    )
    assert dial_end["DialStatus"] == "ANSWER"
    assert dial_end["Channel"].startswith("PJSIP/1001-")
    lab.wait_until(
        lambda: outside.numbers()[before:] == ["5551234"], 5, "the INVITE at the outside"
    )
    running_lab.asterisk.hangup_all()
