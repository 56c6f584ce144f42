"""Named, scripted call-center scenarios for tests, benchmarks and the demo.

Each scenario builds a ``SimulatedPbx`` set up like the recording lab of
the matching transcript in shared/ami-transcripts (times are virtual
seconds from the first ``advance``). ``busy`` and ``scale`` start random
traffic. Pure; imports config and pbx.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from .config import AgentSpec, QueueSpec, default_agents, scaled
from .pbx import BusyProfile, SimulatedPbx

__all__ = ["Scenario", "SCENARIOS", "create", "names", "DEMO_PROFILE"]

#: The demo's random traffic: a few calls a minute, alive within seconds.
DEMO_PROFILE = BusyProfile(calls_per_minute=8.0, talk=(6.0, 25.0), patience=(15.0, 60.0),
                           ring=(1.0, 4.0), noanswer=0.05, agent_hangup=0.3,
                           pause_every=60.0, pause_for=(6.0, 20.0))


@dataclass(frozen=True)
class Scenario:
    """A named set-up: ``build(seed, start_time, noise)`` returns the PBX."""

    name: str
    description: str
    build: Callable[[int | None, float | None, bool], SimulatedPbx]
    #: Virtual seconds after which the scripted part is over (0: open-ended).
    duration: float = 0.0


def _lab_queues(paused_1002: bool = True) -> list[QueueSpec]:
    paused = {"1002": "not-in-this-test"} if paused_1002 else {}
    return [QueueSpec("sales", "ringall", ("1001", "1002"), paused=paused),
            QueueSpec("support", "rrmemory", ("1002", "1003"))]


def _agents(changes: Mapping[str, Mapping[str, Any]] | None = None) -> list[AgentSpec]:
    out = []
    for spec in default_agents():
        fields = dict((changes or {}).get(spec.ext, {}))
        out.append(AgentSpec(spec.ext, spec.name, **fields))
    return out


def _call_answered(seed: int | None, start: float | None, noise: bool) -> SimulatedPbx:
    pbx = SimulatedPbx(_agents(), _lab_queues(), seed=seed, start_time=start, noise=noise)
    pbx.place_call("sales", delay=1.0, caller_num="555011", talk=5.0)
    return pbx


def _agent_hangup(seed: int | None, start: float | None, noise: bool) -> SimulatedPbx:
    pbx = SimulatedPbx(_agents(), _lab_queues(), seed=seed, start_time=start, noise=noise)
    pbx.place_call("sales", delay=1.0, caller_num="555011", talk=60.0, agent_talk=5.0)
    return pbx


def _abandon(seed: int | None, start: float | None, noise: bool) -> SimulatedPbx:
    agents = _agents({"1001": {"answer_after": 6.0}})
    pbx = SimulatedPbx(agents, _lab_queues(), seed=seed, start_time=start, noise=noise)
    pbx.place_call("sales", delay=1.0, caller_num="555011", talk=3.0)
    pbx.place_call("sales", delay=4.0, caller_num="555021", patience=2.5, talk=3.0)
    return pbx


def _pause(seed: int | None, start: float | None, noise: bool) -> SimulatedPbx:
    agents = _agents({"1001": {"answer_after": 1.0}})
    pbx = SimulatedPbx(agents, _lab_queues(), seed=seed, start_time=start, noise=noise)
    pbx.at(0.0, lambda: pbx.pause("1001", "sales", "break"))
    pbx.place_call("sales", delay=1.0, caller_num="555011", talk=3.0)
    # The caller polls once a second from t=1 (see QueueFlows._poll_waiting):
    # unpaused at 7.5 s, 1001 rings at 8 s.
    pbx.at(7.5, lambda: pbx.unpause("1001", "sales"))
    return pbx


def _ring_noanswer(seed: int | None, start: float | None, noise: bool) -> SimulatedPbx:
    agents = _agents({"1001": {"answer_after": None}})
    pbx = SimulatedPbx(agents, _lab_queues(), seed=seed, start_time=start, noise=noise)
    pbx.place_call("sales", delay=1.0, caller_num="555011", patience=14.0, talk=3.0)
    return pbx


def _agent_busy(seed: int | None, start: float | None, noise: bool) -> SimulatedPbx:
    agents = _agents({"1001": {"busy": True}})
    pbx = SimulatedPbx(agents, _lab_queues(), seed=seed, start_time=start, noise=noise)
    pbx.place_call("sales", delay=1.0, caller_num="555011", patience=6.0, talk=3.0)
    return pbx


def _originate_failure(seed: int | None, start: float | None,
                       noise: bool) -> SimulatedPbx:
    # g-originate: 1001 answers after 1 s, 1002 never answers, 1003 is unplugged.
    agents = _agents({"1001": {"answer_after": 1.0}, "1002": {"answer_after": None},
                        "1003": {"reachable": False}})
    return SimulatedPbx(agents, _lab_queues(False), seed=seed, start_time=start, noise=noise)


def _idle(seed: int | None, start: float | None, noise: bool) -> SimulatedPbx:
    return SimulatedPbx(seed=seed, start_time=start, noise=noise)


def _busy(seed: int | None, start: float | None, noise: bool) -> SimulatedPbx:
    pbx = SimulatedPbx(seed=seed, start_time=start, noise=noise)
    pbx.start_busy(DEMO_PROFILE)
    return pbx


def _scale(seed: int | None, start: float | None, noise: bool) -> SimulatedPbx:
    agents, queues = scaled(1000, 50)
    pbx = SimulatedPbx(agents, queues, seed=seed, start_time=start, noise=noise)
    pbx.start_busy(BusyProfile(calls_per_minute=600.0, talk=(20.0, 120.0),
                               patience=(20.0, 120.0), pause_every=600.0))
    return pbx


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("call-answered", "1 caller to sales; 1001 answers after 2 s, talks 5 s, the "
             "caller hangs up (c-call-caller-hangup)", _call_answered, 10.0),
    Scenario("agent-hangup", "like call-answered, but the agent hangs up after 5 s "
             "(d-call-agent-hangup)", _agent_hangup, 10.0),
    Scenario("abandon", "two callers wait in sales; the second gives up after 2.5 s, the "
             "first is answered after 6 s (e-abandon-two-waiting)", _abandon, 12.0),
    Scenario("pause", "1001 paused (break) in sales; a caller waits until 1001 is "
             "unpaused at 7.5 s and rung at its next poll, 8 s (f3-paused-wait)", _pause, 14.0),
    Scenario("ring-noanswer", "1001 rings and never answers; the caller abandons after 14 s "
             "(f1-ring-noanswer)", _ring_noanswer, 16.0),
    Scenario("agent-busy", "1001 answers 486 Busy; the caller abandons after 6 s "
             "(f2-agent-busy)", _agent_busy, 8.0),
    Scenario("originate-failure", "1003 is unplugged and 1002 never answers: Originate to "
             "them fails (g-originate)", _originate_failure, 0.0),
    Scenario("idle", "the lab's PBX, no traffic", _idle, 0.0),
    Scenario("busy", "random traffic for the demo: a few calls a minute, breaks", _busy, 0.0),
    Scenario("scale", "1000 agents in 50 queues, ~10 calls a second", _scale, 0.0),
)}


def names() -> list[str]:
    """The scenario names."""
    return list(SCENARIOS)


def create(name: str, *, seed: int | None = 0, start_time: float | None = None,
           noise: bool = True) -> SimulatedPbx:
    """Build the named scenario's PBX.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    try:
        scenario = SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
    return scenario.build(seed, start_time, noise)
