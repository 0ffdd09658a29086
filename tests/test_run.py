"""`make run` stops cleanly on Ctrl-C: exit status 0, no make error line, no traceback, the
gateway and the dashboard both stopped. Real processes, a real terminal (a pty)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import socket
import subprocess
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest

from tests.support import BIN, REPO, free_port, sesame_env

pytestmark = pytest.mark.e2e


def _env(tmp_path: Path, web: int, admin: int) -> dict[str, str]:
    env = sesame_env(
        files_dir=str(tmp_path / "files"), data_dir=str(tmp_path / "data"), admin_port=str(admin)
    )
    env.update(PORT=str(web), PATH=f"{BIN}{os.pathsep}{env['PATH']}")
    return env


def _up(web: int, admin: int) -> bool:
    with suppress(httpx.TransportError):
        gateway = httpx.get(f"http://127.0.0.1:{web}/livez", timeout=1)
        dashboard = httpx.get(f"http://127.0.0.1:{admin}/_stcore/health", timeout=1)
        return gateway.status_code == dashboard.status_code == 200
    return False


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Terminal:
    """A pseudo-terminal whose other end is the controlling terminal of ``command``'s session,
    as a terminal window's is; ``type()`` writes as a keyboard does."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self.output = b""

    def read(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    self.output += os.read(self.master, 65536)
                except OSError:  # the session's last process closed it
                    return

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    @property
    def text(self) -> str:
        return re.sub(r"\x1b\[[0-9;]*m", "", self.output.decode(errors="replace"))


@contextmanager
def terminal(command: list[str], env: dict[str, str]) -> Iterator[Terminal]:
    """``command`` in a terminal; whatever of it is left at the end is killed."""
    term = Terminal(command, env)
    try:
        yield term
    finally:
        with suppress(ProcessLookupError):
            os.killpg(term.process.pid, signal.SIGKILL)
        for pid in _started(term.text):
            with suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)  # honcho starts each in a session of its own
        term.process.wait()
        os.close(term.master)


def _started(output: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"\| \w+\.1 started \(pid=(\d+)\)", output)]


def _wait_up(term: Terminal, web: int, admin: int) -> None:
    deadline = time.monotonic() + 90
    while not _up(web, admin):
        assert term.process.poll() is None, term.text
        assert time.monotonic() < deadline, term.text
        term.read(0.2)


def _stops_cleanly(term: Terminal, web: int, admin: int) -> None:
    try:
        term.process.wait(timeout=30)
    finally:
        term.read(0.5)
    output = term.text
    assert term.process.returncode == 0, output
    assert "make: ***" not in output and "Traceback" not in output, output
    assert "web.1 stopped" in output and "admin.1 stopped" in output, output
    assert not _listening(web) and not _listening(admin)
    _gone(_started(output))


def _gone(groups: list[int]) -> None:
    """Every process of ``groups`` ends within a few seconds (a process may still be tidying
    up just after honcho saw its shell end)."""
    deadline = time.monotonic() + 15
    for group in groups:
        while _alive(group):
            assert time.monotonic() < deadline, subprocess.run(
                ["ps", "-o", "pid,stat,args", "-g", str(group)], capture_output=True, text=True
            ).stdout
            time.sleep(0.1)  # polling for an exit


def _alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def test_ctrl_c_stops_make_run(tmp_path: Path) -> None:
    """Ctrl-C in the terminal of `make run` stops both processes, and make exits 0 quietly."""
    web, admin = free_port(), free_port()
    command = ["make", "--no-print-directory", "run", f"VENV={BIN.parent}"]
    with terminal(command, _env(tmp_path, web, admin)) as term:
        _wait_up(term, web, admin)
        term.type(b"\x03")
        _stops_cleanly(term, web, admin)
    assert f"Sesame gateway:   http://127.0.0.1:{web}" in term.text


def test_sigint_without_a_terminal(tmp_path: Path) -> None:
    """Without a terminal (a service manager, a script), SIGINT to scripts/run's process group
    stops both processes too, with exit status 0."""
    web, admin = free_port(), free_port()
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(REPO / "scripts" / "run")],
            cwd=REPO,
            env=_env(tmp_path, web, admin),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while not _up(web, admin):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)  # polling for start-up
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        for pid in _started(log.read_text()):
            with suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        process.wait()
    output = log.read_text()
    assert "Traceback" not in output and "job control" not in output, output
    assert not _listening(web) and not _listening(admin)
    _gone(_started(output))


def test_a_process_that_fails_is_not_a_clean_stop(tmp_path: Path) -> None:
    """When the gateway cannot start (its port is taken), `make run` fails, as it should."""
    admin = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        web = taken.getsockname()[1]
        command = ["make", "--no-print-directory", "run", f"VENV={BIN.parent}"]
        with terminal(command, _env(tmp_path, web, admin)) as term:
            term.process.wait(timeout=90)
            term.read(0.5)
    assert term.process.returncode != 0, term.text
