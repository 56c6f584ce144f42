"""A scripted loopback AMI server for the end-to-end benchmarks (stdlib only).

Used by ``bench/e2e.py`` and ``bench/latency.py``; it imports nothing from
pbxis, so every client (pbxis and the PyPI peers) talks to the same,
independent code. It runs in a *child process* (``ServerProcess``) so that
its writes never compete with the client under test for the GIL; on the
2-core project machine the server and the client each get a core.

Per connection it sends the AMI greeting, then answers every action:

* ``Login`` -> ``Response: Success`` (any credentials), ``Logoff`` ->
  ``Response: Goodbye`` and close, ``Ping`` -> ``Ping: Pong``;
* the queries pbxis's digest sends when a channel is opened
  (``Digest.track``: ``QueueStatus Queue=q``, ``QueueStatus Member=loc``,
  ``Getvar DEVICE_STATE(loc)``, ``Getvar CHANNELS(...)``) and on a restore
  (``DeviceStateList``, ``CoreShowChannels``), answered with the lab's
  initial state from shared/ami-transcripts/README.md (1001 Alice Anders,
  1002 Bob Brown, 1003 Carol Clark; sales = 1001+1002, support =
  1002+1003; all idle, nobody waiting, no calls);
* ``Filter`` -> ``Response: Error`` (``Permission denied``, as for a user
  without the ``system`` privilege): the benchmarks stream the *unfiltered*
  transcript to every client, so no client may believe it is narrowed
  (pbxis adds an event to its parser's set when Asterisk accepts a Filter
  for it). The benches also connect pbxis with ``server_filter=False``.
* anything else (``Events``...) -> a bare ``Response: Success`` (an event
  mask is acknowledged but not applied).

The stream is started by the parent through the control pipe (one command
per line on stdin, one reply per line on stdout), always to the connection
that logged in last and has not been streamed to yet:

* ``stream`` -- every event of the transcript (greeting and responses
  removed) then the end sentinel, written as fast as the socket takes them
  in ~64 KiB pieces cut at frame boundaries. Reply:
  ``streamed <t_first_byte_ns> <t_last_byte_ns> <frames>``
  (``time.monotonic_ns()``: CLOCK_MONOTONIC, comparable across processes).
* ``pace <rate> <slots> <marker_every>`` -- ``slots`` events at ``rate``
  events/s: transcript events (from the start, wrapping around), except
  that every ``marker_every``-th slot carries a *marker* (``marker()``: an
  ``AgentComplete`` whose Uniqueid holds the monotonic clock in
  microseconds, read just before the write). Then the end sentinel.
  Reply: ``paced <t_first_ns> <t_last_ns> <events> <markers> <late_ns_max>``
  (``late_ns_max``: the worst lag of a write behind its schedule).
* ``quit``.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_FILE = os.path.join(ROOT, "..", "shared", "ami-transcripts", "k-busy.ami")

GREETING = b"Asterisk Call Manager/11.0.0\r\n"
AGENTS = ("1001", "1002", "1003")
QUEUES = ("sales", "support")
NAMES = {"1001": "Alice Anders", "1002": "Bob Brown", "1003": "Carol Clark"}
MEMBERS = {"sales": ("1001", "1002"), "support": ("1002", "1003")}
PREFIX = "PJSIP/"

#: The last frame of every stream: pbxis digests it into
#: ``queueCount(queue="sales", count=SENTINEL_COUNT)`` (the transcript leaves
#: sales at 0, so the value is new and, being last, never conflated away);
#: the peers see ``QueueCallerJoin`` with ``Count: 99999``.
SENTINEL_QUEUE = "sales"
SENTINEL_COUNT = 99999
SENTINEL = (
    "Event: QueueCallerJoin\r\nPrivilege: agent,all\r\n"
    "Channel: PJSIP/bench-end-00000001\r\nChannelState: 4\r\nChannelStateDesc: Ring\r\n"
    "CallerIDNum: 555999\r\nCallerIDName: Bench End\r\nConnectedLineNum: <unknown>\r\n"
    "ConnectedLineName: <unknown>\r\nLanguage: en\r\nAccountCode: \r\nContext: default\r\n"
    "Exten: sales\r\nPriority: 2\r\nUniqueid: 1999999999.1\r\nLinkedid: 1999999999.1\r\n"
    f"Queue: {SENTINEL_QUEUE}\r\nPosition: 1\r\nCount: {SENTINEL_COUNT}\r\n\r\n"
).encode()

#: Markers of ``pace`` carry this Uniqueid prefix; see ``marker``.
MARKER_PREFIX = "bench"


def marker(seq: int, stamp_us: int) -> bytes:
    """An ``AgentComplete`` for agent 1001 whose Uniqueid holds the send time.

    pbxis digests it into ``agentComplete(agent="1001",
    uniqueId="bench.<seq>.<stamp_us>")``: a discrete event, so no channel
    ever conflates one away, and it changes no tracked state. ``stamp_us``
    is ``time.monotonic_ns() // 1000`` taken just before the write.
    """
    uid = f"{MARKER_PREFIX}.{seq}.{stamp_us}"
    return (
        "Event: AgentComplete\r\nPrivilege: agent,all\r\n"
        f"Channel: PJSIP/caller-b{seq:07x}\r\nChannelState: 6\r\nChannelStateDesc: Up\r\n"
        "CallerIDNum: 555000\r\nCallerIDName: Bench\r\nConnectedLineNum: 1001\r\n"
        "ConnectedLineName: Alice Anders\r\nLanguage: en\r\nAccountCode: \r\n"
        "Context: default\r\nExten: sales\r\nPriority: 2\r\n"
        f"Uniqueid: {uid}\r\nLinkedid: {uid}\r\n"
        f"DestChannel: PJSIP/1001-b{seq:07x}\r\nDestChannelState: 6\r\n"
        "DestChannelStateDesc: Up\r\nDestCallerIDNum: 1001\r\nDestCallerIDName: Alice Anders\r\n"
        "DestConnectedLineNum: 555000\r\nDestConnectedLineName: Bench\r\nDestLanguage: en\r\n"
        "DestAccountCode: \r\nDestContext: default\r\nDestExten: sales\r\nDestPriority: 1\r\n"
        f"DestUniqueid: {uid}.1\r\nDestLinkedid: {uid}\r\nQueue: sales\r\n"
        "Interface: PJSIP/1001\r\nMemberName: Alice Anders\r\nHoldTime: 1\r\nTalkTime: 2\r\n"
        "Reason: caller\r\n\r\n"
    ).encode()


def load_events(path: str) -> List[bytes]:
    """The transcript's event frames (each ending in CRLF CRLF), in order.

    The greeting line and every ``Response:`` frame (the recorded Login and
    Logoff answers) are removed: each client gets its own answers.
    """
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"Asterisk Call Manager/"):
        data = data[data.index(b"\n") + 1 :]
    frames = []
    for block in data.split(b"\r\n\r\n"):
        block = block.lstrip(b"\r\n")
        if block and not block.startswith(b"Response:"):
            frames.append(block + b"\r\n\r\n")
    return frames


def pieces(frames: Sequence[bytes], size: int = 1 << 16) -> List[bytes]:
    """Join frames into pieces of about ``size`` bytes, cut at frame ends."""
    out: List[bytes] = []
    cur: List[bytes] = []
    n = 0
    for frame in frames:
        cur.append(frame)
        n += len(frame)
        if n >= size:
            out.append(b"".join(cur))
            cur, n = [], 0
    if cur:
        out.append(b"".join(cur))
    return out


# --- answers -----------------------------------------------------------------


def _frame(pairs: Sequence[Tuple[str, str]]) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in pairs) + "\r\n").encode()


def _with_id(pairs: List[Tuple[str, str]], action_id: Optional[str]) -> List[Tuple[str, str]]:
    if action_id is not None:
        pairs.insert(1, ("ActionID", action_id))
    return pairs


def _list(
    action_id: Optional[str], what: str, items: List[List[Tuple[str, str]]], complete: str
) -> bytes:
    start = [("Response", "Success"), ("EventList", "start"), ("Message", f"{what} will follow")]
    out = [_frame(_with_id(start, action_id))]
    out += [_frame(_with_id(item, action_id)) for item in items]
    out.append(
        _frame(
            _with_id(
                [("Event", complete), ("EventList", "Complete"), ("ListItems", str(len(items)))],
                action_id,
            )
        )
    )
    return b"".join(out)


def _queue_status(action_id: Optional[str], queue: Optional[str], member: Optional[str]) -> bytes:
    items: List[List[Tuple[str, str]]] = []
    for q, agents in MEMBERS.items():
        if queue is not None and q != queue:
            continue
        items.append(
            [
                ("Event", "QueueParams"),
                ("Queue", q),
                ("Max", "0"),
                ("Strategy", "ringall"),
                ("Calls", "0"),
                ("Holdtime", "0"),
                ("TalkTime", "0"),
                ("Completed", "0"),
                ("Abandoned", "0"),
                ("ServiceLevel", "0"),
                ("ServicelevelPerf", "0.0"),
                ("ServicelevelPerf2", "0.0"),
                ("Weight", "0"),
            ]
        )
        for a in agents:
            location = PREFIX + a
            if member not in (None, location, NAMES[a]):
                continue
            items.append(
                [
                    ("Event", "QueueMember"),
                    ("Queue", q),
                    ("Name", NAMES[a]),
                    ("Location", location),
                    ("StateInterface", location),
                    ("Membership", "static"),
                    ("Penalty", "0"),
                    ("CallsTaken", "0"),
                    ("LastCall", "0"),
                    ("LastPause", "0"),
                    ("LoginTime", "0"),
                    ("InCall", "0"),
                    ("Status", "1"),
                    ("Paused", "0"),
                    ("PausedReason", ""),
                    ("Wrapuptime", "0"),
                ]
            )
    return _list(action_id, "Queue status", items, "QueueStatusComplete")


def answer(headers: Dict[str, str]) -> Tuple[bytes, bool]:
    """The reply to one action and whether to close the connection after it."""
    action = headers.get("action", "").lower()
    aid = headers.get("actionid")
    if action == "login":
        reply = [("Response", "Success"), ("Message", "Authentication accepted")]
    elif action == "logoff":
        reply = [("Response", "Goodbye"), ("Message", "Thanks for all the fish.")]
        return _frame(_with_id(reply, aid)), True
    elif action == "ping":
        reply = [("Response", "Success"), ("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}")]
    elif action == "queuestatus":
        return _queue_status(aid, headers.get("queue"), headers.get("member")), False
    elif action == "getvar":
        var = headers.get("variable", "")
        value = "NOT_INUSE" if var.startswith("DEVICE_STATE(") else ""
        reply = [("Response", "Success"), ("Variable", var), ("Value", value)]
    elif action == "devicestatelist":
        items = [
            [("Event", "DeviceStateChange"), ("Device", PREFIX + a), ("State", "NOT_INUSE")]
            for a in AGENTS
        ]
        return _list(aid, "Device State Changes", items, "DeviceStateListComplete"), False
    elif action == "filter":
        reply = [("Response", "Error"), ("Message", "Permission denied")]
    elif action in ("coreshowchannels", "status"):
        done = "CoreShowChannelsComplete" if action == "coreshowchannels" else "StatusComplete"
        return _list(aid, "Channels", [], done), False
    else:
        reply = [("Response", "Success")]
    return _frame(_with_id(reply, aid)), False


# --- the server -----------------------------------------------------------------


class _Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()  # one writer at a time: frames never interleave
        self.logged_in = threading.Event()
        self.streamed = False

    def send(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)


class Server:
    """The listener and one answering thread per connection (in the child)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.listener = socket.create_server((host, port))
        self.port = self.listener.getsockname()[1]
        self.conns: List[_Conn] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(sock)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: _Conn) -> None:
        try:
            conn.send(GREETING)
            buf = b""
            while True:
                data = conn.sock.recv(65536)
                if not data:
                    break
                buf += data.replace(b"\r\n", b"\n")
                while b"\n\n" in buf:
                    block, buf = buf.split(b"\n\n", 1)
                    headers: Dict[str, str] = {}
                    for line in block.decode("utf-8", "replace").split("\n"):
                        name, _, value = line.partition(":")
                        headers.setdefault(name.strip().lower(), value.strip())
                    if not headers.get("action"):
                        continue
                    reply, close = answer(headers)
                    conn.send(reply)
                    if close:
                        conn.sock.shutdown(socket.SHUT_RDWR)
                        return
                    if headers["action"].lower() == "login":
                        with self.cond:
                            if conn not in self.conns:
                                self.conns.append(conn)
                            self.cond.notify_all()
        except OSError:
            pass
        finally:
            conn.sock.close()

    def latest(self, timeout: float = 30.0) -> _Conn:
        """The connection that logged in last and was not streamed to yet."""
        with self.cond:
            ok = self.cond.wait_for(
                lambda: bool(self.conns) and not self.conns[-1].streamed, timeout
            )
            if not ok:
                raise RuntimeError("no new logged-in connection to stream to")
            conn = self.conns[-1]
            conn.streamed = True
            return conn


def stream(conn: _Conn, chunks: Sequence[bytes]) -> Tuple[int, int]:
    """Write every chunk as fast as the socket takes it; (first, last) ns."""
    t0 = time.monotonic_ns()
    for chunk in chunks:
        conn.send(chunk)
    return t0, time.monotonic_ns()


def pace(
    conn: _Conn, frames: Sequence[bytes], rate: float, count: int, marker_every: int
) -> Tuple[int, int, int, int, int]:
    """``count`` slots at ``rate``/s: transcript frames, every Nth slot a marker."""
    period_ns = int(1e9 / rate)
    markers = 0
    late_max = 0
    seq = 0
    t0 = time.monotonic_ns()
    src = iter(frames)
    sent = 0
    for slot in range(count):
        due = t0 + slot * period_ns
        now = time.monotonic_ns()
        if due > now:
            time.sleep((due - now) / 1e9)
            now = time.monotonic_ns()
        late_max = max(late_max, now - due)
        if marker_every and slot % marker_every == marker_every - 1:
            conn.send(marker(seq, time.monotonic_ns() // 1000))
            seq += 1
            markers += 1
        else:
            frame = next(src, None)
            if frame is None:
                src = iter(frames)
                frame = next(src)
            conn.send(frame)
        sent += 1
    conn.send(SENTINEL)
    return t0, time.monotonic_ns(), sent + 1, markers, late_max


def main(argv: Sequence[str]) -> int:
    path = argv[0] if argv else DEFAULT_FILE
    frames = load_events(path)
    chunks = pieces(frames + [SENTINEL])
    server = Server()
    out = sys.stdout
    out.write(f"port {server.port} {len(frames)}\n")
    out.flush()
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "quit":
            break
        conn = server.latest()
        try:
            if cmd[0] == "stream":
                t0, t1 = stream(conn, chunks)
                out.write(f"streamed {t0} {t1} {len(frames) + 1}\n")
            elif cmd[0] == "pace":
                rate, count, every = float(cmd[1]), int(cmd[2]), int(cmd[3])
                t0, t1, n, markers, late = pace(conn, frames, rate, count, every)
                out.write(f"paced {t0} {t1} {n} {markers} {late}\n")
            else:
                out.write(f"error unknown command {cmd[0]!r}\n")
        except OSError as exc:
            out.write(f"error {exc}\n")
        out.flush()
    return 0


# --- the parent's handle ---------------------------------------------------------


class ServerProcess:
    """Runs this module as a child process and drives it over its pipes."""

    def __init__(self, path: str = DEFAULT_FILE) -> None:
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        words = self.proc.stdout.readline().split()
        if not words or words[0] != "port":
            raise RuntimeError(f"server did not start: {words!r}")
        self.port = int(words[1])
        #: Events in the transcript (the sentinel not included).
        self.events = int(words[2])

    def command(self, line: str) -> None:
        """Send a control command; read its reply with ``reply()``."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def reply(self) -> List[str]:
        assert self.proc.stdout is not None
        words = self.proc.stdout.readline().split()
        if not words or words[0] == "error":
            raise RuntimeError(f"server: {' '.join(words) or 'exited'}")
        return words

    def close(self) -> None:
        try:
            self.command("quit")
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except Exception:
            self.proc.kill()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
