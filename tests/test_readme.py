"""README.rst stays true: its first command works on a clean clone, and its
lists (options, events, command-line) match the code.

``test_first_command_on_a_clean_clone`` clones the repository's committed
HEAD (so it checks what is committed, as CI's clean clone is), runs the
README's first command in it exactly (in a fresh virtualenv, installing
from the package registry), then ``pbxis demo`` as written in a real
terminal.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from test_cli import Tmux

import pbxis.events
from pbxis.cli import _parser
from pbxis.config import Options

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.rst").read_text()

FIRST = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/pbxis demo"
TESTS = "bash tests/harness/provision.sh && .venv/bin/python -m pytest"


def literal_blocks(text: str) -> list[str]:
    """The contents of the ``::`` literal blocks, in order (dedented)."""
    blocks = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.rstrip().endswith("::") and not line.lstrip().startswith(".."):
            body = []
            for following in lines[i + 1:]:
                if following.strip() and not following.startswith("    "):
                    break
                body.append(following[4:])
            blocks.append("\n".join(body).strip())
    return blocks


def section(title: str) -> str:
    start = README.index(f"\n{title}\n{'-' * len(title)}\n")
    end = README.find("\n-----", start + len(title) + 10)
    return README[start:README.rfind("\n\n", 0, end)] if end != -1 else README[start:]


def test_readme_opens_with_the_two_commands() -> None:
    assert literal_blocks(README)[:2] == [FIRST, TESTS]
    assert README.index(FIRST) < README.index("What pbxis is")


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash tests/harness/provision.sh" in ci
    assert ".venv/bin/python -m pytest" in ci


def test_readme_is_valid_restructuredtext() -> None:
    from docutils.core import publish_doctree

    publish_doctree(README, settings_overrides={"halt_level": 2, "report_level": 2,
                                                "warning_stream": False})


def test_options_table_lists_every_option() -> None:
    table = section("Connecting")
    documented = re.findall(r"^``(\w+)``\s{2,}", table, flags=re.M)
    assert documented == [f.name for f in dataclasses.fields(Options)]
    for f in dataclasses.fields(Options):
        if f.default not in ("", None) and not isinstance(f.default, bool):
            row = next(line for line in table.splitlines() if line.startswith(f"``{f.name}``"))
            shown = str(f.default).rstrip("/") if f.name != "location_prefix" else f.default
            assert str(shown) in row, (f.name, row)


def test_events_section_lists_every_event_type() -> None:
    names = {getattr(pbxis.events, n) for n in pbxis.events.__all__
             if n.isupper() and isinstance(getattr(pbxis.events, n), str)}
    documented = set(re.findall(r"^``(\w+)`` \(", section("Events"), flags=re.M))
    assert documented == names


def test_command_line_section_lists_every_command_and_option() -> None:
    text = section("The ``pbxis`` command")
    parser = _parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(re.findall(r"^``pbxis (\w+)", text, flags=re.M)) == set(sub.choices)
    for name, sp in sub.choices.items():
        for action in sp._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert option in text, (name, option)
    for action in parser._actions:
        for option in action.option_strings:
            if option not in ("-h", "--help"):
                assert option in text, option


def test_first_command_on_a_clean_clone(tmp_path: Path) -> None:
    clone = tmp_path / "pbxis"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PBXIS_URL", "VIRTUAL_ENV", "PYTHONPATH")}
    # The README's first command, exactly, with the demo bounded and as JSON.
    proc = subprocess.run(["bash", "-c", FIRST + " --seconds 5 --json"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # pip talks first; then the demo's JSON lines, every one of which parses.
    demo = proc.stdout[proc.stdout.index('{"type": '):]
    events = [json.loads(line) for line in demo.splitlines()]
    assert len(events) >= 14
    types = {e["type"] for e in events}
    assert {"agentName", "queueMemberStatus", "extensionStatus", "queueCount"} <= types
    assert "phoneNumber" in types  # simulated callers reach agents within 5 s

    # And as written, in a terminal: the table, then Ctrl-C.
    term = Tmux(".venv/bin/pbxis demo", cwd=clone, env={"PBXIS_URL": ""})
    try:
        screen = term.wait_for("pbxis demo: simulated PBX, scenario busy", "Alice Anders",
                               "waiting callers  sales:")
        assert "Traceback" not in screen
        term.wait_for("Caller 555")  # a simulated caller reaches an agent
        term.keys("C-c")
        screen = term.wait_for("[exit 130]")
        assert "Traceback" not in screen and "KeyboardInterrupt" not in screen
    finally:
        term.close()


@pytest.mark.parametrize("path", ["tests/harness/README.md", "bench/README.md", "LICENSE",
                                  "examples/agent_events.py", "examples/wallboard.ipynb",
                                  "examples/django_site/", ".ci/run",
                                  "tests/harness/asterisk/manager.conf", "pbxis/versions.py"])
def test_files_the_readme_points_to_exist(path: str) -> None:
    assert path in README
    assert (REPO / path).exists()
