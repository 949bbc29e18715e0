"""Real services for the scale-out tests: Debian's PostgreSQL and a local Dask cluster, started and stopped here.

PostgreSQL runs from a temporary folder (``initdb``/``pg_ctl``) as an unprivileged user (PostgreSQL refuses to
run as root); the Dask scheduler and workers are ``dask`` command-line processes on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


def _as_user() -> tuple[list[str], str | None]:
    """A command prefix that drops root to an unprivileged account (PostgreSQL will not run as root)."""
    if os.geteuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"], name
    raise RuntimeError("no unprivileged account to run PostgreSQL as")


class Postgres:
    """A throwaway PostgreSQL server on 127.0.0.1; ``url`` is its gradebook database's SQLAlchemy URL."""

    def __init__(self):
        self.bin = pg_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed (Debian package postgresql; `make test` installs it)")
        self.prefix, user = _as_user()
        # in /tmp itself: pytest's temporary folders are private to root, out of the server account's reach
        self.folder = folder = Path(tempfile.mkdtemp(prefix="vc4ml-pg-"))
        if user:
            shutil.chown(folder, user, user)
        self.data, self.port = folder / "db", free_port()
        self.url = f"postgresql+psycopg://grader@127.0.0.1:{self.port}/gradebook"
        self._run("initdb", "-D", str(self.data), "-U", "grader", "-A", "trust", "--no-sync", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(self.prefix + [str(self.bin / tool), *args], capture_output=True, text=True,
                              cwd=self.folder, timeout=120)
        if done.returncode:
            raise subprocess.CalledProcessError(done.returncode, tool, done.stdout, done.stderr[-2000:])

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"), "-w", "start")
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "grader", "gradebook")

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


class DaskCluster:
    """``dask scheduler`` and ``workers`` x ``dask worker --nthreads 1`` on 127.0.0.1 (warmed up by
    autograder.grading.warm before they register, unless ``warm`` is off)."""

    def __init__(self, folder: Path, workers: int = 2, env: dict | None = None, warm: bool = True):
        self.folder, self.port, self.warm = folder, free_port(), warm
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {})}
        folder.mkdir(parents=True, exist_ok=True)
        self.names: dict[str, subprocess.Popen] = {}
        self.scheduler = self._spawn("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                     "--no-dashboard")
        self.workers = [self.add_worker() for _ in range(workers)]

    def _spawn(self, log: str, *args: str) -> subprocess.Popen:
        out = open(self.folder / f"{log}.log", "ab")
        return subprocess.Popen([str(BIN / "dask"), *args], stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                start_new_session=True)

    def add_worker(self) -> subprocess.Popen:
        name = f"worker-{time.monotonic_ns()}"
        warm = ("--preload", "autograder.grading.warm") if self.warm else ()   # as the README starts them
        proc = self._spawn(name, "worker", self.address, "--nthreads", "1", "--no-dashboard", "--name", name,
                           "--death-timeout", "60", *warm)
        self.names[name] = proc
        return proc

    def by_name(self, name: str) -> subprocess.Popen:
        return self.names[name]

    def wait_for_workers(self, count: int, timeout: float = 120) -> None:
        from distributed import Client

        with Client(self.address, timeout="60s", set_as_default=False) as client:
            client.wait_for_workers(count, timeout=timeout)

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL a process and everything it started (a worker's nanny and its grading kernels)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def close(self) -> None:
        for proc in self.workers + [self.scheduler]:
            self.kill(proc)
