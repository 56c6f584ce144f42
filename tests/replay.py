"""Replays recorded AMI sessions (shared/ami-transcripts) through a ``Digest``.

Import as ``from replay import ...`` (pytest puts ``tests/`` on ``sys.path``).

* :class:`Lab` answers the digest's own queries (``track``'s QueueStatus,
  Getvar DEVICE_STATE / CHANNELS, the follow-up Status) with results
  synthesised from the lab conventions in ami-transcripts/README.md: agents
  1001 Alice Anders, 1002 Bob Brown, 1003 Carol Clark; ``sales`` = 1001+1002,
  ``support`` = 1002+1003; every scenario starts from a freshly restarted,
  idle Asterisk, with the per-scenario set-up (e.g. "1002 paused in sales")
  given as arguments. This is the "realistic initial state" the replay
  tests start from.
* :func:`replay` feeds a transcript the way the client would: responses and
  list items go to a ``Correlator`` (registered at the byte offset where the
  recorder sent each action, from the ``.actions`` file); a completed result
  of a recorded query (QueueStatus, DeviceStateList, CoreShowChannels,
  Status...) goes to ``Digest.apply``; every other event to ``Digest.feed``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable

from helpers import TRANSCRIPTS, transcript

from pbxis.actions import ActionResult, Correlator
from pbxis.digest import Digest, Query
from pbxis.events import Event
from pbxis.protocol import Message, Parser

__all__ = [
    "AGENTS",
    "QUEUES",
    "NAMES",
    "Lab",
    "message",
    "result",
    "start",
    "status_item",
    "replay",
    "messages",
    "recorded_actions",
    "dicts",
]

AGENTS = ("1001", "1002", "1003")
QUEUES = ("sales", "support")
NAMES = {"1001": "Alice Anders", "1002": "Bob Brown", "1003": "Carol Clark"}
MEMBERS = {"sales": ("1001", "1002"), "support": ("1002", "1003")}
_DEVICE_CODES = {"NOT_INUSE": "1", "INUSE": "2", "BUSY": "3", "UNAVAILABLE": "5", "RINGING": "6"}


def message(*headers: tuple[str, str], **more: str) -> Message:
    """A Message from (name, value) pairs and/or keywords (in that order)."""
    return Message(list(headers) + list(more.items()))


def result(events: Sequence[Message] = (), **response: str) -> ActionResult:
    """An ActionResult: ``Response: Success`` (or as given) plus list items."""
    headers = {"Response": "Success", **response}
    return ActionResult(message(*headers.items()), list(events))


class Lab:
    """The lab's state at the start of a scenario, answering the digest's queries.

    Args:
        paused: {(agent, queue): reason} members paused before the recording.
        devices: {agent: DEVICE_STATE word}; the others are NOT_INUSE.
        counts: {queue: callers waiting}.
        channels: {agent: [its live channels as Status list items, see
            :func:`status_item`]}.
        in_call: {(agent, queue): True} members with InCall 1.
    """

    def __init__(
        self,
        paused: Mapping[tuple[str, str], str] | None = None,
        devices: Mapping[str, str] | None = None,
        counts: Mapping[str, int] | None = None,
        channels: Mapping[str, list[Message]] | None = None,
        in_call: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.paused = dict(paused or {})
        self.devices = dict(devices or {})
        self.counts = dict(counts or {})
        self.channels = dict(channels or {})
        self.in_call = set(in_call)

    def _member(self, queue: str, agent: str) -> Message:
        reason = self.paused.get((agent, queue))
        return message(
            ("Event", "QueueMember"),
            ("Queue", queue),
            ("Name", NAMES[agent]),
            ("Location", f"PJSIP/{agent}"),
            ("StateInterface", f"PJSIP/{agent}"),
            ("Membership", "static"),
            ("InCall", "1" if (agent, queue) in self.in_call else "0"),
            ("Status", _DEVICE_CODES[self.devices.get(agent, "NOT_INUSE")]),
            ("Paused", "1" if reason is not None else "0"),
            ("PausedReason", reason or ""),
        )

    def queue_status(self, queue: str | None = None, member: str | None = None) -> ActionResult:
        """QueueStatus [Queue] [Member] as app_queue lists it (QueueParams for every queue)."""
        events = []
        for q, agents in MEMBERS.items():
            if queue is not None and q != queue:
                continue
            events.append(
                message(
                    ("Event", "QueueParams"), ("Queue", q), ("Calls", str(self.counts.get(q, 0)))
                )
            )
            events += [self._member(q, a) for a in agents if member in (None, f"PJSIP/{a}")]
        return result(events, EventList="start")

    def answer(self, query: Query) -> ActionResult:
        """The result Asterisk would give ``query`` in this lab state."""
        h = dict(query.headers)
        if query.action == "QueueStatus":
            return self.queue_status(h.get("Queue"), h.get("Member"))
        var = h.get("Variable", "")
        if query.action == "Getvar" and var.startswith("DEVICE_STATE(PJSIP/"):
            agent = var[len("DEVICE_STATE(PJSIP/") : -1]
            return result(Variable=var, Value=self.devices.get(agent, "NOT_INUSE"))
        if query.action == "Getvar" and var.startswith("CHANNELS(^PJSIP/"):
            agent = var[len("CHANNELS(^PJSIP/") : -len("-)")]
            names = " ".join(c["Channel"] for c in self.channels.get(agent, []))
            return result(Variable=var, Value=names)
        if query.action == "Status":
            for chans in self.channels.values():
                for c in chans:
                    if c["Channel"] == h["Channel"]:
                        return result([c], EventList="start")
            return result(Response="Error", Message="No such channel")
        raise AssertionError(f"the lab cannot answer {query}")


def status_item(
    channel: str,
    connected: tuple[str, str],
    *,
    uniqueid: str,
    linkedid: str,
    state: str = "6",
    bridge: str = "",
    variables: Iterable[str] = (),
) -> Message:
    """A ``Status`` list item for ``channel`` (an agent's), as Asterisk 22 sends it.

    ``connected`` is (ConnectedLineNum, ConnectedLineName); ``variables`` the
    ``NAME=value`` strings asked for with ``Variables:``.
    """
    number = channel.split("/")[1].split("-")[0]
    return message(
        ("Event", "Status"),
        ("Privilege", "Call"),
        ("Channel", channel),
        ("ChannelState", state),
        ("CallerIDNum", number),
        ("CallerIDName", NAMES.get(number, "")),
        ("ConnectedLineNum", connected[0]),
        ("ConnectedLineName", connected[1]),
        ("Context", "default"),
        ("Exten", "sales"),
        ("Uniqueid", uniqueid),
        ("Linkedid", linkedid),
        ("BridgeID", bridge),
        ("Application", "AppQueue"),
        ("Data", "(Outgoing Line)"),
        *[("Variable", v) for v in variables],
    )


def start(
    lab: Lab | None = None,
    agents: Iterable[str] = AGENTS,
    queues: Iterable[str] = QUEUES,
    digest: Digest | None = None,
) -> tuple[Digest, list[Event]]:
    """A digest tracking the lab's agents and queues, its queries answered by ``lab``.

    Returns the digest and the events its query results produced. With
    ``lab=None`` the queries are left unanswered (nothing known yet).
    """
    digest = digest or Digest("PJSIP/")
    queries = digest.track(agents, queues)
    events: list[Event] = []
    while lab is not None and queries:
        for query in queries:
            events += digest.apply(query, lab.answer(query))
        queries = digest.take_queries()
    return digest, events


def recorded_actions(name: str) -> list[dict[str, Any]]:
    """The ``.actions`` JSON lines of a transcript."""
    path = TRANSCRIPTS / name.replace(".ami", ".actions")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _query(action: Mapping[str, Any]) -> Query:
    pairs = [line.partition(": ") for line in action["raw"].split("\r\n") if ": " in line]
    kept = tuple((k, v) for k, _, v in pairs if k not in ("Action", "ActionID"))
    return Query(action["action"], kept)


def messages(name: str) -> list[Message]:
    """Every Message of a transcript, in order."""
    parser = Parser()
    frames = parser.feed(transcript(name)) + parser.feed(b"")
    return [f for f in frames if isinstance(f, Message)]


def replay(
    name: str,
    digest: Digest,
    *,
    on_action: Callable[[Mapping[str, Any], Digest], None] | None = None,
    skip_until: Callable[[Message], bool] | None = None,
    wanted: Iterable[str] | None = None,
) -> list[Event]:
    """Feed transcript ``name`` through ``digest``; return the events it emitted.

    Args:
        on_action: called with each recorded action (a ``.actions`` line) at
            the point of the stream where the recorder sent it.
        skip_until: feed nothing up to and including the first message for
            which this returns True (attach in the middle of a call).
        wanted: the parser's skip-by-name set (default: parse everything).
    """
    data = transcript(name)
    actions = recorded_actions(name)
    parser = Parser(wanted=wanted)
    correlator = Correlator()
    queries: dict[str, Query] = {}
    events: list[Event] = []
    skipping = skip_until is not None
    cuts = sorted({a["offset"] for a in actions} | {len(data)})
    done = 0
    for cut in cuts:
        for frame in parser.feed(data[done:cut]):
            if not isinstance(frame, Message):
                continue
            if skipping:
                assert skip_until is not None
                skipping = not skip_until(frame)
                continue
            found = correlator.feed(frame) if frame.action_id is not None else None
            if found is not None:
                pending, complete = found
                if complete is not None and pending.action_id in queries:
                    events += digest.apply(queries[pending.action_id], complete)
                continue
            if frame.event is not None:
                events += digest.feed(frame)
        done = cut
        for action in actions:
            if action["offset"] == cut and action.get("action_id"):
                correlator.register(action["action_id"], action["action"])
                queries[action["action_id"]] = _query(action)
                if on_action is not None:
                    on_action(action, digest)
    return events


def dicts(events: Iterable[Event]) -> list[dict[str, Any]]:
    """Events as their ``to_dict()`` forms."""
    return [e.to_dict() for e in events]
