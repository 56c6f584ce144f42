"""Restore cost after a reconnect: pbxis against the original pbxis's approach.

Usage (see bench/README.md)::

    .venv/bin/python bench/restore.py [--agents 100,1000,3000] [--queues 50] [--repeat 3]

On ``pbxis.sim`` (a simulated Asterisk 22 on a loopback socket, no traffic,
clock frozen) with A agents in Q queues, each agent a member of two queues:

* **pbxis**: one client tracks every agent and queue (one channel), the
  simulator drops the connection, pbxis reconnects and restores. Measured
  from the drop to ``connectionRestored`` on the channel: the actions sent
  on the new connection besides Login and Filter (the round trips, all
  pipelined), bytes received and sent by the link (login and filter
  included), and the time.
* **original**: the original pbxis restored (and introduced) an agent with
  one query per agent on top of one ``QueueStatus`` per queue. Emulated
  with raw actions on a fresh login to the same simulator: ``QueueStatus
  Queue=<q>`` per queue, then ``ExtensionState Exten=<agent>
  Context=default`` per agent, all pipelined (the most favourable way to
  send them), then the same again one at a time (send, wait, send...).

Prints one row per (approach, agents). Best (shortest) time of --repeat.
"""
from __future__ import annotations

import argparse
import os
import queue
import socket
import sys
import time
from functools import partial
from typing import Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import pbxis  # noqa: E402
from pbxis.events import CONNECTION_RESTORED  # noqa: E402
from pbxis.protocol import Message, Parser, encode_action  # noqa: E402
from pbxis.sim import SimServer, SimulatedPbx  # noqa: E402

SESSION = {"Login", "Filter", "Events", "Ping"}


def wait_for(ch, kind: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {kind} within {timeout} s")
        try:
            if ch.get(timeout=left).type == kind:
                return
        except queue.Empty:
            continue


def measure_pbxis(server: SimServer, agents: List[str], queues: List[str]) -> Dict[str, float]:
    with pbxis.connect(server.url(), keepalive=0, reconnect_base=0.001,
                       reconnect_cap=0.001, action_timeout=60) as pbx:
        ch = pbx.event_channel(agents=agents, queues=queues, maxsize=1_000_000)
        pbx.send_action("Ping")
        pbx.send_action("Ping")  # every introduction query answered
        link = pbx._link
        received, sent = link.bytes_received, link.bytes_sent
        started = time.perf_counter()
        server.drop_all()
        wait_for(ch, CONNECTION_RESTORED)
        elapsed = time.perf_counter() - started
        received, sent = link.bytes_received - received, link.bytes_sent - sent
        connection = max(a.connection for a in server.actions)
        actions = [a.name for a in server.actions
                   if a.connection == connection and a.name not in SESSION]
    return {"round trips": len(actions), "received": received, "sent": sent,
            "seconds": elapsed, "what": ", ".join(sorted(set(actions)))}


class RawClient:
    """A minimal AMI client: login, pipelined actions, wait for completions."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.parser = Parser(wanted=frozenset())  # unsolicited events: skip
        self.received = self.sent = 0
        self._n = 0
        self.request([("Login", [("Username", "pbxis"), ("Secret", "pbxis-secret"),
                                 ("Events", "off")])])
        self.received = self.sent = 0

    def request(self, actions: List[Tuple[str, list]]) -> None:
        """Send every action at once; return when each one completed."""
        waiting = set()
        data = []
        for name, headers in actions:
            self._n += 1
            aid = f"orig-{self._n}"
            waiting.add(aid)
            data.append(encode_action(name, aid, headers))
        payload = b"".join(data)
        self.sock.sendall(payload)
        self.sent += len(payload)
        lists: Dict[str, bool] = {}
        while waiting:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("simulator closed the connection")
            self.received += len(chunk)
            for frame in self.parser.feed(chunk):
                if not isinstance(frame, Message):
                    continue
                aid = frame.get("ActionID")
                if aid not in waiting:
                    continue
                marker = (frame.get("EventList") or "").lower()
                if frame.get("Response") is not None and frame.get("Event") is None:
                    if marker == "start":
                        lists[aid] = True
                    else:
                        waiting.discard(aid)
                elif marker in ("complete", "cancelled"):
                    waiting.discard(aid)

    def close(self) -> None:
        self.sock.close()


def original_actions(agents: List[str], queues: List[str]) -> List[Tuple[str, list]]:
    return ([("QueueStatus", [("Queue", q)]) for q in queues]
            + [("ExtensionState", [("Exten", a), ("Context", "default")]) for a in agents])


def measure_original(server: SimServer, agents: List[str], queues: List[str],
                     pipelined: bool) -> Dict[str, float]:
    client = RawClient(server.port)
    try:
        actions = original_actions(agents, queues)
        started = time.perf_counter()
        if pipelined:
            client.request(actions)
        else:
            for action in actions:
                client.request([action])
        elapsed = time.perf_counter() - started
        return {"round trips": len(actions), "received": client.received,
                "sent": client.sent, "seconds": elapsed, "what": "QueueStatus, ExtensionState"}
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", default="100,1000,3000")
    parser.add_argument("--queues", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    counts = [int(n) for n in args.agents.split(",")]
    print(f"pbxis.sim, {args.queues} queues, every agent in 2 queues, no traffic; "
          f"best of {args.repeat}; Python {sys.version.split()[0]}")
    print()
    header = (f"{'approach':<22}{'agents':>7}{'round trips':>13}{'bytes in':>12}"
              f"{'bytes out':>11}{'ms':>9}")
    print(header)
    for n in counts:
        sim = SimulatedPbx(agents=n, queues=args.queues, noise=False)
        agents = sorted(sim.phones)
        queues = list(sim.queues)
        with SimServer(pbx=sim, speed=0) as server:
            rows = [
                ("pbxis (bulk)", partial(measure_pbxis, server, agents, queues)),
                ("original, pipelined", partial(measure_original, server, agents, queues, True)),
                ("original, one by one",
                 partial(measure_original, server, agents, queues, False)),
            ]
            for label, run in rows:
                results = [run() for _ in range(args.repeat)]
                best = min(results, key=lambda r: r["seconds"])
                print(f"{label:<22}{n:>7}{best['round trips']:>13,}{best['received']:>12,}"
                      f"{best['sent']:>11,}{best['seconds'] * 1000:>9.1f}")
                server.actions.clear()
    print()
    print("pbxis's restore queries: QueueStatus per tracked queue, DeviceStateList, "
          "CoreShowChannels (plus QueueStatus Member= for an agent never learnt).")


if __name__ == "__main__":
    main()
