"""The pbxis exception tree: each error carries the data a caller needs.

Imports nothing from pbxis (layer 0).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

__all__ = [
    "PBXISError",
    "ConnectError",
    "AuthenticationError",
    "NotConnectedError",
    "ActionError",
    "ActionTimeout",
    "NoCallError",
    "AmbiguousCallError",
    "ProtocolError",
]


class PBXISError(Exception):
    """Base class of every error pbxis raises on purpose."""


class ConnectError(PBXISError, ConnectionError):
    """The first connection failed: refused, unreachable, timed out, or not AMI."""


class AuthenticationError(ConnectError):
    """Asterisk refused the username/secret (the secret is never included)."""


class NotConnectedError(PBXISError, ConnectionError):
    """The AMI link is down (or was lost while the action was pending).

    Actions are never re-sent: an action that failed with this error may or may
    not have reached Asterisk before the link dropped.
    """


class ActionError(PBXISError):
    """Asterisk answered an action with ``Response: Error`` (or refused it).

    Attributes:
        response: the response headers (a mapping), or None.
        message: Asterisk's own words (its ``Message`` header).
    """

    def __init__(self, message: str, response: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(message)
        self.message = message
        self.response = response


class ActionTimeout(PBXISError, TimeoutError):
    """No response arrived within the action timeout."""

    def __init__(self, message: str, action_id: str = "") -> None:
        super().__init__(message)
        self.action_id = action_id


class NoCallError(PBXISError):
    """The agent has no call that the command could act on."""

    def __init__(self, agent: str) -> None:
        super().__init__(f"agent {agent!r} has no call")
        self.agent = agent


class AmbiguousCallError(PBXISError):
    """The agent has several calls; name the channel to act on.

    Attributes:
        candidates: one dict per call with the keys ``agentChannel``,
            ``bridgedChannel`` and ``callerIdNum``.
    """

    def __init__(self, agent: str, candidates: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(f"agent {agent!r} has {len(candidates)} calls; pass a channel name")
        self.agent = agent
        self.candidates = [dict(c) for c in candidates]


class ProtocolError(PBXISError):
    """The peer broke the AMI protocol (internal; triggers a reconnect)."""
