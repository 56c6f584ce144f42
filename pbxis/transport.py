"""The only socket code: connect and log in, the ``pbxis-reader`` thread,
thread-safe writes, keepalive, and reconnect with backoff.

Knows nothing of the digest or of channels: it reports through the
``LinkHandler`` it is given (layer 3). Imports protocol, commands, backoff,
errors and config.

Every wait here can be cut short by ``close()``: the backoff wait is an
``Event.wait``, and a connect or login in progress is woken by shutting its
socket down (Linux wakes a blocked ``connect``/``recv`` on ``shutdown``).
"""
from __future__ import annotations

import heapq
import itertools
import logging
import selectors
import socket
import ssl
import threading
import time
from typing import Callable, List, Mapping, Optional, Protocol, Tuple

from . import commands
from .backoff import Backoff
from .config import Options
from .errors import AuthenticationError, ConnectError, NotConnectedError, ProtocolError
from .protocol import Banner, Frame, Message, Oversize, Parser, Truncated, encode_action

__all__ = ["Link", "LinkHandler"]

logger = logging.getLogger(__name__)

#: Bytes asked of one read. On a busy link each read ends in one publish that
#: wakes every blocked consumer once, so big reads mean fewer, bigger batches
#: (bench/README.md, e2e: 100 channels went from 0.68x to 1.43x the fastest
#: peer with 1 MiB reads; latency unchanged). The buffer is reused.
_RECV_SIZE = 1 << 20

#: A session that lived this long resets the backoff; one that dies sooner
#: (a server that accepts the login and drops us at once) keeps escalating,
#: so a flapping server is retried at the cap, not every ``reconnect_base``.
STABLE_SESSION = 5.0


class LinkHandler(Protocol):
    """What the link reports to. Every method runs on the ``pbxis-reader`` thread
    (``on_connected`` for the first login: on the thread that called ``open``)."""

    def on_connected(self, leftovers: List[Frame], reconnected: bool) -> None:
        """Logged in (again); ``leftovers`` are frames read right after the login response."""

    def on_frames(self, frames: List[Frame]) -> None:
        """Frames parsed from one read."""

    def on_disconnected(self, error: BaseException) -> None:
        """The link went down (not called for ``close()``)."""


#: A timer callback; returning an exception ends the session with it.
_Timer = Callable[[], Optional[BaseException]]


class _Dead(Exception):
    """The session ended: EOF, socket error or keepalive deadline."""


class _Interrupted(Exception):
    """``close()`` cut a connect or login short."""


class Link:
    """One AMI connection, kept up by the ``pbxis-reader`` thread.

    ``open()`` connects and logs in on the caller's thread and raises on
    failure (``ConnectError``, ``AuthenticationError``); then the reader
    thread reads frames, pings a silent peer, and reconnects with capped,
    jittered backoff after a loss. ``send_lock`` guards every write; hold it
    to make "register the ActionID, then write" atomic.

    Counters (read them from any thread): ``bytes_received``, ``bytes_sent``
    (logins included), ``connects`` (successful logins) and ``attempts``
    (reconnect attempts, failed ones included).
    """

    def __init__(
        self,
        options: Options,
        handler: LinkHandler,
        wanted: Optional[Callable[[], Optional[frozenset[str]]]] = None,
        backoff: Optional[Backoff] = None,
        ignore: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.options = options
        self.handler = handler
        self.send_lock = threading.Lock()
        self._wanted = wanted or (lambda: None)
        self._ignore = ignore
        self._backoff = backoff or Backoff(options.reconnect_base, options.reconnect_cap)
        self._sock: Optional[socket.socket] = None
        self._connecting: Optional[socket.socket] = None
        self._parser: Optional[Parser] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._ids = itertools.count(1)
        self._timers: List[Tuple[float, int, _Timer]] = []  # heap; the reader's own
        self.banner: Optional[str] = None
        self.bytes_received = 0
        self._buffer = bytearray(_RECV_SIZE)  # one read buffer for every session
        self.bytes_sent = 0
        self.connects = 0
        self.attempts = 0

    # -- public -----------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a logged-in socket is up."""
        return self._sock is not None

    def open(self) -> None:
        """Connect and log in (blocking), report ``on_connected``, start the reader.

        Raises:
            ConnectError: refused, unreachable, timed out, or not an AMI server.
            AuthenticationError: Asterisk refused the credentials.
        """
        try:
            sock, parser, leftovers = self._establish()
        except _Interrupted:
            raise ConnectError("connect cancelled by close()") from None
        self._sock, self._parser = sock, parser
        # Before the reader starts, so the leftovers are handled first.
        self.handler.on_connected(leftovers, False)
        self._thread = threading.Thread(target=self._run, name="pbxis-reader", daemon=True)
        self._thread.start()

    def send(self, data: bytes) -> None:
        """Write ``data`` (thread-safe). Raises ``NotConnectedError`` when down."""
        with self.send_lock:
            self.send_locked(data)

    def send_locked(self, data: bytes) -> None:
        """Write ``data``; the caller holds ``send_lock``.

        A failed or partial write ends the session (the reader reconnects): the
        stream may hold half an action, which must never reach Asterisk's
        parser glued to the next one.
        """
        sock = self._sock
        if sock is None:
            raise NotConnectedError("not connected to Asterisk")
        try:
            sock.sendall(data)
        except OSError as exc:
            self.abort()
            raise NotConnectedError(f"connection to Asterisk lost: {exc}") from exc
        self.bytes_sent += len(data)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the reader thread and close the socket (idempotent).

        Returns promptly whatever the reader is doing: reading, waiting out a
        backoff delay, connecting or logging in.
        """
        self._stop.set()
        for sock in (self._sock, self._connecting):
            if sock is not None:
                _shutdown(sock)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():  # pragma: no cover - would be a bug
                logger.error("pbxis-reader did not stop within %g s", timeout)
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def abort(self) -> None:
        """Drop the current session now (the reader will reconnect)."""
        sock = self._sock
        if sock is not None:
            _shutdown(sock)

    def call_later(self, delay: float, fn: _Timer) -> None:
        """Run ``fn()`` on the reader thread in ``delay`` seconds, unless the
        session ends first (timers do not outlive their session). If ``fn``
        returns an exception, the session ends with it. Call on the reader
        thread (or from ``on_connected``)."""
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._ids), fn))

    def expect_eof(self, grace: float) -> None:
        """The peer announced it is going away: drop the session if it has
        not closed it within ``grace`` seconds. Call on the reader thread."""
        self.call_later(
            grace, lambda: _Dead("Asterisk announced a shutdown but kept the connection open")
        )

    @property
    def skipped(self) -> int:
        """Events of the current session the parser skipped as unwanted."""
        parser = self._parser
        return 0 if parser is None else parser.skipped

    def set_wanted(self, names: Optional[frozenset[str]]) -> None:
        """Change which events the parser fully parses (others are skipped).
        Call on the reader thread (the parser is its own)."""
        parser = self._parser
        if parser is not None:
            parser.set_wanted(names)

    # -- connect + login --------------------------------------------------

    def _connect(self, deadline: float) -> socket.socket:
        """TCP connect like ``socket.create_connection``, but ``close()`` can
        interrupt it (the socket is reachable through ``_connecting``)."""
        opts = self.options
        where = f"{opts.host}:{opts.port}"
        try:
            infos = socket.getaddrinfo(opts.host, opts.port, 0, socket.SOCK_STREAM)
        except OSError as exc:
            raise ConnectError(f"cannot connect to {where}: {exc.strerror or exc}") from exc
        error: Optional[OSError] = None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            self._connecting = sock
            if self._stop.is_set():  # close() ran before _connecting was visible
                sock.close()
                raise _Interrupted()
            try:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                sock.connect(address)
                return sock
            except OSError as exc:
                sock.close()
                if self._stop.is_set():
                    raise _Interrupted() from None
                error = exc
        if isinstance(error, socket.timeout):
            raise ConnectError(f"timed out connecting to {where}") from error
        detail = (error.strerror or str(error)) if error is not None else "no address"
        raise ConnectError(f"cannot connect to {where}: {detail}") from error

    def _establish(self) -> Tuple[socket.socket, Parser, List[Frame]]:
        opts = self.options
        deadline = time.monotonic() + opts.connect_timeout
        where = f"{opts.host}:{opts.port}"
        sock = self._connect(deadline)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            context = opts.ssl_context()
            if context is not None:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                sock = context.wrap_socket(sock, server_hostname=opts.host)
                self._connecting = sock
            parser = Parser(wanted=self._wanted(), ignore=self._ignore)
            frames: List[Frame] = []
            banner = self._read_until(
                sock, parser, frames, deadline, lambda f: isinstance(f, Banner)
            )
            assert isinstance(banner, Banner)
            if not banner.is_ami:
                raise ConnectError(f"{where} is not an AMI server (greeting {banner.line[:60]!r})")
            self.banner = banner.line
            if opts.auth == "md5":
                reply = self._request(sock, parser, frames, deadline, commands.challenge())
                value = reply.get("Challenge")
                if reply.response != "Success" or not value:
                    raise ConnectError(f"{where} refused the MD5 challenge: {reply.get('Message')}")
                action = commands.login_md5(opts.username, commands.md5_key(value, opts.secret))
            else:
                action = commands.login(opts.username, opts.secret)
            reply = self._request(sock, parser, frames, deadline, action)
            if reply.response != "Success":
                raise AuthenticationError(
                    f"Asterisk refused login for {opts.username!r}: {reply.get('Message')}"
                )
            sock.settimeout(opts.keepalive or None)
        except BaseException as exc:
            sock.close()
            if self._stop.is_set():
                raise _Interrupted() from None
            if isinstance(exc, (ConnectError, _Interrupted)):  # ConnectError is an OSError
                raise
            if isinstance(exc, ssl.SSLError):
                raise ConnectError(f"TLS handshake with {where} failed: {exc}") from exc
            if isinstance(exc, socket.timeout):
                raise ConnectError(f"timed out waiting for {where} to log in") from exc
            if isinstance(exc, OSError):
                raise ConnectError(f"connection to {where} failed during login: {exc}") from exc
            raise
        finally:
            self._connecting = None
        self.connects += 1
        logger.info("logged in to %s as %s (%s)", where, opts.username, self.banner)
        return sock, parser, frames

    def _request(
        self,
        sock: socket.socket,
        parser: Parser,
        frames: List[Frame],
        deadline: float,
        action: commands.Action,
    ) -> Message:
        action_id = f"pbxis-login-{next(self._ids)}"
        data = encode_action(action[0], action_id, action[1])
        sock.sendall(data)
        self.bytes_sent += len(data)
        found = self._read_until(
            sock,
            parser,
            frames,
            deadline,
            lambda f: isinstance(f, Message) and f.get("ActionID") == action_id,
        )
        assert isinstance(found, Message)
        return found

    def _read_until(
        self,
        sock: socket.socket,
        parser: Parser,
        frames: List[Frame],
        deadline: float,
        match: Callable[[Frame], bool],
    ) -> Frame:
        """Read until a frame matches; other frames stay in ``frames``."""
        while True:
            for i, frame in enumerate(frames):
                if match(frame):
                    del frames[i]
                    return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout()
            sock.settimeout(remaining)
            data = sock.recv(1 << 16)  # login: a few small frames
            if not data:
                if self._stop.is_set():
                    raise _Interrupted()
                if self.banner is None and not any(isinstance(f, Banner) for f in frames):
                    raise ConnectError(
                        f"{self.options.host}:{self.options.port} closed the connection "
                        "before greeting (not an AMI server?)"
                    )
                message = next(
                    (f.get("Message") for f in frames if isinstance(f, Message) and f.response),
                    None,
                )
                raise ConnectError(f"Asterisk closed the connection during login: {message}")
            self.bytes_received += len(data)
            frames.extend(parser.feed(data))

    # -- the reader thread ------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            started = time.monotonic()
            error = self._read_session()
            self._timers.clear()
            sock, self._sock = self._sock, None
            if sock is not None:
                sock.close()
            if self._stop.is_set():
                return
            # str(): a handler that keeps records must not keep the reader's frames.
            logger.warning("AMI connection lost: %s", str(error))
            try:
                self.handler.on_disconnected(error)
            except Exception:  # pragma: no cover - handler bug must not kill the reader
                logger.exception("on_disconnected failed")
            if not self.options.reconnect:
                return
            if time.monotonic() - started >= STABLE_SESSION:
                attempt = 0
            attempt = self._reconnect(attempt)
            if attempt < 0:
                return

    def _reconnect(self, attempt: int) -> int:
        """Try until logged in; return the attempt number reached (-1: closed)."""
        while not self._stop.wait(self._backoff.delay(attempt)):
            attempt += 1
            self.attempts += 1
            try:
                sock, parser, leftovers = self._establish()
            except _Interrupted:
                return -1
            except AuthenticationError as exc:
                logger.error("reconnect refused: %s", exc)
                continue
            except ConnectError as exc:
                logger.info("reconnect attempt %d failed: %s", attempt, exc)
                continue
            with self.send_lock:
                if self._stop.is_set():
                    sock.close()
                    return -1
                self._sock, self._parser = sock, parser
            try:
                self.handler.on_connected(leftovers, True)
            except Exception:  # pragma: no cover
                logger.exception("on_connected failed")
            return attempt
        return -1

    def _read_session(self) -> BaseException:
        sock = self._sock
        assert sock is not None
        # Wait with a selector, not a socket timeout: the timeout is shared
        # with the threads that write, and keepalive and timers need short,
        # changing waits.
        selector = selectors.DefaultSelector()
        try:
            selector.register(sock, selectors.EVENT_READ)
            return self._read_loop(sock, selector)
        finally:
            selector.close()

    def _read_loop(self, sock: socket.socket, selector: selectors.BaseSelector) -> BaseException:
        parser = self._parser
        assert parser is not None
        handler = self.handler
        keepalive = self.options.keepalive
        timers = self._timers
        # TLS may hold decrypted bytes the selector cannot see.
        pending = sock.pending if isinstance(sock, ssl.SSLSocket) else None
        heard = time.monotonic()  # when data last came
        pinged = False
        debug = logger.isEnabledFor(logging.DEBUG)
        buffer = self._buffer
        view = memoryview(buffer)
        while True:
            now = time.monotonic()
            if timers and timers[0][0] <= now:
                fn = heapq.heappop(timers)[2]
                try:
                    error = fn()
                except Exception:  # pragma: no cover - a handler bug must not kill the reader
                    logger.exception("timer callback failed")
                    error = None
                if error is not None:
                    return error
                continue
            wake = timers[0][0] if timers else None
            if keepalive:
                # Ping after one silent period; give up after a second one.
                due = heard + keepalive * (2 if pinged else 1)
                wake = due if wake is None else min(wake, due)
            timeout = None if wake is None else max(wake - now, 0.0)
            if not (pending is not None and pending()) and not selector.select(timeout):
                if self._stop.is_set():
                    return _Dead("closed")
                if keepalive and time.monotonic() >= heard + keepalive * (2 if pinged else 1):
                    if pinged:
                        return _Dead(f"no data from Asterisk for {2 * keepalive:g} s (keepalive)")
                    pinged = True
                    try:
                        self.send(encode_action("Ping", f"pbxis-keepalive-{next(self._ids)}"))
                    except NotConnectedError as exc:
                        return exc
                continue
            try:
                size = sock.recv_into(buffer)
            except socket.timeout:
                continue  # TLS: part of a record, the rest late; keepalive decides
            except OSError as exc:
                return exc
            if not size:
                return _Dead("Asterisk closed the connection")
            data = bytes(view[:size])
            heard = time.monotonic()
            pinged = False
            self.bytes_received += len(data)
            frames = parser.feed(data)
            if not frames:
                continue
            if debug:
                for frame in frames:
                    logger.debug("received %r", frame)
            for frame in frames:
                if isinstance(frame, (Oversize, Truncated)):
                    logger.warning("AMI protocol problem: %r", frame)
            try:
                handler.on_frames(frames)
            except ProtocolError as exc:
                return exc
            except Exception:
                logger.exception("error while handling AMI frames; continuing")


def _shutdown(sock: socket.socket) -> None:
    """Wake whoever is blocked on ``sock`` (connect, recv, send)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
