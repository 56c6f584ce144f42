"""``manage.py pbxis_watch``: follow agents and queues with pbxis.

    PBXIS_URL=ami://user:secret@host:5038 python manage.py pbxis_watch --agents 1001,1002

One line per event. A real site would do more in ``on_event``: save
completed calls, or push agent states to browsers (e.g. through Django
Channels' channel layer). ``on_event`` runs on this command's thread, one
event at a time; pbxis' own socket thread is never blocked by it.
"""
from __future__ import annotations

import json
import queue
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

import pbxis


class Command(BaseCommand):
    help = "Print pbxis agent and queue events (Ctrl-C stops)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default=None,
                            help="ami://user:secret@host:port (default: settings.PBXIS_URL)")
        parser.add_argument("--agents", default="",
                            help="comma-separated agents (default: every queue member)")
        parser.add_argument("--queues", default="",
                            help="comma-separated queues (default: all)")
        parser.add_argument("--seconds", type=float, default=None,
                            help="stop after this many seconds")
        parser.add_argument("--json", action="store_true", help="JSON lines")

    def handle(self, *args: Any, **options: Any) -> None:
        url = options["url"] or settings.PBXIS_URL
        if not url:
            raise CommandError("no AMI URL: set PBXIS_URL or pass --url")
        agents = [a for a in options["agents"].split(",") if a]
        queues = [q for q in options["queues"].split(",") if q]
        try:
            pbx = pbxis.connect(url)
        except (pbxis.PBXISError, ValueError) as exc:
            raise CommandError(f"cannot connect to Asterisk: {exc}") from exc
        self.as_json = options["json"]
        if not agents or not queues:
            # A channel gets the events of the agents and queues it lists, so
            # "everything" means: every queue, and every member of those.
            status = pbx.queue_status()
            queues = queues or [q["queue"] for q in status]
            agents = agents or sorted({m["agent"] for q in status if q["queue"] in queues
                                       for m in q["members"] if m["agent"]})
        deadline = None if options["seconds"] is None else time.monotonic() + options["seconds"]
        with pbx, pbx.event_channel(agents=agents, queues=queues) as events:
            try:
                while deadline is None or time.monotonic() < deadline:
                    wait = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
                    try:
                        ev = events.get(timeout=wait)
                    except queue.Empty:
                        continue
                    if ev.type == "closed":
                        break
                    self.on_event(ev)
            except KeyboardInterrupt:
                pass

    def on_event(self, ev: pbxis.Event) -> None:
        """Handle one event (override to store or forward it)."""
        if self.as_json:
            self.stdout.write(json.dumps(ev.to_dict()))
            return
        scope = " ".join(x for x in (ev.agent, ev.queue) if x)
        details = {k: v for k, v in ev.to_dict().items() if k not in ("type", "agent", "queue")}
        self.stdout.write(f"{ev.type:<18} {scope:<14} "
                          + " ".join(f"{k}={v}" for k, v in details.items()))
