"""Commands that act on calls and queues: originate, redirect, park, queue membership.

Layer 3, a mixin of :class:`pbxis.client.Pbx`: each command validates its
arguments (``pbxis.commands``), sends its actions through the client's
``_request`` (blocking, correlated by ActionID) and reads the model under the
client's state lock. Imports only the pure layers and ``pbxis.digest``'s
types; never the client, the transport or the channels.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional

from . import commands
from .actions import ActionResult
from .config import Options, check_value
from .digest import Digest
from .errors import ActionTimeout, AmbiguousCallError, NoCallError
from .protocol import encode_action
from .versions import BRIDGE_WAIT, PAUSE_REASON_AFTER_ADD

__all__ = ["CallControl"]

#: Seconds between two asks while ``park_and_announce`` waits for a bridge.
BRIDGE_POLL = 0.05


class _Target(NamedTuple):
    """What redirect/park act on: the remote channel, the agent's channel
    (None if not known), and whether Asterisk said the two are bridged."""

    remote: str
    agent_channel: Optional[str]
    bridged: bool


class CallControl:
    """originate_call, redirect_call, park_and_announce, queue_action and
    queue_status (mixed into ``Pbx``, which provides the attributes below)."""

    options: Options
    _state_lock: threading.RLock
    _pending_lock: threading.Lock
    _digest: Digest
    _ids: Iterator[str]
    _parked: Dict[str, Future[str]]
    #: Send an action and wait for its result (``Pbx._request``).
    _request: Callable[..., ActionResult]

    def _location(self, agent: str) -> str:
        if not isinstance(agent, str) or not agent.strip():
            raise ValueError("agent must be a non-empty str")
        check_value("agent", agent)
        return self.options.location_prefix + agent

    def originate_call(
        self,
        agent: str,
        phone: str,
        *,
        caller_id: Optional[str] = None,
        variables: Optional[Dict[str, Any]] = None,
    ) -> str:
        """Ring the agent's extension; when answered, dial ``phone`` in ``originate_context``.

        Returns the action id at once (asynchronous Originate). A later
        failure arrives as an ``originateFailed`` event with that id.
        """
        name, headers = commands.originate(
            self._location(agent), self.options.originate_context, phone, caller_id, variables
        )
        action_id = next(self._ids)
        encode_action(name, action_id, headers)  # ValueError before the digest hears of it
        with self._state_lock:
            # Before sending: the OriginateResponse must find the digest ready.
            self._digest.originate_started(action_id, agent, phone)
        result = self._request(name, headers, action_id=action_id)
        commands.check_result(result, "Originate")
        return action_id

    def _resolve(self, agent_or_channel: str, *, agent_side: bool = False) -> _Target:
        """The remote channel to act on, asking Asterisk who is bridged with whom.

        Given a channel, that channel; with ``agent_side`` also the tracked
        agent's channel bridged with it (or dialled with it), if any. Given
        an agent, the other side of each of the agent's answered calls:
        ``BRIDGEPEER``, or the far end of the dial while Asterisk has not
        bridged the answered legs yet (the device goes INUSE before
        BridgeEnter). A ringing leg (a losing ringall leg) is no call.
        """
        if not isinstance(agent_or_channel, str) or not agent_or_channel.strip():
            raise ValueError("agent_or_channel must be a non-empty str")
        check_value("agent_or_channel", agent_or_channel)
        if "/" in agent_or_channel:
            if not agent_side:
                return _Target(agent_or_channel, None, False)
            line = self._line(agent_or_channel)
            with self._state_lock:
                calls = self._digest.all_calls()
            ours = {c.agent_channel for c in calls}
            for peer in line.peers if line else ():
                if peer in ours:
                    return _Target(agent_or_channel, peer, True)
            for call in calls:
                if call.peer == agent_or_channel:
                    return _Target(agent_or_channel, call.agent_channel, False)
            return _Target(agent_or_channel, None, False)
        with self._state_lock:
            known = self._digest.calls_of(agent_or_channel)
        targets: list[_Target] = []
        numbers: list[Optional[str]] = []
        for call in known:
            line = self._line(call.agent_channel)
            if line is None or not line.up:
                continue
            for peer in line.peers:
                targets.append(_Target(peer, call.agent_channel, True))
                numbers.append(call.caller_id_num)
            if not line.peers and call.peer:
                targets.append(_Target(call.peer, call.agent_channel, False))
                numbers.append(call.caller_id_num)
        if not targets:
            raise NoCallError(agent_or_channel)
        if len(targets) > 1:
            raise AmbiguousCallError(
                agent_or_channel,
                [
                    {
                        "agentChannel": t.agent_channel,
                        "bridgedChannel": t.remote,
                        "callerIdNum": number,
                    }
                    for t, number in zip(targets, numbers)
                ],
            )
        return targets[0]

    def _line(self, channel: str) -> Optional[commands.Line]:
        """Asterisk's word on ``channel`` (``Status``): None if it ended.

        A link down or a silent Asterisk raises (``NotConnectedError``,
        ``ActionTimeout``) rather than passing for "no call"."""
        name, headers = commands.channel_status(channel)
        return commands.line_of(self._request(name, headers), channel)

    def redirect_call(self, agent_or_channel: str, destination: str) -> None:
        """Transfer a call to ``destination`` in ``redirect_context``.

        Given a channel name (contains "/"), that channel is redirected; given
        an agent, the remote side of the agent's bridged call.

        Raises:
            NoCallError: the agent has no bridged call.
            AmbiguousCallError: several calls; ``.candidates`` lists them.
            ActionError: Asterisk refused.
        """
        target = self._resolve(agent_or_channel)
        name, headers = commands.redirect(
            target.remote, self.options.redirect_context, destination
        )
        commands.check_result(self._request(name, headers), name)

    def park_and_announce(self, agent_or_channel: str, *, timeout: float = 180) -> str:
        """Park the remote side of the call and announce the space to the agent.

        Returns the parking extension (e.g. ``"701"``). If nobody retrieves the
        call within ``timeout`` seconds it returns to the agent.
        """
        target = self._resolve(agent_or_channel, agent_side=True)
        parkee, agent_channel = target.remote, target.agent_channel
        if agent_channel is not None and not target.bridged:
            self._await_bridge(agent_channel, parkee)
        name, headers = commands.park(parkee, agent_channel, timeout)
        waiter: Future[str] = Future()
        with self._pending_lock:
            self._parked[parkee] = waiter
        try:
            commands.check_result(self._request(name, headers), name)
            return waiter.result(self.options.action_timeout)
        except FutureTimeout:
            raise ActionTimeout("Asterisk confirmed Park but sent no ParkedCall") from None
        finally:
            with self._pending_lock:
                if self._parked.get(parkee) is waiter:
                    del self._parked[parkee]

    def _await_bridge(self, channel: str, other: str) -> None:
        """Wait up to ``BRIDGE_WAIT`` s until Asterisk has both legs in one bridge.

        Asterisk 16 reports the agent's phone in use before it bridges a
        queue call; a Park in between strands the agent's leg
        (``pbxis.versions.BRIDGE_WAIT``). Bridges are not in the event
        stream pbxis receives, so this asks again every ``BRIDGE_POLL`` s:
        only within this command, only in that gap (milliseconds on 22).
        """
        deadline = time.monotonic() + BRIDGE_WAIT
        while True:
            line = self._line(channel)
            if line is None or other in line.peers or time.monotonic() >= deadline:
                return
            time.sleep(BRIDGE_POLL)

    def queue_action(
        self,
        type: str,
        *,
        agent: Optional[str] = None,
        queue: Optional[str] = None,
        member_name: Optional[str] = None,
        paused: Optional[bool] = None,
        reason: Optional[str] = None,
        penalty: Optional[int] = None,
    ) -> None:
        """Manage an agent's queue membership: add, remove, pause, unpause, penalty, reset.

        Returns when Asterisk has accepted. Raises ``ActionError`` with
        Asterisk's message when it refuses, ``ValueError`` for bad arguments.
        """
        location = self._location(agent) if agent is not None else None
        name, headers = commands.queue_action(
            type,
            location=location,
            queue=queue,
            member_name=member_name,
            paused=paused,
            reason=reason,
            penalty=penalty,
        )
        commands.check_result(self._request(name, headers), name)
        if name == "QueueAdd" and paused and reason and PAUSE_REASON_AFTER_ADD:
            # Asterisk 16 ignores QueueAdd's Reason (pbxis.versions): say it again.
            name, headers = commands.queue_action(
                "pause", location=location, queue=queue, reason=reason
            )
            commands.check_result(self._request(name, headers), name)

    def queue_status(self, queue: Optional[str] = None) -> List[Dict[str, Any]]:
        """Asterisk's current view of the queues (one ``QueueStatus`` round trip).

        Returns one dict per queue: its parameters plus ``members`` and
        ``entries`` (waiting callers), all with JSON-ready values.
        """
        name, headers = commands.queue_status(queue)
        result = commands.check_result(self._request(name, headers), name)
        return commands.queue_status_dicts(result.events, self.options.location_prefix)
