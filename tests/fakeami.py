"""A scripted fake AMI server for transport and client tests (paho FakeBroker style).

It speaks just enough AMI to log in; every other action is queued for the
test to inspect (``expect``) and answer (``conn.reply`` / ``conn.send``), or
answered by an auto-responder. Faults a real Asterisk cannot produce on
demand (silent peer, drop mid-action, garbage) are one call away.
"""
from __future__ import annotations

import hashlib
import queue
import socket
import threading
from typing import Callable, Dict, List, Optional, Tuple

from pbxis.protocol import Message, Parser

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def frame(*pairs: Tuple[str, str]) -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in pairs) + b"\r\n"


class FakeConn:
    """One accepted client connection."""

    def __init__(self, server: FakeAMI, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.parser = Parser()
        self.parser.feed(BANNER)  # clients send no greeting; prime the parser past it
        self.logged_in = False
        self.closed = threading.Event()
        self.silent = False

    def send(self, data: bytes) -> None:
        if not self.silent:
            try:
                self.sock.sendall(data)
            except OSError:
                pass

    def reply(self, action: Message, *pairs: Tuple[str, str], response: str = "Success") -> None:
        head: List[Tuple[str, str]] = [("Response", response)]
        if action.get("ActionID") is not None:
            head.append(("ActionID", action["ActionID"]))
        self.send(frame(*head, *pairs))

    def event(self, name: str, *pairs: Tuple[str, str]) -> None:
        self.send(frame(("Event", name), ("Privilege", "agent,all"), *pairs))

    def drop(self) -> None:
        """Close abruptly (RST where possible)."""
        try:
            linger = b"\x01\x00\x00\x00\x00\x00\x00\x00"
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        except OSError:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the serving thread's recv
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed.set()

    def _serve(self) -> None:
        self.send(self.server.banner)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                for msg in self.parser.feed(data):
                    if isinstance(msg, Message):
                        self.server._handle(self, msg)
        except OSError:
            pass
        finally:
            self.closed.set()


class FakeAMI:
    """A loopback AMI server. ``responders`` map action names to callables
    ``(conn, msg) -> None``; the rest go to ``actions`` for ``expect``."""

    def __init__(
        self,
        username: str = "pbxis",
        secret: str = "secret",
        banner: bytes = BANNER,
        auto: Optional[Dict[str, Callable[[FakeConn, Message], None]]] = None,
    ) -> None:
        self.username = username
        self.secret = secret
        self.banner = banner
        self.responders: Dict[str, Callable[[FakeConn, Message], None]] = {
            "Login": self._login,
            "Challenge": self._challenge,
            "Filter": lambda c, m: c.reply(m, ("Message", "Filter Added")),
            "Events": lambda c, m: c.reply(m, ("Events", "On")),
            "Ping": lambda c, m: c.reply(m, ("Ping", "Pong"), ("Timestamp", "1.0")),
        }
        self.responders.update(auto or {})
        self.actions: queue.Queue[Tuple[FakeConn, Message]] = queue.Queue()
        self.received: List[Message] = []
        self.conns: List[FakeConn] = []
        self.accepted = threading.Semaphore(0)
        self._challenge_value = "123456789"
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="fakeami", daemon=True)
        self._thread.start()

    def url(self, **query: object) -> str:
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return f"ami://{self.username}:{self.secret}@127.0.0.1:{self.port}" + (f"?{q}" if q else "")

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            conn = FakeConn(self, sock)
            self.conns.append(conn)
            self.accepted.release()
            threading.Thread(target=conn._serve, name="fakeami-conn", daemon=True).start()

    def _handle(self, conn: FakeConn, msg: Message) -> None:
        self.received.append(msg)
        name = msg.get("Action") or ""
        responder = self.responders.get(name)
        if responder is not None:
            responder(conn, msg)
        else:
            self.actions.put((conn, msg))

    def _login(self, conn: FakeConn, msg: Message) -> None:
        ok = msg.get("Username") == self.username and (
            msg.get("Secret") == self.secret
            or msg.get("Key")
            == hashlib.md5((self._challenge_value + self.secret).encode()).hexdigest()
        )
        if ok:
            conn.logged_in = True
            conn.reply(msg, ("Message", "Authentication accepted"))
            conn.event(
                "FullyBooted", ("Uptime", "5"), ("LastReload", "5"), ("Status", "Fully Booted")
            )
        else:
            conn.reply(msg, ("Message", "Authentication failed"), response="Error")
            conn.drop()

    def _challenge(self, conn: FakeConn, msg: Message) -> None:
        conn.reply(msg, ("Challenge", self._challenge_value))

    def expect(self, action: str, timeout: float = 5.0) -> Tuple[FakeConn, Message]:
        """Wait for the next unanswered action; it must be named ``action``."""
        conn, msg = self.actions.get(timeout=timeout)
        assert msg.get("Action") == action, f"expected {action}, got {msg.headers}"
        return conn, msg

    def expect_any(self, timeout: float = 5.0) -> Tuple[FakeConn, Message]:
        """Wait for the next unanswered action, whatever it is."""
        return self.actions.get(timeout=timeout)

    def wait_connections(self, n: int, timeout: float = 5.0) -> FakeConn:
        """Wait until the n-th connection was accepted; return it."""
        while len(self.conns) < n:
            assert self.accepted.acquire(timeout=timeout), "no connection"
        return self.conns[n - 1]

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        try:
            self._listener.close()
        except OSError:
            pass
        for conn in self.conns:
            conn.drop()
        self._thread.join(2)

    def __enter__(self) -> FakeAMI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
