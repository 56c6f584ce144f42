"""``Pbx`` and ``connect()``: wires the link, the correlator, the digest and
the channels together, and runs blocking commands (layer 4).

Threads: the ``pbxis-reader`` (owned by the link) feeds frames in; commands
run on the caller's thread and wait on a future; callbacks run on
``pbxis-subscriber-<n>`` threads. Locks: ``_state_lock`` guards the digest,
the hub and the restore bookkeeping; ``_pending_lock`` guards the pending
actions. No user code runs under either, and nobody waits for an AMI reply
while holding one.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

from . import commands
from .actions import ActionResult, Correlator, new_action_ids
from .channels import EventChannel, Hub, Subscription
from .config import Options, parse_url
from .control import CallControl
from .digest import Digest, Query
from .errors import (
    ActionTimeout,
    NotConnectedError,
    PBXISError,
)
from .events import CONNECTION_LOST, CONNECTION_RESTORED, Event
from .protocol import Frame, Message, encode_action
from .scope import Scope
from .transport import Link
from .versions import (
    FALLBACK_EVENT_MASK,
    FILTER_LEAK_LIMIT,
)

__all__ = ["Pbx", "connect"]

logger = logging.getLogger(__name__)

#: Events the client itself reads besides the digest's. With the digest's
#: ``handled_events`` they make the server-side Filter whitelist and the
#: parser's skip-by-name set (one expression, so the two cannot drift).
#: ParkedCall and OriginateResponse must be whitelisted: on Asterisk 22 an
#: include Filter hides them although they answer our own actions, while the
#: list items of QueueStatus, DeviceStateList, CoreShowChannels and Status
#: always pass (tests/live/test_resilience_live.py).
_CLIENT_EVENTS = frozenset({"Shutdown", "ParkedCall", "FullyBooted"})

#: Seconds Asterisk gets to close the connection after ``Event: Shutdown``
#: (it normally does within a second) before pbxis drops it itself.
SHUTDOWN_GRACE = 10.0

#: Seconds a reconnect waits for ``Event: FullyBooted`` before restoring
#: anyway. Asterisk accepts AMI logins while it still loads its modules; a
#: restore then would ask app_queue before it has read queues.conf (seen
#: after ``core restart now`` in tests/live/test_resilience_live.py). A
#: booted Asterisk sends FullyBooted right after the login response.
BOOT_WAIT = 10.0

_Callback = Callable[[Union[ActionResult, BaseException]], None]


class Pbx(CallControl):
    """One connection to Asterisk's AMI, its tracked state, and its commands.

    Create it with :func:`pbxis.connect`. Thread-safe: commands may be called
    from any thread. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, options: Options) -> None:
        self.options = options
        self._state_lock = threading.RLock()
        self._pending_lock = threading.Lock()
        self._digest = Digest(options.location_prefix)
        self._hub = Hub()
        self._correlator = Correlator()
        self._ids = new_action_ids("pbxis-")
        self._waiters: Dict[str, Future[ActionResult]] = {}
        self._callbacks: Dict[str, _Callback] = {}
        self._parked: Dict[str, Future[str]] = {}
        self._subscriptions: List[Subscription] = []
        self._ready = False
        self._closed = False
        self._restore_token = 0
        self._restore_pending = 0
        self._held: Optional[List[Event]] = None
        self._lost_announced = False
        self._shutting_down = False
        self._booting = 0  # the restore token waiting for FullyBooted, 0: none
        #: How the current session is narrowed: "filter", "eventmask" or "none".
        self._narrowing = "none"
        #: The parser's skip count once every Filter of the session was
        #: acknowledged; None while not checking (see _check_filter).
        self._filter_baseline: Optional[int] = None
        #: Notified under _state_lock whenever frames were digested.
        self._wanted = frozenset(self._digest.handled_events) | _CLIENT_EVENTS
        self._link = Link(
            options, self, wanted=lambda: self._wanted, ignore=self._digest.ignored
        )

    # -- lifecycle -----------------------------------------------------------

    def _open(self) -> None:
        self._link.open()

    def close(self, timeout: float = 5.0) -> None:
        """Stop every pbxis thread, close the socket and end every channel.

        Each channel receives a final ``closed`` event. Pending commands fail
        with ``NotConnectedError``. Idempotent; never blocks longer than about
        ``timeout`` seconds per thread.
        """
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            self._ready = False
        self._link.close(timeout)
        self._fail_pending(NotConnectedError("pbx closed"))
        with self._state_lock:
            subscriptions, self._subscriptions = self._subscriptions, []
            self._hub.close_all()
        for sub in subscriptions:
            sub.close(timeout)

    def __enter__(self) -> Pbx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        """True while the link is up and the state is restored."""
        return self._ready

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    # -- link callbacks (pbxis-reader thread) --------------------------------

    def on_connected(self, leftovers: List[Frame], reconnected: bool) -> None:
        """Logged in: narrow the event stream, then restore tracked state.

        After a reconnect, commands keep failing with ``NotConnectedError``
        until the restore is complete (``connectionRestored``).
        """
        with self._state_lock:
            self._shutting_down = False
            self._narrowing = "none"
            self._filter_baseline = None
        self._narrow()
        with self._state_lock:
            if reconnected:
                self._await_boot()
            elif not self._closed:
                self._ready = True
        if leftovers:
            self.on_frames(leftovers)

    def on_disconnected(self, error: BaseException) -> None:
        """The link dropped: fail pending actions, tell every channel.

        One ``connectionLost`` per outage: a link that drops again before
        its restore completed has nothing new to announce. Events held by an
        unfinished restore stay held for the next one (they happened).
        """
        with self._state_lock:
            self._ready = False
            self._booting = 0
            self._restore_token += 1
            if not self._lost_announced:
                self._lost_announced = True
                self._hub.publish([Event(CONNECTION_LOST, reason=str(error))])
        self._fail_pending(NotConnectedError(f"connection to Asterisk lost: {error}"))

    def on_frames(self, frames: List[Frame]) -> None:
        """Route responses to their waiters and events to the digest (hot path)."""
        feed = self._digest.feed
        correlate = self._correlate
        out: List[Event] = []
        with self._state_lock:
            for frame in frames:
                if type(frame) is not Message:
                    continue
                if frame.get("ActionID") is not None:
                    if out:
                        # A query result is published as it completes: earlier
                        # live events must reach the channels before it.
                        self._publish(out)
                        out = []
                    if correlate(frame):
                        continue
                name = frame.get("Event")
                if name is None:
                    continue
                if name in _CLIENT_EVENTS:
                    self._client_event(name, frame)
                events = feed(frame, name)
                if events:
                    out.extend(events)
            if out:
                self._publish(out)
            if self._filter_baseline is not None:
                self._check_filter()

    def _client_event(self, name: str, msg: Message) -> None:
        if name == "Shutdown":
            # Asterisk is going away (asterisk-22-notes: Shutdown, then EOF):
            # fail commands from now on instead of letting them time out, and
            # do not wait for an EOF that a hung shutdown may never send.
            logger.warning("Asterisk is shutting down (restart: %s)", msg.get("Restart"))
            self._ready = False
            self._shutting_down = True
            self._link.expect_eof(SHUTDOWN_GRACE)
        elif name == "FullyBooted":
            if self._booting:
                self._booting = 0
                self._begin_restore()
        elif name == "ParkedCall":
            parkee = msg.get("ParkeeChannel") or ""
            with self._pending_lock:
                waiter = self._parked.pop(parkee, None)
            if waiter is not None:
                waiter.set_result(msg.get("ParkingSpace") or "")

    def _correlate(self, msg: Message) -> bool:
        with self._pending_lock:
            found = self._correlator.feed(msg)
            if found is None:
                return False
            pending, result = found
            if result is None:
                return True
            waiter = self._waiters.pop(pending.action_id, None)
            callback = self._callbacks.pop(pending.action_id, None)
        if waiter is not None:
            waiter.set_result(result)
        elif callback is not None:
            callback(result)
        return True

    def _fail_pending(self, error: BaseException) -> None:
        with self._pending_lock:
            self._correlator.fail_all()
            waiters, self._waiters = self._waiters, {}
            callbacks, self._callbacks = self._callbacks, {}
            parked, self._parked = self._parked, {}
        for waiter in list(waiters.values()) + list(parked.values()):
            if not waiter.done():
                waiter.set_exception(error)
        for callback in callbacks.values():
            try:
                callback(error)
            except Exception:  # pragma: no cover
                logger.exception("internal callback failed")

    def _publish(self, events: List[Event]) -> None:
        # Caller holds _state_lock.
        if self._held is not None:
            self._held.extend(events)
        else:
            self._hub.publish(events)

    # -- server-side narrowing, tracking, restore ----------------------------

    def _narrow(self) -> None:
        """Ask Asterisk to send only what the model reads, on every login.

        A ``Filter`` whitelist of ``self._wanted``, exclusions of the events
        the digest ignores (``Digest.ignored``), plus the digest's narrow
        filters (VarSet of the recording variable only); when the user may
        not filter (no ``system`` write permission), the ``Events`` class
        mask. Runs before the restore queries, so their answers come after.
        Once every Filter is acknowledged, :meth:`_check_filter` watches that
        unwanted events really stop (Asterisk 16 acknowledges a Filter form
        it does not apply, see ``pbxis.versions.FILTER_WHITELIST``).
        """
        if not self.options.server_filter:
            return
        name, headers = commands.server_filter(self._wanted)
        excludes = [commands.server_filter_exclude(*item) for item in self._digest.ignored.items()]
        unanswered = [1 + len(self._digest.narrow_filters) + len(excludes)]

        def answered() -> None:
            # Every Filter answered: from here on the parser skips only what
            # the filters let through although they should not have.
            unanswered[0] -= 1
            if unanswered[0] == 0 and self._narrowing == "filter":
                self._filter_baseline = self._link.skipped

        def whitelisted(result: Union[ActionResult, BaseException]) -> None:
            if not isinstance(result, ActionResult):
                return
            if result.ok:
                self._narrowing = "filter"
                answered()
                return
            logger.info(
                "Asterisk refused Filter (%s); narrowing by event class instead",
                result.response.get("Message"),
            )
            self._mask()

        def excluded(result: Union[ActionResult, BaseException]) -> None:
            if isinstance(result, ActionResult):
                answered()

        def narrowed(event: str, result: Union[ActionResult, BaseException]) -> None:
            # Runs on the reader thread, which owns the parser.
            if isinstance(result, ActionResult):
                if result.ok:
                    self._link.set_wanted(self._wanted | {event})
                answered()

        try:
            self._send_internal(name, headers, whitelisted)
            for exclude_name, exclude_headers in excludes:
                self._send_internal(exclude_name, exclude_headers, excluded)
            for event, regex in self._digest.narrow_filters.items():
                self._send_internal(
                    "Filter", [("Operation", "Add"), ("Filter", regex)], partial(narrowed, event)
                )
        except NotConnectedError:
            pass

    def _mask(self) -> None:
        """Narrow by event class (``Events`` EventMask needs no permission)."""

        def masked(result: Union[ActionResult, BaseException]) -> None:
            if isinstance(result, ActionResult) and result.ok:
                self._narrowing = "eventmask"

        name, headers = commands.event_mask()
        try:
            self._send_internal(name, headers, masked)
        except NotConnectedError:
            pass

    def _check_filter(self) -> None:
        """An acknowledged Filter must work: fall back to the class mask if not.

        Runs on the reader thread (under ``_state_lock``) whenever frames
        arrive while armed (a response, a wanted event: an unapplied filter
        lets plenty of both through). Every event the parser skips after all
        Filters were answered is one the whitelist let through; past
        ``FILTER_LEAK_LIMIT`` of them the Filter is taken as not applied.
        """
        assert self._filter_baseline is not None
        leaked = self._link.skipped - self._filter_baseline
        if leaked < FILTER_LEAK_LIMIT:
            return
        self._filter_baseline = None
        self._narrowing = "none"
        logger.warning(
            "Asterisk (%s) acknowledged the event Filter but does not apply it "
            "(%d unwanted events since); narrowing by event class (EventMask %s) instead",
            self._link.banner,
            leaked,
            FALLBACK_EVENT_MASK,
        )
        self._mask()

    def _send_query(self, query: Query, callback: _Callback) -> None:
        try:
            self._send_internal(query.action, list(query.headers), callback)
        except NotConnectedError as exc:
            callback(exc)

    def _send_internal(self, name: str, headers: Sequence[Any], callback: _Callback) -> None:
        action_id = next(self._ids)
        data = encode_action(name, action_id, headers)
        with self._pending_lock:
            self._correlator.register(action_id, name)
            self._callbacks[action_id] = callback
        try:
            self._link.send(data)
        except NotConnectedError:
            with self._pending_lock:
                self._correlator.discard(action_id)
                self._callbacks.pop(action_id, None)
            raise

    def _on_query_result(self, query: Query, result: Union[ActionResult, BaseException]) -> None:
        if not isinstance(result, ActionResult):
            return  # the link dropped; the restore after reconnect covers it
        with self._state_lock:
            events = self._digest.apply(query, result)
            if events:
                self._publish(events)
            # Follow-ups, e.g. the details of a call already in progress.
            for follow_up in self._digest.take_queries():
                self._send_query(follow_up, partial(self._on_query_result, follow_up))

    def _on_restore_result(
        self, token: int, query: Query, result: Union[ActionResult, BaseException]
    ) -> None:
        with self._state_lock:
            if token != self._restore_token or not isinstance(result, ActionResult):
                return
            events = self._digest.apply(query, result)
            if events and self._held is not None:
                self._held.extend(events)
            for follow_up in self._digest.take_queries():
                self._restore_pending += 1
                self._send_query(follow_up, partial(self._on_restore_result, token, follow_up))
            self._restore_pending -= 1
            if self._restore_pending == 0:
                self._finish_restore()

    def _await_boot(self) -> None:
        """After a reconnect: hold updates from now on, and restore once
        Asterisk says it is fully booted (or after ``BOOT_WAIT`` seconds).
        Caller holds ``_state_lock``; runs on the reader thread."""
        self._restore_token += 1
        token = self._booting = self._restore_token
        if self._held is None:
            self._held = []
        self._digest.begin_restore()  # state changes now wait for the restore's net result

        def timeout() -> None:
            with self._state_lock:
                if self._booting == token:
                    logger.warning(
                        "no FullyBooted from Asterisk within %g s of the login; restoring anyway",
                        BOOT_WAIT,
                    )
                    self._booting = 0
                    self._begin_restore()

        self._link.call_later(BOOT_WAIT, timeout)

    def _begin_restore(self) -> None:
        """Send the restore queries; state events are held until they all answered.

        The digest's bulk queries (a constant number per tracked queue, none
        per agent), plus ``QueueStatus Member=`` for agents whose first
        queries never completed (tracked during the outage, or the link
        dropped before the answer): only what channels still track.
        Caller holds ``_state_lock``.
        """
        self._restore_token += 1
        token = self._restore_token
        if self._held is None:
            self._held = []
        queries = self._digest.begin_restore()
        queries += [
            Query("QueueStatus", (("Member", agent.location),))
            for agent in self._digest.model.agents.values()
            if not agent.members_known
        ]
        self._restore_pending = len(queries)
        for query in queries:
            self._send_query(query, partial(self._on_restore_result, token, query))
        if not queries:
            self._finish_restore()

    def _finish_restore(self) -> None:
        # Caller holds _state_lock.
        held, self._held = self._held or [], None
        events = [Event(CONNECTION_RESTORED)] + held + self._digest.end_restore()
        self._lost_announced = False
        self._ready = not (self._closed or self._shutting_down)
        self._hub.publish(events)
        logger.info("AMI connection restored; %d state changes published", len(events) - 1)

    # -- channels --------------------------------------------------------------

    def event_channel(
        self, agents: Iterable[str] = (), queues: Iterable[str] = (), maxsize: int = 10000
    ) -> EventChannel:
        """A channel of the events for ``agents`` and ``queues`` (API.md §3).

        It first receives introductory events (the current state for its
        scope), then the live stream. Iterating blocks; it ends after the
        final ``closed`` event (channel or pbx closed).
        """
        scope = Scope(agents, queues)
        channel = EventChannel(scope, maxsize=maxsize, on_close=self._channel_closed)
        with self._state_lock:
            if self._closed:
                channel.close()
                return channel
            queries = self._digest.track(scope.agents, scope.queues)
            for event in self._digest.introduce(scope.agents, scope.queues):
                channel.put(event)
            self._hub.add(channel)
            if self._link.connected:
                for query in queries:
                    self._send_query(query, partial(self._on_query_result, query))
        return channel

    def subscribe(
        self,
        callback: Callable[[Event], Any],
        agents: Iterable[str] = (),
        queues: Iterable[str] = (),
        maxsize: int = 10000,
    ) -> Subscription:
        """Call ``callback(event)`` for each event of the scope, on a pbxis thread.

        The callback runs on a thread named ``pbxis-subscriber-<n>``, never on
        the socket reader. An exception in it is logged and delivery goes on.
        ``sub.close()`` stops it.
        """
        if not callable(callback):
            raise TypeError("callback must be callable")
        channel = self.event_channel(agents, queues, maxsize)
        sub = Subscription(callback, channel)
        with self._state_lock:
            self._subscriptions.append(sub)
        return sub

    def _channel_closed(self, channel: EventChannel) -> None:
        with self._state_lock:
            self._hub.remove(channel)
            self._digest.untrack(channel.scope.agents, channel.scope.queues)
            self._subscriptions = [s for s in self._subscriptions if s.channel is not channel]

    # -- commands --------------------------------------------------------------

    def _request(
        self,
        name: str,
        headers: Sequence[Any],
        timeout: Optional[float] = None,
        action_id: Optional[str] = None,
    ) -> ActionResult:
        """Send an action and wait for its result (caller's thread)."""
        action_id = action_id or next(self._ids)
        data = encode_action(name, action_id, headers)  # ValueError before anything is sent
        if not self._ready:
            raise NotConnectedError(
                "pbx is closed" if self._closed else "not connected to Asterisk"
            )
        waiter: Future[ActionResult] = Future()
        with self._pending_lock:
            self._correlator.register(action_id, name)
            self._waiters[action_id] = waiter
        wait = self.options.action_timeout if timeout is None else timeout
        try:
            self._link.send(data)
            return waiter.result(wait)
        except FutureTimeout:
            raise ActionTimeout(f"no response to {name} within {wait:g} s", action_id) from None
        finally:
            with self._pending_lock:
                if self._waiters.pop(action_id, None) is not None:
                    self._correlator.discard(action_id)

    def send_action(self, name: str, **headers: Any) -> commands.Response:
        """Send any AMI action and wait for its response (the escape hatch).

        Header values that are lists are sent as repeated headers. For list
        actions the returned ``Response.events`` holds the list items.

        Raises:
            ValueError: a name or value holds CR, LF or NUL (nothing is sent).
            ActionError: Asterisk answered ``Response: Error``.
            ActionTimeout: no response within ``action_timeout``.
            NotConnectedError: the link is down (the action is never re-sent).
        """
        result = self._request(name, list(headers.items()))
        return commands.Response(commands.check_result(result, name))

    def snapshot(self) -> Dict[str, Any]:
        """The tracked state as a JSON-ready dict (agents, queues, calls)."""
        with self._state_lock:
            return self._digest.snapshot()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("connected" if self._ready else "disconnected")
        return f"<Pbx {self.options.host}:{self.options.port} {state}>"


def connect(
    host: str = "127.0.0.1",
    username: Optional[str] = None,
    secret: Optional[str] = None,
    **options: Any,
) -> Pbx:
    """Connect and log in to Asterisk's AMI; return a :class:`Pbx`.

    ``host`` may be a URL ``ami://user:secret@host:port`` (``amis://`` for
    TLS). Keyword options: see :class:`pbxis.config.Options` (``port``,
    ``location_prefix``, ``originate_context``, ``redirect_context``, ``tls``,
    ``auth``, ``connect_timeout``, ``action_timeout``, ``keepalive``,
    ``reconnect``...).

    Raises:
        ConnectError: refused, unreachable, timed out, or not an AMI server.
        AuthenticationError: wrong username or secret.
        ValueError: invalid options.
    """
    if "://" in host:
        if username is not None:
            options.setdefault("username", username)
        if secret is not None:
            options.setdefault("secret", secret)
        opts = parse_url(host, **options)
    else:
        opts = Options(host=host, username=username or "", secret=secret or "", **options)
    pbx = Pbx(opts)
    try:
        pbx._open()
    except PBXISError:
        pbx.close()
        raise
    return pbx
