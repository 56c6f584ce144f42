"""AMI bytes per queue call, with and without server-side narrowing, on real Asterisk.

Usage (as root, with the lab provisioned; see bench/README.md)::

    .venv/bin/python bench/traffic.py [--calls 20] [--talk 2] [--version 16]

Starts the lab of tests/harness (Asterisk 22 in its chroot, or the version
given by ``--version`` / PBXIS_ASTERISK_VERSION, e.g. 16; sipp phones
1001-1003 answering after 1 s) and connects three pbxis clients at once, so
that they see the very same calls:

* **Filter** -- user ``pbxis``: pbxis's default, a ``Filter`` whitelist made
  of the events the digest reads, the exclusion of ``Queue:`` pseudo devices'
  DeviceStateChange, plus the recording's VarSet only;
* **EventMask** -- user ``limited`` (no ``system`` write: Filter refused):
  the ``Events`` class mask fallback, ``agent,call,system``;
* **unfiltered** -- user ``pbxis`` with ``server_filter=False``: everything
  Asterisk sends (what pbxis receives without narrowing; its parser still
  skips what it does not read).

Each client tracks agents 1001-1003 and queues sales and support. Then N
calls, one after the other: a caller dials ``sales`` (ringall: 1001 and
1002 ring), an agent answers, they talk ``--talk`` seconds, the caller
hangs up. After each call the script waits for the ``agentComplete`` on
every client and for both phones idle, and sends two Pings on each client
(their answers come after the call's events). Counted: ``pbx._link.
bytes_received`` between the first call and the last Ping, divided by N.
Debian's Asterisk build also sends TestEvent qualify reports every 5 s per
phone to unnarrowed sessions: they are part of what such a client receives.
"""
from __future__ import annotations

import argparse
import os
import queue
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from harness import lab as lab_module  # noqa: E402

import pbxis  # noqa: E402

AGENTS = ["1001", "1002", "1003"]
QUEUES = ["sales", "support"]


def wait(ch, predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("event not received in time")
        try:
            ev = ch.get(timeout=left)
        except queue.Empty:
            continue
        if predicate(ev):
            return ev


def barrier(pbx) -> None:
    pbx.send_action("Ping")
    pbx.send_action("Ping")


def settle_idle(pbx, ch) -> None:
    """Until the ringing agents' phones are idle again in pbx's model."""
    while True:
        barrier(pbx)
        agents = pbx.snapshot()["agents"]
        if all(agents[a]["extensionStatus"] == "not_inuse" for a in ("1001", "1002")):
            return
        wait(ch, lambda e: e.type == "extensionStatus")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--talk", type=float, default=2.0)
    parser.add_argument("--version", default=os.environ.get("PBXIS_ASTERISK_VERSION", "22"),
                        help="Asterisk version of the lab (22 or 16)")
    args = parser.parse_args()
    secret = lab_module.MANAGER_USERS
    host, port = lab_module.AMI_HOST, lab_module.AMI_PORT
    with lab_module.Lab(args.version) as lab:
        lab.start(agents=AGENTS, mode="answer", answer_after=1.0)
        clients = {
            "Filter": pbxis.connect(host, "pbxis", secret["pbxis"], port=port),
            "EventMask": pbxis.connect(host, "limited", secret["limited"], port=port),
            "unfiltered": pbxis.connect(host, "pbxis", secret["pbxis"], port=port,
                                        server_filter=False),
        }
        try:
            channels = {name: pbx.event_channel(agents=AGENTS, queues=QUEUES)
                        for name, pbx in clients.items()}
            for pbx in clients.values():
                barrier(pbx)
            for name, pbx in clients.items():
                print(f"{name:<11} narrowing: {pbx._narrowing}")
            start = {name: pbx._link.bytes_received for name, pbx in clients.items()}
            skipped = {name: pbx._link.skipped for name, pbx in clients.items()}
            started = time.monotonic()
            for n in range(args.calls):
                caller = lab.call("sales", number=f"5559{n:02d}", talk=args.talk)
                for ch in channels.values():
                    wait(ch, lambda e: e.type == "agentComplete")
                caller.wait(30)
                for name, ch in channels.items():
                    settle_idle(clients[name], ch)
                for pbx in clients.values():
                    barrier(pbx)
            elapsed = time.monotonic() - started
            got = {name: pbx._link.bytes_received - start[name] for name, pbx in clients.items()}
            skips = {name: pbx._link.skipped - skipped[name] for name, pbx in clients.items()}
        finally:
            for pbx in clients.values():
                pbx.close()
    base = got["unfiltered"]
    print()
    print(f"Asterisk {args.version} lab, {args.calls} queue calls (sales, ringall 1001+1002, "
          f"answer after 1 s, talk {args.talk:g} s) in {elapsed:.0f} s")
    print()
    print(f"{'narrowing':<12}{'bytes':>12}{'bytes/call':>12}{'of unfiltered':>15}"
          f"{'skipped/call':>14}")
    for name in ("unfiltered", "EventMask", "Filter"):
        print(f"{name:<12}{got[name]:>12,}{got[name] // args.calls:>12,}"
              f"{100.0 * got[name] / base:>14.1f}%{skips[name] / args.calls:>14.1f}")


if __name__ == "__main__":
    main()
