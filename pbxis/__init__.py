"""pbxis: Asterisk call-center state over AMI, as filtered event streams.

One connection to Asterisk's Manager Interface, digested into a model of
queues and agents; subscribers get ready-to-use events for their agents and
queues, and commands act on calls and queue membership. See README.rst and
API.md.
"""
from __future__ import annotations

from .channels import EventChannel, Subscription
from .client import Pbx, connect
from .commands import Response
from .errors import (
    ActionError,
    ActionTimeout,
    AmbiguousCallError,
    AuthenticationError,
    ConnectError,
    NoCallError,
    NotConnectedError,
    PBXISError,
)
from .events import Event

__version__ = "0.1.0"

#: Alias kept for users of the original (Clojure) pbxis.
ami_connect = connect


def ami_disconnect(pbx: Pbx) -> None:
    """Alias of ``pbx.close()`` kept for users of the original pbxis."""
    pbx.close()


__all__ = [
    "connect",
    "ami_connect",
    "ami_disconnect",
    "Pbx",
    "Event",
    "EventChannel",
    "Subscription",
    "Response",
    "PBXISError",
    "ConnectError",
    "AuthenticationError",
    "NotConnectedError",
    "ActionError",
    "ActionTimeout",
    "NoCallError",
    "AmbiguousCallError",
    "__version__",
]
