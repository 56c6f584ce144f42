"""A real Asterisk lab for pbxis' live tests (standard library only).

The lab is what ``tests/harness/provision.sh`` prepares: Debian's Asterisk package in a
chroot (``/var/tmp/pbxis-asterisk<version>``) configured from ``tests/harness/asterisk``,
and sipp processes (``tests/harness/sipp``) playing the agents' phones, the callers and
the outside world, all on 127.0.0.1:

* AMI on 127.0.0.1:5038 (users ``pbxis``/``pbxis-secret`` with everything, ``limited``/
  ``limited-secret`` without ``system`` write permission), PJSIP (UDP) on 127.0.0.1:5060;
* agents 1001 "Alice Anders", 1002 "Bob Brown", 1003 "Carol Clark": PJSIP endpoints whose
  phones (:class:`Phone`) listen on 127.0.0.1:5071..5073; hints 1001..1003@default;
* queue ``sales`` (ringall, members PJSIP/1001, PJSIP/1002), queue ``support``
  (rrmemory, PJSIP/1002, PJSIP/1003), ``rec-sales`` (recorded, then queue sales);
* parking: 700 parks, 701-720 retrieve (45 s);
* callers (:func:`call`) are ``PJSIP/caller-...`` channels with the caller id they send;
* numbers like 5551234 are dialled out to ``PJSIP/outside``, answered by
  :class:`Outside` on 127.0.0.1:5090.

Everything started here is stopped by :meth:`Lab.close` (also registered with
``atexit``), so a failing test never leaves Asterisk or sipp running.  Typical use::

    with Lab() as the_lab:
        the_lab.start()                   # Asterisk + phones 1001..1003, reachable
        caller = the_lab.call("sales", number="555011", talk=3)
        caller.wait(30)

Must run as root (chroot, mount).  Logs go to ``Lab.workdir`` (kept after close).
"""

from __future__ import annotations

import atexit
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Callable, TypeVar, Union

__all__ = [
    "AGENTS",
    "AMI_HOST",
    "AMI_PORT",
    "SIP_PORT",
    "OUTSIDE_PORT",
    "MANAGER_USERS",
    "LabError",
    "Asterisk",
    "Phone",
    "Outside",
    "Caller",
    "Lab",
    "call",
    "agent_dial",
    "chroot_path",
    "missing_requirements",
    "wait_until",
]

HARNESS_DIR = Path(__file__).resolve().parent
CONFIG_DIR = HARNESS_DIR / "asterisk"
SIPP_DIR = HARNESS_DIR / "sipp"

AMI_HOST = "127.0.0.1"
AMI_PORT = 5038
SIP_HOST = "127.0.0.1"
SIP_PORT = 5060
OUTSIDE_PORT = 5090

#: agent extension -> (name, port of the agent's phone)
AGENTS: dict[str, tuple[str, int]] = {
    "1001": ("Alice Anders", 5071),
    "1002": ("Bob Brown", 5072),
    "1003": ("Carol Clark", 5073),
}

#: AMI user -> secret (see tests/harness/asterisk/manager.conf)
MANAGER_USERS: dict[str, str] = {"pbxis": "pbxis-secret", "limited": "limited-secret"}

PHONE_MODES = ("answer", "hangup", "busy", "noanswer", "hold")

#: ``qualify_timeout`` of the agents' AORs (asterisk/pjsip.conf), in seconds.
QUALIFY_TIMEOUT = 2.0

T = TypeVar("T")
StrPath = Union[str, "os.PathLike[str]"]


class LabError(RuntimeError):
    """The lab could not do what was asked (with a hint where to look)."""


# --------------------------------------------------------------------------- helpers


def chroot_path(version: str = "22") -> Path:
    """Where provision.sh puts the chroot holding Asterisk ``version``."""
    return Path(f"/var/tmp/pbxis-asterisk{version}")


def missing_requirements(version: str = "22", root: StrPath | None = None) -> list[str]:
    """What keeps the lab from running here (empty list: nothing).

    Live tests use this to skip with a useful message (provision.sh fixes it all).
    """
    missing = []
    if os.geteuid() != 0:
        missing.append("root privileges (chroot, mount)")
    chroot = Path(root) if root is not None else chroot_path(version)
    if not (chroot / "usr/sbin/asterisk").exists():
        missing.append(f"the Asterisk {version} chroot {chroot}")
    if shutil.which("sipp") is None:
        missing.append("sipp (Debian package sip-tester)")
    return missing


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.1,
) -> T:
    """Poll ``predicate`` until it returns a true value (returned) or ``timeout`` s pass.

    Raises :class:`LabError` mentioning ``what`` on timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


def _udp_port_busy(port: int, host: str = "127.0.0.1") -> bool:
    """True when some process has bound UDP ``host:port`` (or 0.0.0.0:port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError:
        return True
    finally:
        sock.close()
    return False


def _tcp_port_busy(port: int, host: str = "127.0.0.1") -> bool:
    """True when some process listens on TCP ``host:port``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        return True
    finally:
        sock.close()
    return False


def _pids_owning_udp_port(port: int) -> list[int]:
    """Pids holding a UDP socket bound to ``port`` (from /proc; best effort)."""
    inodes = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as fh:
                next(fh)
                for line in fh:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(fields[9])
        except OSError:
            continue
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{entry}/fd"):
                target = os.readlink(f"/proc/{entry}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    pids.append(int(entry))
                    break
        except OSError:
            continue
    return pids


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _kill_stale_sipp(port: int) -> None:
    """Kill sipp processes of an earlier (crashed) lab run that still hold ``port``."""
    for pid in _pids_owning_udp_port(port):
        cmd = _cmdline(pid)
        if "sipp" in cmd and str(SIPP_DIR) in cmd:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path})"


def _terminate(proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; always reaps the process."""
    if proc.poll() is None:
        try:
            proc.terminate()
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        except ProcessLookupError:
            pass
    else:
        proc.wait()


# every live lab object, so that atexit can clean up after a crashed test run
_LIVE: weakref.WeakSet[object] = weakref.WeakSet()


def _cleanup_at_exit() -> None:
    for obj in list(_LIVE):
        if isinstance(obj, Asterisk):
            continue
        try:
            obj.stop()  # type: ignore[attr-defined]
        except Exception:  # pragma: no cover - best effort
            pass
    for obj in list(_LIVE):
        if isinstance(obj, Asterisk):
            try:
                obj.stop()
            except Exception:  # pragma: no cover - best effort
                pass


atexit.register(_cleanup_at_exit)


def _free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that is free right now (for a sipp client)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((SIP_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _ms(seconds: float) -> str:
    """Seconds as the integer milliseconds sipp wants."""
    return str(int(round(seconds * 1000)))


def _new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="pbxis-lab-"))


# --------------------------------------------------------------------------- Asterisk


class Asterisk:
    """Asterisk running in the provisioned chroot (``asterisk -f``, as root).

    :param version: Asterisk major version ("22" = Debian sid, "16" = bullseye).
    :param root: the chroot; default ``/var/tmp/pbxis-asterisk<version>``.
    :param workdir: where ``asterisk.log`` (Asterisk's stdout/stderr) goes; default a
        new temp dir.  Asterisk's own log files are in ``<root>/var/log/asterisk``
        (``full`` has everything; truncated at every start).
    """

    VAR_DIRS = (
        "var/lib/asterisk",
        "var/log/asterisk",
        "var/spool/asterisk",
        "var/cache/asterisk",
        "run/asterisk",
    )

    def __init__(
        self,
        version: str = "22",
        root: StrPath | None = None,
        workdir: StrPath | None = None,
    ) -> None:
        self.version = str(version)
        self.root = Path(root) if root is not None else chroot_path(self.version)
        self.workdir = Path(workdir) if workdir is not None else _new_workdir()
        self.log_path = self.workdir / "asterisk.log"
        self.boot_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_fh: BinaryIO | None = None
        self._mounted_proc = False
        _LIVE.add(self)

    # -- state --------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """Pid of the running Asterisk (``core restart now`` keeps it), else None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        """True while the Asterisk process started by :meth:`start` is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def full_log(self) -> Path:
        """Asterisk's ``full`` log file (outside view of the chroot path)."""
        return self.root / "var/log/asterisk/full"

    @property
    def recordings_dir(self) -> Path:
        """Where MixMonitor puts recordings (``rec-sales``)."""
        return self.root / "var/spool/asterisk/monitor"

    # -- setup ----------------------------------------------------------------------

    def _check_root(self) -> None:
        if not (self.root / "usr/sbin/asterisk").exists():
            raise LabError(
                f"no Asterisk chroot at {self.root}: run "
                f"`sudo tests/harness/provision.sh {self.version}` first"
            )

    def install_config(self) -> None:
        """Install tests/harness/asterisk/* as the chroot's /etc/asterisk.

        The lab's configuration replaces the packaged one completely (the Debian
        files are moved to ``/etc/asterisk.dist`` the first time), so that only what
        the lab defines is loaded.  Permissions are fixed for a root without DAC
        override.
        """
        self._check_root()
        etc = self.root / "etc/asterisk"
        dist = self.root / "etc/asterisk.dist"
        if not dist.exists() and etc.exists():
            etc.rename(dist)
        if etc.exists():
            shutil.rmtree(etc)
        etc.mkdir(parents=True)
        for src in sorted(CONFIG_DIR.iterdir()):
            if src.is_file():
                shutil.copyfile(src, etc / src.name)
        self._fix_perms()

    def _fix_perms(self) -> None:
        paths = [self.root / "etc/asterisk"]
        for rel in self.VAR_DIRS:
            path = self.root / rel
            path.mkdir(parents=True, exist_ok=True)
            paths.append(path)
        subprocess.run(["chmod", "-R", "a+rX", str(paths[0])], check=True)
        subprocess.run(["chmod", "-R", "a+rwX", *map(str, paths[1:])], check=True)

    def _proc_mounted(self) -> bool:
        target = str(self.root / "proc")
        with open("/proc/mounts") as fh:
            return any(line.split()[1] == target for line in fh)

    def _mount_proc(self) -> None:
        if not self._proc_mounted():
            subprocess.run(["mount", "-t", "proc", "proc", str(self.root / "proc")], check=True)
            self._mounted_proc = True

    def _umount_proc(self) -> None:
        if self._mounted_proc and self._proc_mounted():
            target = str(self.root / "proc")
            if subprocess.run(["umount", target], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", target], capture_output=True)
        self._mounted_proc = False

    def _stale_pids(self) -> list[int]:
        """Asterisk processes of an earlier lab run still living in this chroot."""
        pids = []
        root = os.path.realpath(self.root)
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or (self._proc and int(entry) == self._proc.pid):
                continue
            try:
                if os.readlink(f"/proc/{entry}/root") != root:
                    continue
                with open(f"/proc/{entry}/comm") as fh:
                    if fh.read().strip() == "asterisk":
                        pids.append(int(entry))
            except OSError:
                continue
        return pids

    def _wait_ports_free(self, timeout: float) -> None:
        wait_until(
            lambda: (
                not _tcp_port_busy(AMI_PORT, AMI_HOST) and not _udp_port_busy(SIP_PORT, SIP_HOST)
            ),
            timeout,
            f"ports {AMI_PORT}/tcp and {SIP_PORT}/udp to be free",
        )

    # -- lifecycle ------------------------------------------------------------------

    def start(self, timeout: float = 60.0, install_config: bool = True) -> None:
        """Start Asterisk and wait until it is fully booted and AMI answers.

        Mounts /proc in the chroot when needed, installs the lab configuration
        (unless ``install_config`` is false), then waits (at most ``timeout`` s) for
        the AMI greeting on 127.0.0.1:5038 and for ``core waitfullybooted``.
        """
        if self.running:
            raise LabError(f"Asterisk already running (pid {self.pid})")
        self._check_root()
        for pid in self._stale_pids():  # left over by a crashed run: not ours to keep
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._wait_ports_free(10)
        if install_config:
            self.install_config()
        else:
            self._fix_perms()
        self._mount_proc()
        for name in ("full", "messages"):
            log = self.root / "var/log/asterisk" / name
            if log.exists():
                log.write_bytes(b"")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log_fh = open(self.log_path, "ab")
        started = time.monotonic()
        self._proc = subprocess.Popen(
            ["chroot", str(self.root), "/usr/sbin/asterisk", "-f"],
            stdin=subprocess.DEVNULL,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = started + timeout
        try:
            wait_until(self._ami_greets, timeout, "the AMI greeting on 127.0.0.1:5038", 0.1)
            remaining = max(1.0, deadline - time.monotonic())
            self.cli("core waitfullybooted", timeout=remaining)
        except LabError as exc:
            self._abort_start()
            raise LabError(
                f"Asterisk did not start: {exc}\n--- {self.log_path}:\n{_tail(self.log_path)}"
            ) from None
        self.boot_seconds = time.monotonic() - started

    def _ami_greets(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise LabError(f"Asterisk exited with status {self._proc.returncode}")
        try:
            with socket.create_connection((AMI_HOST, AMI_PORT), timeout=1.0) as sock:
                sock.settimeout(2.0)
                data = b""
                while b"\r\n" not in data:
                    chunk = sock.recv(256)
                    if not chunk:
                        return False
                    data += chunk
                return data.startswith(b"Asterisk Call Manager/")
        except OSError:
            return False

    def _abort_start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        self._umount_proc()

    def stop(self, timeout: float = 20.0) -> None:
        """Stop Asterisk gracefully, never leaving it running; idempotent.

        ``core stop now`` through the CLI (SIGTERM when the CLI does not answer, e.g.
        in the middle of a ``core restart``), SIGKILL when it is still alive after
        ``timeout`` s.  Then waits for ports 5038/5060 to be free and unmounts the
        chroot's /proc if :meth:`start` mounted it.
        """
        proc = self._proc
        if proc is None:
            self._cleanup()
            return
        try:
            if proc.poll() is None:
                try:
                    self.cli("core stop now", timeout=5.0)
                except LabError:
                    if proc.poll() is None:
                        proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
            proc.wait()
            self._proc = None
            self._wait_ports_free(10)
        finally:
            self._cleanup()

    def kill(self) -> None:
        """SIGKILL Asterisk (like ``kill -9``: AMI clients get EOF, no Shutdown event).

        /proc stays mounted (so :meth:`start` can follow); :meth:`stop` cleans up.
        """
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        self._proc = None
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        self._wait_ports_free(10)

    def restart(self, timeout: float = 60.0) -> None:
        """:meth:`stop`, then :meth:`start` (a new process; uniqueids restart)."""
        self.stop()
        self.start(timeout=timeout)

    # -- control ----------------------------------------------------------------------

    def cli(self, command: str, timeout: float = 15.0) -> str:
        """Run an Asterisk CLI command (``asterisk -rx``) and return its output."""
        try:
            res = subprocess.run(
                ["chroot", str(self.root), "/usr/sbin/asterisk", "-rx", command],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise LabError(f"`asterisk -rx {command!r}` took longer than {timeout:.1f} s") from None
        if res.returncode != 0:
            raise LabError(
                f"`asterisk -rx {command!r}` failed ({res.returncode}): {res.stdout}{res.stderr}"
            )
        return res.stdout

    def active_channels(self) -> int:
        """Number of channels Asterisk has right now."""
        out = self.cli("core show channels count")
        match = re.search(r"(\d+) active channels?", out)
        return int(match.group(1)) if match else 0

    def hangup_all(self, timeout: float = 10.0) -> None:
        """Hang up every channel and wait until none is left."""
        if self.active_channels():
            self.cli("channel request hangup all")
        wait_until(lambda: self.active_channels() == 0, timeout, "all channels to be gone", 0.2)

    def contact_status(self, aor: str) -> str | None:
        """Status of the AOR's contact in ``pjsip show contacts`` (Avail, Unavail, ...)."""
        for line in self.cli("pjsip show contacts").splitlines():
            fields = line.split()
            if len(fields) >= 4 and fields[0] == "Contact:" and fields[1].startswith(f"{aor}/"):
                return fields[3]
        return None

    def hint_state(self, exten: str, context: str = "default") -> str | None:
        """Extension state of a hint (Idle, InUse, Ringing, Unavailable, ...)."""
        for line in self.cli(f"core show hint {exten}").splitlines():
            if line.startswith(f"{exten}@{context} "):
                match = re.search(r"State:(\S+)", line)
                return match.group(1) if match else None
        return None

    def recordings(self) -> list[Path]:
        """Recording files made by MixMonitor (``rec-sales``)."""
        if not self.recordings_dir.exists():
            return []
        return sorted(p for p in self.recordings_dir.iterdir() if p.is_file())

    # -- context manager ----------------------------------------------------------------

    def __enter__(self) -> Asterisk:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Asterisk {self.version} root={self.root} pid={self.pid}>"


# --------------------------------------------------------------------------- sipp


class _Sipp:
    """One sipp process (base of :class:`Phone`, :class:`Outside`, :class:`Caller`)."""

    def __init__(self, name: str, workdir: StrPath | None) -> None:
        self.name = name
        self.workdir = Path(workdir) if workdir is not None else _new_workdir()
        self.messages_path = self.workdir / f"sipp-{name}-messages.log"
        self.errors_path = self.workdir / f"sipp-{name}-errors.log"
        self.output_path = self.workdir / f"sipp-{name}.out"
        self._proc: subprocess.Popen[bytes] | None = None
        _LIVE.add(self)

    @property
    def running(self) -> bool:
        """True while the sipp process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """Pid of the sipp process (while running)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _spawn(self, args: list[str]) -> None:
        if self.running:
            raise LabError(f"sipp {self.name} already running (pid {self.pid})")
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [
            "sipp",
            *args,
            "-nostdin",
            "-trace_msg",
            "-message_file",
            str(self.messages_path),
            "-message_overwrite",
            "false",
            "-trace_err",
            "-error_file",
            str(self.errors_path),
            "-error_overwrite",
            "false",
        ]
        with open(self.output_path, "ab") as out:
            out.write((" ".join(cmd) + "\n").encode())
            out.flush()
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=out,
                start_new_session=True,
            )

    def stop(self) -> None:
        """Stop sipp at once (SIGTERM, then SIGKILL); idempotent.  Calls in progress
        are not hung up in SIP: for a phone this is "unplugging" it (Asterisk finds
        out by qualify); use :meth:`Caller.hangup` for a clean hangup of a caller."""
        if self._proc is not None:
            _terminate(self._proc, grace=2.0)

    def messages(self) -> list[str]:
        """SIP messages received by this sipp so far (raw text, from its trace)."""
        try:
            text = self.messages_path.read_text(errors="replace")
        except OSError:
            return []
        # sipp writes "... UDP message received [N] bytes :" before each received one
        received = re.findall(
            r"message received \[\d+\] bytes :\n\n(.*?)(?=\n-{20,} |\Z)", text, flags=re.S
        )
        return [m.strip() for m in received]

    def requests(self, method: str = "INVITE") -> list[str]:
        """Received requests of ``method`` (raw text)."""
        return [m for m in self.messages() if m.startswith(method + " ")]

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Phone(_Sipp):
    """An agent's phone: sipp in server mode on 127.0.0.1:507N.

    :param agent: "1001", "1002" or "1003".
    :param mode: ``answer`` (answer after ``answer_after`` s, talk until the other side
        hangs up), ``hangup`` (answer, hang up ``hangup_after`` s later), ``busy``
        (486 Busy Here), ``noanswer`` (ring until cancelled), ``hold`` (answer, hold
        after ``hold_after`` s for ``hold_for`` s, then hang up ``hangup_after`` s later).
        Every mode answers Asterisk's OPTIONS (qualify).
    """

    def __init__(
        self,
        agent: str = "1001",
        mode: str = "answer",
        answer_after: float = 1.0,
        hangup_after: float = 5.0,
        hold_after: float = 3.0,
        hold_for: float = 5.0,
        workdir: StrPath | None = None,
        port: int | None = None,
    ) -> None:
        if mode not in PHONE_MODES:
            raise ValueError(f"mode must be one of {PHONE_MODES}, not {mode!r}")
        if port is None:
            if agent not in AGENTS:
                raise ValueError(f"unknown agent {agent!r} (known: {', '.join(AGENTS)})")
            port = AGENTS[agent][1]
        super().__init__(f"phone-{agent}", workdir)
        self.agent = agent
        self.mode = mode
        self.answer_after = answer_after
        self.hangup_after = hangup_after
        self.hold_after = hold_after
        self.hold_for = hold_for
        self.port = port
        self.started_at = 0.0

    def _args(self) -> list[str]:
        args = [
            "-sf",
            str(SIPP_DIR / f"phone-{self.mode}.xml"),
            "-i",
            SIP_HOST,
            "-p",
            str(self.port),
        ]
        if self.mode in ("answer", "hangup", "hold"):
            args += ["-set", "answer_ms", _ms(self.answer_after)]
        if self.mode == "hangup":
            args += ["-set", "hangup_ms", _ms(self.hangup_after)]
        if self.mode == "hold":
            args += [
                "-set",
                "hold_after_ms",
                _ms(self.hold_after),
                "-set",
                "hold_ms",
                _ms(self.hold_for),
            ]
            args += ["-set", "hangup_ms", _ms(self.hangup_after)]
        return args

    def start(self, timeout: float = 5.0) -> Phone:
        """Start sipp and wait until it listens on its port."""
        _kill_stale_sipp(self.port)
        if _udp_port_busy(self.port, SIP_HOST):
            raise LabError(
                f"UDP port {self.port} is in use (pids {_pids_owning_udp_port(self.port)})"
            )
        self._spawn(self._args())

        def listening() -> bool:
            if self._proc is not None and self._proc.poll() is not None:
                status = self._proc.returncode
                raise LabError(f"sipp {self.name} exited ({status}): {_tail(self.output_path, 5)}")
            return _udp_port_busy(self.port, SIP_HOST)

        wait_until(listening, timeout, f"sipp {self.name} to listen on {self.port}", 0.05)
        self.started_at = time.monotonic()
        return self

    def wait_reachable(self, ast: Asterisk, timeout: float = 15.0) -> None:
        """Wait until Asterisk sees this phone as reachable (contact Avail and the
        hint not Unavailable).  Asks for a qualify right away (and every 2 s) instead
        of waiting for the next periodic one.

        A phone Asterisk saw unreachable (unplugged, then started again) is checked
        once more when it has listened for longer than ``QUALIFY_TIMEOUT``: a qualify
        Asterisk sent while it was down times out that much later and marks the
        contact Unreachable again, right after the forced qualify said Reachable
        (seen on Asterisk 16 and 22 alike)."""
        last_qualify = [0.0]
        seen_down = [False]

        def reachable() -> bool:
            if not self.running:
                raise LabError(f"sipp {self.name} is not running")
            now = time.monotonic()
            if now - last_qualify[0] >= 2.0:
                last_qualify[0] = now
                try:
                    ast.cli(f"pjsip qualify {self.agent}")
                except LabError:
                    pass
            if ast.contact_status(self.agent) != "Avail":
                seen_down[0] = True
                return False
            if ast.hint_state(self.agent) in (None, "Unavailable"):
                seen_down[0] = True
                return False
            return True

        what = f"Asterisk to see phone {self.agent} as reachable"
        seen_down[0] = ast.contact_status(self.agent) != "Avail"  # before any new qualify
        wait_until(reachable, timeout, what, 0.2)
        settle = self.started_at + QUALIFY_TIMEOUT + 0.5 - time.monotonic()
        if seen_down[0] and settle > 0:
            time.sleep(settle)
            last_qualify[0] = 0.0
            wait_until(reachable, timeout, what, 0.2)

    def wait_unreachable(self, ast: Asterisk, timeout: float = 15.0) -> None:
        """Wait until Asterisk sees this phone as unreachable (after :meth:`stop`;
        the periodic qualify notices within ~5-7 s)."""

        def unreachable() -> bool:
            return (
                ast.contact_status(self.agent) == "Unavail"
                and ast.hint_state(self.agent) == "Unavailable"
            )

        wait_until(unreachable, timeout, f"Asterisk to see phone {self.agent} as unreachable", 0.2)

    def __enter__(self) -> Phone:
        if not self.running:
            self.start()
        return self

    def __repr__(self) -> str:
        return f"<Phone {self.agent} mode={self.mode} port={self.port} pid={self.pid}>"


class Outside(Phone):
    """The outside world (PSTN): sipp in server mode on 127.0.0.1:5090 that answers
    every call dialled to ``PJSIP/<number>@outside`` (after ``answer_after`` s) and
    waits for the BYE (or hangs up itself with ``mode="hangup"``).  Not qualified by
    Asterisk.  :meth:`numbers` lists the numbers it was called with."""

    def __init__(
        self,
        mode: str = "answer",
        answer_after: float = 0.0,
        hangup_after: float = 5.0,
        workdir: StrPath | None = None,
    ) -> None:
        super().__init__(
            "outside", mode, answer_after, hangup_after, workdir=workdir, port=OUTSIDE_PORT
        )
        self.name = "outside"
        self.messages_path = self.workdir / "sipp-outside-messages.log"
        self.errors_path = self.workdir / "sipp-outside-errors.log"
        self.output_path = self.workdir / "sipp-outside.out"

    def wait_reachable(self, ast: Asterisk, timeout: float = 15.0) -> None:
        """Nothing to wait for: Asterisk does not qualify the outside contact."""

    def numbers(self) -> list[str]:
        """The dialled numbers (request-URI users) of the INVITEs received so far."""
        out = []
        for req in self.requests("INVITE"):
            match = re.match(r"INVITE sip:([^@;>\s]+)@", req)
            if match and not re.search(r"^To:.*;tag=", req, flags=re.M):  # skip re-INVITEs
                out.append(match.group(1))
        return out

    def __repr__(self) -> str:
        return f"<Outside mode={self.mode} port={self.port} pid={self.pid}>"


class Caller(_Sipp):
    """A call into Asterisk (sipp client, one call); made by :func:`call` or
    :func:`agent_dial`."""

    _counter = 0

    def __init__(
        self,
        extension: str,
        from_user: str,
        from_name: str,
        role: str,
        talk: float,
        abandon_after: float | None,
        max_duration: float,
        workdir: StrPath | None,
    ) -> None:
        Caller._counter += 1
        super().__init__(f"call{Caller._counter}-{from_user}-{extension}", workdir)
        self.extension = extension
        self.number = from_user
        self.caller_name = from_name
        self.role = role
        self.talk = talk
        self.abandon_after = abandon_after
        self.max_duration = max_duration
        self.port: int | None = None
        self.call_id: str | None = None

    def start(self) -> Caller:
        """Start the sipp client (the INVITE goes out within a few ms)."""
        self.port = _free_udp_port()
        args = [
            f"{SIP_HOST}:{SIP_PORT}",
            "-sf",
            str(SIPP_DIR / "call.xml"),
            "-s",
            self.extension,
            "-i",
            SIP_HOST,
            "-p",
            str(self.port),
            "-m",
            "1",
            "-cid_str",
            "pbxis-%u-%p@%s",
            "-key",
            "from_user",
            self.number,
            "-key",
            "from_name",
            self.caller_name,
            "-key",
            "role",
            self.role,
            "-set",
            "talk_ms",
            _ms(self.talk),
            "-timeout",
            f"{int(self.max_duration)}s",
        ]
        if self.abandon_after is not None:
            args += ["-recv_timeout", _ms(self.abandon_after)]
        self._spawn(args)
        assert self._proc is not None
        self.call_id = f"pbxis-1-{self._proc.pid}@{SIP_HOST}"
        return self

    def hangup(self, timeout: float = 5.0) -> None:
        """The caller hangs up now: BYE when answered, CANCEL while still waiting
        (so Asterisk sees a real hangup/abandon).  Waits for sipp to finish; falls
        back to killing it.  Nothing happens when the call is already over."""
        if not self.running or self.port is None or self.call_id is None:
            self.stop()
            return
        info = (
            f"INFO sip:{self.number}@{SIP_HOST}:{self.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {SIP_HOST}:{{port}};branch=z9hG4bK-lab-{time.monotonic_ns()}\r\n"
            f"From: <sip:lab@{SIP_HOST}>;tag=lab\r\n"
            f"To: <sip:{self.number}@{SIP_HOST}>\r\n"
            f"Call-ID: {self.call_id}\r\n"
            "CSeq: 1 INFO\r\n"
            "Max-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((SIP_HOST, 0))
            message = info.replace("{port}", str(sock.getsockname()[1])).encode()
            sock.sendto(message, (SIP_HOST, self.port))
        assert self._proc is not None
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.stop()

    @property
    def returncode(self) -> int | None:
        """sipp's exit status once finished (0: the call went as scripted)."""
        return self._proc.poll() if self._proc is not None else None

    def wait(self, timeout: float = 60.0) -> int:
        """Wait until the call is over; returns sipp's exit status (0 = success).

        Raises :class:`LabError` when the call is still going after ``timeout`` s.
        """
        if self._proc is None:
            raise LabError(f"{self.name} was not started")
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise LabError(f"call {self.name} still going after {timeout:.1f} s") from None

    @property
    def answered(self) -> bool:
        """True when Asterisk answered the INVITE (200 OK)."""
        return any(
            m.startswith("SIP/2.0 200") and re.search(r"^CSeq:\s*1 INVITE", m, flags=re.M)
            for m in self.messages()
        )

    @property
    def hung_up_by_asterisk(self) -> bool:
        """True when Asterisk sent the BYE (the agent hung up first)."""
        return bool(self.requests("BYE"))

    def __enter__(self) -> Caller:
        if self._proc is None:
            self.start()
        return self

    def __repr__(self) -> str:
        return f"<Caller {self.number} -> {self.extension} pid={self.pid} rc={self.returncode}>"


def call(
    ast: Asterisk | None,
    extension: str,
    number: str = "555011",
    name: str | None = None,
    talk: float = 5.0,
    abandon_after: float | None = None,
    max_duration: float = 300.0,
    workdir: StrPath | None = None,
) -> Caller:
    """A customer calls ``extension`` (e.g. ``"sales"``) from ``number``.

    The caller id is ``"<name>" <number>`` (name defaults to ``"Caller <number>"``); the
    channel is ``PJSIP/caller-...``.  After the answer the caller talks ``talk`` s and
    hangs up (unless Asterisk hangs up first); with ``abandon_after`` the caller gives
    up (CANCEL) if not answered within that many seconds.  sipp gives up after
    ``max_duration`` s whatever happens.  Returns the started :class:`Caller`.
    """
    if ast is not None and not ast.running:
        raise LabError("Asterisk is not running")
    workdir = workdir if workdir is not None else (ast.workdir if ast is not None else None)
    caller = Caller(
        extension,
        number,
        name if name is not None else f"Caller {number}",
        "caller",
        talk,
        abandon_after,
        max_duration,
        workdir,
    )
    return caller.start()


def agent_dial(
    agent: str,
    extension: str,
    talk: float = 5.0,
    abandon_after: float | None = None,
    max_duration: float = 300.0,
    workdir: StrPath | None = None,
) -> Caller:
    """Agent ``agent`` dials ``extension`` from the desk phone (From user = agent, so
    Asterisk identifies endpoint ``agent``, context default): e.g. ``"5551234"`` (out
    to :class:`Outside`), ``"1002"`` or ``"sales"``.  Uses its own local port, so the
    agent's :class:`Phone` may be running.  Returns the started :class:`Caller`."""
    if agent not in AGENTS:
        raise ValueError(f"unknown agent {agent!r}")
    caller = Caller(
        extension, agent, AGENTS[agent][0], "agent", talk, abandon_after, max_duration, workdir
    )
    return caller.start()


# --------------------------------------------------------------------------- Lab


class Lab:
    """Owns an :class:`Asterisk`, the agents' phones, the outside party and the calls,
    and stops all of them in :meth:`close` (idempotent; also at interpreter exit).

    :param version: Asterisk version of the chroot ("22" or "16").
    :param root: chroot path (default ``/var/tmp/pbxis-asterisk<version>``).
    :param workdir: logs of Asterisk and sipp (default: a new temp dir, kept).
    """

    def __init__(
        self,
        version: str = "22",
        root: StrPath | None = None,
        workdir: StrPath | None = None,
    ) -> None:
        self.workdir = Path(workdir) if workdir is not None else _new_workdir()
        self.asterisk = Asterisk(version, root, self.workdir)
        self.phones: dict[str, Phone] = {}
        self.outside: Outside | None = None
        self.callers: list[Caller] = []
        self._number = 0
        self._lock_file: BinaryIO | None = None
        #: (mode, answer_after) of the phones :meth:`start` made; :meth:`reset` restores it.
        self._phone_default: tuple[str, float] = ("answer", 1.0)

    # -- setup ------------------------------------------------------------------------

    def start(
        self,
        agents: Iterable[str] = tuple(AGENTS),
        mode: str = "answer",
        answer_after: float = 1.0,
        outside: bool = True,
        timeout: float = 60.0,
    ) -> Lab:
        """Start Asterisk (unless running), phones for ``agents`` (``mode``, answering
        after ``answer_after`` s) and the outside party; wait until the phones are
        reachable.

        Only one lab runs on a machine at a time (fixed ports): this waits for an
        exclusive lock on ``/var/tmp/pbxis-lab.lock``, held until :meth:`close`."""
        if self._lock_file is None:
            self._lock_file = open("/var/tmp/pbxis-lab.lock", "wb")  # noqa: SIM115
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        agents = list(agents)
        self._phone_default = (mode, answer_after)
        for agent in agents:
            if agent not in self.phones or not self.phones[agent].running:
                self.phone(agent, mode=mode, answer_after=answer_after, wait=False)
        if outside and (self.outside is None or not self.outside.running):
            self.start_outside()
        if not self.asterisk.running:
            self.asterisk.start(timeout=timeout)
        for agent in agents:
            self.phones[agent].wait_reachable(self.asterisk)
        return self

    def phone(
        self,
        agent: str,
        mode: str = "answer",
        answer_after: float = 1.0,
        hangup_after: float = 5.0,
        hold_after: float = 3.0,
        hold_for: float = 5.0,
        wait: bool = True,
    ) -> Phone:
        """(Re)start ``agent``'s phone with the given behaviour; with ``wait`` (and
        Asterisk running) wait until Asterisk sees it reachable."""
        self.stop_phone(agent)
        phone = Phone(
            agent, mode, answer_after, hangup_after, hold_after, hold_for, workdir=self.workdir
        )
        self.phones[agent] = phone
        phone.start()
        if wait and self.asterisk.running:
            phone.wait_reachable(self.asterisk)
        return phone

    def stop_phone(self, agent: str, wait_unreachable: bool = False) -> None:
        """Stop ``agent``'s phone ("unplug" it); optionally wait until Asterisk noticed."""
        phone = self.phones.get(agent)
        if phone is not None:
            phone.stop()
            if wait_unreachable and self.asterisk.running:
                phone.wait_unreachable(self.asterisk)

    def start_outside(
        self, mode: str = "answer", answer_after: float = 0.0, hangup_after: float = 5.0
    ) -> Outside:
        """(Re)start the outside party on 127.0.0.1:5090."""
        if self.outside is not None:
            self.outside.stop()
        self.outside = Outside(mode, answer_after, hangup_after, workdir=self.workdir)
        self.outside.start()
        return self.outside

    def wait_reachable(self, *agents: str, timeout: float = 15.0) -> None:
        """Wait until Asterisk sees the phones of ``agents`` (default: all started)."""
        for agent in agents or tuple(self.phones):
            self.phones[agent].wait_reachable(self.asterisk, timeout)

    # -- calls ----------------------------------------------------------------------

    def call(
        self,
        extension: str = "sales",
        number: str | None = None,
        name: str | None = None,
        talk: float = 5.0,
        abandon_after: float | None = None,
        max_duration: float = 300.0,
    ) -> Caller:
        """A customer calls ``extension`` (see :func:`call`).  Without ``number`` the
        lab numbers its callers 555011, 555012, ..."""
        if number is None:
            self._number += 1
            number = f"55501{self._number}"
        caller = call(
            self.asterisk, extension, number, name, talk, abandon_after, max_duration, self.workdir
        )
        self.callers.append(caller)
        return caller

    def agent_dial(
        self, agent: str, extension: str, talk: float = 5.0, abandon_after: float | None = None
    ) -> Caller:
        """Agent ``agent`` dials ``extension`` from the desk phone (see :func:`agent_dial`)."""
        caller = agent_dial(agent, extension, talk, abandon_after, workdir=self.workdir)
        self.callers.append(caller)
        return caller

    def reset(self) -> None:
        """Between tests: stop the calls, hang up every channel, and restart the phones
        that no longer behave as :meth:`start` made them (another mode or answer delay,
        or not running)."""
        for caller in self.callers:
            caller.hangup()
        self.callers.clear()
        if self.asterisk.running:
            self.asterisk.hangup_all()
        mode, answer_after = self._phone_default
        for agent, phone in list(self.phones.items()):
            if phone.mode != mode or phone.answer_after != answer_after or not phone.running:
                self.phone(agent, mode=mode, answer_after=answer_after)

    # -- teardown --------------------------------------------------------------------

    def close(self) -> None:
        """Stop every call, phone, the outside party and Asterisk (idempotent)."""
        errors = []
        for caller in self.callers:
            try:
                caller.hangup(timeout=2.0)
            except Exception as exc:  # pragma: no cover - keep cleaning up
                errors.append(exc)
        for obj in [
            *self.callers,
            *self.phones.values(),
            *([self.outside] if self.outside else []),
        ]:
            try:
                obj.stop()
            except Exception as exc:  # pragma: no cover - keep cleaning up
                errors.append(exc)
        try:
            self.asterisk.stop()
        except Exception as exc:  # pragma: no cover
            errors.append(exc)
        if self._lock_file is not None:
            self._lock_file.close()  # releases the machine-wide lab lock
            self._lock_file = None
        if errors:
            raise LabError(f"errors while closing the lab: {errors}")

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Lab {self.asterisk!r} phones={list(self.phones)} workdir={self.workdir}>"
