"""Record real AMI sessions in the lab, the way shared/ami-transcripts was recorded.

    sudo .venv/bin/python tests/harness/record.py --version 16 [--out DIR] [SCENARIO ...]

For each scenario (default: all of :data:`SCENARIOS`) the lab's Asterisk is restarted
(so uniqueids start at .0 again), the scenario's set-up is made, and one AMI session
logs in and records:

* ``<name>.ami``: every byte received on the session, exactly as received (greeting
  included);
* ``<name>.actions``: one JSON line per action sent, ``t`` (seconds since the TCP
  connect), ``wall`` (UTC), ``offset`` (bytes received when the action was sent: its
  response follows at or after it), ``action``, ``action_id`` and the exact ``raw``
  bytes (the Login carries the lab's made-up secret).

``index.json`` in the output directory keeps each scenario's description, recording
time and timeline; the part of ``README.md`` between the ``generated`` markers is
rebuilt from it and from the files (the rest of the README is hand-written and kept).
Scenario names and set-ups follow shared/ami-transcripts/README.md, so a scenario
can be replayed through the digest and compared with its Asterisk 22 counterpart.

Standard library and ``lab.py`` only.  Must run as root (the lab needs it); holds the
machine-wide lab lock while recording.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import re
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Callable, Optional

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from harness import lab as labmod  # noqa: E402
else:
    from . import lab as labmod

__all__ = ["Session", "Recording", "SCENARIOS", "record", "main"]

HERE = Path(__file__).resolve().parent
USER = "pbxis"
SECRET = labmod.MANAGER_USERS[USER]

Msg = dict  # first value of each header; "_offset" = byte offset of the message's end


def _now_wall() -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class Session:
    """One AMI TCP session; a reader thread keeps every byte received.

    ``send`` writes an action and (by default) waits for its response (and, for list
    actions, the ``EventList: Complete`` event); every action sent is logged with
    the byte offset reached when it was sent.  ``wait`` looks for a message matching
    a predicate among everything received since a cursor.
    """

    def __init__(self, prefix: str, timeout: float = 10.0) -> None:
        self.prefix = prefix
        self.sock = socket.create_connection((labmod.AMI_HOST, labmod.AMI_PORT), timeout=timeout)
        self.sock.settimeout(None)
        self.t0 = time.monotonic()
        self.data = bytearray()
        self.messages: list[Msg] = []
        self.actions: list[dict[str, object]] = []
        self.eof = threading.Event()
        self._cond = threading.Condition()
        self._scan = 0
        self._greeted = False
        self._ids = 0
        self._thread = threading.Thread(target=self._read, name=f"rec-{prefix}", daemon=True)
        self._thread.start()

    # -- reading -------------------------------------------------------------------

    def _read(self) -> None:
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            with self._cond:
                if not chunk:
                    self.eof.set()
                    self._cond.notify_all()
                    return
                self.data += chunk
                self._parse()
                self._cond.notify_all()

    def _parse(self) -> None:
        data = self.data
        if not self._greeted:
            end = data.find(b"\r\n")
            if end < 0:
                return
            self._greeted = True
            self._scan = end + 2
        while True:
            end = data.find(b"\r\n\r\n", self._scan)
            if end < 0:
                return
            block = bytes(data[self._scan : end]).decode("utf-8", "replace")
            self._scan = end + 4
            msg: Msg = {"_offset": self._scan, "_t": self.t()}
            for line in block.split("\r\n"):
                key, sep, value = line.partition(": ")
                if not sep and line.endswith(":"):
                    key, value = line[:-1], ""
                if key and key not in msg:
                    msg[key] = value
            if len(msg) > 1:
                self.messages.append(msg)

    @property
    def greeting(self) -> str:
        end = self.data.find(b"\r\n")
        return bytes(self.data[:end]).decode() if end >= 0 else ""

    def t(self) -> float:
        return round(time.monotonic() - self.t0, 3)

    def cursor(self) -> int:
        with self._cond:
            return len(self.messages)

    def wait(
        self,
        predicate: Callable[[Msg], bool],
        timeout: float = 20.0,
        what: str = "message",
        since: int = 0,
    ) -> Msg:
        """The first message (from index ``since``) matching ``predicate``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            index = since
            while True:
                while index < len(self.messages):
                    msg = self.messages[index]
                    index += 1
                    if predicate(msg):
                        return msg
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.eof.is_set():
                    raise labmod.LabError(f"[{self.prefix}] no {what} within {timeout} s")
                self._cond.wait(remaining)

    def event(self, name: str, timeout: float = 20.0, since: int = 0, **match: str) -> Msg:
        """The first event ``name`` whose headers equal ``match`` (from ``since``)."""

        def pred(m: Msg) -> bool:
            return m.get("Event") == name and all(m.get(k) == v for k, v in match.items())

        return self.wait(pred, timeout, f"{name} {match}", since)

    # -- writing -------------------------------------------------------------------

    def send(
        self,
        action: str,
        *headers: tuple[str, str],
        action_id: Optional[str] = "",
        wait: bool = True,
        timeout: float = 20.0,
    ) -> Optional[Msg]:
        """Send an action; return its response (None with ``wait=False``).

        ``action_id=""`` numbers it ``<prefix>-N``; ``None`` sends no ActionID (then
        the response is the next ``Response`` after the send).
        """
        if action_id == "":
            self._ids += 1
            action_id = f"{self.prefix}-{self._ids}"
        lines = [f"Action: {action}"]
        if action_id is not None:
            lines.append(f"ActionID: {action_id}")
        lines += [f"{k}: {v}" for k, v in headers]
        raw = "\r\n".join(lines) + "\r\n\r\n"
        with self._cond:
            offset = len(self.data)
            since = len(self.messages)
            self.sock.sendall(raw.encode())
            self.actions.append(
                {
                    "t": self.t(),
                    "wall": _now_wall(),
                    "offset": offset,
                    "action": action,
                    "action_id": action_id,
                    "raw": raw,
                }
            )
        if not wait:
            return None

        def is_response(m: Msg) -> bool:
            return "Response" in m and m.get("ActionID") == action_id

        response = self.wait(is_response, timeout, f"response to {action}", since)
        if response.get("EventList") == "start" and action_id is not None:
            self.wait(
                lambda m: m.get("ActionID") == action_id and m.get("EventList") == "Complete",
                timeout,
                f"end of the {action} list",
                since,
            )
        return response

    def login(self, events: str = "on") -> Msg:
        self.wait_greeting()
        response = self.send(
            "Login", ("Username", USER), ("Secret", SECRET), ("Events", events)
        )
        assert response is not None
        if response.get("Response") != "Success":
            raise labmod.LabError(f"login refused: {response}")
        return response

    def wait_greeting(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while b"\r\n" not in self.data:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.eof.is_set():
                    raise labmod.LabError("no AMI greeting")
                self._cond.wait(remaining)

    def logoff(self, timeout: float = 10.0) -> None:
        """Logoff, then wait for the server to close the socket."""
        self.send("Logoff", timeout=timeout)
        self.wait_eof(timeout)

    def wait_eof(self, timeout: float = 10.0) -> None:
        if not self.eof.wait(timeout):
            raise labmod.LabError(f"[{self.prefix}] no EOF within {timeout} s")

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(5)


class Recording:
    """What a scenario gets: the lab, the recorded session(s), and a timeline."""

    def __init__(self, the_lab: labmod.Lab, name: str) -> None:
        self.lab = the_lab
        self.name = name
        self.sessions: dict[str, Session] = {}
        self.timeline: list[tuple[float, str]] = []
        self._t0: Optional[float] = None

    def session(self, file: str, prefix: str) -> Session:
        """Open a recorded session, saved as ``<file>.ami`` / ``<file>.actions``."""
        session = Session(prefix)
        self.sessions[file] = session
        if self._t0 is None:
            self._t0 = session.t0
        return session

    def notable(self) -> None:
        """Add the events worth a timeline line (first recorded session) to the timeline."""
        if not self.sessions:
            return
        session = next(iter(self.sessions.values()))
        if len(session.messages) > 1000:
            return  # a busy period: the timeline would drown in it
        for msg in session.messages:
            line = _notable(msg)
            if line is not None:
                self.timeline.append((round(float(msg["_t"]), 1), line))
        self.timeline.sort(key=lambda item: item[0])

    def mark(self, text: str) -> None:
        """A timeline line (seconds since the first recorded session connected)."""
        t0 = self._t0 if self._t0 is not None else time.monotonic()
        self.timeline.append((round(time.monotonic() - t0, 1), text))

    def call(self, extension: str, number: str, **kwargs: object) -> labmod.Caller:
        talk = kwargs.get("talk", 5.0)
        hold = kwargs.get("abandon_after")
        self.mark(
            f"start sipp caller {number} -> {extension} (talk {talk}s"
            + (f", gives up after {hold}s)" if hold is not None else ")")
        )
        return self.lab.call(extension, number=number, **kwargs)  # type: ignore[arg-type]


def _notable(m: Msg) -> Optional[str]:
    """One timeline line for a notable message, else None."""
    name = m.get("Event")
    if name is None:
        action_id = m.get("ActionID")
        if action_id is None:
            return None
        text = f"response {m.get('Response')} to {action_id}"
        return text + (f" ({m['Message']})" if m.get("Message") else "")
    if name in ("QueueCallerJoin", "QueueCallerLeave"):
        return f"{name} {m.get('Queue')} {m.get('CallerIDNum')} Count {m.get('Count')}"
    if name == "QueueCallerAbandon":
        return f"{name} {m.get('CallerIDNum')} HoldTime {m.get('HoldTime')}"
    if name in ("AgentCalled", "AgentRingNoAnswer"):
        ring = f" RingTime {m['RingTime']}" if "RingTime" in m else ""
        return f"{name} {m.get('MemberName')} for {m.get('CallerIDNum')}{ring}"
    if name == "AgentConnect":
        return (
            f"{name} {m.get('MemberName')} <- {m.get('CallerIDNum')} "
            f"(HoldTime {m.get('HoldTime')}, RingTime {m.get('RingTime')})"
        )
    if name == "AgentComplete":
        return f"{name} {m.get('MemberName')} Reason {m.get('Reason')} TalkTime {m.get('TalkTime')}"
    if name == "OriginateResponse":
        return f"{name} {m.get('ActionID')} {m.get('Response')} Reason {m.get('Reason')}"
    if name in ("ParkedCall", "UnParkedCall", "ParkedCallTimeOut", "Hold", "Unhold", "Shutdown"):
        return f"{name} {m.get('ParkeeChannel') or m.get('Channel') or ''}".rstrip()
    if name == "DeviceStateChange" and str(m.get("Device", "")).startswith("PJSIP/10"):
        return f"{name} {m.get('Device')} {m.get('State')}"
    return None


def control(actions: Iterable[tuple[str, tuple[tuple[str, str], ...]]]) -> None:
    """Run actions on an unrecorded session (set-up before the recorder logs in)."""
    session = Session("setup")
    try:
        session.login(events="off")
        for action, headers in actions:
            response = session.send(action, *headers)
            assert response is not None
            if response.get("Response") != "Success":
                raise labmod.LabError(f"set-up {action} failed: {response}")
        session.logoff()
    finally:
        session.close()


PAUSE_1002 = (
    "QueuePause",
    (
        ("Queue", "sales"),
        ("Interface", "PJSIP/1002"),
        ("Paused", "true"),
        ("Reason", "not-in-this-test"),
    ),
)


def _phones(the_lab: labmod.Lab, **modes: dict[str, object]) -> None:
    """(Re)start phones 1001..1003: ``modes`` maps agent -> Phone kwargs (default answer 1 s);
    an agent mapped to ``{"stopped": True}`` is unplugged."""
    for agent in labmod.AGENTS:
        spec = dict(modes.get(f"p{agent}", {}))
        if spec.pop("stopped", False):
            the_lab.stop_phone(agent)
            continue
        spec.setdefault("mode", "answer")
        spec.setdefault("answer_after", 1.0)
        phone = the_lab.phones.get(agent)
        same = (
            phone is not None
            and phone.running
            and phone.mode == spec["mode"]
            and all(getattr(phone, k) == v for k, v in spec.items())
        )
        if not same:
            the_lab.phone(agent, wait=False, **spec)  # type: ignore[arg-type]


def _wait_calls_over(rec: Recording, callers: Iterable[labmod.Caller], timeout: float) -> None:
    for caller in callers:
        caller.wait(timeout)
    labmod.wait_until(
        lambda: rec.lab.asterisk.active_channels() == 0, 15, "all channels to be gone", 0.2
    )


# --------------------------------------------------------------------------- scenarios
# Each: (title, description, set-up phones, paused 1002?, function(rec)).


def sc_a(rec: Recording) -> None:
    """Initial-state queries a client makes right after login, while calls are up.

    Set-up (before the recorder connects): phone 1001 answers after 1 s, 1002 and 1003
    ring forever (noanswer).  Caller 555011 calls `sales` -> 1001 and 1002 ring
    (ringall), 1001 answers; caller 555021 calls `support` (rrmemory 1002, 1003) and
    waits while one of them rings.  Then the recorder logs in and sends, one after the
    other: CoreSettings, CoreStatus, Ping (with and without ActionID), QueueStatus (all),
    QueueStatus Queue=sales, QueueStatus Queue=sales Member=PJSIP/1001, QueueSummary (all),
    QueueSummary Queue=support, ExtensionStateList, ExtensionState 1001@default,
    CoreShowChannels, Status (all channels), DeviceStateList; 1 s later Logoff."""
    ast = rec.lab.asterisk
    c1 = rec.lab.call("sales", number="555011", talk=60)
    labmod.wait_until(lambda: ast.hint_state("1001") == "InUse", 15, "1001 talking", 0.2)
    time.sleep(2)
    c2 = rec.lab.call("support", number="555021", talk=60)
    labmod.wait_until(
        lambda: "1. PJSIP/caller-" in ast.cli("queue show support"), 10, "555021 waiting", 0.2
    )
    time.sleep(2)
    s = rec.session("a-initial-state", "a")
    s.login()
    rec.mark("(set-up: 555011 talking to 1001 via sales; 555021 waiting in support)")
    s.send("CoreSettings")
    s.send("CoreStatus")
    s.send("Ping")
    since = s.cursor()
    s.send("Ping", action_id=None, wait=False)
    s.wait(lambda m: "Response" in m and "ActionID" not in m, 10, "the Ping reply", since)
    s.send("QueueStatus")
    s.send("QueueStatus", ("Queue", "sales"))
    s.send("QueueStatus", ("Queue", "sales"), ("Member", "PJSIP/1001"))
    s.send("QueueSummary")
    s.send("QueueSummary", ("Queue", "support"))
    s.send("ExtensionStateList")
    s.send("ExtensionState", ("Exten", "1001"), ("Context", "default"))
    s.send("CoreShowChannels")
    s.send("Status")
    s.send("DeviceStateList")
    time.sleep(1)
    s.logoff()
    c1.hangup()
    c2.hangup()


def sc_b(rec: Recording) -> None:
    """Agent (queue member) management and error responses, as b-agent-management on 22.

    All phones idle.  QueueStatus sales; QueueAdd sales PJSIP/1003 (MemberName "Carol
    Clark", StateInterface PJSIP/1003, Penalty 1, Paused true, Reason training);
    QueuePause sales Paused=false; QueuePause PJSIP/1003 Paused=true Reason=lunch without
    Queue (all queues); QueueStatus Member=PJSIP/1003; QueuePause Paused=false (all
    queues); QueuePenalty sales Penalty=2; QueueStatus sales Member=PJSIP/1003;
    QueueRemove sales PJSIP/1003.  Errors: QueueAdd of an existing member, QueueRemove of
    a non-member and of a static member, QueuePause / QueueAdd / QueueStatus on
    `nosuchqueue`, an unknown action, QueuePause without Interface."""
    s = rec.session("b-agent-management", "b")
    s.login()
    time.sleep(0.5)
    s.send("QueueStatus", ("Queue", "sales"))
    s.send(
        "QueueAdd",
        ("Queue", "sales"),
        ("Interface", "PJSIP/1003"),
        ("Penalty", "1"),
        ("Paused", "true"),
        ("Reason", "training"),
        ("MemberName", "Carol Clark"),
        ("StateInterface", "PJSIP/1003"),
    )
    time.sleep(1)
    s.send("QueuePause", ("Queue", "sales"), ("Interface", "PJSIP/1003"), ("Paused", "false"))
    time.sleep(1)
    s.send("QueuePause", ("Interface", "PJSIP/1003"), ("Paused", "true"), ("Reason", "lunch"))
    time.sleep(1)
    s.send("QueueStatus", ("Member", "PJSIP/1003"))
    s.send("QueuePause", ("Interface", "PJSIP/1003"), ("Paused", "false"))
    time.sleep(1)
    s.send("QueuePenalty", ("Queue", "sales"), ("Interface", "PJSIP/1003"), ("Penalty", "2"))
    time.sleep(0.5)
    s.send("QueueStatus", ("Queue", "sales"), ("Member", "PJSIP/1003"))
    s.send("QueueRemove", ("Queue", "sales"), ("Interface", "PJSIP/1003"))
    time.sleep(1)
    s.send(
        "QueueAdd", ("Queue", "sales"), ("Interface", "PJSIP/1001"), ("MemberName", "Alice Anders")
    )
    s.send("QueueRemove", ("Queue", "sales"), ("Interface", "PJSIP/1003"))
    s.send("QueueRemove", ("Queue", "sales"), ("Interface", "PJSIP/1001"))
    s.send(
        "QueuePause",
        ("Queue", "nosuchqueue"),
        ("Interface", "PJSIP/1001"),
        ("Paused", "true"),
        ("Reason", "x"),
    )
    s.send("QueueAdd", ("Queue", "nosuchqueue"), ("Interface", "PJSIP/1001"))
    s.send("QueueStatus", ("Queue", "nosuchqueue"))
    s.send("NoSuchAction")
    s.send("QueuePause", ("Queue", "sales"), ("Paused", "true"))
    time.sleep(0.5)
    s.logoff()


def _one_call(rec: Recording, file: str, prefix: str, talk: float, **caller: object) -> None:
    s = rec.session(file, prefix)
    s.login()
    time.sleep(1)
    c = rec.call("sales", "555011", talk=talk, **caller)
    _wait_calls_over(rec, [c], 90)
    time.sleep(2)
    s.logoff()


def sc_c(rec: Recording) -> None:
    """One queue call, the CALLER hangs up.

    Phones answer after 2 s; 1002 paused in sales (reason not-in-this-test, before the
    recording) so only 1001 is rung.  t~1 caller 555011 calls sales; 1001 answers after
    2 s; the caller hangs up 5 s after the answer."""
    _one_call(rec, "c-call-caller-hangup", "c", talk=5)


def sc_d(rec: Recording) -> None:
    """One queue call, the AGENT hangs up.

    As c, but phone 1001 sends BYE 5 s after answering (the caller would talk 60 s)."""
    _one_call(rec, "d-call-agent-hangup", "d", talk=60)


def sc_e(rec: Recording) -> None:
    """Two callers waiting at once, one abandons (queue counts 1, 2, 1, 0).

    Phone 1001 answers after 6 s of ringing; 1002 paused in sales.  t~1 caller A 555011
    joins sales, 1001 rings; t~4 caller B 555021 joins (not rung: ringinuse=no) and
    gives up 2.5 s later; 1001 answers A, A hangs up 3 s later."""
    s = rec.session("e-abandon-two-waiting", "e")
    s.login()
    time.sleep(1)
    a = rec.call("sales", "555011", talk=3)
    time.sleep(3)
    b = rec.call("sales", "555021", talk=3, abandon_after=2.5)
    _wait_calls_over(rec, [a, b], 60)
    time.sleep(2)
    s.logoff()


def sc_f1(rec: Recording) -> None:
    """Agent does not answer (AgentRingNoAnswer), caller finally abandons.

    Phone 1001 rings forever (noanswer); 1002 paused in sales.  t~1 caller 555011 joins
    sales; 1001 rings for the queue timeout (10 s), retry 1 s, rings again; the caller
    gives up after 14 s."""
    _one_call(rec, "f1-ring-noanswer", "f1", talk=3, abandon_after=14)


def sc_f2(rec: Recording) -> None:
    """Agent phone rejects with 486 Busy Here; the queue retries; the caller abandons.

    Phone 1001 answers every INVITE with 486; 1002 paused in sales.  t~1 caller 555011
    joins sales and gives up after 6 s."""
    _one_call(rec, "f2-agent-busy", "f2", talk=3, abandon_after=6)


def sc_f3(rec: Recording) -> None:
    """Only agent is paused: the caller waits until the agent unpauses.

    Phones answer after 1 s; 1002 paused in sales (unrecorded).  The recorder pauses
    1001 in sales (Reason break); t~1 caller 555011 joins and waits; t~8 QueueStatus
    sales, then QueuePause 1001 Paused=false; 1001 is rung, answers, the caller hangs up
    3 s later."""
    s = rec.session("f3-paused-wait", "f3")
    s.login()
    s.send(
        "QueuePause",
        ("Queue", "sales"),
        ("Interface", "PJSIP/1001"),
        ("Paused", "true"),
        ("Reason", "break"),
    )
    time.sleep(1)
    c = rec.call("sales", "555011", talk=3)
    time.sleep(7)
    s.send("QueueStatus", ("Queue", "sales"))
    s.send("QueuePause", ("Queue", "sales"), ("Interface", "PJSIP/1001"), ("Paused", "false"))
    rec.mark("unpaused 1001")
    _wait_calls_over(rec, [c], 60)
    time.sleep(2)
    s.logoff()


def _channel_of(s: Session, prefix: str, since: int) -> str:
    msg = s.wait(
        lambda m: m.get("Event") == "Newchannel" and m.get("Channel", "").startswith(prefix),
        20,
        f"a {prefix} channel",
        since,
    )
    return str(msg["Channel"])


def sc_g(rec: Recording) -> None:
    """Click-to-call (Originate) success and failures.

    Phone 1001 answers after 1 s, 1002 never answers, 1003 is STOPPED (unreachable).
    1. synchronous Originate PJSIP/1001 -> default,5551234 (ActionID orig-sync-ok),
       then the Hangup action on 1001's channel (hangup-1);
    2. Async Originate 1001 -> 5559876 (orig-async-ok); Hangup 3 s after its
       OriginateResponse (hangup-2);
    3. Async Originate PJSIP/1099, no such endpoint (orig-async-noep);
    4. Async Originate PJSIP/1003, unreachable (orig-async-unreach);
    5. synchronous Originate PJSIP/1099 (orig-sync-fail);
    6. Async Originate PJSIP/1002 Timeout=4000, never answered (orig-async-noanswer)."""
    s = rec.session("g-originate", "g")
    s.login()
    time.sleep(0.5)
    base = [("Context", "default"), ("Priority", "1")]
    alice = ("CallerID", '"Alice Anders" <1001>')
    since = s.cursor()
    s.send(
        "Originate",
        ("Channel", "PJSIP/1001"),
        ("Context", "default"),
        ("Exten", "5551234"),
        ("Priority", "1"),
        alice,
        ("Timeout", "20000"),
        action_id="orig-sync-ok",
        timeout=30,
    )
    chan = _channel_of(s, "PJSIP/1001-", since)
    time.sleep(2)
    s.send("Hangup", ("Channel", chan), ("Cause", "16"), action_id="hangup-1")
    time.sleep(2)
    since = s.cursor()
    s.send(
        "Originate",
        ("Channel", "PJSIP/1001"),
        ("Context", "default"),
        ("Exten", "5559876"),
        ("Priority", "1"),
        alice,
        ("Timeout", "20000"),
        ("Async", "true"),
        action_id="orig-async-ok",
    )
    s.event("OriginateResponse", since=since, ActionID="orig-async-ok")
    chan = _channel_of(s, "PJSIP/1001-", since)
    time.sleep(3)
    s.send("Hangup", ("Channel", chan), action_id="hangup-2")
    time.sleep(2)
    since = s.cursor()
    s.send(
        "Originate",
        ("Channel", "PJSIP/1099"),
        ("Context", "default"),
        ("Exten", "5551234"),
        ("Priority", "1"),
        ("Async", "true"),
        action_id="orig-async-noep",
    )
    s.event("OriginateResponse", since=since, ActionID="orig-async-noep")
    time.sleep(1)
    since = s.cursor()
    s.send(
        "Originate",
        ("Channel", "PJSIP/1003"),
        ("Context", "default"),
        ("Exten", "5551234"),
        ("Priority", "1"),
        ("Async", "true"),
        ("Timeout", "8000"),
        action_id="orig-async-unreach",
    )
    s.event("OriginateResponse", since=since, timeout=15, ActionID="orig-async-unreach")
    time.sleep(1)
    s.send(
        "Originate",
        ("Channel", "PJSIP/1099"),
        ("Context", "default"),
        ("Exten", "5551234"),
        ("Priority", "1"),
        action_id="orig-sync-fail",
    )
    time.sleep(1)
    since = s.cursor()
    s.send(
        "Originate",
        ("Channel", "PJSIP/1002"),
        *base[:1],
        ("Exten", "5551234"),
        *base[1:],
        ("Async", "true"),
        ("Timeout", "4000"),
        action_id="orig-async-noanswer",
    )
    s.event("OriginateResponse", since=since, timeout=15, ActionID="orig-async-noanswer")
    time.sleep(2)
    s.logoff()


def _queue_call_up(rec: Recording, s: Session, number: str) -> tuple[labmod.Caller, Msg]:
    since = s.cursor()
    c = rec.call("sales", number, talk=60)
    connect = s.event("AgentConnect", since=since, timeout=20)
    rec.mark(f"AgentConnect: {connect.get('Channel')} <-> {connect.get('DestChannel')}")
    return c, connect


def sc_h1(rec: Recording) -> None:
    """Redirect (blind transfer by AMI) of the caller in a bridged queue call.

    Phones 1001 and 1003 answer after 1 s; 1002 paused in sales.  t~1 caller 555011 ->
    sales, 1001 answers; 3 s later Redirect Channel=<caller> Context=default Exten=1003
    Priority=1; 1003 answers; 5 s later the recorder hangs the caller up."""
    s = rec.session("h1-redirect", "h1")
    s.login()
    time.sleep(1)
    c, connect = _queue_call_up(rec, s, "555011")
    caller = str(connect["Channel"])
    time.sleep(3)
    since = s.cursor()
    s.send(
        "Redirect",
        ("Channel", caller),
        ("Context", "default"),
        ("Exten", "1003"),
        ("Priority", "1"),
        action_id="redirect-1",
    )
    s.wait(
        lambda m: m.get("Event") == "DialEnd" and m.get("DialStatus") == "ANSWER",
        20,
        "1003 answering",
        since,
    )
    rec.mark("1003 answered the redirected caller")
    time.sleep(4)
    s.send("Hangup", ("Channel", caller), action_id="hangup-caller")
    _wait_calls_over(rec, [c], 20)
    time.sleep(2)
    s.logoff()


def sc_h2(rec: Recording) -> None:
    """Park a bridged queue call twice: once retrieved, once timed out.

    Phones 1001 and 1003 answer after 1 s; 1002 paused in sales.  Call 1: 555011 ->
    sales -> 1001; 3 s later Park Channel=<caller> TimeoutChannel=AnnounceChannel=<agent
    channel>; 3 s later Originate PJSIP/1003 -> parkedcalls,701 (Async) picks it up; 3 s
    later the caller is hung up.  Call 2: 555021 -> sales -> 1001; Park with Timeout=6000;
    nobody retrieves it: it comes back to 1001 (comebacktoorigin), who answers; 4 s
    later the caller is hung up."""
    s = rec.session("h2-park", "h2")
    s.login()
    time.sleep(1)
    c1, connect = _queue_call_up(rec, s, "555011")
    caller, agent = str(connect["Channel"]), str(connect["DestChannel"])
    time.sleep(3)
    since = s.cursor()
    s.send(
        "Park",
        ("Channel", caller),
        ("TimeoutChannel", agent),
        ("AnnounceChannel", agent),
        action_id="park-1",
    )
    parked = s.event("ParkedCall", since=since)
    space = str(parked.get("ParkingSpace"))
    rec.mark(f"ParkedCall space {space}")
    time.sleep(3)
    since = s.cursor()
    s.send(
        "Originate",
        ("Channel", "PJSIP/1003"),
        ("Context", "parkedcalls"),
        ("Exten", space),
        ("Priority", "1"),
        ("Async", "true"),
        action_id=f"pickup-{space}",
    )
    s.event("UnParkedCall", since=since)
    rec.mark("UnParkedCall by 1003")
    time.sleep(3)
    s.send("Hangup", ("Channel", caller), action_id="hangup-call1")
    _wait_calls_over(rec, [c1], 20)
    time.sleep(2)
    c2, connect = _queue_call_up(rec, s, "555021")
    caller, agent = str(connect["Channel"]), str(connect["DestChannel"])
    time.sleep(2)
    since = s.cursor()
    s.send(
        "Park",
        ("Channel", caller),
        ("TimeoutChannel", agent),
        ("AnnounceChannel", agent),
        ("Timeout", "6000"),
        action_id="park-2",
    )
    s.event("ParkedCallTimeOut", since=since, timeout=20)
    rec.mark("ParkedCallTimeOut")
    s.wait(
        lambda m: m.get("Event") == "DialEnd" and m.get("DialStatus") == "ANSWER",
        20,
        "the parked call answered by 1001",
        since,
    )
    rec.mark("the parked call came back to 1001, answered")
    time.sleep(3)
    s.send("Hangup", ("Channel", caller), action_id="hangup-call2")
    _wait_calls_over(rec, [c2], 20)
    time.sleep(2)
    s.logoff()


def sc_i(rec: Recording) -> None:
    """Agent puts the caller on hold (SIP re-INVITE a=sendonly) and takes it back.

    Phone 1001 in hold mode: answers after 1 s, holds after 3 s for 5 s, hangs up 3 s
    after the unhold; 1002 paused in sales.  Caller 555011 -> sales.  During the hold
    the recorder asks QueueStatus sales Member=PJSIP/1001."""
    s = rec.session("i-hold", "i")
    s.login()
    time.sleep(1)
    since = s.cursor()
    c = rec.call("sales", "555011", talk=60)
    s.event("Hold", since=since, timeout=20)
    rec.mark("Hold")
    time.sleep(1)
    s.send("QueueStatus", ("Queue", "sales"), ("Member", "PJSIP/1001"))
    s.event("Unhold", since=since, timeout=20)
    rec.mark("Unhold")
    _wait_calls_over(rec, [c], 30)
    time.sleep(2)
    s.logoff()


def sc_m1(rec: Recording) -> None:
    """Login with Events: off: no events at all, only responses; later Events on.

    1002 paused in sales.  Login Events: off; t~1 caller 555011 -> sales, 1001 answers
    after 1 s, the caller hangs up 6 s later.  During the call: Ping, QueueStatus sales,
    Events EventMask=off, then 1 s later Events EventMask=on."""
    s = rec.session("m1-login-events-off", "m1")
    s.login(events="off")
    time.sleep(1)
    c = rec.call("sales", "555011", talk=6)
    labmod.wait_until(
        lambda: rec.lab.asterisk.hint_state("1001") == "InUse", 15, "1001 talking", 0.1
    )
    time.sleep(1)
    s.send("Ping")
    s.send("QueueStatus", ("Queue", "sales"))
    s.send("Events", ("EventMask", "off"))
    time.sleep(1)
    s.send("Events", ("EventMask", "on"))
    _wait_calls_over(rec, [c], 30)
    time.sleep(2)
    s.logoff()


def sc_m3(rec: Recording) -> None:
    """Action before login, MD5 challenge login, Ping, Logoff (one session)."""
    s = rec.session("m3-login-md5", "m3")
    s.wait_greeting()
    s.send("Ping", action_id="ping-unauth")
    reply = s.send("Challenge", ("AuthType", "MD5"), action_id="chal-1")
    assert reply is not None
    key = hashlib.md5((str(reply["Challenge"]) + SECRET).encode()).hexdigest()  # noqa: S324
    s.send(
        "Login",
        ("Username", USER),
        ("AuthType", "MD5"),
        ("Key", key),
        ("Events", "on"),
        action_id="md5-login",
    )
    time.sleep(1)
    s.send("Ping", action_id="ping-auth")
    s.send("Logoff", action_id="bye")
    s.wait_eof()


def sc_n(rec: Recording) -> None:
    """An agent phone goes offline (qualify fails) and comes back.

    All phones idle.  t~1 the lab stops phone 1003's sipp (unplugged); the next qualify
    fails -> UNAVAILABLE; 4 s later the phone is started again -> NOT_INUSE; then
    ExtensionState 1003@default."""
    s = rec.session("n-phone-offline-online", "n")
    s.login()
    time.sleep(1)
    since = s.cursor()
    rec.mark("stop phone 1003 (sipp killed)")
    rec.lab.stop_phone("1003")
    s.event("DeviceStateChange", since=since, timeout=20, Device="PJSIP/1003", State="UNAVAILABLE")
    rec.mark("DeviceStateChange PJSIP/1003 UNAVAILABLE")
    time.sleep(4)
    since = s.cursor()
    rec.mark("start phone 1003 again")
    rec.lab.phone("1003", wait=False)
    s.event("DeviceStateChange", since=since, timeout=20, Device="PJSIP/1003", State="NOT_INUSE")
    rec.mark("DeviceStateChange PJSIP/1003 NOT_INUSE")
    time.sleep(2)
    s.send("ExtensionState", ("Exten", "1003"), ("Context", "default"))
    time.sleep(1)
    s.logoff()


def _pbxis_filters() -> list[list[tuple[str, str]]]:
    """The Filter actions pbxis sends on login (pbxis.client._narrow): its whitelist
    of the events it reads, in the legacy regex form that Asterisk 16 and 22 both
    apply, then the digest's narrow filters (the recording's VarSet)."""
    sys.path.insert(0, str(HERE.parent.parent))
    from pbxis import client, commands, digest

    wanted = frozenset(digest.Digest.handled_events) | client._CLIENT_EVENTS
    out = [[(k, str(v)) for k, v in commands.server_filter(wanted)[1]]]
    for regex in digest.Digest.narrow_filters.values():
        out.append([("Operation", "Add"), ("Filter", regex)])
    return out


BUSY_SECONDS = 60


def sc_k(rec: Recording) -> None:
    """Busy period for benchmarks: ~60 calls in one minute over both queues, recorded
    by three sessions at once: k (Events: on, no filter), l1 (Events EventMask
    agent,call), l2 (the Filter actions pbxis sends: its whitelist as one legacy regex,
    and the recording's VarSet).

    Agents: 1001 (sales) answers after 1 s and waits for the caller to hang up; 1002
    (sales+support) answers after 1.5 s and hangs up after 2.5 s; 1003 (support)
    answers after 1 s.  Callers: one into sales every 2 s (gives up after 20 s, talks
    3 s, numbers 555011..) and one into support every 2 s, 1 s later (gives up after
    15 s, talks 2 s, numbers 555021..), for a minute."""
    k = rec.session("k-busy", "k")
    l1 = rec.session("l1-busy-eventmask", "l1")
    l2 = rec.session("l2-busy-filter", "l2")
    for s in (k, l1, l2):
        s.login()
    l1.send("Events", ("EventMask", "agent,call"))
    for headers in _pbxis_filters():
        l2.send("Filter", *headers)
    time.sleep(1)
    rec.mark(f"start callers: one into sales and one into support every 2 s for {BUSY_SECONDS} s")
    callers = []
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < BUSY_SECONDS:
        n += 1
        callers.append(rec.lab.call("sales", number=f"55501{n}", talk=3, abandon_after=20))
        time.sleep(1)
        callers.append(rec.lab.call("support", number=f"55502{n}", talk=2, abandon_after=15))
        time.sleep(1)
    _wait_calls_over(rec, callers, 90)
    rec.mark(f"all {len(callers)} callers finished")
    time.sleep(2)
    for s in (k, l1, l2):
        s.logoff()


def sc_l3(rec: Recording) -> None:
    """Asterisk 22's `MatchCriteria` Filter form sent to this Asterisk, then one call.

    All phones answer after 1 s; 1002 paused in sales.  The recorder sends
    Filter Operation=Add MatchCriteria=name(QueueMemberStatus) (the form Asterisk 22
    added), then a caller 555011 -> sales talks 2 s.  Shows whether the filter is
    applied (only QueueMemberStatus would follow) or merely acknowledged."""
    s = rec.session("l3-filter-matchcriteria", "l3")
    s.login()
    s.send("Filter", ("Operation", "Add"), ("MatchCriteria", "name(QueueMemberStatus)"))
    time.sleep(1)
    c = rec.call("sales", "555011", talk=2)
    _wait_calls_over(rec, [c], 30)
    time.sleep(2)
    s.logoff()


P1002 = True
Phones = dict[str, dict[str, object]]
#: name -> (title, function, phones, pause 1002 in sales before recording)
SCENARIOS: dict[str, tuple[str, Callable[[Recording], None], Phones, bool]] = {
    "a": (
        "Initial state queries with calls in progress",
        sc_a,
        {"p1002": {"mode": "noanswer"}, "p1003": {"mode": "noanswer"}},
        False,
    ),
    "b": ("Queue member add/pause/unpause/remove and errors", sc_b, {}, False),
    "c": (
        "Queue call answered by 1001, caller hangs up",
        sc_c,
        {a: {"answer_after": 2.0} for a in ("p1001", "p1002", "p1003")},
        P1002,
    ),
    "d": (
        "Queue call answered by 1001, agent hangs up",
        sc_d,
        {
            "p1001": {"mode": "hangup", "answer_after": 2.0, "hangup_after": 5.0},
            "p1002": {"answer_after": 2.0},
            "p1003": {"answer_after": 2.0},
        },
        P1002,
    ),
    "e": ("Two waiting callers, one abandons", sc_e, {"p1001": {"answer_after": 6.0}}, P1002),
    "f1": (
        "Agent rings without answering; caller abandons",
        sc_f1,
        {"p1001": {"mode": "noanswer"}},
        P1002,
    ),
    "f2": (
        "Agent phone returns 486 Busy; caller abandons",
        sc_f2,
        {"p1001": {"mode": "busy"}},
        P1002,
    ),
    "f3": ("Caller waits while the only agent is paused", sc_f3, {}, P1002),
    "g": (
        "Originate: success (sync/async) and failures",
        sc_g,
        {"p1002": {"mode": "noanswer"}, "p1003": {"stopped": True}},
        False,
    ),
    "h1": ("Redirect the caller of a bridged queue call to 1003", sc_h1, {}, P1002),
    "h2": ("Park a queue call: retrieved, then timed out", sc_h2, {}, P1002),
    "i": (
        "Agent holds / unholds via SIP re-INVITE",
        sc_i,
        {
            "p1001": {
                "mode": "hold",
                "answer_after": 1.0,
                "hold_after": 3.0,
                "hold_for": 5.0,
                "hangup_after": 3.0,
            }
        },
        P1002,
    ),
    "m1": ("Login with Events: off, later Events on", sc_m1, {}, P1002),
    "m3": ("Action before login, MD5 challenge login, Logoff", sc_m3, {}, False),
    "n": ("Agent phone 1003 goes offline and back online", sc_n, {}, False),
    "k": (
        f"Busy period ~{BUSY_SECONDS} calls / {BUSY_SECONDS} s: unfiltered, EventMask, Filter",
        sc_k,
        {
            "p1002": {"mode": "hangup", "answer_after": 1.5, "hangup_after": 2.5},
        },
        False,
    ),
    "l3": ("Asterisk 22's MatchCriteria Filter form, then one call", sc_l3, {}, P1002),
}


# --------------------------------------------------------------------------- driver


def _stats(data: bytes) -> tuple[int, Counter[str], Counter[str]]:
    events: Counter[str] = Counter(
        m.decode() for m in re.findall(rb"(?:^|\r\n\r\n)Event: ([^\r\n]+)", data)
    )
    responses: Counter[str] = Counter(
        m.decode() for m in re.findall(rb"(?:^|\r\n\r\n|\r\n)Response: ([^\r\n]+)", data)
    )
    return sum(events.values()), events, responses


def record(the_lab: labmod.Lab, key: str, out: Path) -> dict[str, object]:
    """Record scenario ``key`` into ``out``; return its index entry."""
    title, func, phones, pause_1002 = SCENARIOS[key]
    _phones(the_lab, **phones)
    ast = the_lab.asterisk
    ast.stop()
    ast.start()
    reachable = [a for a in labmod.AGENTS if not phones.get(f"p{a}", {}).get("stopped")]
    the_lab.wait_reachable(*reachable)
    unplugged = [a for a in labmod.AGENTS if a not in reachable]
    for agent in unplugged:
        the_lab.phones[agent].wait_unreachable(ast)
    if pause_1002:
        control([PAUSE_1002])
    time.sleep(1.0)
    rec = Recording(the_lab, key)
    wall = _now_wall()
    try:
        func(rec)
        rec.notable()
    finally:
        for caller in the_lab.callers:
            caller.stop()
        the_lab.callers.clear()
        for session in rec.sessions.values():
            session.close()
    files = []
    for file, session in rec.sessions.items():
        (out / f"{file}.ami").write_bytes(bytes(session.data))
        with open(out / f"{file}.actions", "w") as fh:
            for action in session.actions:
                fh.write(json.dumps(action) + "\n")
        files.append(file)
    return {
        "title": title,
        "description": (func.__doc__ or "").strip(),
        "recorded": wall,
        "asterisk": " ".join(ast.cli("core show version").split()[:2]),
        "files": files,
        "timeline": rec.timeline,
        "setup": {"phones": phones, "paused_1002_in_sales": pause_1002},
    }


BEGIN = "<!-- generated by tests/harness/record.py: begin -->"
END = "<!-- generated by tests/harness/record.py: end -->"


def write_readme(out: Path, index: dict[str, dict[str, object]]) -> None:
    """Rebuild the generated part of README.md (file table, per-scenario sections)."""
    rows = []
    sections = []
    order = [k for k in SCENARIOS if k in index] + sorted(set(index) - set(SCENARIOS))
    for key in order:
        entry = index[key]
        files = list(entry["files"])  # type: ignore[call-overload]
        for file in files:
            data = (out / f"{file}.ami").read_bytes()
            count, _, _ = _stats(data)
            rows.append(f"| `{file}.ami` | {len(data)} | {count} | {entry['title']} |")
        desc = str(entry["description"])
        lines = [f"## {', '.join(f'`{f}.ami`' for f in files)}: {entry['title']}", ""]
        lines += [re.sub(r"^    ", "", line) for line in desc.splitlines()]
        lines += ["", f"Recorded {entry['recorded']}, {entry['asterisk']}.", ""]
        for file in files:
            data = (out / f"{file}.ami").read_bytes()
            count, events, responses = _stats(data)
            greeting = data.split(b"\r\n", 1)[0].decode(errors="replace")
            acts = [json.loads(x) for x in (out / f"{file}.actions").read_text().splitlines()]
            resp = ", ".join(f"{k} x{v}" for k, v in sorted(responses.items()))
            lines.append(
                f"`{file}.ami`: {len(data)} bytes, greeting `{greeting}`, {count} events, "
                f"{len(acts)} actions, responses: {resp}."
            )
            lines.append("")
            lines.append(
                "Events by name: "
                + ", ".join(f"{k} {v}" for k, v in events.most_common())
            )
            lines.append("")
        timeline = entry.get("timeline") or []
        if timeline:
            lines += ["Timeline (s since the recorder connected):", "", "```"]
            lines += [f"{t:7.1f}s  {text}" for t, text in timeline]  # type: ignore[misc]
            lines += ["```", ""]
        sections.append("\n".join(lines))
    table = ["| file | bytes | events | scenario |", "|---|---:|---:|---|", *rows]
    generated = "\n".join([BEGIN, "", *table, "", *sections, END])
    readme = out / "README.md"
    text = readme.read_text() if readme.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + generated + tail
    else:
        text = text + ("\n" if text else "") + generated + "\n"
    readme.write_text(text)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", help=f"default: all of {list(SCENARIOS)}")
    parser.add_argument("--version", default="16", help="Asterisk version of the lab")
    parser.add_argument("--out", type=Path, help="default: tests/harness/transcripts<ver>")
    parser.add_argument("--readme-only", action="store_true", help="only rebuild README.md")
    args = parser.parse_args(argv)
    out = args.out or HERE / f"transcripts{args.version}"
    out.mkdir(parents=True, exist_ok=True)
    index_path = out / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    keys = args.scenarios or list(SCENARIOS)
    unknown = [k for k in keys if k not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {list(SCENARIOS)}")
    if not args.readme_only:
        missing = labmod.missing_requirements(args.version)
        if missing:
            print("record: missing " + ", ".join(missing), file=sys.stderr)
            return 1
        with labmod.Lab(args.version) as the_lab:
            the_lab.start()
            for key in keys:
                started = time.monotonic()
                print(f"record: {key} ...", flush=True)
                index[key] = record(the_lab, key, out)
                print(f"record: {key} done in {time.monotonic() - started:.1f} s", flush=True)
                index_path.write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    write_readme(out, index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
