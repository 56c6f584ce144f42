"""End-to-end throughput: socket -> parse -> digest -> channels -> consumers.

Usage (see bench/README.md)::

    bench/.venv/bin/python bench/e2e.py [FILE] [--repeat N] [--channels 1,100,1000]
                                        [--peers asterisk-ami,panoramisk,pyst2]

A scripted AMI server (``bench/amiserver.py``, a child process) answers the
login and pbxis's subscribe queries, then streams the unfiltered busy
transcript (k-busy: 30,245 events, greeting and recorded responses removed)
plus one end sentinel as fast as the socket takes it. Timing runs from the
server's first byte (``time.monotonic_ns()`` in the server process; CLOCK_MONOTONIC
is system-wide) to the moment the last consumer has the sentinel:

* pbxis, for 1, 100 and 1,000 channels, each subscribed to every agent and
  queue of the transcript (1001-1003, sales, support: every event fans out to
  every channel). One consumer thread per channel loops on ``ch.get()`` and
  stops at the digested sentinel, ``queueCount(sales, count=99999)``.
* the peers, through their own client classes on the same server in the
  same run: asterisk-ami (``AMIClient``, an event listener; its default
  ``buffer_size=1024`` and a 64 KiB variant), panoramisk (``Manager`` on an
  asyncio loop thread, ``register_event("*")``) and pyst2 (``Manager``,
  ``register_event("*")``, as shipped: its unbuffered socket file reads one
  byte per ``recv``). Each callback receives every raw event and stops at the
  sentinel ``QueueCallerJoin`` with ``Count: 99999``.

frames/s = streamed frames (30,246) / time. Contenders run round-robin, best
of ``--repeat``; "vs fastest peer" = this row's frames/s / the best peer row's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import threading
import time
import warnings
from typing import Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from amiserver import (  # noqa: E402
    AGENTS,
    DEFAULT_FILE,
    QUEUES,
    SENTINEL_COUNT,
    SENTINEL_QUEUE,
    ServerProcess,
)

import pbxis  # noqa: E402

TIMEOUT = 120.0  # seconds a single run may take before it counts as failed


class Result:
    def __init__(self, seconds: float, frames: int, note: str = "") -> None:
        self.seconds = seconds
        self.frames = frames
        self.note = note

    @property
    def rate(self) -> float:
        return self.frames / self.seconds


def _finish(server: ServerProcess, t_end_ns: Optional[int]) -> Tuple[int, int]:
    words = server.reply()  # "streamed t0 t1 frames"
    if t_end_ns is None:
        raise RuntimeError("the sentinel never arrived")
    return int(words[1]), int(words[3])


# --- pbxis -------------------------------------------------------------------------


def run_pbxis(server: ServerProcess, channels: int) -> Result:
    pbx = pbxis.connect(
        "127.0.0.1", "bench", "bench", port=server.port, reconnect=False, server_filter=False
    )
    try:
        chans = [pbx.event_channel(agents=AGENTS, queues=QUEUES) for _ in range(channels)]
        # Responses come in order: once Ping is answered, every subscribe
        # query has been answered and applied.
        pbx.send_action("Ping")
        # Drain the introductory events before the clock starts.
        for ch in chans:
            while True:
                try:
                    ch.get_nowait()
                except Exception:
                    break
        ends: List[int] = [0] * channels
        counts: List[int] = [0] * channels
        failures: List[BaseException] = []

        def consume(i: int) -> None:
            get = chans[i].get
            n = 0
            try:
                while True:
                    ev = get(timeout=TIMEOUT)
                    n += 1
                    if (
                        ev.type == "queueCount"
                        and ev.queue == SENTINEL_QUEUE
                        and ev.get("count") == SENTINEL_COUNT
                    ):
                        ends[i] = time.monotonic_ns()
                        counts[i] = n
                        return
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)

        threads = [
            threading.Thread(target=consume, args=(i,), name=f"bench-consumer-{i}", daemon=True)
            for i in range(channels)
        ]
        for t in threads:
            t.start()
        server.command("stream")
        for t in threads:
            t.join(TIMEOUT)
        t0, frames = _finish(server, max(ends) if all(ends) and not failures else None)
        note = (
            f"{min(counts)}-{max(counts)} events/channel"
            if channels > 1
            else (f"{counts[0]} events")
        )
        return Result((max(ends) - t0) / 1e9, frames, note)
    finally:
        pbx.close()


# --- peers ---------------------------------------------------------------------------


def _is_sentinel(name: object, count: object) -> bool:
    return name == "QueueCallerJoin" and count == str(SENTINEL_COUNT)


def run_asterisk_ami(server: ServerProcess, buffer_size: int = 1024) -> Result:
    from asterisk.ami import AMIClient

    done = threading.Event()
    end = [0]
    seen = [0]

    def on_event(event: object, source: object) -> None:
        seen[0] += 1
        if _is_sentinel(event.name, event.keys.get("Count")):  # type: ignore[attr-defined]
            end[0] = time.monotonic_ns()
            done.set()

    client = AMIClient(address="127.0.0.1", port=server.port, buffer_size=buffer_size)
    client.add_event_listener(on_event)
    response = client.login(username="bench", secret="bench").response
    if response is None or response.is_error():
        raise RuntimeError(f"asterisk-ami login failed: {response}")
    try:
        server.command("stream")
        done.wait(TIMEOUT)
        t0, frames = _finish(server, end[0] or None)
        return Result((end[0] - t0) / 1e9, frames, f"{seen[0]} events")
    finally:
        client.disconnect()


def run_panoramisk(server: ServerProcess) -> Result:
    from panoramisk import Manager

    loop = asyncio.new_event_loop()
    logged_in = threading.Event()
    done = threading.Event()
    end = [0]
    seen = [0]

    def on_event(manager: object, event: object) -> None:
        seen[0] += 1
        if event.get("Event") == "QueueCallerJoin" and _is_sentinel(  # type: ignore[attr-defined]
            "QueueCallerJoin",
            event.get("Count"),  # type: ignore[attr-defined]
        ):
            end[0] = time.monotonic_ns()
            done.set()

    manager = Manager(
        loop=loop,
        host="127.0.0.1",
        port=server.port,
        username="bench",
        secret="bench",
        ping_delay=3600,
        on_login=lambda m: logged_in.set(),
    )
    manager.register_event("*", on_event)
    thread = threading.Thread(target=loop.run_forever, name="bench-panoramisk", daemon=True)

    def start() -> None:
        manager.connect()

    loop.call_soon(start)
    thread.start()
    try:
        if not logged_in.wait(10):
            raise RuntimeError("panoramisk did not log in")
        server.command("stream")
        done.wait(TIMEOUT)
        t0, frames = _finish(server, end[0] or None)
        return Result((end[0] - t0) / 1e9, frames, f"{seen[0]} events")
    finally:
        manager.reconnect_timeout = 3600

        def stop() -> None:
            manager.close()
            loop.stop()

        loop.call_soon_threadsafe(stop)
        thread.join(5)
        loop.close()


def run_pyst2(server: ServerProcess) -> Result:
    import asterisk.manager

    done = threading.Event()
    end = [0]
    seen = [0]

    def on_event(event: object, manager: object) -> None:
        seen[0] += 1
        if _is_sentinel(event.name, event.headers.get("Count")):  # type: ignore[attr-defined]
            end[0] = time.monotonic_ns()
            done.set()

    with warnings.catch_warnings():
        # As shipped it calls the deprecated setDaemon/isSet; the warnings are
        # filtered (not printed) but still raised, as in any user's process.
        warnings.simplefilter("ignore", DeprecationWarning)
        m = asterisk.manager.Manager()
        m.connect("127.0.0.1", server.port)
        m.login("bench", "bench")
        m.register_event("*", on_event)
        try:
            server.command("stream")
            done.wait(TIMEOUT)
            t0, frames = _finish(server, end[0] or None)
            return Result((end[0] - t0) / 1e9, frames, f"{seen[0]} events")
        finally:

            def close() -> None:
                try:
                    m.close()
                except Exception:  # its reader may have closed the file first
                    pass

            closer = threading.Thread(target=close, daemon=True)
            closer.start()
            closer.join(5)


# --- main ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", nargs="?", default=os.environ.get("PBXIS_BENCH_FILE", DEFAULT_FILE))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--channels", default="1,100,1000")
    parser.add_argument("--peers", default="asterisk-ami,asterisk-ami-64k,panoramisk,pyst2")
    parser.add_argument(
        "--recv-size",
        type=int,
        default=0,
        help="experiment: patch pbxis.transport._RECV_SIZE (bytes per recv) for this run",
    )
    args = parser.parse_args()
    if args.recv_size:
        import pbxis.transport

        pbxis.transport._RECV_SIZE = args.recv_size  # type: ignore[attr-defined]

    contenders: List[Tuple[str, bool, Callable[[ServerProcess], Result]]] = []
    for n in [int(x) for x in args.channels.split(",") if x]:
        label = f"pbxis, {n:,} channel{'s' if n != 1 else ''}"
        contenders.append((label, False, lambda s, n=n: run_pbxis(s, n)))
    peers: Dict[str, Tuple[str, Callable[[ServerProcess], Result]]] = {
        "asterisk-ami": ("asterisk-ami 0.1.7", lambda s: run_asterisk_ami(s, 1024)),
        "asterisk-ami-64k": (
            "asterisk-ami 0.1.7, 64 KiB",
            lambda s: run_asterisk_ami(s, 65536),
        ),
        "panoramisk": ("panoramisk 1.4", run_panoramisk),
        "pyst2": ("pyst2 0.5.1", run_pyst2),
    }
    for name in [x for x in args.peers.split(",") if x]:
        try:
            if name.startswith("asterisk-ami"):
                import asterisk.ami  # noqa: F401
            elif name == "panoramisk":
                import panoramisk  # noqa: F401
            elif name == "pyst2":
                import asterisk.manager  # noqa: F401
        except ImportError:
            print(f"{name}: not installed (see bench/README.md)", file=sys.stderr)
            continue
        label, fn = peers[name]
        contenders.append((label, True, fn))

    results: Dict[str, List[Result]] = {label: [] for label, _, _ in contenders}
    with ServerProcess(args.file) as server:
        print(
            f"file: {os.path.abspath(args.file)} ({server.events} events + 1 sentinel)\n"
            f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f}; best of {args.repeat}, round-robin"
            + (f"; pbxis recv size patched to {args.recv_size}" if args.recv_size else ""),
            flush=True,
        )
        for _ in range(args.repeat):
            for label, _, fn in contenders:
                gc.collect()
                try:
                    results[label].append(fn(server))
                except Exception as exc:
                    print(f"{label}: failed: {exc!r}", file=sys.stderr, flush=True)
    best = {label: max(rs, key=lambda r: r.rate) for label, rs in results.items() if rs}
    peer_rates = [best[label].rate for label, is_peer, _ in contenders if is_peer and label in best]
    fastest = max(peer_rates) if peer_rates else None
    print()
    print(
        f"{'contender':30} {'best s':>7} {'frames/s':>10} {'median/s':>10} "
        f"{'vs fastest peer':>15}  delivered"
    )
    for label, _, _ in contenders:
        if label not in best:
            print(f"{label:30} {'failed':>7}")
            continue
        r = best[label]
        median = statistics.median(x.rate for x in results[label])
        ratio = f"{r.rate / fastest:.2f}x" if fastest else "-"
        print(f"{label:30} {r.seconds:7.3f} {r.rate:10,.0f} {median:10,.0f} {ratio:>15}  {r.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
