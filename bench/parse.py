"""Parse throughput: pbxis's AMI parser against the PyPI peers, on real bytes.

Usage (see bench/README.md)::

    bench/.venv/bin/python bench/parse.py [FILE] [--repeat N] [--chunk BYTES]

FILE defaults to ``$PBXIS_BENCH_FILE`` or ``../shared/ami-transcripts/k-busy.ami``
relative to the repository root. Every contender gets the same bytes, cut
into the same ``--chunk``-sized pieces (64 KiB, what one ``recv`` returns on a
busy link), in the same process; each is timed ``--repeat`` times
(round-robin, so drift hits all alike) and the best run counts.

frames/s is always *input* frames (every message in the file, banner
included) divided by the time, so a parser that skips frames is credited for
the frames it skipped, not for the ones it returned.

Each peer is driven through its own reader code, not a re-implementation:

* pyst2 (``asterisk.manager``): ``Manager._receive_data`` (its reader thread
  body: line loop, decode, end-of-message detection) reading from a buffered
  file over the chunks, then ``ManagerMsg(lines)`` and ``Event(msg)`` for
  each message, as ``Manager.message_loop`` does. The queue between the two
  threads is replaced by a list.
* panoramisk: ``AMIProtocol.data_received(chunk)`` (decode, split, strip,
  ``Message.from_line``) with ``handle_message`` replaced by a list append.
* asterisk-ami: ``AMIClient.listen()`` (its reader thread body: the
  ``_next_pack`` generator's regex split, ``fire_recv_pack`` ->
  ``Response.read`` / ``Event.read``) over a socket stand-in whose ``recv``
  returns the chunks; a listener counts the results.
"""
from __future__ import annotations

import argparse
import gc
import io
import os
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from pbxis.protocol import Banner, Message, Parser  # noqa: E402

DEFAULT_FILE = os.path.join(ROOT, "..", "shared", "ami-transcripts", "k-busy.ami")

# The events a call-center digest acts on (used unless pbxis.digest says otherwise).
DIGEST_EVENTS = (
    "QueueMemberStatus QueueMemberAdded QueueMemberRemoved QueueMemberPause "
    "QueueMemberPenalty QueueCallerJoin QueueCallerLeave QueueCallerAbandon "
    "AgentCalled AgentConnect AgentComplete AgentRingNoAnswer AgentDump "
    "DeviceStateChange ExtensionStatus Newchannel Hangup DialBegin DialEnd "
    "BridgeEnter BridgeLeave NewConnectedLine NewCallerid OriginateResponse Newstate"
).split()

Runner = Callable[[Sequence[bytes]], int]


def wanted_events() -> tuple[list[str], str]:
    """The digest's event set and where it came from."""
    try:
        from pbxis.digest import Digest  # type: ignore[import-not-found,attr-defined]

        return sorted(Digest().handled_events), "pbxis.digest.Digest().handled_events"
    except Exception:  # absent, or not constructible without arguments
        return list(DIGEST_EVENTS), "built-in list (bench/parse.py DIGEST_EVENTS)"


# --- pbxis -----------------------------------------------------------------


def pbxis_full(chunks: Sequence[bytes]) -> int:
    # A Message splits its text into headers on first use (pbxis.protocol):
    # ask for them, so this row does the work the peers' rows do.
    parser = Parser()
    feed = parser.feed
    n = 0
    for chunk in chunks:
        for frame in feed(chunk):
            if isinstance(frame, Message):
                frame.headers  # noqa: B018 - forces the split
            n += 1
    n += len(feed(b""))
    return n


def pbxis_lazy(chunks: Sequence[bytes]) -> int:
    """Frames as the reader gets them: headers not split until asked for."""
    parser = Parser()
    feed = parser.feed
    n = 0
    for chunk in chunks:
        n += len(feed(chunk))
    n += len(feed(b""))
    return n


def make_pbxis_skip(wanted: Sequence[str]) -> Runner:
    def pbxis_skip(chunks: Sequence[bytes]) -> int:
        parser = Parser(wanted=wanted)
        feed = parser.feed
        n = 0
        for chunk in chunks:
            n += len(feed(chunk))
        n += len(feed(b""))
        return n + parser.skipped  # every input frame accounted for

    return pbxis_skip


# --- the floor ---------------------------------------------------------------


def floor_split(chunks: Sequence[bytes]) -> int:
    """No banner handling, no limits, no multi-headers: split and dict()."""
    rest = b""
    n = 0
    for chunk in chunks:
        frames = (rest + chunk).split(b"\r\n\r\n")
        rest = frames.pop()
        for frame in frames:
            d = dict(line.partition(": ")[::2] for line in frame.decode().split("\r\n"))
            n += bool(d)
    return n


# --- peers -------------------------------------------------------------------


class _ChunkRaw(io.RawIOBase):
    """A raw stream that returns the chunks one ``readinto`` at a time."""

    def __init__(self, chunks: Sequence[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[no-untyped-def,override]
        if not self._pending:
            self._pending = next(self._chunks, b"")
        n = min(len(buf), len(self._pending))
        buf[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def make_pyst2(modern_event_api: bool = False) -> Runner | None:
    try:
        from asterisk import manager as pyst2
    except ImportError:
        return None

    class _List(list):  # type: ignore[type-arg]
        put = list.append

    def pyst2_reader(chunks: Sequence[bytes]) -> int:
        is_set_alias = threading.Event.isSet
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # setDaemon, isSet
            if modern_event_api:
                # pyst2 calls Event.isSet() once per line; on Python >= 3.10 that
                # alias warns (DeprecationWarning) on every call, which is most of
                # pyst2's time. This variant measures its parsing without it.
                threading.Event.isSet = threading.Event.is_set  # type: ignore[method-assign]
            try:
                return _pyst2_run(chunks)
            finally:
                threading.Event.isSet = is_set_alias  # type: ignore[method-assign]

    def _pyst2_run(chunks: Sequence[bytes]) -> int:
        mgr = pyst2.Manager()
        # pyst2 on Python 3 reads an *unbuffered* socket file
        # (makefile(buffering=0)), i.e. one recv per byte; we give it a
        # 64 KiB buffered file instead, which only flatters it.
        mgr._sock = io.BufferedReader(_ChunkRaw(chunks), buffer_size=len(chunks[0]))
        queue = _List()
        mgr._message_queue = queue
        mgr._connected.set()
        mgr._running.set()
        mgr._receive_data()  # returns at EOF
        mgr._running.clear()  # so Manager.__del__ does not join unstarted threads
        n = 0
        for lines in queue:
            if not lines:
                break
            message = pyst2.ManagerMsg(lines)
            if message.has_header("Event"):
                pyst2.Event(message)
            n += 1
        return n

    return pyst2_reader


def make_panoramisk() -> Runner | None:
    try:
        from panoramisk.ami_protocol import AMIProtocol
    except ImportError:
        return None

    class _Transport:
        def write(self, data: bytes) -> None:
            pass

        def close(self) -> None:
            pass

    def panoramisk_reader(chunks: Sequence[bytes]) -> int:
        proto = AMIProtocol()
        proto.connection_made(_Transport())
        got: list[object] = []
        proto.handle_message = got.append  # type: ignore[method-assign]
        data_received = proto.data_received
        for chunk in chunks:
            data_received(chunk)
        return len(got)

    return panoramisk_reader


def make_asterisk_ami() -> Runner | None:
    try:
        from asterisk.ami.client import AMIClient
    except ImportError:
        return None

    class _Socket:
        def __init__(self, chunks: Sequence[bytes]) -> None:
            self._chunks = iter(chunks)

        def recv(self, size: int) -> bytes:
            return next(self._chunks, b"")

        def close(self) -> None:
            pass

    def asterisk_ami_reader(chunks: Sequence[bytes]) -> int:
        client = AMIClient(buffer_size=len(chunks[0]))
        client._socket = _Socket(chunks)
        client.finished = threading.Event()
        count = [0]

        def seen(source: object, **kwargs: object) -> None:
            count[0] += 1

        client.add_listener(on_event=seen, on_response=seen, on_unknown=seen)
        client.listen()  # returns at EOF (or after Response: Goodbye)
        return count[0]

    return asterisk_ami_reader


# --- driver ------------------------------------------------------------------


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def count_frames(chunks: Sequence[bytes]) -> int:
    parser = Parser()
    frames = [f for c in chunks for f in parser.feed(c)] + parser.feed(b"")
    return sum(isinstance(f, (Banner, Message)) for f in frames)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "file", nargs="?", default=os.environ.get("PBXIS_BENCH_FILE", DEFAULT_FILE)
    )
    ap.add_argument("--repeat", type=int, default=5, help="runs per contender (best counts)")
    ap.add_argument("--chunk", type=int, default=64 * 1024, help="bytes per feed")
    args = ap.parse_args(argv)

    with open(args.file, "rb") as fh:
        data = fh.read()
    chunks = chunked(data, args.chunk)
    frames = count_frames(chunks)
    wanted, wanted_from = wanted_events()

    contenders: dict[str, tuple[str, Runner | None]] = {
        "pbxis full parse": ("pbxis", pbxis_full),
        "pbxis lazy parse": ("pbxis", pbxis_lazy),
        "pbxis skip-by-name": ("pbxis", make_pbxis_skip(wanted)),
        "pbxis skip, 25-list": (
            "pbxis",
            make_pbxis_skip(DIGEST_EVENTS) if set(wanted) != set(DIGEST_EVENTS) else None,
        ),
        "pyst2 0.5.1": ("peer", make_pyst2()),
        "pyst2 0.5.1, is_set": ("peer", make_pyst2(modern_event_api=True)),
        "panoramisk 1.4": ("peer", make_panoramisk()),
        "asterisk-ami 0.1.7": ("peer", make_asterisk_ami()),
        "floor: split + dict": ("floor", floor_split),
    }
    best: dict[str, float] = {}
    counts: dict[str, int] = {}
    for _ in range(args.repeat):
        for name, (_kind, run) in contenders.items():
            if run is None:
                continue
            gc.collect()
            t0 = time.perf_counter()
            n = run(chunks)
            dt = time.perf_counter() - t0
            best[name] = min(dt, best.get(name, dt))
            counts[name] = n

    peers = [n for n, (kind, run) in contenders.items() if kind == "peer" and run is not None]
    fastest_peer = min(peers, key=best.__getitem__) if peers else None
    print(f"file: {os.path.normpath(args.file)} ({len(data)} bytes, {frames} frames incl. banner)")
    print(f"chunks: {len(chunks)} x {args.chunk} bytes; best of {args.repeat}; "
          f"Python {sys.version.split()[0]}")
    print(f"skip-by-name set: {len(wanted)} events from {wanted_from}:")
    print("  " + " ".join(sorted(wanted)))
    print()
    print(f"{'contender':<22} {'best s':>8} {'frames/s':>11} {'vs fastest peer':>16} "
          f"{'frames seen':>12}")
    for name, (kind, run) in contenders.items():
        if run is None:
            if kind == "peer":
                print(f"{name:<22} {'not installed (see bench/README.md)':>50}")
            continue
        rate = frames / best[name]
        ratio = f"{best[fastest_peer] / best[name]:.2f}x" if fastest_peer else "-"
        print(f"{name:<22} {best[name]:>8.3f} {rate:>11,.0f} {ratio:>16} {counts[name]:>12}")
    if fastest_peer:
        print(f"\nfastest peer: {fastest_peer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
