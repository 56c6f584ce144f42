"""The ``pbxis`` command against real Asterisk 22 (issue 6): ``watch`` in a
real terminal (tmux) shows a caller appear and agents' statuses change;
``watch --json`` lines parse; ``status``, ``queue`` and ``originate`` act on
the lab."""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from harness import lab as lab_module
from test_cli import Tmux

pytestmark = pytest.mark.asterisk

REPO = Path(__file__).resolve().parents[2]
PBXIS = [sys.executable, "-m", "pbxis"]


def pbxis_cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PBXIS_URL"}
    env["PBXIS_URL"] = url
    return subprocess.run([*PBXIS, *args], capture_output=True, text=True, env=env,
                          timeout=60, cwd=REPO)


def row(screen: str, agent: str) -> str:
    return next((line for line in screen.splitlines() if line.startswith(agent + " ")), "")


def test_watch_in_a_terminal_shows_the_caller_and_the_agents(lab, ami_url):
    assert pbxis_cli("queue", "pause", "1002", "sales", "--reason", "cli-test",
                     url=ami_url).stdout == "pause 1002 sales: ok\n"
    lab.phone("1001", answer_after=3.0)
    term = Tmux(f"{sys.executable} -m pbxis watch", cwd=REPO, env={"PBXIS_URL": ami_url})
    try:
        screen = term.wait_for("pbxis watch ami://pbxis@127.0.0.1:5038", "Carol Clark",
                               "waiting callers  sales: 0, support: 0")
        assert "pbxis-secret" not in screen
        assert "ready" in row(screen, "1001") and "paused (cli-test)" in row(screen, "1002")

        lab.call("sales", number="555011", talk=4)
        screen = term.wait_for("sales: 1,", "555011 Caller 555011 (sales)")
        assert "ringing" in row(screen, "1001")
        assert "555011" in row(screen, "1001")
        screen = term.wait_for("talking", "sales: 0,")
        assert "talking" in row(screen, "1001") and "555011" in row(screen, "1001")
        # the caller hangs up: 1001 is ready again, no caller, one call done
        lab_module.wait_until(lambda: row(term.screen(), "1001").split()[3:]
                              == ["ready", "ready", "-", "1"], 20, "1001 ready again")
        term.keys("C-c")
        screen = term.wait_for("[exit 130]")
        assert "Traceback" not in screen
    finally:
        term.close()
        pbxis_cli("queue", "unpause", "1002", "sales", url=ami_url)


def test_watch_json_lines_parse_during_a_call(lab, ami_url):
    env = {k: v for k, v in os.environ.items() if k != "PBXIS_URL"}
    proc = subprocess.Popen([*PBXIS, "--url", ami_url, "watch", "--json", "--agents",
                             "1001,1002", "--queues", "sales"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    events = []

    def until(predicate, what: str, timeout: float = 30):
        while True:
            try:
                line = lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {what}; got {events}") from None
            events.append(json.loads(line))  # every line is one JSON object
            if predicate(events[-1]):
                return events[-1]

    try:
        until(lambda e: e == {"type": "extensionStatus", "agent": "1002",
                              "status": "not_inuse"} or len(events) >= 7, "introduction")
        lab.call("sales", number="555012", talk=2)
        until(lambda e: e["type"] == "agentComplete", "agentComplete")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 130
        reader.join(5)
        while not lines.empty():
            events.append(json.loads(lines.get()))
        assert proc.stderr is not None
        assert proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert {"type": "queueCount", "queue": "sales", "count": 1} in events
    assert any(e["type"] == "phoneNumber" and e.get("number") == "555012" for e in events)
    done = next(e for e in events if e["type"] == "agentComplete")
    assert done["agent"] in ("1001", "1002") and done["talkTime"] >= 1


def test_status_queue_and_originate(lab, ami_url):
    status = json.loads(pbxis_cli("status", "--json", url=ami_url).stdout)
    members = {q["queue"]: sorted(m["agent"] for m in q["members"]) for q in status}
    assert members == {"sales": ["1001", "1002"], "support": ["1002", "1003"]}

    assert pbxis_cli("queue", "add", "1003", "sales", "--name", "Carol Clark",
                     url=ami_url).returncode == 0
    try:
        text = pbxis_cli("status", "--queue", "sales", url=ami_url).stdout
        assert "1003     Carol Clark" in text
        refused = pbxis_cli("queue", "add", "1003", "sales", url=ami_url)
        assert refused.returncode == 1 and "Already there" in refused.stderr
        assert refused.stderr.count("\n") == 1
    finally:
        assert pbxis_cli("queue", "remove", "1003", "sales", url=ami_url).returncode == 0

    sent = pbxis_cli("originate", "1001", "5551234", url=ami_url)
    assert sent.returncode == 0 and sent.stdout.startswith("originate sent: pbxis-")
    lab_module.wait_until(lambda: "5551234" in lab.outside.numbers(), 15, "the outside rung")
