"""Connection options: validation, ``ami://`` URL parsing, a repr without secrets.

Imports only ``pbxis.errors``-free stdlib code (layer 0).
"""
from __future__ import annotations

import ssl
from dataclasses import dataclass, fields, replace
from typing import Any, Optional, Union
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["Options", "parse_url", "check_value"]

DEFAULT_PORT = 5038
DEFAULT_TLS_PORT = 5039


def check_value(name: str, value: str) -> str:
    """Return ``value`` unless it holds CR, LF or NUL (AMI injection)."""
    if "\r" in value or "\n" in value or "\x00" in value:
        raise ValueError(f"{name} must not contain CR, LF or NUL")
    return value


@dataclass(frozen=True)
class Options:
    """Everything ``pbxis.connect`` accepts. The secret never shows in ``repr``.

    Attributes:
        host, port, username, secret: where and who.
        location_prefix: prepended to an agent's number to get its interface.
        originate_context, redirect_context: dialplan contexts for commands.
        tls: False, True (verify with system CAs) or an ``ssl.SSLContext``.
        auth: ``"plain"`` or ``"md5"`` (challenge; the secret never crosses the wire).
        connect_timeout: seconds for TCP connect + greeting + login.
        action_timeout: seconds a blocking command waits for its response.
        keepalive: seconds of silence after which pbxis pings; a second silent
            period declares the peer dead. 0 disables.
        reconnect: re-establish a lost link automatically (on by default).
        reconnect_base, reconnect_cap: backoff bounds in seconds.
        server_filter: narrow the events Asterisk sends (``Filter``, or the
            ``Events`` class mask when the user may not filter).
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    username: str = ""
    secret: str = ""
    location_prefix: str = "PJSIP/"
    originate_context: str = "default"
    redirect_context: str = "default"
    tls: Union[bool, ssl.SSLContext] = False
    auth: str = "plain"
    connect_timeout: float = 5.0
    action_timeout: float = 10.0
    keepalive: float = 20.0
    reconnect: bool = True
    reconnect_base: float = 0.5
    reconnect_cap: float = 30.0
    server_filter: bool = True

    def __post_init__(self) -> None:
        for name in ("host", "username", "secret", "location_prefix", "originate_context",
                     "redirect_context"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a str")
            check_value(name, value)
        if not self.host:
            raise ValueError("host must not be empty")
        if not self.username:
            raise ValueError("username must not be empty")
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ValueError("port must be 1..65535")
        if self.auth not in ("plain", "md5"):
            raise ValueError("auth must be 'plain' or 'md5'")
        for name in ("connect_timeout", "action_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        if self.keepalive < 0:
            raise ValueError("keepalive must be >= 0")
        if not 0 < self.reconnect_base <= self.reconnect_cap:
            raise ValueError("need 0 < reconnect_base <= reconnect_cap")

    def ssl_context(self) -> Optional[ssl.SSLContext]:
        """The TLS context to wrap the socket with, or None for plain TCP."""
        if isinstance(self.tls, ssl.SSLContext):
            return self.tls
        return ssl.create_default_context() if self.tls else None

    def with_changes(self, **changes: Any) -> Options:
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            parts.append(f"{f.name}={'***' if f.name == 'secret' and value else value!r}")
        return f"Options({', '.join(parts)})"


_BOOL = {"1": True, "true": True, "yes": True, "on": True,
         "0": False, "false": False, "no": False, "off": False}


def parse_url(url: str, **overrides: Any) -> Options:
    """Parse ``ami://user:secret@host:port`` (``amis://`` for TLS) into Options.

    Query parameters may set options, e.g. ``?auth=md5&keepalive=10``.
    Keyword ``overrides`` win over the URL.
    """
    check_value("url", url)
    parts = urlsplit(url)
    if parts.scheme not in ("ami", "amis"):
        raise ValueError("URL scheme must be ami:// or amis://")
    if not parts.hostname:
        raise ValueError("URL needs a host")
    kwargs: dict[str, Any] = {
        "host": parts.hostname,
        "username": unquote(parts.username or ""),
        "secret": unquote(parts.password or ""),
    }
    tls = parts.scheme == "amis"
    if tls:
        kwargs["tls"] = True
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("URL port must be 1..65535") from exc
    kwargs["port"] = port if port else (DEFAULT_TLS_PORT if tls else DEFAULT_PORT)
    known = {f.name: f for f in fields(Options)}
    for key, values in parse_qs(parts.query, keep_blank_values=True).items():
        if key not in known or key in ("host", "port", "username", "secret"):
            raise ValueError(f"unknown URL option {key!r}")
        raw = values[-1]
        current = getattr(Options, key, None)
        if isinstance(current, bool):
            if raw.lower() not in _BOOL:
                raise ValueError(f"URL option {key} must be a boolean")
            kwargs[key] = _BOOL[raw.lower()]
        elif isinstance(current, float):
            kwargs[key] = float(raw)
        else:
            kwargs[key] = raw
    kwargs.update(overrides)
    return Options(**kwargs)
