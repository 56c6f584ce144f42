"""AMI frame builders for the simulator, shaped like Asterisk 22.10's bytes.

Pure: no sockets, threads or clocks. Every header list here copies the
names and order seen in shared/ami-transcripts/*.ami (c-call-caller-hangup,
a-initial-state, b-agent-management, g-originate, h2-park). Imports only the
standard library.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "Headers",
    "SimEvent",
    "render",
    "response",
    "list_item",
    "list_complete",
    "CHANNEL_STATE_DESC",
    "DEVICE_TO_EXTENSION",
    "DEVICE_TO_MEMBER",
    "CAUSE_TEXT",
    "ASTERISK_VERSION",
    "AMI_VERSION",
    "BANNER",
]

Headers = list[tuple[str, str]]

AMI_VERSION = "11.0.0"
ASTERISK_VERSION = "22.10.1+dfsg+~cs6.17.60671434-1"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"

#: ChannelState -> ChannelStateDesc (ast_state2str).
CHANNEL_STATE_DESC: dict[int, str] = {
    0: "Down", 1: "Rsrvd", 2: "OffHook", 3: "Dialing", 4: "Ring", 5: "Ringing",
    6: "Up", 7: "Busy",
}

#: Device state name -> (ExtensionStatus Status, StatusText).
DEVICE_TO_EXTENSION: dict[str, tuple[int, str]] = {
    "NOT_INUSE": (0, "Idle"),
    "INUSE": (1, "InUse"),
    "BUSY": (2, "Busy"),
    "UNAVAILABLE": (4, "Unavailable"),
    "INVALID": (4, "Unavailable"),
    "UNKNOWN": (4, "Unavailable"),
    "RINGING": (8, "Ringing"),
    "RINGINUSE": (9, "InUse&Ringing"),
    "ONHOLD": (16, "Hold"),
}

#: Device state name -> QueueMember(Status) code (= enum ast_device_state).
DEVICE_TO_MEMBER: dict[str, int] = {
    "UNKNOWN": 0, "NOT_INUSE": 1, "INUSE": 2, "BUSY": 3, "INVALID": 4,
    "UNAVAILABLE": 5, "RINGING": 6, "RINGINUSE": 7, "ONHOLD": 8,
}

#: Hangup cause -> Cause-txt (ast_cause2str) for the causes the simulator uses.
CAUSE_TEXT: dict[int, str] = {
    0: "Unknown",
    16: "Normal Clearing",
    17: "User busy",
    19: "User alerting, no answer",
    21: "Call Rejected",
    26: "Answered elsewhere",
    34: "Circuit/channel congestion",
    127: "Interworking, unspecified",
}


class SimEvent:
    """One unsolicited event: name, class (``call``, ``agent``...) and headers.

    ``headers`` starts with ``Event`` and ``Privilege`` exactly as sent. The
    wire bytes are rendered once and shared by every session.
    """

    __slots__ = ("name", "category", "headers", "_data", "_text")

    def __init__(self, name: str, category: str, body: Iterable[tuple[str, str]]) -> None:
        self.name = name
        self.category = category
        self.headers: Headers = [("Event", name), ("Privilege", f"{category},all")]
        self.headers.extend(body)
        self._data: bytes | None = None
        self._text: str | None = None

    @property
    def text(self) -> str:
        """The event as sent, a str (what legacy regex filters run over)."""
        if self._text is None:
            self._text = "".join(f"{k}: {v}\r\n" for k, v in self.headers) + "\r\n"
        return self._text

    @property
    def data(self) -> bytes:
        """The event's wire bytes."""
        if self._data is None:
            self._data = self.text.encode("utf-8")
        return self._data

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (exact case), or ``default``."""
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def __repr__(self) -> str:
        return f"SimEvent({self.name!r}, {len(self.headers)} headers)"


def render(headers: Sequence[tuple[str, str]]) -> bytes:
    """``Key: Value`` lines plus the blank line that ends a message."""
    return ("".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode("utf-8")


def response(
    status: str, action_id: str | None, body: Sequence[tuple[str, str]] = ()
) -> bytes:
    """A response: ``Response`` first, ``ActionID`` second (only when the action had one)."""
    headers: Headers = [("Response", status)]
    if action_id is not None:
        headers.append(("ActionID", action_id))
    headers.extend(body)
    return render(headers)


def list_item(
    name: str,
    action_id: str | None,
    body: Sequence[tuple[str, str]],
    *,
    id_last: bool = False,
    privilege: str | None = None,
) -> bytes:
    """A list event answering an action.

    ``ActionID`` is the 2nd header, except in QueueParams/QueueMember/
    QueueEntry/QueueSummary/Status where Asterisk appends it last
    (transcript a-initial-state).
    """
    headers: Headers = [("Event", name)]
    if privilege is not None:
        headers.append(("Privilege", privilege))
    if action_id is not None and not id_last:
        headers.append(("ActionID", action_id))
    headers.extend(body)
    if action_id is not None and id_last:
        headers.append(("ActionID", action_id))
    return render(headers)


def list_complete(
    name: str, action_id: str | None, items: int, extra: Sequence[tuple[str, str]] = ()
) -> bytes:
    """The closing ``<Name>Complete`` event of a list action."""
    headers: Headers = [("Event", name)]
    if action_id is not None:
        headers.append(("ActionID", action_id))
    headers += [("EventList", "Complete"), ("ListItems", str(items))]
    headers.extend(extra)
    return render(headers)
