"""``SimServer``: the simulated PBX on a loopback TCP port, speaking AMI.

The only socket and thread code of the simulator. Threads (all daemon,
named ``pbxis-sim-*``): one acceptor, one clock driver (when ``speed`` >
0), and a reader plus a writer per connection. Actions are parsed with
``pbxis.protocol.Parser`` and handled by a ``ManagerSession`` under the
PBX's lock; events fan out to every session's outgoing queue (a writer
never blocks the PBX). Fault hooks for tests: ``drop_all``, ``hang`` /
``resume``, ``restart``, ``stop_listening`` / ``start_listening``,
``on_action`` and the ``actions`` recorder.
"""
from __future__ import annotations

import collections
import enum
import logging
import random
import socket
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Union

from ..protocol import Message, Parser
from .config import SimUser, make_users
from .frames import BANNER
from .manager import ManagerSession
from .pbx import SimulatedPbx

__all__ = ["SimServer", "ReceivedAction", "Fault", "ActionHook"]

logger = logging.getLogger(__name__)

_CLOSE = object()


class Fault(enum.Enum):
    """What an ``on_action`` hook may ask for instead of a normal answer."""

    #: Close this connection abruptly (RST) instead of answering.
    DROP = "drop"
    #: Swallow the action: never answer it.
    IGNORE = "ignore"


@dataclass(frozen=True)
class ReceivedAction:
    """One action a client sent, as recorded by the server."""

    connection: int
    name: str
    message: Message
    received_at: float

    @property
    def action_id(self) -> str | None:
        return self.message.get("ActionID")

    def get(self, header: str, default: str | None = None) -> str | None:
        return self.message.get(header, default)


#: ``on_action(received) -> None`` (answer normally), ``bytes`` (send these
#: instead) or a ``Fault``. Runs on the connection's reader thread.
ActionHook = Callable[[ReceivedAction], Union[None, bytes, Fault]]


class _Connection:
    """One client socket: outgoing queue, reader and writer threads."""

    def __init__(self, server: SimServer, sock: socket.socket, number: int) -> None:
        self.server = server
        self.sock = sock
        self.number = number
        self._out: collections.deque[object] = collections.deque()
        self._cond = threading.Condition()
        self._pending_bytes = 0
        self.closed = False
        local = sock.getsockname()
        remote = sock.getpeername()
        self.session = ManagerSession(
            server.pbx, server.users, write=self.write, close=self.close_after_flush,
            session_id=number, local=(local[0], local[1]), remote=(remote[0], remote[1]),
            on_shutdown=server._cli_shutdown, rng=server._rng)
        self.reader = threading.Thread(target=self._read_loop, daemon=True,
                                       name=f"pbxis-sim-conn{number}-reader")
        self.writer = threading.Thread(target=self._write_loop, daemon=True,
                                       name=f"pbxis-sim-conn{number}-writer")

    def start(self) -> None:
        self.write(BANNER)
        self.server.pbx.add_listener(self.session.on_event)
        self.writer.start()
        self.reader.start()

    # -- output
    def write(self, data: bytes) -> None:
        with self._cond:
            if self.closed:
                return
            self._out.append(data)
            self._pending_bytes += len(data)
            if self._pending_bytes > self.server.max_pending:
                # A client that does not read: Asterisk drops it too (writetimeout).
                logger.warning("sim: connection %d is not reading; dropping it", self.number)
                self._out.clear()
                self.closed = True
                self._out.append(_CLOSE)
            self._cond.notify()

    def close_after_flush(self) -> None:
        with self._cond:
            if not self.closed:
                self.closed = True
                self._out.append(_CLOSE)
                self._cond.notify()
        self.session.closed = True

    def abort(self) -> None:
        """Close at once with a TCP reset (a crashed or unplugged server)."""
        with self._cond:
            self.closed = True
            self._out.clear()
            self._out.append(_CLOSE)
            self._cond.notify()
        self.session.closed = True
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self._shutdown_socket()

    def _shutdown_socket(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def _write_loop(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._out:
                        self._cond.wait()
                    items = list(self._out)
                    self._out.clear()
                    self._pending_bytes = 0
                self.server._io_ok.wait()
                chunk: list[bytes] = []
                for item in items:
                    if item is _CLOSE:
                        if chunk:
                            self.sock.sendall(b"".join(chunk))
                        self._shutdown_socket()
                        return
                    assert isinstance(item, bytes)
                    chunk.append(item)
                if chunk:
                    self.sock.sendall(b"".join(chunk))
        except OSError:
            self._shutdown_socket()
        finally:
            self.server._forget(self)

    # -- input
    def _read_loop(self) -> None:
        parser = Parser()
        parser.feed(BANNER)  # clients send no greeting; prime the parser past it
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.server._io_ok.wait()
                for frame in parser.feed(data):
                    if isinstance(frame, Message) and not self.session.closed:
                        self.server._on_message(self, frame)
        except OSError:
            pass
        finally:
            self.close_after_flush()
            self.server._forget(self)


class SimServer:
    """A loopback AMI server in front of a ``SimulatedPbx``.

    Args:
        host, port: where to listen (port 0: a free port, see ``.port``).
        users: ``{"name": "secret" | SimUser}``; default ``{"pbxis": "pbxis-secret"}``.
        pbx: the model (default: a fresh ``SimulatedPbx()``).
        speed: virtual seconds per real second for the clock thread; 0: the
            clock only moves when the test calls ``pbx.advance()``.
        tick: longest real wait of the clock thread, in seconds.
        max_pending: bytes queued for a client that does not read before it
            is disconnected.

    ``start()`` returns once the socket listens; ``stop()`` joins every thread.
    Usable as a context manager.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        users: Mapping[str, str | SimUser] | None = None,
        pbx: SimulatedPbx | None = None,
        speed: float = 1.0,
        *,
        tick: float = 0.05,
        max_pending: int = 64 << 20,
    ) -> None:
        self.host = host
        self._port = port
        self.users: dict[str, SimUser] = make_users(users)
        self.pbx = pbx if pbx is not None else SimulatedPbx()
        self.speed = float(speed)
        self.tick = tick
        self.max_pending = max_pending
        self.on_action: ActionHook | None = None
        self.actions: list[ReceivedAction] = []
        self._rng = random.Random()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._clock: threading.Thread | None = None
        self._conns: dict[int, _Connection] = {}
        self._conn_seq = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._io_ok = threading.Event()
        self._io_ok.set()
        self._reopen: threading.Timer | None = None
        self.running = False

    # ------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        """The TCP port (known once started)."""
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self._port

    def url(self, user: str | None = None) -> str:
        """``ami://user:secret@host:port`` for ``pbxis.connect``."""
        name = user or next(iter(self.users))
        return f"ami://{name}:{self.users[name].secret}@{self.host}:{self._port}"

    def start(self) -> SimServer:
        """Listen and start the threads; returns self."""
        if self.running:
            return self
        self._stop.clear()
        self._io_ok.set()
        self._open_listener()
        self.running = True
        if self.speed > 0:
            self._clock = threading.Thread(target=self._clock_loop, daemon=True,
                                           name="pbxis-sim-clock")
            self._clock.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close every connection and the listener; join the threads."""
        self._stop.set()
        self._io_ok.set()
        if self._reopen is not None:
            self._reopen.cancel()
        self._close_listener()
        # One snapshot: an aborted connection leaves the list from its own
        # thread, and its threads must still be joined.
        connections = self._connections()
        for conn in connections:
            conn.abort()
        threads = [t for t in (self._acceptor, self._clock) if t is not None]
        for conn in connections:
            threads += [conn.reader, conn.writer]
        for thread in threads:
            if thread is not threading.current_thread() and thread.is_alive():
                thread.join(timeout)
        self.running = False

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _open_listener(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        sock.listen(128)
        self._port = sock.getsockname()[1]
        self._listener = sock
        self._acceptor = threading.Thread(target=self._accept_loop, args=(sock,), daemon=True,
                                          name="pbxis-sim-accept")
        self._acceptor.start()

    def _close_listener(self) -> None:
        with self._changed:
            sock, self._listener = self._listener, None
            self._changed.notify_all()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if self._acceptor is not None and self._acceptor is not threading.current_thread():
            self._acceptor.join(2.0)

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            if self._stop.is_set() or self._listener is not listener:
                sock.close()
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._changed:
                self._conn_seq += 1
                conn = _Connection(self, sock, self._conn_seq)
                self._conns[conn.number] = conn
                self._changed.notify_all()
            with self.pbx.lock:
                conn.start()

    def _clock_loop(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            due = self.pbx.next_due()
            wait = self.tick
            if due is not None and self.speed > 0:
                wait = min(self.tick, max(0.0, (due - self.pbx.now) / self.speed))
            self._stop.wait(wait)
            now = time.monotonic()
            elapsed, last = now - last, now
            if self.speed > 0:
                self.pbx.advance(elapsed * self.speed)

    # ------------------------------------------------------------ connections
    def _connections(self) -> list[_Connection]:
        with self._lock:
            return list(self._conns.values())

    def _forget(self, conn: _Connection) -> None:
        self.pbx.remove_listener(conn.session.on_event)
        with self._changed:
            if self._conns.pop(conn.number, None) is not None:
                self._changed.notify_all()

    @property
    def connection_count(self) -> int:
        """Open client connections."""
        with self._lock:
            return len(self._conns)

    @property
    def session_count(self) -> int:
        """Logged-in client connections."""
        with self._lock:
            return sum(1 for c in self._conns.values()
                       if c.session.authenticated and not c.session.closed)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait (no polling) until ``predicate()`` holds; re-checked on every
        connect, disconnect and action. Returns the last value."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                self._lock.release()
                try:
                    if predicate():
                        return True
                finally:
                    self._lock.acquire()
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)

    def wait_for_action(self, name: str, timeout: float = 5.0, *,
                        since: int = 0) -> ReceivedAction:
        """The first recorded action called ``name`` at index >= ``since``.

        Raises:
            TimeoutError: none arrived in time.
        """
        found: list[ReceivedAction] = []

        def check() -> bool:
            with self._lock:
                for act in self.actions[since:]:
                    if act.name.lower() == name.lower():
                        found.append(act)
                        return True
            return False

        if not self.wait_until(check, timeout):
            raise TimeoutError(f"no {name} action within {timeout} s")
        return found[0]

    def action_names(self) -> list[str]:
        """Names of every recorded action, in order."""
        with self._lock:
            return [a.name for a in self.actions]

    def _on_message(self, conn: _Connection, msg: Message) -> None:
        received = ReceivedAction(conn.number, msg.get("Action") or "", msg, time.monotonic())
        with self._changed:
            self.actions.append(received)
        hook = self.on_action
        result = hook(received) if hook is not None else None
        if result is Fault.DROP:
            conn.abort()
        elif isinstance(result, bytes):
            conn.write(result)
        elif result is None:
            with self.pbx.lock:
                conn.session.handle(msg)
        with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------ faults
    def drop_all(self) -> int:
        """Close every client socket abruptly (RST); returns how many."""
        conns = self._connections()
        for conn in conns:
            conn.abort()
        return len(conns)

    def hang(self) -> None:
        """Stop reading and writing (sockets stay open): a silent peer."""
        self._io_ok.clear()

    def resume(self) -> None:
        """End ``hang()``: pending bytes flow again."""
        self._io_ok.set()

    def restart(self, downtime: float = 0.0, *, notify: bool = True) -> None:
        """Restart the PBX like ``core restart now``.

        Every session gets ``Event: Shutdown`` (``Restart: True``; if its mask
        and filters let system events through, and ``notify``), then EOF. The
        PBX forgets its calls and statistics (``SimulatedPbx.restart``). With
        ``downtime`` > 0 connections are refused for that many real seconds.
        ``notify=False`` models ``kill -9``: EOF only.
        """
        self._shutdown(True, downtime=downtime, notify=notify)

    def stop_listening(self) -> None:
        """Refuse new connections (existing ones stay)."""
        self._close_listener()

    def start_listening(self) -> None:
        """Accept connections again, on the same port."""
        if self._listener is None and not self._stop.is_set():
            self._open_listener()
        with self._changed:
            self._changed.notify_all()

    @property
    def listening(self) -> bool:
        """True while new connections are accepted."""
        return self._listener is not None

    def _shutdown(self, restart: bool, *, downtime: float = 0.0, notify: bool = True,
                  exclude: ManagerSession | None = None) -> None:
        with self.pbx.lock:
            for conn in self._connections():
                if notify and conn.session is not exclude and not conn.session.closed:
                    conn.session.shutdown_event(restart)
                conn.close_after_flush()
                self.pbx.remove_listener(conn.session.on_event)
            self.pbx.restart()
        if downtime > 0 or not restart:
            self._close_listener()
            if restart:
                self._reopen = threading.Timer(downtime, self.start_listening)
                self._reopen.daemon = True
                self._reopen.name = "pbxis-sim-reopen"
                self._reopen.start()

    def _cli_shutdown(self, session: ManagerSession, restart: bool) -> None:
        # Runs on a reader thread with pbx.lock held; the listener work must not
        # join the acceptor from here, so hand it to a short-lived thread.
        threading.Thread(target=self._shutdown, args=(restart,),
                         kwargs={"exclude": session}, daemon=True,
                         name="pbxis-sim-shutdown").start()

    # ------------------------------------------------------------ injection
    def send_raw(self, data: bytes) -> None:
        """Write raw bytes to every connection (malformed-frame tests)."""
        for conn in self._connections():
            conn.write(data)
