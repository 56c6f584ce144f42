"""A loopback TCP proxy between pbxis and an AMI server that breaks the link on demand.

Real Asterisk (or pbxis.sim) cannot make a connection half-open: the proxy
can. It forwards bytes both ways until told otherwise:

* ``hold()``: stop forwarding both ways, silently. Both sockets stay open, so
  neither side sees an error: the client's writes succeed and vanish, the
  server's events are swallowed (what a dead NAT entry or a pulled cable
  looks like). ``release()`` forwards what was held and goes on.
* ``drop()``: close every connection abruptly (RST to the client).
* ``refuse()`` / ``accept()``: stop / start listening (same port), so
  reconnect attempts meanwhile are refused.

It records every byte the client sent (``client_bytes(n)``, ``actions()``),
so a test can prove that nothing was sent twice. Threads are named
``faultproxy-*`` (not ``pbxis-*``: they are not the library's). No sleeps:
``wait_connections`` waits on a condition.
"""
from __future__ import annotations

import socket
import struct
import threading
import time
from typing import List, Optional, Tuple

from pbxis.protocol import Message, Parser

__all__ = ["FaultProxy"]


def _close(sock: socket.socket, reset: bool = False) -> None:
    if reset:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Pair:
    """One proxied connection: the client's socket and ours to the server."""

    def __init__(self, proxy: FaultProxy, number: int, client: socket.socket,
                 server: socket.socket) -> None:
        self.proxy = proxy
        self.number = number
        self.client = client
        self.server = server
        self.from_client = bytearray()   # everything the client sent, held or not
        self.from_server = bytearray()   # everything the server sent, held or not
        self._held: List[Tuple[socket.socket, bytes]] = []
        self.closed = threading.Event()
        self._threads = [
            threading.Thread(target=self._pump, args=(client, server, self.from_client),
                             name=f"faultproxy-{number}-up", daemon=True),
            threading.Thread(target=self._pump, args=(server, client, self.from_server),
                             name=f"faultproxy-{number}-down", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def _pump(self, src: socket.socket, dst: socket.socket, record: bytearray) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.proxy._lock:
                    record.extend(data)
                    if self.proxy._holding:
                        self._held.append((dst, data))
                        continue
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self.proxy._lock:
                holding = self.proxy._holding
            if not holding:  # a held pair stays half-open until drop()
                self.close()

    def release(self) -> None:
        held, self._held = self._held, []
        for dst, data in held:
            try:
                dst.sendall(data)
            except OSError:
                pass

    def close(self, reset: bool = False) -> None:
        _close(self.client, reset)
        _close(self.server)
        self.closed.set()

    def join(self, timeout: float) -> None:
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)


class FaultProxy:
    """Listen on 127.0.0.1 (a free port) and forward to ``target_host:target_port``.

    Use as a context manager; ``close()`` ends every connection and thread.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._holding = False
        self._pairs: List[_Pair] = []
        self._listener: Optional[socket.socket] = None
        self._acceptor: Optional[threading.Thread] = None
        self._closed = False
        self.port = 0
        self._listen()

    # -- listening ------------------------------------------------------------

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(16)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._acceptor = threading.Thread(target=self._accept, args=(sock,),
                                          name="faultproxy-accept", daemon=True)
        self._acceptor.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client, reset=True)
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._changed:
                pair = _Pair(self, len(self._pairs) + 1, client, server)
                self._pairs.append(pair)
                self._changed.notify_all()
            pair.start()

    def refuse(self) -> None:
        """Stop listening: new connections are refused (ECONNREFUSED)."""
        with self._lock:
            sock, self._listener = self._listener, None
        if sock is not None:
            _close(sock)
        if self._acceptor is not None:
            self._acceptor.join(5)

    def accept(self) -> None:
        """Listen again on the same port."""
        if self._listener is None and not self._closed:
            self._listen()

    # -- faults -------------------------------------------------------------------

    def hold(self) -> None:
        """Stop forwarding both ways; every connection stays open and silent."""
        with self._lock:
            self._holding = True

    def release(self) -> None:
        """Forward what was held, and everything from now on."""
        with self._lock:
            self._holding = False
            pairs = list(self._pairs)
        for pair in pairs:
            pair.release()

    def drop(self) -> int:
        """Close every open connection abruptly (RST to the client); returns how many.
        Held bytes are discarded; forwarding resumes for new connections."""
        with self._lock:
            pairs = [p for p in self._pairs if not p.closed.is_set()]
            self._holding = False
        for pair in pairs:
            pair._held = []
            pair.close(reset=True)
        for pair in pairs:
            pair.join(5)
        with self._changed:
            self._changed.notify_all()
        return len(pairs)

    # -- observation ----------------------------------------------------------------

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        with self._lock:
            return len(self._pairs)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return sum(1 for p in self._pairs if not p.closed.is_set())

    def wait_connections(self, n: int, timeout: float = 10.0) -> bool:
        """Wait until ``n`` connections were accepted in total."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._pairs) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def client_bytes(self, n: Optional[int] = None) -> bytes:
        """What the client sent on connection ``n`` (1-based; None: all, in order)."""
        with self._lock:
            pairs = self._pairs if n is None else [self._pairs[n - 1]]
            return b"".join(bytes(p.from_client) for p in pairs)

    def server_bytes(self, n: Optional[int] = None) -> bytes:
        """What the server sent on connection ``n`` (None: all)."""
        with self._lock:
            pairs = self._pairs if n is None else [self._pairs[n - 1]]
            return b"".join(bytes(p.from_server) for p in pairs)

    def actions(self, n: Optional[int] = None) -> List[Tuple[int, Message]]:
        """(connection number, action) for every action the client sent."""
        with self._lock:
            pairs = list(self._pairs) if n is None else [self._pairs[n - 1]]
            chunks = [(p.number, bytes(p.from_client)) for p in pairs]
        out: List[Tuple[int, Message]] = []
        for number, data in chunks:
            parser = Parser()
            parser.feed(b"Asterisk Call Manager/11.0.0\r\n")  # prime past the greeting
            out += [(number, f) for f in parser.feed(data) if isinstance(f, Message)]
        return out

    # -- lifecycle ------------------------------------------------------------------

    def close(self) -> None:
        self._closed = True
        self.refuse()
        self.drop()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
