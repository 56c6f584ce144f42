"""The ``pbxis`` command: watch, status, originate, queue, demo (layer 5).

The connection comes from ``--url ami://user:secret@host:port`` or
``$PBXIS_URL``; the secret is never printed. Every error is one line on
stderr and a non-zero exit status (1: pbxis or network error, 2: usage),
never a traceback. ``demo`` runs ``watch`` on the built-in simulated PBX
(``pbxis.sim``), so it needs no Asterisk.

May import: ``pbxis.client``, ``pbxis.notebook``, ``pbxis.sim``, the stdlib.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import shutil
import sys
import time
from typing import List, Optional, TextIO
from urllib.parse import urlsplit

from . import __version__
from .client import Pbx, connect
from .errors import PBXISError
from .notebook import Board, discover

__all__ = ["main", "Board"]

#: Exit statuses.
OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130

#: Terminal control: home, clear to end of line, clear to end of screen.
_HOME, _EOL, _EOS, _CLEAR = "\x1b[H", "\x1b[K", "\x1b[J", "\x1b[2J"


def _where(url: str) -> str:
    """``ami://user@host:port``: the URL without its secret (or anything else)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        user = f"{parts.username}@" if parts.username else ""
        return f"{parts.scheme}://{user}{host}{port}"
    except ValueError:
        return "the given URL"


class _Screen:
    """Redraws a block of text in place on a terminal; prints it once otherwise."""

    def __init__(self, out: TextIO, live: bool) -> None:
        self.out = out
        self.live = live
        self._first = True

    def draw(self, text: str) -> None:
        if not self.live:
            return
        width = shutil.get_terminal_size().columns
        lines = [line[:width] for line in text.split("\n")]  # a wrapped line would scroll
        prefix = _CLEAR + _HOME if self._first else _HOME
        self._first = False
        self.out.write(prefix + "".join(line + _EOL + "\n" for line in lines) + _EOS)
        self.out.flush()

    def final(self, text: str) -> None:
        if self.live:
            self.draw(text)
        else:
            self.out.write(text + "\n")
            self.out.flush()


def _watch(pbx: Pbx, agents: List[str], queues: List[str], as_json: bool,
           seconds: Optional[float], out: TextIO, title: str) -> int:
    """Follow the agents and queues until ``seconds`` pass, Ctrl-C, or the pbx closes."""
    agents, queues = discover(pbx, agents, queues)
    board = Board(agents, queues)
    screen = _Screen(out, live=not as_json and out.isatty())
    deadline = None if seconds is None else time.monotonic() + seconds
    last_draw = 0.0
    dirty = True

    def text() -> str:
        return f"{title}  {time.strftime('%H:%M:%S')}\n\n{board.render()}"

    with pbx.event_channel(agents=agents, queues=queues) as channel:
        while True:
            timeout = 0.5
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
            # Redraw at most 10 times a second, and every second for the clock.
            if (dirty and now - last_draw >= 0.1) or now - last_draw >= 1.0:
                screen.draw(text())
                dirty, last_draw = False, now
    if not as_json:
        screen.final(text())
    return OK


def _status(pbx: Pbx, queue_name: Optional[str], as_json: bool, out: TextIO) -> int:
    status = sorted(pbx.queue_status(queue_name), key=lambda q: str(q["queue"]))
    if as_json:
        out.write(json.dumps(status, indent=2) + "\n")
        return OK
    for q in status:
        out.write(f"{q['queue']}: {len(q['entries'])} waiting, {q.get('completed')} completed, "
                  f"{q.get('abandoned')} abandoned\n")
        for m in q["members"]:
            paused = f" paused ({m['pausedReason'] or 'no reason'})" if m["paused"] else ""
            out.write(f"  {m['agent'] or m['location']:<8} {m['name'] or '':<16} "
                      f"{m['status']}{paused}\n")
        for e in q["entries"]:
            out.write(f"  caller {e['callerIdNum']} waiting {e['wait']} s\n")
    return OK


def _split(text: str) -> List[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pbxis", description="Asterisk call-center state over AMI.",
        epilog="Try it without Asterisk: pbxis demo")
    p.add_argument("--version", action="version", version=f"pbxis {__version__}")
    p.add_argument("--url", default=None,
                   help="ami://user:secret@host:port, amis:// for TLS; options as a query, "
                        "e.g. ?auth=md5 (default: $PBXIS_URL)")
    p.add_argument("--prefix", default="PJSIP/",
                   help="agent location prefix (default: PJSIP/)")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="log to stderr (-v: info, -vv: debug with AMI frames)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def watch_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--agents", default="", help="comma-separated agents (default: all "
                        "members of the queues)")
        sp.add_argument("--queues", default="", help="comma-separated queues (default: all)")
        sp.add_argument("--json", action="store_true", help="print events as JSON lines")
        sp.add_argument("--seconds", type=float, default=None,
                        help="stop after this many seconds (default: run until Ctrl-C)")

    watch_args(sub.add_parser("watch", help="live table of agents and queues (or --json events)"))
    sp = sub.add_parser("status", help="print the queues, their members and waiting callers")
    sp.add_argument("--queue", default=None, help="only this queue")
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp = sub.add_parser("originate", help="ring an agent's phone, then dial a number")
    sp.add_argument("agent")
    sp.add_argument("phone")
    sp.add_argument("--caller-id", default=None, help='e.g. \'"Sales" <1000>\'')
    sp = sub.add_parser("queue", help="log an agent on/off a queue, pause, unpause")
    sp.add_argument("action", choices=["add", "remove", "pause", "unpause"])
    sp.add_argument("agent")
    sp.add_argument("queue")
    sp.add_argument("--name", default=None, help="member name (add)")
    sp.add_argument("--reason", default=None, help="pause reason")
    sp = sub.add_parser("demo", help="watch a simulated call center (no Asterisk needed)")
    watch_args(sp)
    sp.add_argument("--speed", type=float, default=1.0,
                    help="simulated seconds per real second (default: 1)")
    sp.add_argument("--scenario", default="busy",
                    help="a pbxis.sim scenario (default: busy, random traffic)")
    return p


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The command's own stderr handler (one, however often ``main`` runs)."""


def _logging(verbose: int) -> None:
    logger = logging.getLogger("pbxis")
    for old in [h for h in logger.handlers if isinstance(h, _Handler)]:
        logger.removeHandler(old)
    handler = _Handler(sys.stderr)
    handler.setFormatter(logging.Formatter("pbxis: %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    # Quiet by default: a warning would scribble over the live table (which
    # shows connectionLost/connectionRestored itself).
    logger.setLevel({0: logging.ERROR, 1: logging.INFO}.get(verbose, logging.DEBUG))
    logger.propagate = False


def main(argv: Optional[List[str]] = None, out: Optional[TextIO] = None) -> int:
    """Run the ``pbxis`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns the exit status: 0 ok, 1 error (one line on stderr), 2 usage,
    130 interrupted. ``out`` replaces stdout (tests).
    """
    args = _parser().parse_args(argv)
    out = out or sys.stdout
    _logging(args.verbose)
    server = None
    url: Optional[str] = args.url or os.environ.get("PBXIS_URL") or None
    try:
        if args.command == "demo":
            from . import sim

            if args.scenario not in sim.scenario.names():
                sys.stderr.write(f"pbxis: unknown scenario {args.scenario!r}; known: "
                                 f"{', '.join(sim.scenario.names())}\n")
                return USAGE
            server = sim.serve(port=0, scenario_name=args.scenario, speed=args.speed)
            url = server.url()
            title = f"pbxis demo: simulated PBX, scenario {args.scenario} (Ctrl-C stops)"
        elif not url:
            sys.stderr.write("pbxis: no AMI URL: pass --url ami://user:secret@host:port "
                             "or set PBXIS_URL (or try: pbxis demo)\n")
            return USAGE
        else:
            title = f"pbxis watch {_where(url)} (Ctrl-C stops)"
        with connect(url, location_prefix=args.prefix) as pbx:
            if args.command in ("watch", "demo"):
                return _watch(pbx, _split(args.agents), _split(args.queues), args.json,
                              args.seconds, out, title)
            if args.command == "status":
                return _status(pbx, args.queue, args.json, out)
            if args.command == "originate":
                action_id = pbx.originate_call(args.agent, args.phone, caller_id=args.caller_id)
                out.write(f"originate sent: {action_id} (a failure shows in "
                          "`pbxis watch --json` as originateFailed)\n")
                return OK
            paused = {"pause": True, "unpause": False}.get(args.action)
            pbx.queue_action(args.action, agent=args.agent, queue=args.queue,
                             member_name=args.name, paused=paused, reason=args.reason)
            out.write(f"{args.action} {args.agent} {args.queue}: ok\n")
            return OK
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `pbxis watch --json | head`): stop quietly.
        if out is sys.stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return OK
    except (PBXISError, ValueError, OSError) as exc:
        where = f" ({_where(url)})" if url and args.command != "demo" else ""
        sys.stderr.write(f"pbxis: {exc}{where}\n")
        return FAILED
    finally:
        if server is not None:
            server.stop()
