"""A fork server for grading kernels: JAX, IPython and the check library are imported once per grading worker,
and each submission's kernel is forked from that process into a fresh bubblewrap sandbox of its own.

Why: an exec'd kernel spends about 1.4 of its 2 core-seconds of start-up importing JAX and ipykernel; a fork
costs milliseconds. The sandbox stays the one autograder.sandbox builds, with the same bwrap argv:

* The launcher runs bubblewrap as for an exec'd kernel, but the process inside is a placeholder (it hands the
  home folder to the kernel's uid, drops to it, says it is ready and waits for the launcher).
* The launcher opens the placeholder's namespaces and root (/proc/PID/ns/*, /proc/PID/root) and passes them,
  with the kernel's log, to the zygote over a Unix socket in a 0700 folder (only the grader can connect).
* The zygote is exec'd, never forked from a worker, so its memory holds public modules only, and its
  environment is a kernel's. It forks a child that joins the sandbox's PID namespace and forks the kernel.
* The kernel joins the sandbox's cgroups, takes its rlimits, joins its network, IPC, UTS, cgroup and mount
  namespaces, chroots to the placeholder's root, drops to the kernel's uid with no_new_privs, closes every other
  file descriptor and runs ipykernel. The child reports its exit status to the launcher.
* Anything that fails before the kernel runs sends the launcher back to the exec path (VC4ML_FORKSERVER=0
  always does).

The site build uses the same server in its plain form (``--plain``, autograder.plainfork): no sandbox.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

# (name under /proc/PID/ns, CLONE_NEW* flag); the PID namespace first (it applies to the next fork), mount last
NAMESPACES = (("pid", 0x20000000), ("net", 0x40000000), ("ipc", 0x08000000), ("uts", 0x04000000),
              ("cgroup", 0x02000000), ("mnt", 0x00020000))
# Variables that may differ between two kernels of one worker and are read after the fork, never at import:
# each kernel's connection folder, and the flag nbgrader sets while it autogrades (not while a solution runs).
PER_KERNEL = ("JUPYTER_RUNTIME_DIR", "NBGRADER_EXECUTION")
WAIT_S = 30                             # for the zygote's start, the sandbox's placeholder, the kernel's start
PLACEHOLDER = "import os; os.write(1, b'R'); os.close(1); os.read(0, 1)"
# What the course's notebooks import, so that no kernel imports it again (sklearn.datasets: 0.6 core-s in each
# ch09 kernel). Not pyplot: matplotlib reads the inline backend from the kernel's start.
PRELOAD = ("jax.numpy", "sklearn.datasets")
IMPORT_TIME = ("JAX_", "XLA_", "TF_", "OPENBLAS_", "OMP_", "MKL_", "NPY_", "PYTHON", "CUDA_")
_server: dict = {}
_lock = threading.Lock()                # a Dask worker may start kernels from several threads


# ---------------------------------------------------------------- the grading worker's side
def address(plan) -> str | None:
    """This worker's fork server socket, started on first use; None where it cannot work (no bubblewrap, no
    uid per kernel, not root) or did not start."""
    if not serves(plan):
        return None
    with _lock:
        proc, env = _server.get("proc"), zygote_env()
        if proc is not None and proc.poll() is not None:   # the zygote died: restarted at most 3 times
            _server["deaths"] = _server.get("deaths", 0) + 1
            proc = None
        if proc is not None and _server.get("env") != env:  # the worker's environment changed since it started
            proc = None
        if proc is None:
            if _server.get("deaths", 0) >= 3:
                _stop()
                return None
            _start(env)
        return _server.get("path")


def serves(plan) -> bool:
    """Whether this machine's sandbox can get forked kernels (bubblewrap, a uid per kernel, root)."""
    return bool(plan.bwrap and plan.drop_uid) and os.geteuid() == 0 and os.environ.get("VC4ML_FORKSERVER") != "0"


def zygote_env() -> dict:
    from . import sandbox

    env = sandbox._kernel_env({"plan": {"bwrap": True}, "ipc": "", "files": ""})
    return {k: v for k, v in env.items() if k not in PER_KERNEL}


def _start(env: dict) -> None:
    _stop()
    folder = Path(tempfile.mkdtemp(prefix="vc4ml-fork-"))  # 0700: no kernel can reach the socket
    path = folder / "socket"
    with open(folder / "log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-I", "-m", "autograder.forkserver", str(path)], env=env,
                                cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                                close_fds=True)
    _server.update(proc=proc, folder=folder, path=None, env=env)
    if not _server.get("atexit"):
        _server["atexit"] = atexit.register(_stop)
    ready, _, _ = select.select([proc.stdout], [], [], WAIT_S)
    if ready and proc.stdout.read(1) == b"R":
        _server["path"] = str(path)
    else:
        _server["deaths"] = _server.get("deaths", 0) + 1
        _stop()


def _stop() -> None:
    proc = _server.pop("proc", None)
    if proc is not None:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    if _server.get("folder"):
        shutil.rmtree(_server.pop("folder"), ignore_errors=True)
    _server["path"] = None


# ---------------------------------------------------------------- the launcher's side
def launch(cfg: dict, kernel: list[str], env: dict, argv_for) -> tuple | None:
    """Start the kernel by fork: (the sandbox's bwrap process, the connection that reports the kernel's exit
    status), or None when it cannot (nothing of it is left running; the launcher then execs the kernel)."""
    from . import sandbox

    path = cfg.get("zygote")
    if not path or cfg["uid"] is None or kernel[:4] != [sys.executable, "-I", "-c", sandbox.KERNEL_MAIN]:
        return None
    info_r, info_w = os.pipe()
    log = open(cfg["log"], "ab")
    child = subprocess.Popen(argv_for([sys.executable, "-I", "-S", "-c", PLACEHOLDER], info_w), env=env, cwd="/",
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, pass_fds=(info_w,))
    os.close(info_w)
    fds, conn = [], None   # the namespaces' and root's descriptors: ours to close
    try:
        pid = _child_pid(info_r)
        ready, _, _ = select.select([child.stdout], [], [], WAIT_S)
        if not ready or child.stdout.read(1) != b"R":
            raise RuntimeError("the sandbox did not start")
        fds = [os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY) for name, _ in NAMESPACES]
        fds.append(os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY))
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        conn.settimeout(WAIT_S)
        conn.connect(path)
        request = {"env": env, "uid": cfg["uid"], "argv": kernel[4:], "limits": cfg["limits"],
                   "cgroups": cfg["cgroups"]}
        socket.send_fds(conn, [json.dumps(request).encode()], [*fds, log.fileno()])
        reply = json.loads(conn.recv(4096) or b"{}")
        if not reply.get("started"):
            raise RuntimeError(reply.get("failed", "no reply"))
        return child, conn
    except Exception as exc:
        log.write(f"[fork server not used, the kernel is exec'd: {exc}]\n".encode())
        if conn is not None:
            conn.close()
        child.kill()
        child.wait()
        return None
    finally:
        os.close(info_r)
        for fd in fds:
            os.close(fd)
        log.close()


def _child_pid(fd: int) -> int:
    """bubblewrap's --info-fd: the host PID of the sandbox's first process, whose namespaces the kernel joins."""
    data = b""
    while not data.rstrip().endswith(b"}"):
        ready, _, _ = select.select([fd], [], [], WAIT_S)
        chunk = os.read(fd, 4096) if ready else b""
        if not chunk:
            raise RuntimeError("bubblewrap gave no child PID")
        data += chunk
    return int(json.loads(data)["child-pid"])


def wait(conn: socket.socket, child: subprocess.Popen, deadline: float, on_deadline) -> int:
    """The kernel's exit status (negative: killed by that signal), once it has ended; ``on_deadline`` runs once
    if it is still running at ``deadline`` (it kills the sandbox, and with it the kernel)."""
    killed = False
    while True:
        if not killed and time.monotonic() > deadline:
            on_deadline()
            killed = True
        try:
            ready, _, _ = select.select([conn], [], [], 0.2)
        except InterruptedError:
            continue
        if ready:
            try:
                report = json.loads(conn.recv(4096) or b"{}")
            except (OSError, ValueError):
                report = {}
            conn.close()
            child.stdin.close()   # the placeholder ends, and the sandbox with it
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            return int(report.get("returncode", -signal.SIGKILL))


# ---------------------------------------------------------------- the zygote (python -I -m autograder.forkserver)
def serve(path: str, plain: bool = False) -> None:
    own = dict(os.environ)   # as started, before JAX's import sets a few variables (as it does in every kernel)
    import autograder.check  # noqa: F401  what every kernel imports before its first cell (sandbox.KERNEL_MAIN)
    import autograder.endpoint  # noqa: F401
    from ipykernel import kernelapp  # noqa: F401
    # ... and imports while it starts: 40 ms, and debugpy's import runs `uname -p` in a subprocess unless
    # platform's answer is cached (it sets PYDEVD_USE_FRAME_EVAL, as in an exec'd kernel)
    import ipykernel.debugger  # noqa: F401

    kernel_env = dict(os.environ)   # what an exec'd kernel has before its first cell
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    if not plain:   # a grading kernel starts with exactly an exec'd kernel's environment (sklearn sets KMP_*)
        os.environ.clear()
        os.environ.update(kernel_env)
    added = {k: v for k, v in os.environ.items() if k not in own}
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)   # Linux reaps the children: no zombies
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(64)
    listener.settimeout(1.0)
    os.write(1, b"R")
    while os.getppid() == parent:    # the grading worker (or the site build) is gone: so are we
        try:
            conn, _ = listener.accept()
        except (socket.timeout, InterruptedError):
            continue
        fds = []
        try:
            conn.settimeout(WAIT_S)
            data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 16)
            request = json.loads(data)
            if len(fds) != (3 if plain else len(NAMESPACES) + 2):
                raise ValueError("wrong number of descriptors")
            theirs = {k: v for k, v in request["env"].items() if k not in PER_KERNEL}
            if plain:   # what was read at import time must be the same
                theirs, mine = _import_time(theirs), _import_time(own)
            else:
                mine = own
            if theirs != mine:
                differ = sorted(k for k in {*theirs, *mine} if theirs.get(k) != mine.get(k))
                raise ValueError(f"the kernel's environment is not the fork server's: {', '.join(differ)}")
            pid = os.fork()
            if pid == 0:   # never back into this loop: the child ends in a kernel or in _exit
                try:
                    listener.close()
                    if plain:
                        from .plainfork import plain_kernel

                        plain_kernel(conn, request, fds, added)
                    _child(conn, request, fds)
                finally:
                    os._exit(70)
            if plain:
                conn.send(json.dumps({"pid": pid}).encode())
        except Exception as exc:
            try:
                conn.send(json.dumps({"failed": str(exc)[:200]}).encode())
            except OSError:
                pass
        conn.close()
        for fd in fds:
            os.close(fd)


def _import_time(env: dict) -> dict:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME)}


def _child(conn: socket.socket, request: dict, fds: list[int]) -> None:
    """In the sandbox's PID namespace: fork the kernel, tell the launcher it runs, report how it ended."""
    code = 70
    try:
        from . import sandbox

        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sandbox._libc().setns(fds[0], NAMESPACES[0][1]) == 0 or _fail("setns pid")
        started_r, started_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(started_r)
            _kernel(conn, request, fds, started_w)
        os.close(started_w)
        started = os.read(started_r, 1) == b"S"
        os.close(started_r)
        if started:
            conn.send(b'{"started": true}')
        _, status = os.waitpid(pid, 0)
        report = {"returncode": os.waitstatus_to_exitcode(status)} if started else \
            {"failed": f"the kernel did not start (status {status})"}
        try:
            conn.send(json.dumps(report).encode())
        except OSError:   # the launcher is gone (the grader ends a kernel by killing its sandbox, launcher included)
            pass
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def _fail(what: str) -> None:
    import ctypes

    raise OSError(ctypes.get_errno(), what)


def _kernel(conn: socket.socket, request: dict, fds: list[int], started: int) -> None:
    """The kernel: into the sandbox, down to its uid, then ipykernel in this process."""
    try:
        from . import sandbox

        libc = sandbox._libc()
        conn.close()
        for d in request["cgroups"]:   # memory and task limits, before anything else
            Path(d, "cgroup.procs").write_text("0")
        sandbox._rlimits(request["limits"], bool(request["cgroups"]))
        namespaces, root, log = fds[:len(NAMESPACES)], fds[-2], fds[-1]
        for fd, (name, flag) in list(zip(namespaces, NAMESPACES))[1:]:
            libc.setns(fd, flag) == 0 or _fail(f"setns {name}")
        os.fchdir(root)                # the placeholder's root: the sandbox's view, nothing of the host
        os.chroot(".")
        os.chdir(sandbox.HOME)
        null = os.open("/dev/null", os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, started)      # nothing of the zygote's stays open (namespaces, root, sockets)
        os.closerange(started + 1, os.sysconf("SC_OPEN_MAX"))
        os.setsid()
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        uid = request["uid"]
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        libc.prctl(38, 1, 0, 0, 0) == 0 or _fail("no_new_privs")  # PR_SET_NO_NEW_PRIVS
        if os.getuid() != uid or os.geteuid() != uid or os.getgroups():
            raise OSError("the uid was not dropped")
        os.environ.update(request["env"], PWD=sandbox.HOME)  # differs from the zygote's in PER_KERNEL only
        os.write(started, b"S")
        os.close(started)
    except BaseException:
        traceback.print_exc()
        os._exit(71)
    run_kernel(request["argv"])


def run_kernel(argv: list[str]) -> None:
    """ipykernel in this forked process, with ``argv``; exits with its status (never returns)."""
    code = 72
    try:
        import numpy

        numpy.random.seed()            # numpy's global state was seeded in the zygote: a fresh one per kernel
        sys.argv = [sys.executable, *argv]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


if __name__ == "__main__":
    serve(sys.argv[1], plain=sys.argv[2:] == ["--plain"])
