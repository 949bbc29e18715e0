"""Kernels for the site build's notebooks forked from a fork server (autograder.forkserver in its plain form):
JAX and ipykernel are imported once per build instead of once per notebook. No sandbox: the notebooks are the
course's own. Each kernel gets the notebook's folder, its kernel manager's environment and argv, its own session,
and dies with the server; a server that cannot serve (another Python, another environment read at import time)
leaves the kernel to be exec'd as usual.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

from .forkserver import WAIT_S, run_kernel

PLAIN_ENV = "VC4ML_PLAIN_FORKSERVER"


def plain_kernel(conn: socket.socket, request: dict, fds: list[int], added: dict) -> None:
    """In the forked child: the kernel's session, descriptors, folder and environment, then ipykernel."""
    try:
        conn.close()
        os.setsid()
        from . import sandbox

        sandbox._libc().prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: ends with the fork server
        for fd, std in zip(fds, (0, 1, 2)):
            os.dup2(fd, std)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(added)       # what the server's imports set, as they set it in an exec'd kernel
        os.environ.update(request["env"])
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    except BaseException:
        traceback.print_exc()
        os._exit(71)
    run_kernel(request["argv"])


class PlainServer:
    """A fork server for plain kernels (no sandbox): the site build's notebooks. ``start()`` in the parent,
    then :class:`ForkedKernelManager` in any process that runs notebooks (nbclient's ``kernel_manager_class``)."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="vc4ml-plainfork-"))
        self.path = str(self.folder / "socket")
        self.proc = subprocess.Popen([sys.executable, "-P", "-m", "autograder.forkserver", self.path, "--plain"],
                                     cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, close_fds=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], WAIT_S)
        if not (ready and self.proc.stdout.read(1) == b"R"):
            self.close()
            raise RuntimeError("the fork server did not start")
        os.environ[PLAIN_ENV] = self.path

    def close(self) -> None:
        os.environ.pop(PLAIN_ENV, None)
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class _Forked:
    """The parts of a Popen that jupyter_client's LocalProvisioner uses, for a kernel that is not our child."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None
        self._fd = os.pidfd_open(pid)

    def poll(self):
        if self.returncode is None and select.select([self._fd], [], [], 0)[0]:
            self.returncode = 0   # ended (its status went to the fork server, which does not keep it)
            os.close(self._fd)
        return self.returncode

    def wait(self, timeout=None):
        if self.returncode is None:
            select.select([self._fd], [], [], timeout)
        return self.poll()

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            signal.pidfd_send_signal(self._fd, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def fork_plain(cmd: list[str], env: dict, cwd: str) -> _Forked | None:
    """Ask the plain fork server for the kernel ``cmd`` (``python -m ipykernel_launcher ...``); None if it
    cannot (no server, another Python, another environment): the caller then execs ``cmd``."""
    path = os.environ.get(PLAIN_ENV)
    if not path or cmd[:3] != [sys.executable, "-m", "ipykernel_launcher"]:
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as conn:
            conn.settimeout(WAIT_S)
            conn.connect(path)
            env = {k: v for k, v in env.items() if k != PLAIN_ENV}
            env.setdefault("JPY_PARENT_PID", str(os.getpid()))   # as jupyter_client's launcher sets it
            request = {"env": env, "argv": cmd[3:], "cwd": str(cwd or os.getcwd())}
            socket.send_fds(conn, [json.dumps(request).encode()], [0, 1, 2])
            reply = json.loads(conn.recv(4096) or b"{}")
        return _Forked(int(reply["pid"])) if "pid" in reply else None
    except (OSError, ValueError):
        return None


def forked_kernel_manager():
    """nbclient's ``kernel_manager_class``: kernels forked from the plain fork server when it runs."""
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_client.provisioning.local_provisioner import LocalProvisioner

    class ForkedProvisioner(LocalProvisioner):
        async def launch_kernel(self, cmd, **kwargs):
            process = fork_plain(cmd, kwargs.get("env") or dict(os.environ), kwargs.get("cwd"))
            if process is None:
                return await super().launch_kernel(cmd, **kwargs)
            self.process, self.pid, self.pgid = process, process.pid, process.pid   # its own session
            self.cwd = kwargs.get("cwd")
            return self.connection_info

    class ForkedKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            if type(self.provisioner) is LocalProvisioner:
                self.provisioner.__class__ = ForkedProvisioner
            return await super()._async_launch_kernel(kernel_cmd, **kw)

    return ForkedKernelManager
