"""Shared test helpers: feed bytes to the AMI parser every way (h11's ``tr()`` idea),
and read a channel's events into a view of the latest states.

No sleeps, no sockets. Import as ``from helpers import ...`` (pytest puts
``tests/`` on ``sys.path``).
"""
from __future__ import annotations

import os
import queue
import random
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from pbxis.events import STATE_EVENT_TYPES
from pbxis.protocol import Banner, Frame, Message, Oversize, Parser, Truncated

__all__ = [
    "BANNER",
    "TRANSCRIPTS",
    "transcript",
    "transcript_names",
    "snap",
    "feed_pieces",
    "feed_whole",
    "feed_bytewise",
    "feed_random",
    "cut",
    "feed_all_ways",
    "TRAILING",
]

BANNER = b"Asterisk Call Manager/11.0.0\r\n"



def _transcripts() -> Path:
    """shared/ami-transcripts: ``PBXIS_TRANSCRIPTS``, else beside this
    checkout, else beside the repository it was cloned from (a clean CI clone
    made with ``git clone . /tmp/somewhere`` has no shared/ beside it)."""
    override = os.environ.get("PBXIS_TRANSCRIPTS")
    if override:
        return Path(override)
    repo = Path(__file__).resolve().parent.parent
    beside = repo.parent / "shared" / "ami-transcripts"
    if beside.is_dir():
        return beside
    try:
        origin = subprocess.run(
            ["git", "-C", str(repo), "config", "--get", "remote.origin.url"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ""
    origin = origin.removeprefix("file://")
    if origin.startswith("/"):
        cloned_from = Path(origin).resolve().parent / "shared" / "ami-transcripts"
        if cloned_from.is_dir():
            return cloned_from
    return beside


TRANSCRIPTS = _transcripts()

#: A partial frame appended by ``feed_all_ways`` to check the Truncated report.
TRAILING = b"Event: Partial\r\nChannel: PJSIP/10"


def transcript_names() -> list[str]:
    """The ``*.ami`` file names (empty when the transcripts are not there;
    under CI that fails the collection rather than skipping the tests)."""
    names = sorted(p.name for p in TRANSCRIPTS.glob("*.ami"))
    if not names and os.environ.get("CI"):
        raise RuntimeError(f"no transcripts in {TRANSCRIPTS} (set PBXIS_TRANSCRIPTS)")
    return names


def transcript(name: str) -> bytes:
    """The raw bytes of one transcript; skips (or, under CI, fails) when absent."""
    path = TRANSCRIPTS / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"transcript {path} missing")
        pytest.skip(f"transcript {path} missing")
    return path.read_bytes()


def snap(frames: Iterable[Frame]) -> list[tuple[Any, ...]]:
    """Frames as plain comparable tuples.

    ``Oversize`` sizes are dropped: the parser reports how much it had
    buffered when it gave up, which depends on how the reads were cut.
    """
    out: list[tuple[Any, ...]] = []
    for f in frames:
        if isinstance(f, Banner):
            out.append(("banner", f.line))
        elif isinstance(f, Message):
            out.append(("message", tuple(f.headers)))
        elif isinstance(f, Oversize):
            out.append(("oversize",))
        elif isinstance(f, Truncated):
            out.append(("truncated", f.size))
        else:  # pragma: no cover - a new frame type must be added here
            raise AssertionError(f"unknown frame {f!r}")
    return out


def feed_pieces(pieces: Iterable[bytes], eof: bool = True, **parser_kw: Any) -> list[Frame]:
    """Feed ``pieces`` (none empty: ``b""`` means EOF) to a fresh Parser."""
    parser = Parser(**parser_kw)
    frames: list[Frame] = []
    for piece in pieces:
        assert piece, "an empty read is EOF"
        frames.extend(parser.feed(piece))
    if eof:
        frames.extend(parser.feed(b""))
    return frames


def feed_whole(data: bytes, **parser_kw: Any) -> list[Frame]:
    return feed_pieces([data] if data else [], **parser_kw)


def feed_bytewise(data: bytes, **parser_kw: Any) -> list[Frame]:
    return feed_pieces((data[i : i + 1] for i in range(len(data))), **parser_kw)


def cut(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``data`` split at the given offsets (sorted, deduplicated, no empty piece)."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


def feed_random(
    data: bytes, seed: int, max_piece: int = 4096, **parser_kw: Any
) -> list[Frame]:
    """Feed ``data`` in pseudo-random pieces of 1..max_piece bytes."""
    rnd = random.Random(seed)
    pieces, i = [], 0
    while i < len(data):
        n = rnd.randint(1, max_piece)
        pieces.append(data[i : i + n])
        i += n
    return feed_pieces(pieces, **parser_kw)


def feed_all_ways(
    data: bytes, bytewise: bool = True, extra: Sequence[bytes] | None = None, **parser_kw: Any
) -> list[Frame]:
    """Parse ``data`` whole, one byte at a time and with a trailing partial frame.

    Asserts that every way gives the same frames (the trailing partial frame
    must add exactly one ``Truncated`` of its size, unless ``data`` itself
    ends mid-frame) and returns the frames of the whole feed. ``extra`` are
    more cuttings (lists of pieces) that must agree too.
    """
    whole = feed_whole(data, **parser_kw)
    expected = snap(whole)
    if bytewise:
        assert snap(feed_bytewise(data, **parser_kw)) == expected, "byte-by-byte differs"
    for pieces in extra or ():
        assert b"".join(pieces) == data
        assert snap(feed_pieces(pieces, **parser_kw)) == expected, "chunked feed differs"
    if not (whole and isinstance(whole[-1], (Truncated, Oversize))):
        # h11's tr(): the same bytes plus the start of another frame.
        trailed = snap(feed_whole(data + TRAILING, **parser_kw))
        assert trailed[:-1] == [f for f in expected], "trailing bytes changed earlier frames"
        assert trailed[-1][0] == "truncated" and trailed[-1][1] >= len(TRAILING)
    return whole


# -- reading a channel ------------------------------------------------------------


def drain(ch: Any) -> list[Any]:
    """Everything pending in the channel, without blocking (a published
    batch arrives whole)."""
    out = []
    while True:
        try:
            out.append(ch.get_nowait())
        except queue.Empty:
            return out


def settle(pbx: Any, ch: Any) -> list[Any]:
    """Everything the channel got up to now: a Ping's answer comes after the
    answers and events Asterisk sent before it, and the reader publishes
    them before it reads further."""
    pbx.send_action("Ping")
    pbx.send_action("Ping")
    return drain(ch)


def key(ev: Any) -> tuple[Any, ...]:
    """A state's key in a view: phoneNumber is one state per agent, its queue
    rides along (API.md §4)."""
    return (ev.type, ev.agent, None if ev.type == "phoneNumber" else ev.queue)


def details(ev: Any) -> dict[str, Any]:
    return {k: v for k, v in ev.to_dict().items() if k not in ("type", "agent", "queue")}


def fold(view: dict[Any, Any], events: Iterable[Any]) -> dict[Any, Any]:
    """``view`` updated with the state events among ``events`` (a new dict)."""
    view = dict(view)
    for ev in events:
        if ev.type in STATE_EVENT_TYPES:
            view[key(ev)] = details(ev)
    return view
