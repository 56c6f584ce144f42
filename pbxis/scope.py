"""Which events a channel receives: ``Scope(agents, queues).accepts(event)``.

Single responsibility: the scope rule of API.md §3, nothing else. An event may
carry the scope properties ``agent`` and/or ``queue``; a channel receives it
iff every scope property the event has is in the channel's corresponding set.
An event with neither goes to every channel; one with both only to channels
that list both. An empty set is *no* agent (or queue), not "all".

Pure (layer 1): imports only ``pbxis.events`` and the stdlib; no threads,
sockets or clocks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .events import Event

__all__ = ["Scope"]

_FORBIDDEN = ("\r", "\n", "\0")


def _names(kind: str, values: Iterable[str] | None) -> frozenset[str]:
    """Validate one list of scope names and return it as a frozenset."""
    if values is None:
        return frozenset()
    if isinstance(values, (str, bytes)):
        # agents="1001" would otherwise silently become {"1", "0"}.
        raise TypeError(
            f"{kind} must be a list of names, not a single {type(values).__name__}: "
            f"use {kind}=[{values!r}]"
        )
    try:
        items = list(values)
    except TypeError:
        raise TypeError(f"{kind} must be an iterable of str, not {type(values).__name__}") from None
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{kind} items must be str, got {item!r}")
        if not item:
            raise ValueError(f"{kind} items must not be empty")
        if any(c in item for c in _FORBIDDEN):
            # Scope names end up in AMI headers; CR/LF would inject commands.
            raise ValueError(f"{kind} item {item!r} contains CR, LF or NUL")
    return frozenset(items)


@dataclass(frozen=True, init=False)
class Scope:
    """The agents and queues a channel listens to (immutable, hashable).

    Args:
        agents: agent names (extension numbers), e.g. ``["1001", "1002"]``.
        queues: queue names, e.g. ``["sales"]``.

    Raises:
        TypeError: ``agents`` or ``queues`` is a bare ``str`` (a common slip
            for ``["1001"]``), not iterable, or holds a non-``str`` item.
        ValueError: an item is empty or contains CR, LF or NUL.
    """

    __slots__ = ("agents", "queues")

    agents: frozenset[str]
    queues: frozenset[str]

    def __init__(
        self,
        agents: Iterable[str] | None = (),
        queues: Iterable[str] | None = (),
    ) -> None:
        object.__setattr__(self, "agents", _names("agents", agents))
        object.__setattr__(self, "queues", _names("queues", queues))

    def accepts(self, event: Event) -> bool:
        """True iff every scope property ``event`` has is in this scope.

        ``event.agent`` (when not None) must be in ``agents`` and
        ``event.queue`` (when not None) must be in ``queues``; an event with
        neither is accepted by every scope.
        """
        agent = event.agent
        if agent is not None and agent not in self.agents:
            return False
        queue = event.queue
        return queue is None or queue in self.queues

    def __reduce__(self) -> tuple[Any, ...]:
        # Frozen + __slots__: the default pickle/copy path would setattr.
        return (Scope, (sorted(self.agents), sorted(self.queues)))

    def __repr__(self) -> str:
        return f"Scope(agents={sorted(self.agents)!r}, queues={sorted(self.queues)!r})"
