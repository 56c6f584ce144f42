"""Sans-I/O AMI codec: bytes in, frames out; actions in, bytes out.

No sockets, threads or clocks here (layer 1); imports only ``pbxis.errors``.

AMI (as Asterisk 22 speaks it, see shared/ami-transcripts/README.md): a
one-line greeting ``Asterisk Call Manager/11.0.0\\r\\n`` with no blank line
after it, then messages of ``Key: Value\\r\\n`` lines, each ended by an empty
line. Values may be empty (``AccountCode: \\r\\n``), names may repeat
(``Variable``, ``ChanVariable``, ``Output``), and a value may end in a bare LF
(``Message: Park successful\\n\\r\\n``).
"""
from __future__ import annotations

import re
from typing import (
    Dict,
    FrozenSet,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

__all__ = [
    "Banner",
    "Message",
    "Oversize",
    "Truncated",
    "Frame",
    "Parser",
    "encode_action",
    "regex_literal",
    "DEFAULT_MAX_FRAME",
]

DEFAULT_MAX_FRAME = 1 << 20  # bytes; real frames are < 4 KiB, CLI output < 100 KiB
_MAX_BANNER = 4096


class Banner:
    """The greeting line, e.g. ``Asterisk Call Manager/11.0.0``."""

    __slots__ = ("line",)

    def __init__(self, line: str) -> None:
        self.line = line

    @property
    def is_ami(self) -> bool:
        """True when the greeting looks like an AMI server's."""
        return "Call Manager" in self.line

    @property
    def version(self) -> str:
        """The AMI protocol version after the slash, or ``""``."""
        return self.line.rpartition("/")[2] if "/" in self.line else ""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Banner) and other.line == self.line

    def __repr__(self) -> str:
        return f"Banner({self.line!r})"


_REDACTED = frozenset({"secret", "key"})


#: ``Message.get`` on a lazy message: (needle, lower-case needle, offset of
#: the character after the colon) for a header name, ("", "", 0) for a name
#: the text search must not answer. Per line separator.
_Needles = Tuple[str, str, int]
_NEEDLES: Dict[str, Dict[str, _Needles]] = {"\r\n": {}, "\n": {}}


def _needles(sep: str, name: str) -> _Needles:
    """The search needles for ``name`` (cached; the names come from code, few).

    Only a plain name is searched: the split names a line that is not
    "Name: value" Output, and cuts one with ":" but no ": " at the first ":".
    """
    if name.isidentifier() and name.lower() != "output":
        found = (f"{sep}{name}:", f"{sep}{name.lower()}:", len(sep) + len(name) + 1)
    else:
        found = ("", "", 0)
    cache = _NEEDLES[sep]
    if len(cache) < 1024:
        cache[name] = found
    return found


class Message:
    """One AMI message (response or event): ordered headers, case-insensitive lookup.

    ``get`` returns the first value of a header; ``getall`` every value in order.

    A message the parser makes is *lazy*: it keeps the decoded frame and
    splits it into ``headers`` only when they are first needed. Until then
    ``get`` searches the text: the digest reads 2-8 of a frame's 5-36
    headers, and a search costs about what splitting one line does.
    """

    __slots__ = ("_headers", "_first", "_lower", "_text", "_sep", "_needles")

    def __init__(self, headers: Iterable[Tuple[str, str]]) -> None:
        self._headers: Optional[List[Tuple[str, str]]] = list(headers)
        self._first: Optional[Dict[str, str]] = None
        self._lower: Optional[Dict[str, str]] = None
        # The decoded frame with a line separator before and after it (so
        # every line sits between two); set by the parser. While ``_headers``
        # is None the message is lazy; once split, the text answers "no such
        # header, in any case" without building the lower-case index (unless
        # some line was not "Name: value": then _split built the indexes).
        self._text: Optional[str] = None
        self._sep = "\r\n"
        self._needles: Dict[str, _Needles] = _NEEDLES[self._sep]

    @classmethod
    def _lazy(cls, text: str, sep: str) -> Message:
        """A lazy message of ``text`` (``sep`` + frame + ``sep``, see ``_parse_text``)."""
        msg = cls.__new__(cls)
        msg._headers = None  # _first and _lower stay unset until _split
        msg._text = text
        msg._sep = sep
        msg._needles = _NEEDLES[sep]
        return msg

    @property
    def headers(self) -> List[Tuple[str, str]]:
        """The ``(name, value)`` pairs in order (repeated names repeat)."""
        headers = self._headers
        if headers is None:
            headers = self._split()
        return headers

    @headers.setter
    def headers(self, value: List[Tuple[str, str]]) -> None:
        self._headers = value
        self._first = self._lower = self._text = None

    def _split(self) -> List[Tuple[str, str]]:
        """Split a lazy message's text into its headers (once)."""
        text = self._text
        assert text is not None
        lines = text.split(self._sep)
        parts = [line.partition(": ") for line in lines]
        # The first and last parts are the empty strings around the separators.
        headers = [(name, value) for name, found, value in parts if found]
        if len(headers) == len(parts) - 2:
            self._first = self._lower = None
        else:
            # Not every line is "Name: value", so the text cannot tell a
            # header is absent (see get): build both indexes now (rare).
            headers = _slow_headers(lines[1:-1])
            self._first = dict(reversed(headers))
            self._lower = {k.lower(): v for k, v in reversed(headers)}
        # _headers last: a thread that sees it set finds the rest ready (the
        # text is never cleared, so one still reading it is not disturbed).
        self._headers = headers
        return headers

    def _index(self) -> Dict[str, str]:
        first = self._first
        if first is None:
            first = self._first = dict(reversed(self.headers))
        return first

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The first value of header ``name`` (any case), or ``default``."""
        if self._headers is None:
            # Lazy (the hot path: the reader and the digest ask every wanted
            # frame for a few headers): the first line "name: value"
            # answers, unless the split could answer differently (see
            # _needles and below); then split.
            text: str = self._text  # type: ignore[assignment]  # lazy: always set
            try:
                exact, folded, skip = self._needles[name]
            except KeyError:
                exact, folded, skip = _needles(self._sep, name)
            if exact:
                at = text.find(exact)
                if at < 0:
                    if folded not in text.lower():
                        return default
                elif text[at + skip] == " ":  # not "name:value"
                    start = at + skip + 1
                    found = text[start : text.find(self._sep, start)]
                    # The split strips values if some line is not "Name:
                    # value"; a value with nothing to strip reads the same.
                    if found.strip(_BLANKS) == found:
                        return found
            self._split()
        first = self._first
        if first is None:
            # Answer the first header, and "no such header" when the text
            # says so, without building an index.
            headers = self.headers
            if headers:
                lead = headers[0]
                if lead[0] == name:
                    return lead[1]
            if self._lower is None and self._text is not None and _absent(self._text, name):
                return default
            first = self._index()
        value = first.get(name)
        if value is not None:
            return value
        lower = self._lower
        if lower is None:
            if self._text is not None and _absent(self._text, name):
                return default
            lower = self._lower = {k.lower(): v for k, v in reversed(self.headers)}
        return lower.get(name.lower(), default)

    def getall(self, name: str) -> List[str]:
        """Every value of header ``name`` (any case), in order."""
        key = name.lower()
        return [v for k, v in self.headers if k.lower() == key]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __len__(self) -> int:
        return len(self.headers)

    def __iter__(self) -> Iterator[Tuple[str, str]]:
        return iter(self.headers)

    @property
    def event(self) -> Optional[str]:
        """The ``Event`` header, or None for responses."""
        return self.get("Event")

    @property
    def response(self) -> Optional[str]:
        """The ``Response`` header, or None for events."""
        return self.get("Response")

    @property
    def action_id(self) -> Optional[str]:
        """The ``ActionID`` header, or None."""
        return self.get("ActionID")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and other.headers == self.headers

    def __repr__(self) -> str:
        shown = [(k, "***" if k.lower() in _REDACTED else v) for k, v in self.headers]
        return f"Message({shown!r})"


class Oversize:
    """A frame larger than the limit was dropped; the parser resynchronised."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size

    def __repr__(self) -> str:
        return f"Oversize({self.size})"


class Truncated:
    """The stream ended (EOF) in the middle of a frame of ``size`` bytes."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size

    def __repr__(self) -> str:
        return f"Truncated({self.size})"


Frame = Union[Banner, Message, Oversize, Truncated]


def _absent(text: str, name: str) -> bool:
    """True if no line of ``text`` (all "Name: value", each after a separator)
    names ``name``, in any case.

    A value holding a bare LF can only make this answer False (then the
    caller builds the index).
    """
    return "\n" + name.lower() + ": " not in text.lower()


#: What the slow path strips from values (see _parse_slow).
_BLANKS = " \t\r\n"
#: How an Asterisk < 14 ``Response: Follows`` ends its output.
_END_COMMAND = "--END COMMAND--"


def _parse_text(text: str, sep: str) -> Message:
    """The message of one frame; ``text`` is the frame with ``sep`` before and after.

    Usually a lazy message (split on first use); a frame with a value that
    ends in a bare LF, or a pre-14 CLI body, is parsed at once.
    """
    if "\n" + sep in text:  # a value ends in a bare LF
        return _parse_slow(text[len(sep) : -len(sep)].split(sep))
    if _END_COMMAND in text:
        lines = text[len(sep) : -len(sep)].split(sep)
        parts = [line.partition(": ") for line in lines]
        headers = [(name, value) for name, found, value in parts if found]
        # a pre-14 CLI body whose first output line happens to hold ": "
        if len(headers) < len(parts) or (lines[-1].endswith(_END_COMMAND) and "\n" in lines[-1]):
            return _parse_slow(lines)
        return Message(headers)
    return Message._lazy(text, sep)


def _parse_slow(lines: List[str]) -> Message:
    """Lines without ``": "``, values ending in bare LF, and pre-14 CLI bodies."""
    return Message(_slow_headers(lines))


def _slow_headers(lines: List[str]) -> List[Tuple[str, str]]:
    """The headers of ``_parse_slow``."""
    headers: List[Tuple[str, str]] = []
    for line in lines:
        if line.endswith(_END_COMMAND):
            # Asterisk < 14 ``Response: Follows``: LF-separated output ending in a marker.
            for out in line[: -len(_END_COMMAND)].split("\n"):
                if out:
                    headers.append(("Output", out))
            continue
        name, found, value = line.partition(":")
        if found and name and " " not in name:
            headers.append((name, value.strip(" \t\r\n")))
        elif line.strip():
            headers.append(("Output", line.rstrip("\r\n")))
    return headers


class Parser:
    """Turns AMI bytes into frames. Feed it whatever the socket returned.

    Args:
        max_frame: frames larger than this many bytes (everything between two
            blank lines) are dropped and reported as ``Oversize``, however the
            reads were cut; the parser resynchronises at the next frame. It
            never holds more than ``max_frame + 3`` bytes plus one read.
        wanted: if given, events whose name is not in it are skipped without
            parsing (counted in ``skipped``) unless they carry an ActionID.
            Responses are always parsed.
        ignore: with ``wanted``, event name -> the start of a header line
            (``"Device: Queue:"``) that marks events of that name as unwanted
            too when it is their second or third line (the first headers
            after ``Event``, where Asterisk puts a channel's or device's
            name); skipped and counted the same way.

    ``feed(b"")`` signals EOF; a partial frame left then is reported as
    ``Truncated`` (blank lines alone are not). The frames returned do not
    depend on how the bytes were cut into reads (only ``Oversize.size`` does).
    """

    def __init__(
        self,
        max_frame: int = DEFAULT_MAX_FRAME,
        wanted: Optional[Iterable[str]] = None,
        ignore: Optional[Mapping[str, str]] = None,
    ) -> None:
        if max_frame < 64:
            raise ValueError("max_frame must be >= 64")
        self.max_frame = max_frame
        self.skipped = 0
        self._ignore: Dict[bytes, bytes] = {
            name.encode(): line.encode() for name, line in (ignore or {}).items()
        }
        self._wanted: Optional[FrozenSet[bytes]] = None
        self.set_wanted(wanted)
        self._banner_pending = True
        self._term = b"\r\n\r\n"
        self._sep = "\r\n"
        self._chunks: List[bytes] = []
        self._size = 0
        self._discarding = False
        self._eof = False
        self._tail = b""  # last 3 bytes buffered: a terminator may straddle reads

    def set_wanted(self, wanted: Optional[Iterable[str]]) -> None:
        """Change the set of event names to parse (None: parse every event)."""
        self._wanted = None if wanted is None else frozenset(n.encode() for n in wanted)
        self._scanners: Dict[bytes, re.Pattern[bytes]] = {}

    def _scanner(self, term: bytes) -> re.Pattern[bytes]:
        """A regex that finds, after a frame terminator, a wanted event or a
        frame that is not an event (or a stray blank line)."""
        rx = self._scanners.get(term)
        if rx is None:
            assert self._wanted is not None
            # The name ends where _emit's does: at the first CR (LF for an
            # LF-only peer), not consumed, since the block may end right there.
            eol = b"(?=" + re.escape(term[:1]) + b")"
            nl = re.escape(term[: len(term) // 2])
            names = []
            for name in sorted(self._wanted, key=len, reverse=True):
                item = re.escape(name) + eol
                mark = self._ignore.get(name)
                if mark is not None:
                    item += b"(?!" + nl + b"(?:[^\r\n]*" + nl + b")?" + re.escape(mark) + b")"
                names.append(item)
            rx = self._scanners[term] = re.compile(
                re.escape(term) + b"(?:Event: (?:" + b"|".join(names) + b")|(?!Event: ))"
            )
        return rx

    def feed(self, data: bytes) -> List[Frame]:
        """Consume ``data`` and return the frames completed by it (maybe none)."""
        if self._eof:
            return []
        if not data:
            self._eof = True
            pending = 0 if self._discarding else self._size
            if pending and not b"".join(self._chunks).strip(b"\r\n"):
                pending = 0  # stray blank lines before EOF: nothing was cut off
            self._chunks, self._size, self._tail = [], 0, b""
            return [Truncated(pending)] if pending else []
        out: List[Frame] = []
        if self._banner_pending:
            data = self._take_banner(data, out)
            if not data:
                return out
        term = self._term
        if self._chunks:
            # Only join when the new bytes can complete a frame: keeps a slow
            # endless frame from costing O(n^2) copies.
            if term not in self._tail + data[:3] and term not in data:
                return self._keep(data, out)
            self._chunks.append(data)
            data = b"".join(self._chunks)
            self._chunks, self._size, self._tail = [], 0, b""
        elif term not in data:
            return self._keep(data, out)
        if self._wanted is None or self._discarding or not self._scan(data, out):
            blocks = data.split(term)
            rest = blocks.pop()
            if self._discarding:
                blocks.pop(0)  # the tail of the oversize frame
                self._discarding = False
            self._emit(blocks, out)
        else:
            rest = data[data.rfind(term) + len(term) :]
        if rest:
            self._keep(rest, out)
        return out

    def _scan(self, data: bytes, out: List[Frame]) -> bool:
        """Emit the complete frames of ``data`` without splitting it, if it can.

        The fast path for skip-by-name: one regex pass finds the wanted
        events, the skipped ones are only counted, so the ~80 % of a busy
        stream that pbxis does not read (VarSet, Newexten, ...) costs no
        Python code per frame. It declines (returns False, nothing emitted)
        whenever the per-block path could decide differently: an ActionID
        anywhere, a frame that is not an event, a stray blank line, or more
        than ``max_frame`` bytes (an oversize frame must be reported).
        """
        term = self._term
        size = len(term)
        first = data.find(term)
        last = data.rfind(term)
        if last - first > self.max_frame or data.find(b"ActionID: ", first, last) >= 0:
            return False
        # Every terminator but the last opens a block; the last one always
        # matches (nothing follows it within endpos) and closes the list.
        sep = self._sep
        around = len(sep)
        bare_lf = "\n" + sep
        lazy = Message._lazy
        messages: List[Frame] = []
        append = messages.append
        for m in self._scanner(term).finditer(data, first, last + size):
            at, after = m.span()
            if after - at == size:
                if at != last:
                    return False  # not an event frame: let _emit judge it
                break
            # The frame with the separators around it (see _parse_text).
            text = data[at + around : data.find(term, after) + around].decode("utf-8", "replace")
            if bare_lf in text or _END_COMMAND in text:
                append(_parse_text(text, sep))
            else:
                append(lazy(text, sep))  # _parse_text's usual answer, inline
        self._emit([data[:first]], out)
        out += messages
        # Every block here starts with "Event: " (anything else declined
        # above), and counting that longer needle is ~40 % faster.
        self.skipped += data.count(term + b"Event: ", first, last) - len(messages)
        return True

    def _take_banner(self, data: bytes, out: List[Frame]) -> bytes:
        buffered = b"".join(self._chunks) + data if self._chunks else data
        end = buffered.find(b"\n", 0, _MAX_BANNER + 1)
        if end < 0:
            if len(buffered) > _MAX_BANNER:
                # Not an AMI greeting: report what we have, then resynchronise
                # on the next blank line (the same cut however the bytes came).
                out.append(Banner(buffered[:_MAX_BANNER].decode("utf-8", "replace")))
                self._banner_pending = False
                self._chunks, self._size = [], 0
                self._discarding = True
                return buffered[_MAX_BANNER:]
            self._chunks, self._size = [buffered], len(buffered)
            return b""
        line = buffered[:end]
        if line.endswith(b"\r"):
            line = line[:-1]
        else:  # a peer that ends lines with LF only
            self._term, self._sep = b"\n\n", "\n"
        out.append(Banner(line.decode("utf-8", "replace")))
        self._banner_pending = False
        self._chunks, self._size = [], 0
        return buffered[end + 1 :]

    def _keep(self, data: bytes, out: List[Frame]) -> List[Frame]:
        tail = self._tail = (self._tail + data)[-3:] if len(data) < 3 else data[-3:]
        if self._discarding:
            self._chunks, self._size = [tail], len(tail)
            return out
        self._chunks.append(data)
        self._size += len(data)
        # The buffer may end in 3 bytes of a terminator that are not part of
        # the frame; a frame of exactly max_frame bytes must not trip here.
        if self._size > self.max_frame + 3:
            out.append(Oversize(self._size))
            self._discarding = True
            self._chunks, self._size = [tail], len(tail)
        return out

    def _emit(self, blocks: List[bytes], out: List[Frame]) -> None:
        wanted = self._wanted
        ignore = self._ignore
        sep = self._sep
        eol = self._term[:1]  # CR for CRLF peers, LF for LF-only ones
        max_frame = self.max_frame
        append = out.append
        for block in blocks:
            if not block:
                continue
            if len(block) > max_frame:
                append(Oversize(len(block)))
                continue
            if block[:1] in (b"\r", b"\n"):
                block = block.lstrip(b"\r\n")
                if not block:
                    continue
            if wanted is not None and block[:7] == b"Event: ":
                end = block.find(eol, 7)  # -1: the name is the whole block
                name = block[7:end] if end > 0 else block[7:]
                if (
                    name not in wanted or (name in ignore and self._ignored(block, ignore[name]))
                ) and b"ActionID: " not in block:
                    self.skipped += 1
                    continue
            append(_parse_text(f"{sep}{block.decode('utf-8', 'replace')}{sep}", sep))

    def _ignored(self, block: bytes, mark: bytes) -> bool:
        """``mark`` starts the block's second or third line (see ``ignore``)."""
        nl = self._term[: len(self._term) // 2]
        at = block.find(nl)
        for _ in range(2):
            if at < 0:
                return False
            at += len(nl)
            if block.startswith(mark, at):
                return True
            at = block.find(nl, at)
        return False


def regex_literal(text: str) -> str:
    """``text`` as a POSIX extended regex (Asterisk's Filter, ``CHANNELS()``)
    that matches only itself."""
    return "".join("\\" + ch if ch in ".^$*+?()[]{}|\\" else ch for ch in text)


HeaderValue = Union[str, int, float, bool, Sequence[str]]


def _text(name: str, value: object) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise TypeError(f"header {name!r}: value must be str, int, float or bool")
    if "\r" in text or "\n" in text or "\x00" in text:
        raise ValueError(f"header {name!r}: value must not contain CR, LF or NUL")
    return text


def encode_action(
    name: str,
    action_id: Optional[str] = None,
    headers: Union[Mapping[str, HeaderValue], Sequence[Tuple[str, HeaderValue]], None] = None,
) -> bytes:
    """Encode an action as AMI bytes.

    ``headers`` values may be str/int/float/bool; a list or tuple value becomes
    repeated headers (``Variable: a=1``, ``Variable: b=2``). Raises ``ValueError``
    (before anything could be sent) when a name or value holds CR, LF or NUL,
    or a header name is empty or holds ``:`` or spaces.
    """
    lines = [f"Action: {_check_name(_text('Action', name))}"]
    if action_id is not None:
        lines.append(f"ActionID: {_text('ActionID', action_id)}")
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for key, value in items:
        _check_name(_text("header name", key))
        if key.lower() in ("action", "actionid"):
            raise ValueError(f"header {key!r} is set by pbxis")
        if isinstance(value, (list, tuple)):
            lines.extend(f"{key}: {_text(key, v)}" for v in value)
        elif value is not None:
            lines.append(f"{key}: {_text(key, value)}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("utf-8")


def _check_name(name: str) -> str:
    if not name or ":" in name or " " in name:
        raise ValueError(f"invalid AMI name {name!r}")
    return name
