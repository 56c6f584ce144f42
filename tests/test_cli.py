"""The ``pbxis`` command (issue 6) against the simulator: every subcommand,
JSON lines that parse, the table, and errors that are one line and never
show the secret or a traceback."""
from __future__ import annotations

import io
import itertools
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import pbxis
from pbxis.cli import main
from pbxis.events import Event
from pbxis.notebook import Board
from pbxis.sim import SimServer, scenario

REPO = Path(__file__).resolve().parents[1]
SECRET = "pbxis-secret"


class Tmux:
    """A program in a real terminal (a detached tmux session of its own).

    ``screen()`` is what a person would see; ``wait_for(text)`` polls it.
    Kept on exit of the program (``remain-on-exit``) until ``close()``.
    """

    def __init__(self, command: str, cwd: Path, env: dict[str, str] | None = None,
                 width: int = 120, height: int = 30) -> None:
        if shutil.which("tmux") is None:
            if os.environ.get("CI") == "true":
                pytest.fail("tmux is missing (provision.sh installs it)")
            pytest.skip("tmux is not installed")
        self.name = f"pbxis-test-{os.getpid()}-{next(Tmux._numbers)}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        shell = f"cd {shlex.quote(str(cwd))} && {exports + ' ' if exports else ''}{command}"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(width),
                        "-y", str(height), "bash", "-c", shell + "; echo \"[exit $?]\"",
                        ";", "set-option", "-t", self.name, "remain-on-exit", "on"],
                       check=True, env={k: v for k, v in os.environ.items() if k != "TMUX"})

    _numbers = itertools.count(1)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name],
                              capture_output=True, text=True).stdout

    def wait_for(self, *texts: str, timeout: float = 30) -> str:
        """Poll the screen until it shows every one of ``texts``; return it."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if all(t in shown for t in texts):
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never showed {texts}:\n{shown}")
            threading.Event().wait(0.1)

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


class Tty(io.StringIO):
    """Captured output that claims to be a terminal (the live table)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def server() -> Iterator[SimServer]:
    with SimServer(pbx=scenario.create("call-answered", seed=0), speed=0) as srv:
        yield srv


def run(*argv: str, out: io.StringIO | None = None) -> tuple[int, str]:
    out = out if out is not None else io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def cli(*argv: str, env: dict[str, str] | None = None,
        timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """The installed command, as a user runs it (``python -m pbxis``)."""
    full_env = {k: v for k, v in os.environ.items() if k != "PBXIS_URL"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "pbxis", *argv], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=REPO)


# -- watch / demo ----------------------------------------------------------------


class Lines(io.StringIO):
    """Captured output that a test can wait on, line by line."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()

    def write(self, text: str) -> int:
        with self.changed:
            n = super().write(text)
            self.changed.notify_all()
        return n

    def wait_for(self, predicate: Callable[[list[str]], bool], timeout: float = 10) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self.getvalue().splitlines()),
                                         timeout)


def test_watch_json_lines_parse_and_follow_the_call(server: SimServer) -> None:
    out = Lines()
    codes: list[int] = []
    watch = threading.Thread(target=lambda: codes.append(run(
        "--url", server.url(), "watch", "--json", "--seconds", "3", out=out)[0]))
    watch.start()
    # The introduction: 14 state events (3 agentName, 3 extensionStatus, 6
    # queueMemberStatus, 2 queueCount); then the call: the caller joins at 1 s,
    # 1001 answers at 3 s, the caller hangs up at 8 s.
    assert out.wait_for(lambda lines: len(lines) >= 14)
    for seconds, shown in ((2, '"status": "ringing"'), (2, '"status": "inuse"'),
                           (6, '"type": "agentComplete"')):
        server.pbx.advance(seconds)  # each step is printed before the next one
        assert out.wait_for(lambda lines, shown=shown: any(shown in line for line in lines))
    watch.join(10)
    assert codes == [0]
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert all(isinstance(e, dict) and "type" in e for e in events)
    assert {"type": "agentName", "agent": "1001", "name": "Alice Anders"} in events[:14]
    live = events[14:]
    assert {"type": "phoneNumber", "agent": "1001", "queue": "sales", "number": "555011",
            "name": "Caller 555011"} in live
    assert {"type": "extensionStatus", "agent": "1001", "status": "inuse"} in live
    assert any(e["type"] == "agentComplete" and e["agent"] == "1001" for e in live)


def test_watch_table_on_a_terminal_is_redrawn_in_place(server: SimServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    server.pbx.advance(3.5)  # 1001 talks to 555011
    out = Tty()
    code, text = run("--url", server.url(), "watch", "--seconds", "0.5", out=out)
    assert code == 0
    assert text.startswith("\x1b[2J\x1b[H")  # cleared once, then redrawn from home
    last = text.rsplit("\x1b[H", 1)[1].replace("\x1b[K", "").replace("\x1b[J", "")
    assert SECRET not in text
    assert "pbxis watch ami://pbxis@127.0.0.1:" in last
    rows = {line.split()[0]: line for line in last.splitlines() if line[:4].isdigit()}
    assert "Alice Anders" in rows["1001"] and "talking" in rows["1001"]
    assert "555011 Caller 555011 (sales)" in rows["1001"]
    assert "paused (not-in-this-test)" in rows["1002"]
    assert "waiting callers  sales: 0, support: 0" in last
    monkeypatch.setenv("COLUMNS", "20")  # lines are cut, never wrapped
    code, text = run("--url", server.url(), "watch", "--seconds", "0.2", out=Tty())
    assert max(len(line) for line in text.replace("\x1b[K", "").replace(
        "\x1b[J", "").replace("\x1b[H", "").replace("\x1b[2J", "").splitlines()) <= 20


def test_watch_scope_options(server: SimServer) -> None:
    code, text = run("--url", server.url(), "watch", "--agents", "1003", "--queues",
                     "support", "--json", "--seconds", "0.3")
    assert code == 0
    events = [json.loads(line) for line in text.splitlines()]
    assert events and all(e.get("agent") in (None, "1003") for e in events)
    assert all(e.get("queue") in (None, "support") for e in events)


def test_demo_json_without_asterisk() -> None:
    proc = cli("demo", "--json", "--seconds", "2", "--speed", "5")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {e["type"] for e in events} >= {"agentName", "queueMemberStatus", "queueCount",
                                           "extensionStatus", "phoneNumber"}


def test_demo_table_when_not_a_terminal() -> None:
    proc = cli("demo", "--seconds", "1", "--scenario", "idle")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout  # printed once, plainly
    assert "pbxis demo: simulated PBX, scenario idle" in proc.stdout
    assert "Carol Clark" in proc.stdout


def test_demo_unknown_scenario() -> None:
    proc = cli("demo", "--scenario", "nope")
    assert proc.returncode == 2
    assert proc.stderr.startswith("pbxis: unknown scenario 'nope'; known: call-answered")


# -- one-shot commands --------------------------------------------------------


def test_status_text_and_json(server: SimServer) -> None:
    code, text = run("--url", server.url(), "status")
    assert code == 0
    assert text.splitlines()[0] == "sales: 0 waiting, 0 completed, 0 abandoned"
    assert "paused (not-in-this-test)" in text
    code, text = run("--url", server.url(), "status", "--queue", "support", "--json")
    status = json.loads(text)
    assert [q["queue"] for q in status] == ["support"]
    assert {m["agent"] for m in status[0]["members"]} == {"1002", "1003"}


def test_queue_commands_and_originate(server: SimServer) -> None:
    url = server.url()
    assert run("--url", url, "queue", "add", "1003", "sales", "--name", "Carol") == (
        0, "add 1003 sales: ok\n")
    assert run("--url", url, "queue", "pause", "1003", "sales", "--reason", "lunch")[0] == 0
    member = next(m for q in pbxis_status(url, "sales") for m in q["members"]
                  if m["agent"] == "1003")
    assert (member["paused"], member["pausedReason"]) == (True, "lunch")
    assert run("--url", url, "queue", "unpause", "1003", "sales")[0] == 0
    assert run("--url", url, "queue", "remove", "1003", "sales")[0] == 0
    code, text = run("--url", url, "originate", "1001", "5551234")
    assert code == 0 and text.startswith("originate sent: pbxis-")
    assert server.wait_for_action("Originate", timeout=5)


def pbxis_status(url: str, queue: str) -> list[dict[str, object]]:
    with pbxis.connect(url) as pbx:
        return pbx.queue_status(queue)


def test_refused_queue_action_is_one_line(server: SimServer) -> None:
    proc = cli("queue", "remove", "1003", "sales", env={"PBXIS_URL": server.url()})
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("pbxis: ") and SECRET not in proc.stderr


# -- connection errors: one line, exit 1 (2 for usage), no secret ------------------


def _one_line_error(proc: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "topsecret" not in proc.stderr + proc.stdout
    return proc.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_host() -> None:
    port = _closed_port()
    err = _one_line_error(cli("--url", f"ami://pbxis:topsecret@127.0.0.1:{port}", "status"))
    assert err == (f"pbxis: cannot connect to 127.0.0.1:{port}: Connection refused "
                   f"(ami://pbxis@127.0.0.1:{port})\n")


def test_silent_server_times_out() -> None:
    with socket.socket() as listener:  # accepts, never greets
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        err = _one_line_error(cli("--url", f"ami://u:topsecret@127.0.0.1:{port}?"
                                  "connect_timeout=0.5", "status"))
    assert err.startswith("pbxis: ") and f"127.0.0.1:{port}" in err


def test_wrong_secret(server: SimServer) -> None:
    err = _one_line_error(cli("--url", f"ami://pbxis:topsecret@127.0.0.1:{server.port}",
                              "status"))
    assert "Authentication failed" in err


@pytest.mark.parametrize("url, message", [
    ("http://pbxis:topsecret@127.0.0.1", "URL scheme must be ami:// or amis://"),
    ("ami://pbxis:topsecret@127.0.0.1:99999", "URL port must be 1..65535"),
    ("ami://pbxis:topsecret@127.0.0.1?nosuch=1", "unknown URL option 'nosuch'"),
    ("ami://:topsecret@127.0.0.1", "username must not be empty"),
])
def test_bad_url(url: str, message: str) -> None:
    assert message in _one_line_error(cli("--url", url, "status"))


def test_missing_url() -> None:
    err = _one_line_error(cli("status"), code=2)
    assert err.startswith("pbxis: no AMI URL: pass --url")


def test_url_from_environment(server: SimServer) -> None:
    proc = cli("status", "--json", env={"PBXIS_URL": server.url()})
    assert proc.returncode == 0, proc.stderr
    assert [q["queue"] for q in json.loads(proc.stdout)] == ["sales", "support"]


def test_usage_errors_exit_2() -> None:
    proc = cli("queue", "explode", "1001", "sales")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert cli("--version").stdout == f"pbxis {pbxis.__version__}\n"


def test_broken_pipe_is_quiet() -> None:
    with subprocess.Popen([sys.executable, "-m", "pbxis", "demo", "--json", "--speed", "5"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        assert json.loads(first)["type"]
        proc.stdout.close()  # like `| head -1`
        assert proc.wait(30) == 0
        assert proc.stderr.read() == b""


# -- the Board ------------------------------------------------------------------


def test_board_folds_events_into_rows() -> None:
    board = Board(["1001", "1002"], ["sales"])
    for ev in [Event("agentName", "1001", name="Alice Anders"),
               Event("extensionStatus", "1001", status="ringing"),
               Event("queueMemberStatus", "1001", "sales", status="ringing"),
               Event("phoneNumber", "1001", "sales", number="555011", name="Caller 555011"),
               Event("queueMemberStatus", "1002", "sales", status="paused", reason="lunch"),
               Event("queueCount", queue="sales", count=1)]:
        board.apply(ev)
    text = board.render()
    assert text.splitlines()[0].split() == ["agent", "name", "phone", "caller", "sales", "done"]
    assert "1001   Alice Anders  ringing  555011 Caller 555011 (sales)  ringing" in text
    assert "paused (lunch)" in text and "waiting callers  sales: 1" in text
    board.apply(Event("phoneNumber", "1001", number=None, name=None))
    board.apply(Event("agentComplete", "1001", uniqueId="1.1", talkTime=3, holdTime=1,
                      recording=None))
    assert board.number == {} and board.completed == {"1001": 1}
    html = board._repr_html_()
    assert html.startswith("<table class='pbxis-board'>") and "paused (lunch)" in html
    board.apply(Event("agentName", "1002", name="<b>Bob</b>"))
    assert "&lt;b&gt;Bob&lt;/b&gt;" in board.to_html()  # escaped


def test_board_from_snapshot(server: SimServer) -> None:
    server.pbx.advance(3.5)
    with pbxis.connect(server.url()) as pbx:
        ch = pbx.event_channel(agents=["1001", "1002", "1003"], queues=["sales", "support"])
        wanted = {("extensionStatus", a) for a in ("1001", "1002", "1003")}
        wanted.add(("phoneNumber", "1001"))
        seen: set[tuple[str, str | None]] = set()
        while not wanted <= seen:  # the introduction is complete
            ev = ch.get(timeout=5)
            seen.add((ev.type, ev.agent))
        board = Board.from_snapshot(pbx.snapshot())
    assert board.agents == ["1001", "1002", "1003"] and board.queues == ["sales", "support"]
    assert board.extension["1001"] == "inuse"
    assert board.number["1001"] == "555011 Caller 555011 (sales)"
    assert board.member[("1001", "support")] == "loggedoff"
