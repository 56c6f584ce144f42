"""The examples run as a user runs them, against the simulated PBX (issue 6):
``examples/agent_events.py``, the Django command ``manage.py pbxis_watch``
and the notebook ``examples/wallboard.ipynb`` (executed headless).

Needs the ``test`` extra's Django, nbclient, nbformat and ipykernel.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pbxis.sim import SimServer, scenario

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PBXIS_URL"}
    env.update(extra)
    return env


class Running:
    """A process whose stdout lines a test can wait for (a reader thread)."""

    def __init__(self, args: list[str], **kwargs: object) -> None:
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, **kwargs)  # type: ignore[call-overload]
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def expect(self, text: str, timeout: float = 15) -> str:
        """The first line (from now on) containing ``text``."""
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} within {timeout} s; got "
                                     f"{self.lines}") from None
            self.lines.append(line)
            if text in line:
                return line

    def finish(self, timeout: float = 15) -> tuple[int, str]:
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        assert self.proc.stderr is not None
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.finish()


@pytest.fixture
def server() -> Iterator[SimServer]:
    with SimServer(pbx=scenario.create("call-answered", seed=0), speed=0) as srv:
        yield srv


def test_agent_events_script_follows_one_agent(server: SimServer) -> None:
    script = Running([sys.executable, str(EXAMPLES / "agent_events.py"), "1001", server.url()],
                     env=_env())
    try:
        assert script.expect("agentName").endswith("agentName name=Alice Anders")
        script.expect("queueMemberStatus queue=sales status=not_inuse")
        script.expect("extensionStatus status=not_inuse")
        server.pbx.advance(2.0)  # the caller joins sales, 1001 rings
        script.expect("phoneNumber queue=sales number=555011 name=Caller 555011")
        server.pbx.advance(2.0)
        script.expect("extensionStatus status=inuse")
        server.pbx.advance(6.0)
        assert "talkTime=5 holdTime=2" in script.expect("agentComplete")
        script.expect("extensionStatus status=not_inuse")
        script.proc.send_signal(signal.SIGINT)  # Ctrl-C
        code, err = script.finish()
    finally:
        script.kill()
    assert (code, err) == (0, "")
    assert all(" 1002" not in line and "support" not in line for line in script.lines)


def test_agent_events_script_takes_the_url_from_the_environment(server: SimServer) -> None:
    script = Running([sys.executable, str(EXAMPLES / "agent_events.py"), "1003"],
                     env=_env(PBXIS_URL=server.url()))
    try:
        script.expect("agentName name=Carol Clark")
        script.proc.send_signal(signal.SIGINT)
        assert script.finish() == (0, "")
    finally:
        script.kill()
    proc = subprocess.run([sys.executable, str(EXAMPLES / "agent_events.py"), "1003"],
                          capture_output=True, text=True, env=_env(), timeout=30)
    assert (proc.returncode, proc.stderr) == (2, "no URL: pass one, or set PBXIS_URL\n")


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], capture_output=True,
                          text=True, env=env, timeout=60, cwd=EXAMPLES / "django_site")


def test_django_management_command(server: SimServer) -> None:
    proc = _manage("pbxis_watch", "--json", "--seconds", "1",
                   env=_env(PBXIS_URL=server.url()))
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {"type": "agentName", "agent": "1003", "name": "Carol Clark"} in events
    assert {"type": "queueMemberStatus", "agent": "1002", "queue": "sales",
            "status": "paused", "reason": "not-in-this-test"} in events
    assert {"type": "queueCount", "queue": "support", "count": 0} in events

    server.pbx.advance(3.5)  # 1001 is talking to 555011
    proc = _manage("pbxis_watch", "--agents", "1001", "--queues", "sales", "--seconds", "1",
                   "--url", server.url(), env=_env())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.split() == ["extensionStatus", "1001", "status=inuse"] for line in lines)
    assert any(line.startswith("phoneNumber") and "number=555011" in line for line in lines)


def test_django_command_without_url_is_a_command_error() -> None:
    proc = _manage("pbxis_watch", "--seconds", "1", env=_env())
    assert proc.returncode == 1
    assert proc.stderr == "CommandError: no AMI URL: set PBXIS_URL or pass --url\n"


RUN_NOTEBOOK = """
import sys
import nbclient
import nbformat

nb = nbformat.read(sys.argv[1], as_version=4)
nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
nbformat.write(nb, sys.argv[2])
"""


def _joined(output: dict[str, Any]) -> dict[str, Any]:
    """An output with its multi-line strings (stored as lists) joined."""
    data = {k: "".join(v) if isinstance(v, list) else v
            for k, v in output.get("data", {}).items()}
    return {**output, "data": data}


def test_wallboard_notebook_runs_headless(tmp_path: Path) -> None:
    out = tmp_path / "wallboard.ipynb"
    proc = subprocess.run([sys.executable, "-c", RUN_NOTEBOOK, str(EXAMPLES / "wallboard.ipynb"),
                           str(out)], capture_output=True, text=True, env=_env(),
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cells = [c for c in json.loads(out.read_text())["cells"] if c["cell_type"] == "code"]
    outputs = [[_joined(o) for o in c["outputs"]] for c in cells]
    assert not [o for cell in outputs for o in cell if o["output_type"] == "error"]
    # The live wallboard: one display, updated in place while the notebook ran.
    (live,) = outputs[1]
    assert live["output_type"] == "display_data"
    html = live["data"]["text/html"]
    assert html.startswith("<table class='pbxis-board'>")
    assert "Alice Anders" in html and "Caller 555" in html  # a caller reached an agent
    assert "Caller 555" in live["data"]["text/plain"]
    # wait_until returned True; the snapshot renders as a table too.
    assert outputs[2][0]["data"]["text/plain"] == "True"
    assert outputs[3][0]["data"]["text/html"].startswith("<table class='pbxis-board'>")
    statuses = outputs[4][0]["data"]["text/plain"]
    assert all(agent in statuses for agent in ("'1001'", "'1002'", "'1003'"))
