"""Print one agent's pbxis events as they happen.

    python examples/agent_events.py AGENT [URL]

URL is ``ami://user:secret@host:port`` (default: ``$PBXIS_URL``). Without a
PBX, start the simulated one in another terminal and use its URL:

    python -m pbxis.sim --port 5038
    python examples/agent_events.py 1001 ami://pbxis:pbxis-secret@127.0.0.1:5038

Ctrl-C stops.
"""
from __future__ import annotations

import os
import sys
import time

import pbxis


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    agent = argv[0]
    url = argv[1] if len(argv) == 2 else os.environ.get("PBXIS_URL")
    if not url:
        print("no URL: pass one, or set PBXIS_URL", file=sys.stderr)
        return 2
    try:
        pbx = pbxis.connect(url)
    except (pbxis.PBXISError, ValueError) as exc:
        print(f"cannot connect: {exc}", file=sys.stderr)
        return 1
    # A channel receives an event only if it lists the event's agent and
    # queue, so list the agent's queues too (for queueMemberStatus and the
    # phoneNumber of queue calls); their queueCount events are skipped below.
    with pbx:
        queues = [q["queue"] for q in pbx.queue_status()
                  if any(m["agent"] == agent for m in q["members"])]
        events = pbx.event_channel(agents=[agent], queues=queues)
        # The first events describe the agent as it is now (name, phone and
        # queue statuses); then every change follows, until Ctrl-C.
        try:
            for ev in events:
                if ev.agent != agent:
                    continue
                details = {k: v for k, v in ev.to_dict().items() if k not in ("type", "agent")}
                print(time.strftime("%H:%M:%S"), ev.type,
                      " ".join(f"{k}={v}" for k, v in details.items()), flush=True)
        except KeyboardInterrupt:
            pass
        events.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
