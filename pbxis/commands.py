"""Builders and validators for every action pbxis sends, and response decoding.

Pure (layer 2): turns arguments into ``(action name, headers)`` and responses
into return values or ``ActionError``. Bad arguments raise ``ValueError``
before anything is sent. Imports protocol, actions, errors and config only.
"""
from __future__ import annotations

import hashlib
from typing import (
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
)

from .actions import ActionResult
from .config import check_value
from .errors import ActionError
from .protocol import Message, regex_literal
from .versions import (
    FALLBACK_EVENT_MASK,
    FILTER_EXCLUDE,
    FILTER_WHITELIST,
    MEMBER_LIST_IFACE,
    MEMBER_LIST_NAME,
    MEMBER_STATUSES,
    UNSET_VAR,
    UP_STATE,
)

__all__ = [
    "Action",
    "Response",
    "login",
    "challenge",
    "login_md5",
    "md5_key",
    "server_filter",
    "server_filter_exclude",
    "event_mask",
    "ping",
    "logoff",
    "originate",
    "redirect",
    "park",
    "queue_action",
    "queue_status",
    "channel_status",
    "Line",
    "line_of",
    "check_result",
    "queue_status_dicts",
    "QUEUE_ACTION_TYPES",
    "FALLBACK_EVENT_MASK",
]

Headers = List[Tuple[str, Any]]
Action = Tuple[str, Headers]


def _text(name: str, value: Any, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    check_value(name, value)
    if not allow_empty and not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


def login(username: str, secret: str, events: bool = True) -> Action:
    """Plain ``Login`` (the secret crosses the wire; use TLS or MD5 auth)."""
    return "Login", [
        ("Username", _text("username", username)),
        ("Secret", _text("secret", secret, allow_empty=True)),
        ("Events", "on" if events else "off"),
    ]


def challenge() -> Action:
    """``Challenge`` for MD5 login."""
    return "Challenge", [("AuthType", "MD5")]


def md5_key(challenge_value: str, secret: str) -> str:
    """The MD5 ``Key``: ``md5hex(challenge + secret)``."""
    return hashlib.md5((challenge_value + secret).encode("utf-8")).hexdigest()  # noqa: S324


def login_md5(username: str, key: str, events: bool = True) -> Action:
    """``Login`` with ``AuthType: MD5`` and the computed key."""
    return "Login", [
        ("AuthType", "MD5"),
        ("Username", _text("username", username)),
        ("Key", key),
        ("Events", "on" if events else "off"),
    ]


def server_filter(event_names: Iterable[str]) -> Action:
    """One ``Filter`` whitelist for the given event names.

    Uses the legacy regex form (``pbxis.versions.FILTER_WHITELIST``), the
    one Asterisk 16 and 22 both apply. The regex runs over the whole event
    text, which starts with the ``Event:`` line.
    """
    names = sorted(set(event_names))
    for name in names:
        if not name.isalnum():
            raise ValueError(f"event name {name!r} is not alphanumeric")
    regex = FILTER_WHITELIST.format(names="|".join(names))
    return "Filter", [("Operation", "Add"), ("Filter", regex)]


def server_filter_exclude(event_name: str, line: str) -> Action:
    """A ``Filter`` that drops the events named ``event_name`` having a
    header line that starts with ``line`` (legacy ``!regex`` form, which
    Asterisk 16 and 22 both apply)."""
    if not event_name.isalnum():
        raise ValueError(f"event name {event_name!r} is not alphanumeric")
    regex = FILTER_EXCLUDE.format(name=event_name, line=regex_literal(_text("line", line)))
    return "Filter", [("Operation", "Add"), ("Filter", regex)]


def event_mask(mask: str = FALLBACK_EVENT_MASK) -> Action:
    """``Events`` with an ``EventMask`` (needs no special permission)."""
    return "Events", [("EventMask", _text("mask", mask))]


def ping() -> Action:
    """``Ping``."""
    return "Ping", []


def logoff() -> Action:
    """``Logoff``."""
    return "Logoff", []


def originate(
    location: str,
    context: str,
    phone: str,
    caller_id: Optional[str] = None,
    variables: Optional[Mapping[str, Any]] = None,
    timeout_ms: int = 30000,
) -> Action:
    """Asynchronous ``Originate``: ring ``location``, then dial ``phone`` in ``context``.

    Always ``Async: true``: a synchronous Originate blocks the AMI session
    until the far end answers (shared/asterisk-22-notes.md, Originate).
    """
    headers: Headers = [
        ("Channel", _text("location", location)),
        ("Context", _text("context", context)),
        ("Exten", _text("phone", phone)),
        ("Priority", "1"),
        ("Timeout", int(timeout_ms)),
        ("Async", "true"),
    ]
    if caller_id is not None:
        headers.append(("CallerID", _text("caller_id", caller_id)))
    if variables:
        if not isinstance(variables, Mapping):
            raise TypeError("variables must be a mapping")
        pairs = []
        for key, value in variables.items():
            key = _text("variable name", key)
            if "=" in key:
                raise ValueError("variable names must not contain '='")
            pairs.append(f"{key}={_text('variable value', str(value), allow_empty=True)}")
        headers.append(("Variable", pairs))
    return "Originate", headers


def redirect(channel: str, context: str, destination: str) -> Action:
    """``Redirect`` a channel to ``destination`` (priority 1) in ``context``."""
    return "Redirect", [
        ("Channel", _text("channel", channel)),
        ("Context", _text("context", context)),
        ("Exten", _text("destination", destination)),
        ("Priority", "1"),
    ]


def park(parkee: str, announce_to: Optional[str], timeout_s: float) -> Action:
    """``Park`` (res_parking): Asterisk 12+ names, see asterisk-22-notes (Park)."""
    if not timeout_s > 0:
        raise ValueError("timeout must be > 0 seconds")
    headers: Headers = [("Channel", _text("channel", parkee))]
    if announce_to:
        headers += [
            ("TimeoutChannel", _text("channel", announce_to)),
            ("AnnounceChannel", announce_to),
        ]
    headers.append(("Timeout", int(timeout_s * 1000)))
    return "Park", headers


QUEUE_ACTION_TYPES = ("add", "remove", "pause", "unpause", "penalty", "reset")


def queue_action(
    type: str,
    *,
    location: Optional[str],
    queue: Optional[str],
    member_name: Optional[str] = None,
    paused: Optional[bool] = None,
    reason: Optional[str] = None,
    penalty: Optional[int] = None,
) -> Action:
    """The Queue* action for ``pbx.queue_action`` (see API.md §5)."""
    if type not in QUEUE_ACTION_TYPES:
        raise ValueError(f"queue action type must be one of {', '.join(QUEUE_ACTION_TYPES)}")
    if type == "reset":
        headers: Headers = []
        if queue is not None:
            headers.append(("Queue", _text("queue", queue)))
        return "QueueReset", headers
    if location is None or queue is None:
        raise ValueError(f"queue action {type!r} needs agent and queue")
    headers = [("Queue", _text("queue", queue)), ("Interface", _text("agent", location))]
    if reason is not None:
        _text("reason", reason, allow_empty=True)
    if penalty is not None and (isinstance(penalty, bool) or not isinstance(penalty, int)
                                or penalty < 0):
        raise ValueError("penalty must be an int >= 0")
    if type == "add":
        if member_name is not None:
            headers.append(("MemberName", _text("member_name", member_name)))
        headers.append(("StateInterface", location))
        if penalty is not None:
            headers.append(("Penalty", penalty))
        if paused is not None:
            headers.append(("Paused", bool(paused)))
        if reason is not None:
            headers.append(("Reason", reason))
        return "QueueAdd", headers
    if type == "remove":
        return "QueueRemove", headers
    if type in ("pause", "unpause"):
        state = (True if paused is None else bool(paused)) if type == "pause" else False
        headers.append(("Paused", state))
        if reason is not None:
            headers.append(("Reason", reason))
        return "QueuePause", headers
    if penalty is None:
        raise ValueError("queue action 'penalty' needs penalty")
    headers.append(("Penalty", penalty))
    return "QueuePenalty", headers


def queue_status(queue: Optional[str] = None, member: Optional[str] = None) -> Action:
    """``QueueStatus`` (a list action), optionally for one queue and/or member."""
    headers: Headers = []
    if queue is not None:
        headers.append(("Queue", _text("queue", queue)))
    if member is not None:
        headers.append(("Member", _text("member", member)))
    return "QueueStatus", headers


def channel_status(channel: str) -> Action:
    """``Status`` of one channel, with who it is bridged with (``BRIDGEPEER``)."""
    return "Status", [("Channel", _text("channel", channel)), ("Variables", "BRIDGEPEER")]


class Line(NamedTuple):
    """What ``Status`` tells of one channel: answered, and bridged with whom."""

    up: bool
    #: The other channels in its bridge (``BRIDGEPEER``); empty when not bridged.
    peers: Tuple[str, ...]


def line_of(result: ActionResult, channel: str) -> Optional[Line]:
    """The ``Line`` of ``channel`` from a ``channel_status`` result; None when
    Asterisk does not know the channel (it ended: ``No such channel``)."""
    if not result.ok:
        return None
    for ev in result.events:
        if ev.get("Event") != "Status" or ev.get("Channel") != channel:
            continue
        peers: Tuple[str, ...] = ()
        for variable in ev.getall("Variable"):
            name, _, value = variable.partition("=")
            if name == "BRIDGEPEER" and value and value != UNSET_VAR:
                peers = tuple(p for p in value.split(",") if p)
        return Line(ev.get("ChannelState") == UP_STATE, peers)
    return None


class Response(Mapping[str, str]):
    """A read-only, case-insensitive mapping of a response's headers.

    ``.events`` lists the event mappings a list action returned (without the
    closing ``*Complete`` event, which is ``.complete``). Repeated headers:
    ``getall(name)``.
    """

    __slots__ = ("_msg", "events", "complete")

    def __init__(self, result: ActionResult) -> None:
        self._msg = result.response
        self.events: List[Message] = list(result.events)
        self.complete: Optional[Message] = result.complete

    def __getitem__(self, name: str) -> str:
        return self._msg[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self._msg.get(name, default)

    def getall(self, name: str) -> List[str]:
        """Every value of a repeated header."""
        return self._msg.getall(name)

    def __iter__(self) -> Iterator[str]:
        seen: Dict[str, None] = {}
        for key, _ in self._msg.headers:
            seen.setdefault(key, None)
        return iter(seen)

    def __len__(self) -> int:
        return len({k for k, _ in self._msg.headers})

    def __contains__(self, name: object) -> bool:
        return name in self._msg

    def __repr__(self) -> str:
        return f"Response({self._msg.headers!r}, events={len(self.events)})"


def check_result(result: ActionResult, what: str) -> ActionResult:
    """Raise ``ActionError`` with Asterisk's words if the action was refused."""
    if not result.ok:
        message = result.response.get("Message") or f"{what} failed"
        raise ActionError(message, Response(result))
    return result


def _int(value: Optional[str]) -> Optional[int]:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def queue_status_dicts(events: Sequence[Message], location_prefix: str) -> List[Dict[str, Any]]:
    """Turn ``QueueStatus`` list events into one JSON-ready dict per queue.

    Asterisk 22 names members ``Name``/``Location`` here (unlike the
    ``MemberName``/``Interface`` of ``QueueMemberStatus``; asterisk-22-notes).
    """
    queues: Dict[str, Dict[str, Any]] = {}
    for msg in events:
        name = msg.get("Queue") or ""
        kind = msg.get("Event")
        if kind == "QueueParams":
            queues[name] = {
                "queue": name,
                "strategy": msg.get("Strategy"),
                "calls": _int(msg.get("Calls")),
                "holdTime": _int(msg.get("Holdtime")),
                "talkTime": _int(msg.get("TalkTime")),
                "completed": _int(msg.get("Completed")),
                "abandoned": _int(msg.get("Abandoned")),
                "members": [],
                "entries": [],
            }
            continue
        queue = queues.setdefault(name, {"queue": name, "members": [], "entries": []})
        if kind == "QueueMember":
            location = next((msg[h] for h in MEMBER_LIST_IFACE if msg.get(h)), "")
            state = msg.get("StateInterface") or ""
            agent = None
            for iface in (location, state):
                if iface.startswith(location_prefix):
                    agent = iface[len(location_prefix):]
                    break
            queue["members"].append({
                "agent": agent,
                "location": location,
                "name": next((msg[h] for h in MEMBER_LIST_NAME if msg.get(h)), None),
                "membership": msg.get("Membership"),
                "penalty": _int(msg.get("Penalty")),
                "callsTaken": _int(msg.get("CallsTaken")),
                "inCall": msg.get("InCall") == "1",
                "status": MEMBER_STATUSES.get(msg.get("Status") or "0", "unknown"),
                "paused": msg.get("Paused") == "1",
                "pausedReason": msg.get("PausedReason") or None,
            })
        elif kind == "QueueEntry":
            queue["entries"].append({
                "position": _int(msg.get("Position")),
                "channel": msg.get("Channel"),
                "uniqueId": msg.get("Uniqueid"),
                "callerIdNum": msg.get("CallerIDNum"),
                "callerIdName": msg.get("CallerIDName"),
                "wait": _int(msg.get("Wait")),
            })
    return list(queues.values())
