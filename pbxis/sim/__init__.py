"""pbxis.sim: a simulated Asterisk 22 PBX that speaks real AMI bytes.

A loopback TCP AMI server (``SimServer``) in front of a deterministic
call-center model (``SimulatedPbx``): agents, queues, callers that wait,
ring, talk and abandon, pauses, Originate/Redirect/Park. Its frames are
shaped like the recordings in shared/ami-transcripts. Used by ``pbxis
demo``, the test-suite and the benchmarks; no Asterisk needed.

    from pbxis.sim import SimServer, scenario
    with SimServer(pbx=scenario.create("call-answered"), speed=0) as server:
        ...connect to server.port, then server.pbx.advance(2.0)...

Layer 5: imports ``pbxis.protocol`` only from the rest of pbxis.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping

from . import scenario
from .config import AgentSpec, QueueSpec, SimUser, default_agents, default_queues, scaled
from .frames import SimEvent
from .pbx import BusyProfile, SimulatedPbx
from .server import ActionHook, Fault, ReceivedAction, SimServer

__all__ = [
    "SimulatedPbx",
    "SimServer",
    "SimEvent",
    "SimUser",
    "AgentSpec",
    "QueueSpec",
    "BusyProfile",
    "Fault",
    "ReceivedAction",
    "ActionHook",
    "default_agents",
    "default_queues",
    "scaled",
    "scenario",
    "serve",
]


def serve(
    port: int = 5038,
    host: str = "127.0.0.1",
    *,
    scenario_name: str = "busy",
    speed: float = 1.0,
    seed: int | None = None,
    users: Mapping[str, str | SimUser] | None = None,
    pbx: SimulatedPbx | None = None,
    noise: bool = True,
    block: bool = False,
) -> SimServer:
    """Start a simulated PBX on ``host:port`` and return the running server.

    Args:
        port: TCP port (0: any free port; read ``server.port``).
        scenario_name: a name from ``scenario.names()`` (default ``busy``:
            random traffic that looks alive within seconds).
        speed: virtual seconds per real second (0: frozen until
            ``server.pbx.advance``).
        seed: random seed (None: different traffic every run).
        users: AMI users, default ``{"pbxis": "pbxis-secret"}``.
        pbx: use this model instead of building ``scenario_name``.
        block: wait until KeyboardInterrupt, then stop the server.
    """
    model = pbx if pbx is not None else scenario.create(scenario_name, seed=seed, noise=noise)
    server = SimServer(host, port, users=users, pbx=model, speed=speed).start()
    if block:
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
    return server
