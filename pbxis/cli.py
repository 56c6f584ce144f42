"""The ``pbxis`` command: watch, status, originate, queue, demo (layer 5).

Connection from ``--url ami://user:secret@host:port`` or ``$PBXIS_URL``; the
secret is never printed. Errors are one line on stderr and a non-zero exit.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import time
from typing import Dict, List, Optional, Sequence, TextIO

from . import __version__
from .client import Pbx, connect
from .errors import PBXISError
from .events import Event

__all__ = ["main", "Board"]

_STATUS_TEXT = {
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


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


class Board:
    """The watch table's state, built from pbxis events (no I/O)."""

    def __init__(self, agents: Sequence[str], queues: Sequence[str]) -> None:
        self.agents = list(agents)
        self.queues = list(queues)
        self.names: Dict[str, str] = {}
        self.extension: Dict[str, str] = {}
        self.member: Dict[tuple[str, str], str] = {}
        self.number: Dict[str, str] = {}
        self.count: Dict[str, int] = {}
        self.completed: Dict[str, int] = {}
        self.note = ""

    def apply(self, ev: Event) -> None:
        """Fold one event into the table."""
        t = ev.type
        if t == "agentName" and ev.agent:
            self.names[ev.agent] = ev["name"] or ""
        elif t == "extensionStatus" and ev.agent:
            self.extension[ev.agent] = ev["status"]
        elif t == "queueMemberStatus" and ev.agent and ev.queue:
            status = ev["status"]
            if status == "paused" and ev.get("reason"):
                status = f"paused:{ev['reason']}"
            self.member[(ev.agent, ev.queue)] = status
        elif t == "phoneNumber" and ev.agent:
            number = ev.get("number")
            if number is None:
                self.number.pop(ev.agent, None)
            else:
                via = f" ({ev.queue})" if ev.queue else ""
                name = ev.get("name")
                shown = f" {name}" if name and name != number else ""
                self.number[ev.agent] = f"{number}{shown}{via}"
        elif t == "queueCount" and ev.queue:
            self.count[ev.queue] = ev["count"]
        elif t == "agentComplete" and ev.agent:
            self.completed[ev.agent] = self.completed.get(ev.agent, 0) + 1
        elif t in ("connectionLost", "connectionRestored", "eventsDropped"):
            self.note = f"{time.strftime('%H:%M:%S')} {t}"

    def render(self) -> str:
        """The table as text."""
        head = ["agent", "name", "phone", "caller"] + self.queues + ["done"]
        rows = [head]
        for agent in self.agents:
            row = [
                agent,
                self.names.get(agent, ""),
                _STATUS_TEXT.get(self.extension.get(agent, ""), self.extension.get(agent, "")),
                self.number.get(agent, ""),
            ]
            for q in self.queues:
                status = self.member.get((agent, q), "")
                row.append(_STATUS_TEXT.get(status, status))
            row.append(str(self.completed.get(agent, 0)))
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        waiting = ", ".join(f"{q}: {self.count.get(q, 0)}" for q in self.queues)
        lines.append("")
        lines.append(f"waiting callers  {waiting}")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def _discover(pbx: Pbx, agents: List[str], queues: List[str]) -> tuple[List[str], List[str]]:
    if agents and queues:
        return agents, queues
    status = pbx.queue_status()
    if not queues:
        queues = sorted(q["queue"] for q in status)
    if not agents:
        found = {m["agent"] for q in status if q["queue"] in queues for m in q["members"]
                 if m["agent"]}
        agents = sorted(found)
    return agents, queues


def _watch(pbx: Pbx, agents: List[str], queues: List[str], as_json: bool,
           seconds: Optional[float], out: TextIO) -> int:
    agents, queues = _discover(pbx, agents, queues)
    board = Board(agents, queues)
    live = not as_json and out.isatty()
    deadline = None if seconds is None else time.monotonic() + seconds
    last_draw = 0.0
    dirty = True
    with pbx.event_channel(agents=agents, queues=queues) as channel:
        while True:
            timeout = 0.2
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    break
            try:
                ev = channel.get(timeout=timeout)
            except queue.Empty:
                ev = None
            if ev is not None:
                if ev.type == "closed":
                    break
                if as_json:
                    out.write(json.dumps(ev.to_dict()) + "\n")
                    out.flush()
                    continue
                board.apply(ev)
                dirty = True
            now = time.monotonic()
            if not as_json and dirty and (now - last_draw > 0.1 or not live):
                if live:
                    out.write("\x1b[H\x1b[2J" + board.render() + "\n")
                    out.flush()
                    dirty = False
                    last_draw = now
        if not as_json and not live:
            out.write(board.render() + "\n")
    return 0


def _status(pbx: Pbx, queue_name: Optional[str], as_json: bool, out: TextIO) -> int:
    status = pbx.queue_status(queue_name)
    if as_json:
        out.write(json.dumps(status, indent=2) + "\n")
        return 0
    for q in status:
        out.write(f"{q['queue']}: {len(q['entries'])} waiting, {q.get('completed')} completed, "
                  f"{q.get('abandoned')} abandoned\n")
        for m in q["members"]:
            paused = f" paused ({m['pausedReason'] or 'no reason'})" if m["paused"] else ""
            out.write(f"  {m['agent'] or m['location']:<8} {m['name'] or '':<16} "
                      f"{m['status']}{paused}\n")
        for e in q["entries"]:
            out.write(f"  caller {e['callerIdNum']} waiting {e['wait']} s\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pbxis", description="Asterisk call-center state over AMI.")
    p.add_argument("--version", action="version", version=f"pbxis {__version__}")
    p.add_argument("--url", default=os.environ.get("PBXIS_URL"),
                   help="ami://user:secret@host:port (default: $PBXIS_URL)")
    p.add_argument("--prefix", default="PJSIP/", help="agent location prefix (default PJSIP/)")
    sub = p.add_subparsers(dest="command", required=True)

    def scope_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--agents", default="", help="comma-separated agents (default: all)")
        sp.add_argument("--queues", default="", help="comma-separated queues (default: all)")
        sp.add_argument("--json", action="store_true", help="print events as JSON lines")
        sp.add_argument("--seconds", type=float, default=None, help="stop after N seconds")

    scope_args(sub.add_parser("watch", help="live table of agents and queues"))
    sp = sub.add_parser("status", help="queue status once")
    sp.add_argument("--queue", default=None)
    sp.add_argument("--json", action="store_true")
    sp = sub.add_parser("originate", help="ring an agent, then dial a number")
    sp.add_argument("agent")
    sp.add_argument("phone")
    sp.add_argument("--caller-id", default=None)
    sp = sub.add_parser("queue", help="log an agent on/off a queue, pause, unpause")
    sp.add_argument("action", choices=["add", "remove", "pause", "unpause"])
    sp.add_argument("agent")
    sp.add_argument("queue")
    sp.add_argument("--name", default=None, help="member name (add)")
    sp.add_argument("--reason", default=None, help="pause reason")
    sp = sub.add_parser("demo", help="watch a simulated call center (no Asterisk needed)")
    scope_args(sp)
    sp.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    return p


def main(argv: Optional[List[str]] = None, out: Optional[TextIO] = None) -> int:
    """Run the ``pbxis`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    out = out or sys.stdout
    server = None
    try:
        url = args.url
        if args.command == "demo":
            from .sim import serve

            server = serve(port=0, scenario_name="busy", speed=args.speed)
            url = server.url()
        if not url:
            sys.stderr.write("pbxis: no AMI URL: pass --url ami://user:secret@host:port "
                             "or set PBXIS_URL (or try: pbxis demo)\n")
            return 2
        with connect(url, location_prefix=args.prefix) as pbx:
            if args.command in ("watch", "demo"):
                agents = [a for a in args.agents.split(",") if a]
                queues = [q for q in args.queues.split(",") if q]
                return _watch(pbx, agents, queues, args.json, args.seconds, out)
            if args.command == "status":
                return _status(pbx, args.queue, args.json, out)
            if args.command == "originate":
                action_id = pbx.originate_call(args.agent, args.phone, caller_id=args.caller_id)
                out.write(f"originate sent: {action_id}\n")
                return 0
            paused = {"pause": True, "unpause": False}.get(args.action)
            pbx.queue_action(args.action, agent=args.agent, queue=args.queue,
                             member_name=args.name, paused=paused, reason=args.reason)
            out.write(f"{args.action} {args.agent} {args.queue}: ok\n")
            return 0
    except KeyboardInterrupt:
        return 130
    except (PBXISError, ValueError, OSError) as exc:
        where = f" ({_redact(args.url)})" if args.url else ""
        sys.stderr.write(f"pbxis: {exc}{where}\n")
        return 1
    finally:
        if server is not None:
            server.stop()


