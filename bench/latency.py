"""End-to-end latency: server write -> parse -> digest -> channel -> ``get()``.

Usage (see bench/README.md)::

    bench/.venv/bin/python bench/latency.py [FILE] [--rate 2000] [--seconds 5]
                                            [--marker-every 10] [--channels 1,100]

The scripted server (``bench/amiserver.py``, a child process) paces the busy
transcript (k-busy, from its start) at ``--rate`` events/s. Every
``--marker-every``-th slot carries a marker instead: an ``AgentComplete`` of
agent 1001 whose Uniqueid holds ``time.monotonic_ns() // 1000`` read just
before the server writes it. pbxis digests a marker into an ``agentComplete``
event (discrete: never conflated, no state touched); each consumer thread
loops on ``ch.get()`` and, when ``get()`` returns a marker, records now minus
the embedded time. CLOCK_MONOTONIC is system-wide, so the two processes'
clocks agree. Every channel subscribes to agents 1001-1003 and queues
sales/support, so every event goes to every channel (the worst case).
Reports p50/p90/p99/max over all (channel, marker) pairs; every marker must
reach every channel.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import threading
import time
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from amiserver import (  # noqa: E402
    AGENTS,
    DEFAULT_FILE,
    MARKER_PREFIX,
    QUEUES,
    SENTINEL_COUNT,
    SENTINEL_QUEUE,
    ServerProcess,
)

import pbxis  # noqa: E402

TIMEOUT = 60.0


def percentile(sorted_values: List[int], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(round(p / 100 * len(sorted_values) + 0.5))))
    return float(sorted_values[rank - 1])


def run(server: ServerProcess, channels: int, rate: float, slots: int, every: int) -> dict:
    pbx = pbxis.connect(
        "127.0.0.1", "bench", "bench", port=server.port, reconnect=False, server_filter=False
    )
    try:
        chans = [pbx.event_channel(agents=AGENTS, queues=QUEUES) for _ in range(channels)]
        pbx.send_action("Ping")  # every subscribe query answered and applied
        for ch in chans:  # drop the introductory events
            while True:
                try:
                    ch.get_nowait()
                except Exception:
                    break
        samples: List[List[int]] = [[] for _ in range(channels)]
        prefix = MARKER_PREFIX + "."

        def consume(i: int) -> None:
            get = chans[i].get
            out = samples[i]
            while True:
                ev = get(timeout=TIMEOUT)
                if ev.type == "agentComplete":
                    uid = ev.get("uniqueId") or ""
                    if uid.startswith(prefix):
                        now_us = time.monotonic_ns() // 1000
                        out.append(now_us - int(uid.rpartition(".")[2]))
                elif (
                    ev.type == "queueCount"
                    and ev.queue == SENTINEL_QUEUE
                    and ev.get("count") == SENTINEL_COUNT
                ):
                    return

        threads = [
            threading.Thread(target=consume, args=(i,), name=f"bench-consumer-{i}", daemon=True)
            for i in range(channels)
        ]
        for t in threads:
            t.start()
        server.command(f"pace {rate:g} {slots} {every}")
        for t in threads:
            t.join(slots / rate + TIMEOUT)
        words = server.reply()  # paced t0 t1 events markers late_ns_max
        markers, late_ns = int(words[4]), int(words[5])
        alive = sum(t.is_alive() for t in threads)
        seen = [len(s) for s in samples]
        values = sorted(v for s in samples for v in s)
        return {
            "channels": channels,
            "markers": markers,
            "seen_min": min(seen),
            "seen_max": max(seen),
            "stuck": alive,
            "p50": percentile(values, 50) / 1000,
            "p90": percentile(values, 90) / 1000,
            "p99": percentile(values, 99) / 1000,
            "max": (values[-1] / 1000) if values else float("nan"),
            "late_ms": late_ns / 1e6,
            "seconds": (int(words[2]) - int(words[1])) / 1e9,
        }
    finally:
        pbx.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", nargs="?", default=os.environ.get("PBXIS_BENCH_FILE", DEFAULT_FILE))
    parser.add_argument("--rate", type=float, default=2000.0, help="events/s (markers included)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--marker-every", type=int, default=10)
    parser.add_argument("--channels", default="1,100")
    args = parser.parse_args()
    slots = int(args.rate * args.seconds)
    with ServerProcess(args.file) as server:
        print(
            f"file: {os.path.abspath(args.file)}; {args.rate:g} events/s for {args.seconds:g} s, "
            f"every {args.marker_every}th a marker\n"
            f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        print(
            f"\n{'channels':>8} {'markers':>8} {'seen/channel':>13} {'p50 ms':>7} "
            f"{'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} {'pacing lag max ms':>18}"
        )
        for n in [int(x) for x in args.channels.split(",") if x]:
            gc.collect()
            r = run(server, n, args.rate, slots, args.marker_every)
            seen = str(r["seen_min"])
            if r["seen_max"] != r["seen_min"]:
                seen += f"-{r['seen_max']}"
            print(
                f"{n:>8} {r['markers']:>8} {seen:>13} {r['p50']:7.2f} {r['p90']:7.2f} "
                f"{r['p99']:7.2f} {r['max']:7.2f} {r['late_ms']:18.2f}"
                + (f"  ({r['stuck']} consumers never saw the end)" if r["stuck"] else ""),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
