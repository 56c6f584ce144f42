"""The digest on real Asterisk 22 with sipp phones: issue 3's "Show" list.

Each test opens one channel for the agents and queues a situation involves,
lets sipp play the situation, and asserts what the channel receives: per
(type, agent, queue) key the exact sequence of values, plus the cross-key
order where it means something (the caller is counted before the agent
rings; the agent's call ends after agentComplete ...). What Asterisk
legitimately varies is tolerated and nothing more: the interleaving of the
device (DeviceStateChange) and member (QueueMemberStatus) updates, which the
recordings show in either order.

A raw AMI session taps every test (``tap`` fixture); on a failure the
message names its file (``<lab workdir>/<test>.ami``), the evidence of what
Asterisk really sent.
"""
from __future__ import annotations

import queue as queue_module
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from harness import lab as lab_module

pytestmark = pytest.mark.asterisk

SECRET = lab_module.MANAGER_USERS["pbxis"]


# --------------------------------------------------------------------------- raw AMI tap


class AmiTap:
    """A second, raw AMI session that writes every byte Asterisk sends to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.create_connection((lab_module.AMI_HOST, lab_module.AMI_PORT), 5)
        self._sock.sendall(
            f"Action: Login\r\nUsername: pbxis\r\nSecret: {SECRET}\r\nEvents: on\r\n\r\n".encode()
        )
        self._file = open(path, "wb")  # noqa: SIM115
        self._thread = threading.Thread(target=self._run, name="ami-tap", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                data = self._sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            self._file.write(data)

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(5)
        self._file.close()


@pytest.fixture
def tap(lab: lab_module.Lab, request: pytest.FixtureRequest) -> Iterator[AmiTap]:
    path = lab.workdir / f"{request.node.name}.ami"
    the_tap = AmiTap(path)
    yield the_tap
    the_tap.close()


# --------------------------------------------------------------------------- helpers


def sync(pbx: Any) -> None:
    """Every query pbxis sent so far (and their follow-ups) has been applied.

    AMI answers in order on one session: once a Ping returns, every earlier
    response was digested; follow-ups those responses caused went out before
    the second Ping.
    """
    pbx.send_action("Ping")
    pbx.send_action("Ping")


Key = tuple[str, "str | None", "str | None"]


def value(ev: Any) -> Any:
    """The state value an event carries (what changes for its key)."""
    d = ev.to_dict()
    for k in ("type", "agent", "queue"):
        d.pop(k, None)
    if ev.type == "phoneNumber":
        return (d["number"], ev.queue) if d["number"] is not None else None
    if ev.type in ("extensionStatus", "queueMemberStatus"):
        return d["status"] if "reason" not in d else (d["status"], d["reason"])
    if ev.type == "queueCount":
        return d["count"]
    if ev.type == "agentName":
        return d["name"]
    return d


def key(ev: Any) -> Key:
    # phoneNumber is one state per agent; its queue rides along (API.md §4).
    return (ev.type, ev.agent, None if ev.type == "phoneNumber" else ev.queue)


class Watch:
    """One pbxis event channel and everything it received, intro and live apart."""

    def __init__(self, pbx: Any, tap: AmiTap | None, agents=(), queues=()) -> None:
        self.pbx = pbx
        self.tap = tap
        self.ch = pbx.event_channel(agents=list(agents), queues=list(queues))
        self.started = time.monotonic()
        sync(pbx)
        self.intro = self._drain()
        self.live: list[tuple[float, Any]] = []

    def _drain(self) -> list[Any]:
        out = []
        while True:
            try:
                out.append(self.ch.get_nowait())
            except queue_module.Empty:
                return out

    def _fail(self, what: str) -> None:
        where = f"; raw AMI in {self.tap.path}" if self.tap else ""
        raise AssertionError(f"{what}; intro {self.dicts(self.intro)}; live {self.dicts()}{where}")

    def until(self, predicate: Callable[[Any], bool], timeout: float = 20.0, what: str = "event"):
        """Read live events until ``predicate(event)``; return that event."""
        deadline = time.monotonic() + timeout
        for _, ev in self.live:
            pass
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._fail(f"no {what} within {timeout} s")
            try:
                ev = self.ch.get(timeout=remaining)
            except queue_module.Empty:
                continue
            self.live.append((time.monotonic(), ev))
            if predicate(ev):
                return ev

    def settle(self, lab: lab_module.Lab) -> None:
        """After the last expected event: no channel left, read what is still due."""
        lab_module.wait_until(lambda: lab.asterisk.active_channels() == 0, 15, "no channels")
        sync(self.pbx)
        self.live += [(time.monotonic(), ev) for ev in self._drain()]

    def events(self) -> list[Any]:
        return [ev for _, ev in self.live]

    def dicts(self, events: list[Any] | None = None) -> list[dict[str, Any]]:
        return [e.to_dict() for e in (self.events() if events is None else events)]

    def values(self, type_: str, agent: str | None = None, queue: str | None = None) -> list[Any]:
        """The live sequence of values of one key."""
        k = (type_, agent, None if type_ == "phoneNumber" else queue)
        return [value(e) for e in self.events() if key(e) == k]

    def keys(self) -> set[Key]:
        return {key(e) for e in self.events()}

    def index(self, type_: str, agent=None, queue=None, val: Any = ..., start: int = 0) -> int:
        """Position of the first live event of the key (with that value) from ``start``."""
        k = (type_, agent, None if type_ == "phoneNumber" else queue)
        for i, e in enumerate(self.events()):
            if i >= start and key(e) == k and (val is ... or value(e) == val):
                return i
        self._fail(f"no {k} = {val!r}")
        return -1

    def intro_state(self) -> dict[Key, Any]:
        return {key(e): value(e) for e in self.intro}


def is_(type_: str, agent: str | None = None, queue: str | None = None, **details: Any):
    def match(ev: Any) -> bool:
        return (
            ev.type == type_
            and (agent is None or ev.agent == agent)
            and (queue is None or ev.queue == queue)
            and all(ev.get(k) == v for k, v in details.items())
        )

    return match


# --------------------------------------------------------------------------- scenarios


@pytest.fixture
def only_1001_in_sales(pbx: Any) -> Iterator[None]:
    """1002 paused in sales (as in the recordings), so only 1001 is rung there."""
    pbx.queue_action("pause", agent="1002", queue="sales", reason="not-in-this-test")
    yield
    pbx.queue_action("unpause", agent="1002", queue="sales")


def test_explore_basic(lab, pbx, tap, only_1001_in_sales):
    w = Watch(pbx, tap, agents=["1001"], queues=["sales"])
    print("INTRO", w.dicts(w.intro))
    caller = lab.call("sales", number="555011", talk=5)
    w.until(is_("agentComplete", "1001"), what="agentComplete")
    w.until(is_("phoneNumber", "1001", number=None), what="phoneNumber None")
    caller.wait(10)
    w.settle(lab)
    for t, e in w.live:
        print(round(t - w.started, 2), e.to_dict())
    assert 0
