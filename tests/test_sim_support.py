"""Support for the simulator tests: a raw AMI socket client (no tests here).

Every wait is a socket read with a timeout; nothing sleeps.
"""
from __future__ import annotations

import socket
from collections import deque
from typing import Any

from pbxis.protocol import Banner, Message, Parser, encode_action

__all__ = ["RawAmi"]


class RawAmi:
    """A line-level AMI client: send actions, read frames, collect events."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.parser = Parser()
        self.frames: deque[object] = deque()
        self.events: list[Message] = []
        self.eof = False
        self._seq = 0

    # -- io
    def _fill(self, timeout: float | None) -> bool:
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
        self.frames.extend(self.parser.feed(data))
        return True

    def next_frame(self, timeout: float | None = None) -> object:
        while not self.frames:
            if self.eof:
                raise EOFError("server closed the connection")
            if not self._fill(timeout):
                raise TimeoutError("no frame in time")
        return self.frames.popleft()

    def banner(self) -> Banner:
        frame = self.next_frame()
        assert isinstance(frame, Banner), frame
        return frame

    def send(self, name: str, action_id: str | None = None, **headers: Any) -> str:
        if action_id is None:
            self._seq += 1
            action_id = f"t-{self._seq}"
        self.sock.sendall(encode_action(name, action_id or None, headers))
        return action_id

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    # -- reading
    def response(self, action_id: str | None, timeout: float | None = None) -> Message:
        """The response with this ActionID (events read meanwhile go to ``events``)."""
        while True:
            frame = self.next_frame(timeout)
            if not isinstance(frame, Message):
                continue
            if frame.response is not None and frame.get("ActionID") == action_id:
                return frame
            self.events.append(frame)

    def any_response(self, timeout: float | None = None) -> Message:
        while True:
            frame = self.next_frame(timeout)
            if isinstance(frame, Message) and frame.response is not None:
                return frame
            if isinstance(frame, Message):
                self.events.append(frame)

    def action(self, name: str, **headers: Any) -> Message:
        return self.response(self.send(name, **headers))

    def list_action(self, name: str, **headers: Any) -> tuple[Message, list[Message],
                                                                  Message]:
        """Send a list action; returns (response, items, *Complete event)."""
        aid = self.send(name, **headers)
        resp = self.response(aid)
        items: list[Message] = []
        while True:
            frame = self.next_frame()
            if not isinstance(frame, Message):
                continue
            if frame.get("ActionID") != aid:
                self.events.append(frame)
                continue
            if frame.get("EventList") == "Complete":
                return resp, items, frame
            items.append(frame)

    def event(self, name: str, timeout: float | None = None, **match: str) -> Message:
        """The next event called ``name`` (whose headers match ``match``)."""
        for i, ev in enumerate(self.events):
            if ev.event == name and all(ev.get(k) == v for k, v in match.items()):
                del self.events[: i + 1]
                return ev
        self.events.clear()
        while True:
            frame = self.next_frame(timeout)
            if isinstance(frame, Message) and frame.event == name and all(
                    frame.get(k) == v for k, v in match.items()):
                return frame
            if isinstance(frame, Message):
                self.events.append(frame)

    def drain(self, timeout: float = 0.2) -> list[Message]:
        """Everything that arrives until the line is quiet for ``timeout`` seconds."""
        out = list(self.events)
        self.events.clear()
        while True:
            try:
                frame = self.next_frame(timeout)
            except (TimeoutError, EOFError):
                return out
            if isinstance(frame, Message):
                out.append(frame)

    def wait_eof(self, timeout: float = 5.0) -> bool:
        while not self.eof:
            try:
                self.next_frame(timeout)
            except EOFError:
                return True
            except TimeoutError:
                return False
        return True

    def login(self, user: str = "pbxis", secret: str = "pbxis-secret",
              events: str = "on") -> Message:
        self.banner()
        return self.action("Login", Username=user, Secret=secret, Events=events)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
