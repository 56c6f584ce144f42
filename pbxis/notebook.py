"""Agents x queues as a table for people: HTML in Jupyter, text in a terminal (layer 5).

``Board`` folds pbxis events (or a ``pbx.snapshot()``) into a table: each
agent's name, phone status, current caller and status in every queue, plus
each queue's waiting callers. It does no I/O; ``pbxis watch`` prints its
``render()``, and Jupyter shows its ``_repr_html_()``.

``Wallboard`` keeps a Board up to date from a live ``Pbx`` on a thread of its
own and, in Jupyter, updates every place it was displayed in. IPython is
imported only when a Wallboard is displayed; nothing here needs it.

May import: ``pbxis.events``, ``pbxis.client`` (for types), the stdlib.
"""
from __future__ import annotations

import html
import importlib
import queue
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from .events import Event

if TYPE_CHECKING:  # pragma: no cover
    from .client import Pbx

__all__ = ["Board", "Wallboard", "discover", "STATUS_TEXT"]

#: How the table words pbxis statuses (API.md §4).
STATUS_TEXT: Dict[str, str] = {
    "not_inuse": "ready",
    "inuse": "talking",
    "ringing": "ringing",
    "ringinuse": "ring+talk",
    "busy": "busy",
    "onhold": "on hold",
    "unavailable": "offline",
    "unknown": "?",
    "loggedoff": "-",
    "paused": "paused",
}

#: Background colours of the HTML table, by status.
_COLOURS = {
    "not_inuse": "#d9f2d9",
    "ringing": "#fff2cc",
    "ringinuse": "#fff2cc",
    "inuse": "#f8d7da",
    "busy": "#f8d7da",
    "onhold": "#e2d9f3",
    "paused": "#e0e0e0",
    "unavailable": "#cccccc",
}


def discover(pbx: Pbx, agents: Iterable[str] = (), queues: Iterable[str] = ()
             ) -> Tuple[List[str], List[str]]:
    """Fill in what the caller left empty from one ``QueueStatus``.

    No ``queues``: every queue. No ``agents``: every member of those queues
    (by location prefix). Blocks for one AMI round trip unless both are given.
    """
    agent_list, queue_list = list(agents), list(queues)
    if agent_list and queue_list:
        return agent_list, queue_list
    status = pbx.queue_status()
    if not queue_list:
        queue_list = sorted(q["queue"] for q in status)
    if not agent_list:
        agent_list = sorted({m["agent"] for q in status if q["queue"] in queue_list
                             for m in q["members"] if m["agent"]})
    return agent_list, queue_list


class Board:
    """The state of some agents and queues, as a table (no I/O, not thread-safe).

    Args:
        agents: the rows, in order.
        queues: the queue columns, in order.
    """

    def __init__(self, agents: Iterable[str], queues: Iterable[str]) -> None:
        self.agents = list(agents)
        self.queues = list(queues)
        self.names: Dict[str, str] = {}
        self.extension: Dict[str, str] = {}
        self.member: Dict[Tuple[str, str], str] = {}
        self.number: Dict[str, str] = {}
        self.count: Dict[str, int] = {}
        self.completed: Dict[str, int] = {}
        self.note = ""

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any], agents: Optional[Iterable[str]] = None,
                      queues: Optional[Iterable[str]] = None) -> Board:
        """A Board of ``pbx.snapshot()`` (the agents and queues pbxis tracks).

        ``agents``/``queues`` default to everything in the snapshot. The
        ``done`` column stays 0: a snapshot has no call history.
        """
        agent_map: Mapping[str, Any] = snapshot.get("agents", {})
        queue_map: Mapping[str, Any] = snapshot.get("queues", {})
        board = cls(sorted(agent_map) if agents is None else agents,
                    sorted(queue_map) if queues is None else queues)
        for agent, info in agent_map.items():
            board.apply(Event("agentName", agent, name=info.get("name")))
            if info.get("extensionStatus"):
                board.apply(Event("extensionStatus", agent, status=info["extensionStatus"]))
            call = info.get("phoneNumber") or {}
            board.apply(Event("phoneNumber", agent, call.get("queue"),
                              number=call.get("number"), name=call.get("name")))
            for q, member in info.get("queues", {}).items():
                board.apply(Event("queueMemberStatus", agent, q, status=member.get("status"),
                                  reason=member.get("reason")))
        for q, info in queue_map.items():
            board.apply(Event("queueCount", queue=q, count=info.get("count", 0)))
            for agent in agent_map:  # a tracked queue lists all its members
                board.member.setdefault((agent, q), "loggedoff")
        return board

    def apply(self, ev: Event) -> None:
        """Fold one event into the table; events it does not show are ignored."""
        t = ev.type
        if t == "agentName" and ev.agent:
            self.names[ev.agent] = ev.get("name") or ""
        elif t == "extensionStatus" and ev.agent:
            self.extension[ev.agent] = ev.get("status") or ""
        elif t == "queueMemberStatus" and ev.agent and ev.queue:
            status = ev.get("status") or ""
            if status == "paused" and ev.get("reason"):
                status = f"paused:{ev['reason']}"
            self.member[(ev.agent, ev.queue)] = status
        elif t == "phoneNumber" and ev.agent:
            number = ev.get("number")
            if number is None:
                self.number.pop(ev.agent, None)
            else:
                name = ev.get("name")
                shown = f" {name}" if name and name != number else ""
                via = f" ({ev.queue})" if ev.queue else ""
                self.number[ev.agent] = f"{number}{shown}{via}"
        elif t == "queueCount" and ev.queue:
            self.count[ev.queue] = int(ev.get("count") or 0)
        elif t == "agentComplete" and ev.agent:
            self.completed[ev.agent] = self.completed.get(ev.agent, 0) + 1
        elif t in ("connectionLost", "connectionRestored", "eventsDropped"):
            self.note = f"{time.strftime('%H:%M:%S')} {t}"

    # -- output ----------------------------------------------------------------

    def header(self) -> List[str]:
        """The column titles."""
        return ["agent", "name", "phone", "caller"] + self.queues + ["done"]

    def rows(self) -> List[List[Tuple[str, str]]]:
        """One row per agent: ``(text, status)`` cells; status is the raw
        pbxis status for status cells, "" for the others."""
        out = []
        for agent in self.agents:
            phone = self.extension.get(agent, "")
            row = [(agent, ""), (self.names.get(agent, ""), ""),
                   (STATUS_TEXT.get(phone, phone), phone), (self.number.get(agent, ""), "")]
            for q in self.queues:
                status = self.member.get((agent, q), "")
                base = status.split(":", 1)[0]
                text = STATUS_TEXT.get(status, status)
                if base == "paused" and ":" in status:
                    text = f"paused ({status.split(':', 1)[1]})"
                row.append((text, base))
            row.append((str(self.completed.get(agent, 0)), ""))
            out.append(row)
        return out

    def waiting(self) -> str:
        """``sales: 1, support: 0``: callers waiting per queue."""
        return ", ".join(f"{q}: {self.count.get(q, 0)}" for q in self.queues)

    def render(self) -> str:
        """The table as plain text (what ``pbxis watch`` shows)."""
        rows = [self.header()] + [[text for text, _ in row] for row in self.rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append("")
        lines.append(f"waiting callers  {self.waiting()}")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)

    def to_html(self) -> str:
        """The table as an HTML fragment (what Jupyter shows)."""
        esc = html.escape
        head = "".join(f"<th style='text-align:left'>{esc(h)}</th>" for h in self.header())
        body = []
        for row in self.rows():
            cells = []
            for text, status in row:
                colour = _COLOURS.get(status)
                style = f" style='background:{colour}'" if colour else ""
                cells.append(f"<td{style}>{esc(text)}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        note = f"<br><i>{esc(self.note)}</i>" if self.note else ""
        return (f"<table class='pbxis-board'><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>"
                f"<p>waiting callers: {esc(self.waiting())}{note}</p>")

    def _repr_html_(self) -> str:
        return self.to_html()

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"<Board agents={self.agents} queues={self.queues}>"


class Wallboard:
    """A Board that follows a live Pbx; in Jupyter it redraws itself in place.

    Opens one event channel for ``agents`` x ``queues`` (both default to
    everything ``QueueStatus`` lists) and folds its events into ``board`` on
    a daemon thread named ``pbxis-wallboard``. Displaying the Wallboard in
    Jupyter (the last expression of a cell, or ``display(wb)``) shows the
    table and keeps that output updated, at most every ``interval``
    seconds. The display code runs on the wallboard thread, never on the
    pbxis reader.

    Args:
        pbx: a connected ``pbxis.Pbx``.
        agents, queues: the rows and queue columns.
        interval: seconds between redraws while events arrive.
    """

    def __init__(self, pbx: Pbx, agents: Iterable[str] = (), queues: Iterable[str] = (),
                 *, interval: float = 0.5) -> None:
        agent_list, queue_list = discover(pbx, agents, queues)
        self.board = Board(agent_list, queue_list)
        self.interval = interval
        self._changed = threading.Condition()
        self._handles: List[Any] = []
        self._channel = pbx.event_channel(agents=agent_list, queues=queue_list)
        self._thread = threading.Thread(target=self._run, name="pbxis-wallboard", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        dirty = False
        last = 0.0
        while True:
            try:
                ev: Optional[Event] = self._channel.get(timeout=self.interval)
            except queue.Empty:
                ev = None
            if ev is not None:
                if ev.type == "closed":
                    break
                with self._changed:
                    self.board.apply(ev)
                    self._changed.notify_all()
                dirty = True
            if dirty and time.monotonic() - last >= self.interval:
                self._redraw()
                dirty, last = False, time.monotonic()
        self._redraw()
        with self._changed:
            self._changed.notify_all()

    def _bundle(self) -> Dict[str, str]:
        with self._changed:
            return {"text/html": self.board.to_html(), "text/plain": self.board.render()}

    def _redraw(self) -> None:
        if not self._handles:
            return
        bundle = self._bundle()
        for handle in list(self._handles):
            handle.update(bundle, raw=True)

    def _ipython_display_(self) -> None:
        # Only ever called by IPython, so it is importable; looked up at run
        # time because pbxis does not depend on it.
        display = importlib.import_module("IPython.display").display
        handle = display(self._bundle(), raw=True, display_id=True)
        if handle is not None:
            self._handles.append(handle)

    def _repr_html_(self) -> str:
        return self._bundle()["text/html"]

    def wait_until(self, predicate: Callable[[Board], bool], timeout: float) -> bool:
        """Block until ``predicate(board)`` holds (checked at every event).

        Returns False when ``timeout`` seconds pass first, or the wallboard
        closes first.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.board):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._changed.wait(remaining)
            return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop following the Pbx (its channel closes); the table stays as it is."""
        self._channel.close()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __enter__(self) -> Wallboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __str__(self) -> str:
        return self._bundle()["text/plain"]

    def __repr__(self) -> str:
        return f"<Wallboard agents={self.board.agents} queues={self.board.queues}>"
