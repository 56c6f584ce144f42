"""AMI session event filters, as Asterisk 22 evaluates them.

Two forms (shared/asterisk-22-notes.md, Filter): the legacy POSIX regex
``Filter: <regex>`` (``!`` prefix excludes) matched against the whole event
text, and ``MatchCriteria: action(include|exclude),name(E),header(H),
method(regex|exact|starts_with|ends_with|contains|none)`` with ``Filter``
as the match expression. Once an include filter exists only matching
events pass; excludes then remove. Pure; stdlib only.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from re import Pattern

from .frames import SimEvent

__all__ = ["EventFilter", "FilterError", "parse_filter", "accepts", "posix_to_python"]

_POSIX_CLASSES = {
    "[:space:]": r"\s", "[:blank:]": r" \t", "[:alpha:]": "a-zA-Z", "[:digit:]": "0-9",
    "[:alnum:]": "a-zA-Z0-9", "[:upper:]": "A-Z", "[:lower:]": "a-z",
    "[:xdigit:]": "0-9A-Fa-f", "[:punct:]": r"!-/:-@\[-`{-~", "[:word:]": r"\w",
    "[:cntrl:]": r"\x00-\x1f\x7f", "[:print:]": r"\x20-\x7e", "[:graph:]": r"\x21-\x7e",
}


class FilterError(ValueError):
    """The filter was rejected; ``message`` is Asterisk's response text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def posix_to_python(regex: str) -> str:
    """Translate POSIX bracket classes (``[[:space:]]``) into Python ``re`` syntax."""
    for posix, python in _POSIX_CLASSES.items():
        regex = regex.replace(posix, python)
    return regex


def _compile(regex: str) -> Pattern[str]:
    try:
        # regexec without REG_NEWLINE: '.' matches CR/LF, '^' only at the start.
        return re.compile(posix_to_python(regex), re.DOTALL)
    except re.error as exc:
        raise FilterError("Filter did not compile.  Check the syntax of the filter given.") \
            from exc


@dataclass
class EventFilter:
    """One filter of a session."""

    include: bool
    name: str | None = None
    header: str | None = None
    method: str = "regex"
    expression: str = ""
    regex: Pattern[str] | None = None

    def matches(self, event: SimEvent) -> bool:
        if self.name is not None and event.name.lower() != self.name.lower():
            return False
        if self.header is not None:
            values = [v for k, v in event.headers if k.lower() == self.header.lower()]
            if not values:
                return False
            return any(self._match_data(v) for v in values)
        return self._match_data(event.text)

    def _match_data(self, data: str) -> bool:
        method, expr = self.method, self.expression
        if method == "none":
            return True
        if method == "regex":
            return self.regex is not None and self.regex.search(data) is not None
        if method == "exact":
            return data == expr
        if method == "starts_with":
            return data.startswith(expr)
        if method == "ends_with":
            return data.endswith(expr)
        return expr in data  # contains


def parse_filter(match_criteria: str | None, expression: str | None) -> EventFilter:
    """Build a filter from the Filter action's ``MatchCriteria`` and ``Filter`` headers.

    Raises:
        FilterError: with the message Asterisk answers for a bad filter.
    """
    expr = expression or ""
    if not match_criteria:
        include = True
        if expr.startswith("!"):
            include, expr = False, expr[1:]
        if not expr:
            raise FilterError(
                "Filter was formatted incorrectly.  Check the syntax of the filter given.")
        return EventFilter(include, method="regex", expression=expr, regex=_compile(expr))
    flt = EventFilter(True, method="none", expression=expr)
    for part in _split_criteria(match_criteria):
        key, _, rest = part.partition("(")
        key = key.strip().lower()
        if not rest.endswith(")"):
            raise FilterError(
                "Filter was formatted incorrectly.  Check the syntax of the filter given.")
        value = rest[:-1].strip()
        if key == "action" and value.lower() in ("include", "exclude"):
            flt.include = value.lower() == "include"
        elif key == "name" and value:
            flt.name = value
        elif key == "header" and value:
            flt.header = value
        elif key == "method" and value.lower() in (
                "regex", "exact", "starts_with", "ends_with", "contains", "none"):
            flt.method = value.lower()
        else:
            raise FilterError(
                "Filter was formatted incorrectly.  Check the syntax of the filter given.")
    if flt.method == "regex":
        flt.regex = _compile(expr)
    return flt


def _split_criteria(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += char
    if cur.strip():
        parts.append(cur.strip())
    return parts


def accepts(filters: Sequence[EventFilter], event: SimEvent) -> bool:
    """Asterisk's order: no filters -> all; includes (if any) must match; no exclude may."""
    if not filters:
        return True
    includes = [f for f in filters if f.include]
    if includes and not any(f.matches(event) for f in includes):
        return False
    return not any(f.matches(event) for f in filters if not f.include)
