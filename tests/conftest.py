"""Shared fixtures: the real-Asterisk lab (session-wide) and a pbxis client on it.

The lab needs root, the Asterisk chroot and sipp (``tests/harness/provision.sh``
provides all three). Where they are missing, live tests fail under CI (or with
PBXIS_REQUIRE_LAB=1) and are skipped elsewhere with the reason, so a
developer without root can still run ``pytest -m "not asterisk"``.
"""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent
for path in (str(REPO), str(TESTS_DIR)):
    if path not in sys.path:
        sys.path.insert(0, path)

from harness import lab as lab_module  # noqa: E402

VERSION = os.environ.get("PBXIS_ASTERISK_VERSION", "22")
LAB_REQUIRED = os.environ.get("CI") == "true" or os.environ.get("PBXIS_REQUIRE_LAB") == "1"


def _lab_unavailable(reason: str) -> None:
    if LAB_REQUIRED:
        pytest.fail(f"real Asterisk required but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def running_lab() -> Iterator[lab_module.Lab]:
    """Asterisk (version from PBXIS_ASTERISK_VERSION) with agent phones 1001-1003."""
    missing = lab_module.missing_requirements(VERSION)
    if missing:
        _lab_unavailable(
            "live lab needs " + ", ".join(missing) + " (run tests/harness/provision.sh as root)"
        )
    with lab_module.Lab(VERSION) as the_lab:
        the_lab.start(agents=("1001", "1002", "1003"), mode="answer", answer_after=1.0)
        yield the_lab


@pytest.fixture
def lab(running_lab: lab_module.Lab) -> Iterator[lab_module.Lab]:
    """The running lab with every phone reachable; reset (no calls, phones
    answering) after each test."""
    if not running_lab.asterisk.running:
        running_lab.asterisk.start()
    # A phone restarted by the previous test's reset may not be qualified yet:
    # a call to it would fail as UNAVAILABLE.
    running_lab.wait_reachable("1001", "1002", "1003")
    yield running_lab
    running_lab.reset()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Real-Asterisk tests get up to two reruns: a real PBX with SIP phones has
    timing no test can pin down (e.g. the order of a restart's first events).
    A rerun is reported in the summary, so flakiness stays visible."""
    if not config.pluginmanager.hasplugin("rerunfailures"):
        return
    for item in items:
        if item.get_closest_marker("asterisk") and not item.get_closest_marker("flaky"):
            item.add_marker(pytest.mark.flaky(reruns=2, reruns_delay=1))


@pytest.fixture
def ami_url(lab: lab_module.Lab) -> str:
    secret = lab_module.MANAGER_USERS["pbxis"]
    return f"ami://pbxis:{secret}@{lab_module.AMI_HOST}:{lab_module.AMI_PORT}"


@pytest.fixture
def pbx(ami_url: str) -> Iterator[object]:
    import pbxis

    with pbxis.connect(ami_url, keepalive=2.0, reconnect_base=0.2, reconnect_cap=1.0) as client:
        yield client


def pbxis_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pbxis-")]


def wait_event(channel, predicate, timeout: float = 15.0, what: str = "event", seen=None):
    """Read ``channel`` until ``predicate(event)``; return that event.

    Every event read is appended to ``seen`` (a list) when given. Fails with
    the events read so far when ``timeout`` passes.
    """
    import queue as _queue
    import time as _time

    deadline = _time.monotonic() + timeout
    got = [] if seen is None else seen
    while True:
        remaining = deadline - _time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {what} within {timeout} s; got {[e.to_dict() for e in got]}")
        try:
            ev = channel.get(timeout=remaining)
        except _queue.Empty:
            continue
        got.append(ev)
        if predicate(ev):
            return ev
