"""One simulated AMI session: authentication, event mask, filters, actions.

Sans-I/O: the server feeds parsed ``Message``s in (``handle``) and events
(``on_event``); bytes go out through the ``write`` callback and ``close``
ends the connection after what was written. Messages and permission rules
follow shared/asterisk-22-notes.md and the transcripts (m1, m2, m3, b, g,
l1, l2). Every call happens with ``pbx.lock`` held.
"""
from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Mapping
from typing import Callable

from ..protocol import Message
from . import queries
from .agents import ast_true
from .config import SimUser, parse_classes
from .filters import EventFilter, FilterError, accepts, parse_filter
from .frames import Headers, SimEvent, render, response
from .pbx import SimulatedPbx
from .telephony import OriginateResult

__all__ = ["ManagerSession", "ACTIONS"]

#: Action (lower case) -> write classes of which the user needs one ("" = none).
ACTIONS: dict[str, str] = {
    "login": "", "challenge": "", "logoff": "", "ping": "", "events": "",
    "listcommands": "", "filter": "system", "originate": "originate", "redirect": "call",
    "hangup": "system,call", "park": "call", "getvar": "call,reporting", "setvar": "call",
    "status": "system,call,reporting", "coreshowchannels": "system,reporting",
    "coresettings": "system,reporting", "corestatus": "system,reporting",
    "command": "command", "devicestatelist": "call,reporting",
    "extensionstatelist": "call,reporting", "extensionstate": "call,reporting",
    "queuestatus": "", "queuesummary": "", "queueadd": "agent", "queueremove": "agent",
    "queuepause": "agent", "queuepenalty": "agent", "queuereset": "", "bridgelist": "",
    "bridgeinfo": "",
}

#: Called for ``core restart|stop ...`` CLI commands: (session, restart?) -> None.
ShutdownHook = Callable[["ManagerSession", bool], None]


class ManagerSession:
    """The manager-side state of one TCP connection."""

    def __init__(
        self,
        pbx: SimulatedPbx,
        users: Mapping[str, SimUser],
        *,
        write: Callable[[bytes], None],
        close: Callable[[], None],
        session_id: int = 1,
        local: tuple[str, int] = ("127.0.0.1", 5038),
        remote: tuple[str, int] = ("127.0.0.1", 0),
        on_shutdown: ShutdownHook | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.pbx = pbx
        self.users = users
        self._write = write
        self._close = close
        self.session_id = session_id
        self.local, self.remote = local, remote
        self.on_shutdown = on_shutdown
        self.rng = rng or random.Random()
        self.username: str | None = None
        self.user: SimUser | None = None
        self.authenticated = False
        self.read: set[str] = set()
        self.write_perm: set[str] = set()
        self.send_events: set[str] = set()
        self.filters: list[EventFilter] = []
        self.challenge: str | None = None
        self.closed = False
        self.started = time.time()
        self._blocked = False
        self._held: list[bytes] = []
        self._queued: list[Message] = []

    # ------------------------------------------------------------ plumbing
    def _send(self, data: bytes) -> None:
        if self.closed:
            return
        if self._blocked:
            self._held.append(data)
        else:
            self._write(data)

    def _reply(self, data: bytes) -> None:
        """A response: bypasses the hold of a blocking (sync) Originate."""
        if not self.closed:
            self._write(data)

    def _end(self) -> None:
        if not self.closed:
            self.closed = True
            self._close()

    def wants(self, event: SimEvent) -> bool:
        """Would this session get ``event`` (read permission, mask, filters)?"""
        return (self.authenticated and event.category in self.read
                and event.category in self.send_events and accepts(self.filters, event))

    def on_event(self, event: SimEvent) -> None:
        """Listener for the PBX's events."""
        if not self.closed and self.wants(event):
            self._send(event.data)

    @property
    def session_hex(self) -> str:
        return f"0x7f{0x14001a70 + self.session_id * 0x1000:010x}"

    def _tv(self, epoch: float | None = None) -> str:
        value = self.pbx.wall() if epoch is None else epoch
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(value)) + \
            f".{int(value * 1000) % 1000:03d}+0000"

    def _security_head(self, severity: str) -> Headers:
        return [("EventTV", self._tv()), ("Severity", severity), ("Service", "AMI"),
                ("EventVersion", "1")]

    def _addr(self, which: tuple[str, int]) -> str:
        return f"IPV4/TCP/{which[0]}/{which[1]}"

    # ------------------------------------------------------------ dispatch
    def handle(self, msg: Message) -> None:
        """Process one action from the client (queued while a sync Originate blocks)."""
        if self.closed:
            return
        if self._blocked:
            self._queued.append(msg)
            return
        action = (msg.get("Action") or "").strip()
        aid = msg.get("ActionID")
        key = action.lower()
        if not action:
            self._reply(response("Error", aid, [("Message", "Missing action in request")]))
            return
        if not self.authenticated and key not in ("login", "challenge", "logoff"):
            self._reply(response("Error", aid, [("Message", "Permission denied")]))
            return
        if key not in ACTIONS:
            self._reply(response("Error", aid, [(
                "Message", f"Invalid/unknown command: {action}. Use Action: ListCommands to "
                "show available commands.")]))
            self.pbx.emit("RequestBadFormat", "security", self._security_head("Error") + [
                ("SessionID", self.session_hex), ("LocalAddress", self._addr(self.local)),
                ("RemoteAddress", self._addr(self.remote)), ("RequestType", f"Action: {action}"),
                ("SessionTV", self._tv(self.started)), ("AccountID", self.username or "")])
            return
        need = ACTIONS[key]
        if need and self.authenticated and not (set(need.split(",")) & self.write_perm):
            self._reply(response("Error", aid, [("Message", "Permission denied")]))
            return
        handler = getattr(self, f"_a_{key}")
        with self.pbx.batch():
            handler(msg, aid)

    # ------------------------------------------------------------ session actions
    def _a_login(self, msg: Message, aid: str | None) -> None:
        if self.authenticated:
            self._reply(response("Success", aid, [("Message", "Already authenticated")]))
            return
        name = msg.get("Username") or ""
        user = self.users.get(name)
        ok = False
        if user is not None:
            if (msg.get("AuthType") or "").lower() == "md5":
                key = (msg.get("Key") or "").lower()
                ok = self.challenge is not None and key == hashlib.md5(
                    (self.challenge + user.secret).encode()).hexdigest()
            else:
                ok = msg.get("Secret") == user.secret
        if not ok or user is None:
            self._reply(response("Error", aid, [("Message", "Authentication failed")]))
            self._end()
            return
        self.authenticated, self.username, self.user = True, name, user
        self.read = set(parse_classes(user.read))
        self.write_perm = set(parse_classes(user.write))
        events = msg.get("Events")
        self.send_events = set(parse_classes("on" if events is None else events))
        self._reply(response("Success", aid, [("Message", "Authentication accepted")]))
        booted = SimEvent("FullyBooted", "system", [
            ("Uptime", str(self.pbx.uptime)), ("LastReload", str(self.pbx.uptime)),
            ("Status", "Fully Booted")])
        if self.wants(booted):
            self._send(booted.data)
        self.pbx.emit("SuccessfulAuth", "security", self._security_head("Informational") + [
            ("AccountID", name), ("SessionID", self.session_hex),
            ("LocalAddress", self._addr(self.local)), ("RemoteAddress", self._addr(self.remote)),
            ("UsingPassword", "0"), ("SessionTV", self._tv())])

    def _a_challenge(self, msg: Message, aid: str | None) -> None:
        if (msg.get("AuthType") or "").lower() != "md5":
            self._reply(response("Error", aid, [("Message", "Must specify AuthType")]))
            return
        if self.challenge is None:
            self.challenge = str(self.rng.randrange(10 ** 8, 10 ** 9))
        self._reply(response("Success", aid, [("Challenge", self.challenge)]))

    def _a_logoff(self, msg: Message, aid: str | None) -> None:
        self._reply(response("Goodbye", aid, [("Message", "Thanks for all the fish.")]))
        self._end()

    def _a_ping(self, msg: Message, aid: str | None) -> None:
        self._reply(response("Success", aid, [("Ping", "Pong"),
                                              ("Timestamp", f"{self.pbx.wall():.6f}")]))

    def _a_events(self, msg: Message, aid: str | None) -> None:
        self.send_events = set(parse_classes(msg.get("EventMask") or "off"))
        self._reply(response("Success", aid,
                             [("Events", "On" if self.send_events else "Off")]))

    def _a_filter(self, msg: Message, aid: str | None) -> None:
        if (msg.get("Operation") or "").lower() != "add":
            self._reply(response("Error", aid, [("Message", "Unknown operation")]))
            return
        try:
            self.filters.append(parse_filter(msg.get("MatchCriteria"), msg.get("Filter")))
        except FilterError as exc:
            self._reply(response("Error", aid, [("Message", exc.message)]))
            return
        self._reply(response("Success", aid, [("Message", "Success")]))

    def _a_listcommands(self, msg: Message, aid: str | None) -> None:
        body = [(name, f"{name}. (Priv: {perm or '<none>'})") for name, perm in (
            (k.capitalize(), v) for k, v in sorted(ACTIONS.items()))]
        self._reply(response("Success", aid, body))

    # ------------------------------------------------------------ queries
    def _many(self, chunks: list[bytes] | None) -> None:
        for chunk in chunks or []:
            self._reply(chunk)

    def _a_queuestatus(self, msg: Message, aid: str | None) -> None:
        self._many(queries.queue_status(self.pbx, aid, msg.get("Queue") or "",
                                        msg.get("Member") or ""))

    def _a_queuesummary(self, msg: Message, aid: str | None) -> None:
        self._many(queries.queue_summary(self.pbx, aid, msg.get("Queue") or ""))

    def _a_devicestatelist(self, msg: Message, aid: str | None) -> None:
        self._many(queries.device_state_list(self.pbx, aid))

    def _a_extensionstatelist(self, msg: Message, aid: str | None) -> None:
        self._many(queries.extension_state_list(self.pbx, aid))

    def _a_extensionstate(self, msg: Message, aid: str | None) -> None:
        self._reply(queries.extension_state(self.pbx, aid, msg.get("Exten") or "",
                                            msg.get("Context") or "default"))

    def _a_coreshowchannels(self, msg: Message, aid: str | None) -> None:
        self._many(queries.core_show_channels(self.pbx, aid))

    def _a_status(self, msg: Message, aid: str | None) -> None:
        chunks = queries.channel_status(self.pbx, aid, msg.get("Channel") or "",
                                        msg.get("Variables") or "")
        if chunks is None:
            self._reply(response("Error", aid, [("Message", "No such channel")]))
        else:
            self._many(chunks)

    def _a_bridgelist(self, msg: Message, aid: str | None) -> None:
        self._many(queries.bridge_list(self.pbx, aid))

    def _a_bridgeinfo(self, msg: Message, aid: str | None) -> None:
        bridge = msg.get("BridgeUniqueid") or ""
        if not bridge:
            self._reply(response("Error", aid, [("Message", "BridgeUniqueid must be provided")]))
            return
        chunks = queries.bridge_info(self.pbx, aid, bridge)
        if chunks is None:
            self._reply(response("Error", aid, [("Message", f"Bridge {bridge} not found")]))
        else:
            self._many(chunks)

    def _a_coresettings(self, msg: Message, aid: str | None) -> None:
        self._reply(queries.core_settings(aid))

    def _a_corestatus(self, msg: Message, aid: str | None) -> None:
        self._reply(queries.core_status(self.pbx, aid))

    def _a_getvar(self, msg: Message, aid: str | None) -> None:
        variable = msg.get("Variable") or ""
        ok, value = queries.getvar(self.pbx, msg.get("Channel") or "", variable)
        if not ok:
            self._reply(response("Error", aid, [("Message", value)]))
        else:
            self._reply(response("Success", aid, [("Variable", variable), ("Value", value)]))

    def _a_setvar(self, msg: Message, aid: str | None) -> None:
        variable = msg.get("Variable") or ""
        if not variable:
            self._reply(response("Error", aid, [("Message", "No variable specified")]))
            return
        name = msg.get("Channel") or ""
        ch = self.pbx.channels.get(name) if name else None
        if name and ch is None:
            self._reply(response("Error", aid, [("Message", "No such channel")]))
            return
        self._reply(response("Success", aid, [("Message", "Variable Set")]))
        if ch is not None:
            self.pbx._var(ch, variable, msg.get("Value") or "")

    def _a_command(self, msg: Message, aid: str | None) -> None:
        command = (msg.get("Command") or "").strip()
        words = command.lower().split()
        if words[:2] in (["core", "restart"], ["core", "stop"]) and len(words) >= 3:
            # The issuing session gets neither a response nor Shutdown: only EOF (j4).
            if self.on_shutdown is not None:
                self.on_shutdown(self, words[1] == "restart")
            return
        known, lines = queries.cli(self.pbx, command)
        self._reply(response("Success" if known else "Error", aid,
                             [("Message", "Command output follows")] +
                             [("Output", line) for line in lines]))

    # ------------------------------------------------------------ queue members
    def _a_queueadd(self, msg: Message, aid: str | None) -> None:
        queue, iface = msg.get("Queue") or "", msg.get("Interface") or ""
        if not queue or not iface:
            self._reply(response("Error", aid,
                                 [("Message", "'Queue' and 'Interface' not specified.")]))
            return
        try:
            penalty = int(msg.get("Penalty") or 0)
        except ValueError:
            penalty = 0
        with self.pbx.batch():
            ok, text = self.pbx.queue_add(
                queue, iface, member_name=msg.get("MemberName") or None,
                state_interface=msg.get("StateInterface") or None, penalty=penalty,
                paused=ast_true(msg.get("Paused")), reason=msg.get("Reason") or "")
            self._reply(response("Success" if ok else "Error", aid, [("Message", text)]))

    def _a_queueremove(self, msg: Message, aid: str | None) -> None:
        queue, iface = msg.get("Queue") or "", msg.get("Interface") or ""
        if not queue or not iface:
            self._reply(response("Error", aid,
                                 [("Message", "Need 'Queue' and 'Interface' parameters.")]))
            return
        ok, text = self.pbx.queue_remove(queue, iface)
        self._reply(response("Success" if ok else "Error", aid, [("Message", text)]))

    def _a_queuepause(self, msg: Message, aid: str | None) -> None:
        iface, paused = msg.get("Interface") or "", msg.get("Paused")
        if not iface or paused is None or not paused.strip():
            self._reply(response("Error", aid,
                                 [("Message", "Need 'Interface' and 'Paused' parameters.")]))
            return
        ok, text = self.pbx.queue_pause(iface, ast_true(paused), msg.get("Queue") or None,
                                        msg.get("Reason") or "")
        self._reply(response("Success" if ok else "Error", aid, [("Message", text)]))

    def _a_queuepenalty(self, msg: Message, aid: str | None) -> None:
        iface, penalty = msg.get("Interface") or "", msg.get("Penalty") or ""
        if not iface or not penalty:
            self._reply(response("Error", aid,
                                 [("Message", "Need 'Interface' and 'Penalty' parameters.")]))
            return
        try:
            value = int(penalty)
        except ValueError:
            self._reply(response("Error", aid, [("Message", "Invalid penalty")]))
            return
        ok, text = self.pbx.queue_penalty(iface, value, msg.get("Queue") or None)
        self._reply(response("Success" if ok else "Error", aid, [("Message", text)]))

    def _a_queuereset(self, msg: Message, aid: str | None) -> None:
        ok, text = self.pbx.queue_reset(msg.get("Queue") or None)
        self._reply(response("Success" if ok else "Error", aid, [("Message", text)]))

    # ------------------------------------------------------------ calls
    def _a_hangup(self, msg: Message, aid: str | None) -> None:
        name = msg.get("Channel") or ""
        if not name:
            self._reply(response("Error", aid, [("Message", "No channel specified")]))
            return
        try:
            cause = int(msg.get("Cause") or 16)
        except ValueError:
            cause = 16
        if name not in self.pbx.channels:
            self._reply(response("Error", aid, [("Message", "No such channel")]))
            return
        self._reply(response("Success", aid, [("Message", "Channel Hungup")]))
        self.pbx.hangup(name, cause)

    def _a_redirect(self, msg: Message, aid: str | None) -> None:
        name, context = msg.get("Channel") or "", msg.get("Context") or ""
        exten, priority = msg.get("Exten") or "", msg.get("Priority") or ""
        for value, text in ((name, "Channel not specified"), (context, "Context not specified"),
                            (exten, "Exten not specified"),
                            (priority, "Priority not specified")):
            if not value:
                self._reply(response("Error", aid, [("Message", text)]))
                return
        if name not in self.pbx.channels:
            self._reply(response("Error", aid,
                                 [("Message", f"Channel does not exist: {name}")]))
            return
        self._reply(response("Success", aid, [("Message", "Redirect successful")]))
        self.pbx.redirect(name, context, exten)

    def _a_park(self, msg: Message, aid: str | None) -> None:
        name = msg.get("Channel") or ""
        if not name:
            self._reply(response("Error", aid, [("Message", "Channel not specified")]))
            return
        timeout = msg.get("Timeout")
        try:
            timeout_ms = int(timeout) if timeout else None
        except ValueError:
            timeout_ms = None
        if name not in self.pbx.channels:
            self._reply(response("Error", aid,
                                 [("Message", f"Channel does not exist: {name}")]))
            return
        with self.pbx.batch():
            ok, text = self.pbx.park(name, msg.get("TimeoutChannel") or "", timeout_ms)
            self._reply(response("Success" if ok else "Error", aid, [("Message", text)]))

    def _a_originate(self, msg: Message, aid: str | None) -> None:
        channel = msg.get("Channel") or ""
        if not channel:
            self._reply(response("Error", aid, [("Message", "Channel not specified")]))
            return
        if "/" not in channel:
            self._reply(response("Error", aid, [("Message", "Invalid channel")]))
            return
        try:
            timeout_ms = int(msg.get("Timeout") or 30000)
        except ValueError:
            self._reply(response("Error", aid, [("Message", "Invalid timeout")]))
            return
        variables: dict[str, str] = {}
        for item in msg.getall("Variable"):
            for pair in item.split(","):
                key, _, value = pair.partition("=")
                if key:
                    variables[key] = value
        async_ = ast_true(msg.get("Async"))
        kwargs = dict(
            timeout_ms=timeout_ms, caller_id=msg.get("CallerID"), variables=variables,
            application=msg.get("Application") or "", data=msg.get("Data") or "",
            action_id=aid, async_=async_)
        if async_:
            self._reply(response("Success", aid,
                                 [("Message", "Originate successfully queued")]))
            self.pbx.originate(channel, msg.get("Context") or "default",
                               msg.get("Exten") or "s", **kwargs)  # type: ignore[arg-type]
            return

        def done(result: OriginateResult) -> None:
            if result.success:
                self._reply(response("Success", aid,
                                     [("Message", "Originate successfully queued")]))
            else:
                self._reply(response("Error", aid, [("Message", "Originate failed")]))
            self._unblock()

        # A synchronous Originate blocks the session: events wait behind the response (g).
        self._blocked = True
        self.pbx.originate(channel, msg.get("Context") or "default", msg.get("Exten") or "s",
                           on_result=done, **kwargs)  # type: ignore[arg-type]

    def _unblock(self) -> None:
        if not self._blocked:
            return
        self._blocked = False
        held, self._held = self._held, []
        for data in held:
            self._send(data)
        queued, self._queued = self._queued, []
        for msg in queued:
            self.handle(msg)

    def shutdown_event(self, restart: bool) -> None:
        """Send ``Event: Shutdown`` if this session would get a system event."""
        event = SimEvent("Shutdown", "system", [("Shutdown", "Cleanly"),
                                                ("Restart", "True" if restart else "False")])
        if self.wants(event):
            self._reply(event.data)

    def raw(self, headers: Headers) -> None:
        """Write an arbitrary frame (tests inject odd bytes this way)."""
        self._reply(render(headers))
