"""Containment for the kernel that runs one student's submission (DESIGN.md, "Grading principles" 3 and 4).

The grader's workers start every submission's kernel through a kernelspec of their own (``vc4ml-sandbox``,
written at run time into each kernel's private folder and given to its kernel manager; stock ``nbgrader autograde``
never sees it). Its argv is ``python -I -m autograder.sandbox launch -- python -I -c <KERNEL_MAIN> -f
{connection_file}``: the launcher applies the limits and starts the real kernel inside them. The kernel talks to nbclient over ZMQ ``ipc`` sockets
(files in a folder shared with the sandbox), so it needs no network at all. Where bubblewrap and a uid per
kernel apply, the launcher does not exec that kernel: it builds the same sandbox around a placeholder and has the
grading worker's fork server (autograder.forkserver), which has imported JAX once, fork the kernel into it.

What is applied, best first; :func:`probe` finds out once per batch what this machine allows, and every limit that
cannot be applied is named in the log (``Plan.missing``):

* **bubblewrap** (``bwrap``, Debian package ``bubblewrap``): a new mount, PID, network, IPC and UTS namespace. The
  kernel sees a read-only system (/usr, /etc, the Python installation, the virtual environment and the
  ``autograder`` package), a private /proc, an empty size-capped tmpfs as /tmp and as its home and working folder
  holding only this submission's files (read-only), and the socket folder. The repository's solutions, the
  gradebook, the data folder, other students' files and the secret's batch state are not in its view at all; the
  network has only a loopback device; killing the sandbox kills every process in it.
* **an unprivileged uid** (when the grader runs as root): one uid per kernel, never shared with another kernel, so
  that ``RLIMIT_NPROC`` is enforced (Linux exempts root) and no file of the grader is writable.
* **cgroups** (v2 ``memory.max``/``pids.max`` or v1 ``memory.limit_in_bytes``/``pids.max``) where the grader may
  create them: memory and task count for the whole sandbox, whatever it forks.
* **rlimits**, always: ``RLIMIT_DATA`` = the memory limit (per process; ``RLIMIT_AS`` is not used: JAX reserves
  about 1.5 GB of address space before any work), ``RLIMIT_NPROC``, ``RLIMIT_FSIZE``, ``RLIMIT_CORE`` = 0 and a
  CPU-time backstop.
* **wall time**: nbgrader's per-cell timeout and a per-notebook deadline in the grader (autograder.grading.
  contained); the launcher kills the whole sandbox if the kernel outlives the notebook limit plus a grace period.
* without bubblewrap: a network namespace where the grader may create one, otherwise nothing for the network or
  the file system view; the log says so.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ENV_CONFIG = "VC4ML_SANDBOX"
KERNEL_NAME = "vc4ml-sandbox"
HOME = "/home/student"
GiB, MiB = 1 << 30, 1 << 20
UID_BASE = 3_000_000          # kernel uid = UID_BASE + the worker's pid: unique among running kernels
GRACE = 15                    # seconds the launcher waits past the notebook limit before killing the sandbox
CLONE_NEWNET = 0x40000000
# what a kernel may inherit from the grader's environment; everything else (AUTOGRADER_DATA, paths, tokens) is dropped
ENV_KEEP = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "JAX_PLATFORMS", "JAX_ENABLE_X64", "XLA_FLAGS",
            "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_CLIENT_MEM_FRACTION", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS",
            "MPLBACKEND", "NBGRADER_EXECUTION", "PYDEVD_DISABLE_FILE_VALIDATION")
# The kernel: isolated mode (no cwd, script folder or PYTHON* variables on sys.path: a submission's `autograder.py`
# or `json.py` shadows nothing), with the check library and the channel's end imported before any cell runs.
KERNEL_MAIN = ("import autograder.check, autograder.endpoint; from ipykernel import kernelapp; "
               "kernelapp.launch_new_instance()")


@dataclass
class Limits:
    """What one submission may use. ``cell_timeout`` is nbgrader's ``Execute.timeout``."""

    cell_timeout: int = 20               # seconds per cell
    notebook_timeout: int = 300          # seconds for the whole notebook, kernel start included
    memory: int = 2 * GiB                # bytes: the sandbox's cgroup, and RLIMIT_DATA per process
    processes: int = 256                 # tasks (processes + threads): pids.max and RLIMIT_NPROC
    cpus: float = 1.0                    # CPU time share of the whole sandbox (cgroup cpu quota), in cores
    file_size: int = 64 * MiB            # RLIMIT_FSIZE: the largest file the kernel may write
    tmp_size: int = 256 * MiB            # each of the sandbox's tmpfs (/tmp and the home folder)
    output: int = 4 * MiB                # output bytes kept per cell (the rest is dropped, with a note)
    message: int = 16 * MiB              # largest ZMQ message the grader accepts from the kernel
    output_total: int = 32 * MiB         # all messages of one notebook, at raw size: past it the kernel is stopped
    network: bool = False                # False: the kernel gets no network where the machine allows it

    def describe(self) -> str:
        return (f"{self.cell_timeout} s per cell, {self.notebook_timeout} s per notebook, "
                f"{self.memory / GiB:g} GiB memory, {self.processes} tasks, {self.cpus:g} CPU, files up to {self.file_size // MiB} MiB, "
                f"output up to {self.output // MiB} MiB per cell, network {'on' if self.network else 'off'}")


def parse_size(text: str) -> int:
    """'2G', '512M', '1.5GiB', '1073741824' -> bytes."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": 1 << 10, "M": MiB, "G": GiB, "T": 1 << 40}.get(t[-1:], 1)
    return int(float(t[:-1] if t[-1:] in "KMGT" else t) * scale)


@dataclass
class Plan:
    """What this machine lets the grader apply (found by :func:`probe`), shared by all kernels of a batch."""

    bwrap: str = ""                      # path of a working bwrap, or ""
    drop_uid: bool = False               # run the kernel under its own unprivileged uid
    netns: bool = False                  # basic mode: unshare the network namespace in the launcher
    cgroup: dict = field(default_factory=dict)   # {"version": 1|2, "memory": dir, "pids": dir}
    applied: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def report(self) -> str:
        lines = ["sandbox: " + "; ".join(self.applied)]
        lines += [f"sandbox: NOT APPLIED: {m}" for m in self.missing]
        return "\n".join(lines)


# ---------------------------------------------------------------- probing (in the grader, once per batch)


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _try_child(fn) -> bool:
    """Run ``fn`` in a forked child; True if it returned True (no state of ours is touched)."""
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(0 if fn() else 1)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _python_dirs() -> list[str]:
    """Folders a kernel needs to read: the Python installation, the virtual environment, this package."""
    dirs = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix),
            str(Path(__file__).resolve().parent)}
    exe = os.path.realpath(sys.executable)
    if not any(exe.startswith(d + os.sep) for d in dirs):
        dirs.add(os.path.dirname(exe))
    return sorted(d for d in dirs if not d.startswith(("/usr/", "/etc/")) and d not in ("/usr", "/etc"))


def _uid_can_run_python(uid: int) -> bool:
    def run():
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        return all(os.access(p, os.R_OK | os.X_OK) for p in [os.path.realpath(sys.executable), *_python_dirs()])
    return _try_child(run)


def _cgroup_dirs() -> dict:
    """Writable parents for per-kernel cgroups: {"version": 2, "memory": dir, "pids": dir} or v1's, or {}."""
    if os.geteuid() != 0 and not os.access("/sys/fs/cgroup", os.W_OK):
        pass
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return {}
    found: dict = {}
    unified = Path("/sys/fs/cgroup/cgroup.controllers")
    if unified.exists():  # pure cgroup v2
        rel = next((ln.split(":", 2)[2] for ln in lines if ln.startswith("0::")), "/")
        base = Path("/sys/fs/cgroup") / rel.lstrip("/")
        try:
            enabled = (base / "cgroup.subtree_control").read_text().split()
        except OSError:
            enabled = []
        if "memory" in enabled and "pids" in enabled and os.access(base, os.W_OK):
            found = {"version": 2, "memory": str(base), "pids": str(base)}
            if "cpu" in enabled:
                found["cpu"] = str(base)
        return found
    for name in ("memory", "pids", "cpu"):
        rel = next((ln.split(":", 2)[2] for ln in lines if ln.split(":")[1:2] == [name]), None)
        base = Path("/sys/fs/cgroup") / name / (rel or "/").lstrip("/")
        if rel is not None and base.is_dir() and os.access(base, os.W_OK):
            found[name] = str(base)
    if found:
        found["version"] = 1
    return found


def _cgroup_works(cg: dict) -> bool:
    name = f"vc4ml-probe-{os.getpid()}"
    made = []
    try:
        for key in ("memory", "pids", "cpu"):
            if key in cg and cg[key] not in made:
                d = Path(cg[key]) / name
                d.mkdir()
                made.append(cg[key])
        return True
    except OSError:
        return False
    finally:
        for parent in made:
            try:
                (Path(parent) / name).rmdir()
            except OSError:
                pass


def probe(limits: Limits | None = None) -> Plan:
    """Find out which containment this machine allows; never raises."""
    limits = limits or Limits()
    plan = Plan()
    root = os.geteuid() == 0
    bwrap = shutil.which("bwrap")
    unseen = "student code can read every file that the kernel's uid can read"
    # AUTOGRADER_SANDBOX=basic: no bubblewrap; =minimal: rlimits and wall time only (to test the fallbacks)
    mode = os.environ.get("AUTOGRADER_SANDBOX", "")
    if mode in ("basic", "minimal"):
        plan.missing.append(f"file system and PID isolation: bubblewrap not used (AUTOGRADER_SANDBOX={mode}); {unseen}")
    elif not bwrap:
        plan.missing.append(f"file system and PID isolation: bubblewrap is not installed (apt-get install "
                            f"bubblewrap); {unseen}")
    else:
        try:
            ok = subprocess.run([bwrap, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--unshare-pid",
                                 "--unshare-net", "--unshare-ipc", "--die-with-parent", "--new-session", "true"],
                                capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            plan.bwrap = bwrap
            plan.applied.append("bubblewrap (private mount, PID, network, IPC namespaces; only this submission's "
                                "files visible)")
        else:
            plan.missing.append(f"file system and PID isolation: {bwrap} cannot create namespaces here (a "
                                f"container without them?); {unseen}")
    if root and mode == "minimal":
        plan.missing.append("own uid per kernel: not used (AUTOGRADER_SANDBOX=minimal); the kernel runs as root")
    elif root:
        probe_uid = UID_BASE + os.getpid()
        if plan.bwrap or _uid_can_run_python(probe_uid):
            plan.drop_uid = True
            plan.applied.append("an unprivileged uid per kernel (RLIMIT_NPROC enforced, grader's files read-only)")
        else:
            plan.missing.append("unprivileged uid: Python is not readable by other users here; the kernel runs as "
                                "root, so RLIMIT_NPROC is not enforced")
    else:
        plan.missing.append("own uid per kernel: the grader is not root; kernels share the grader's uid "
                            "(RLIMIT_NPROC counts all of its processes)")
    if not plan.bwrap and not limits.network:
        if mode != "minimal" and _try_child(lambda: _libc().unshare(CLONE_NEWNET) == 0):
            plan.netns = True
            plan.applied.append("no network (a private network namespace)")
        else:
            why = "not used (AUTOGRADER_SANDBOX=minimal)" if mode == "minimal" else "no network namespace here"
            plan.missing.append(f"network isolation: {why}; the kernel has the grader's network")
    cg = _cgroup_dirs() if mode != "minimal" else {}
    if cg and "memory" in cg and "pids" in cg and root and _cgroup_works(cg):
        plan.cgroup = cg
        plan.applied.append(f"cgroup v{cg['version']} memory, task" + (" and CPU" if "cpu" in cg else "")
                            + " limits for the whole sandbox")
        if "cpu" not in cg:
            plan.missing.append("CPU share: no writable cpu cgroup; a kernel may use every core")
    else:
        why = "not used (AUTOGRADER_SANDBOX=minimal)" if mode == "minimal" else "no writable cgroup here"
        plan.missing.append(f"cgroup memory/task/CPU limits: {why}; memory is limited per process (RLIMIT_DATA), "
                            "so several processes of one kernel may together use more, and a kernel may use every core")
    plan.applied.append(f"rlimits (DATA {data_limit(limits.memory, bool(plan.cgroup)) / GiB:g} GiB per process, "
                        f"NPROC {limits.processes}, "
                        f"FSIZE {limits.file_size // MiB} MiB, no core dumps), per-cell and per-notebook wall time")
    return plan


# ---------------------------------------------------------------- per-kernel set-up (in the grader's worker)


def install_kernelspec(folder: Path) -> Path:
    """Write the sandbox kernelspec under ``folder/kernels`` and return ``folder``."""
    spec = folder / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    # -I: the launcher runs on the host with the grader's rights; nothing of the submission may be on its path
    argv = [sys.executable, "-I", "-m", "autograder.sandbox", "launch", "--",
            sys.executable, "-I", "-c", KERNEL_MAIN, "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({
        "argv": argv, "display_name": "Python 3 (vc4ml sandbox)", "language": "python",
        "interrupt_mode": "message", "metadata": {"debugger": False}}, indent=1))
    return folder


START_FILE = "start.txt"   # in the box's root: how the launcher started the kernel


@dataclass
class Box:
    """One kernel's sandbox: its folders, uid and cgroups. Created before the kernel starts, removed after."""

    plan: Plan
    limits: Limits
    root: Path                    # private to the grader: status, kernel log
    ipc: Path                     # shared with the kernel: connection file and sockets
    files: Path                   # this submission's files, bound read-only into the kernel's home
    uid: int | None
    cgroups: list[str]
    zygote: str | None = None     # this worker's fork server (autograder.forkserver), if it runs

    @property
    def connection_file(self) -> str:
        return str(self.ipc / "kernel.json")

    @property
    def status_file(self) -> Path:
        return self.root / "status.json"

    def config(self) -> str:
        return json.dumps({"plan": asdict(self.plan), "limits": asdict(self.limits), "ipc": str(self.ipc),
                           "files": str(self.files), "uid": self.uid, "cgroups": self.cgroups,
                           "zygote": self.zygote,
                           "status": str(self.status_file), "log": str(self.root / "kernel.log")})

    def status(self) -> dict:
        try:
            return json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return {}

    def kernel_start(self) -> str:
        """How the launcher started the kernel: "forked", "exec'd", or "" if it did not get that far."""
        try:
            return (self.root / START_FILE).read_text()
        except OSError:
            return ""

    def log_tail(self, size: int = 2000) -> str:
        """The end of what the kernel (and the sandbox tools) wrote to stdout/stderr."""
        try:
            with open(self.root / "kernel.log", "rb") as fh:
                fh.seek(max(0, fh.seek(0, 2) - size))
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def oom_killed(self) -> bool:
        for d in self.cgroups:
            for name, key in (("memory.events", "oom_kill"), ("memory.oom_control", "oom_kill")):
                try:
                    for line in (Path(d) / name).read_text().splitlines():
                        k, _, v = line.partition(" ")
                        if k == key and int(v) > 0:
                            return True
                except (OSError, ValueError):
                    continue
        return False

    def stop(self) -> bool:
        """Kill every process inside the sandbox (the kernel and anything it started); False if there is no way
        to reach them all (no cgroup, no uid of their own)."""
        for d in self.cgroups:
            _kill_cgroup(Path(d))
        by_uid = self.uid is not None and not self.plan.bwrap
        if by_uid:
            _kill_uid(self.uid)
        return bool(self.cgroups) or by_uid

    def seal_ipc(self) -> None:
        """Once the kernel has bound its sockets, its socket folder is no longer writable by it, so it cannot be
        filled (the kernel runs under its own uid only; without one, RLIMIT_FSIZE caps each file)."""
        if self.uid is None:
            return
        for path in [self.ipc, *self.ipc.iterdir()]:
            try:
                os.chown(path, 0, 0, follow_symlinks=False)
                if path == self.ipc or path.is_file():
                    os.chmod(path, 0o755 if path == self.ipc else 0o644)
            except OSError:
                pass

    def close(self) -> None:
        """Kill whatever is left of the kernel and remove its cgroups and folders."""
        self.stop()
        for d in self.cgroups:
            pause = 0.005   # busy while its killed processes are reaped (usually a few ms): poll soon, then back off
            for _ in range(60):
                try:
                    Path(d).rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    _kill_cgroup(Path(d))
                    time.sleep(pause)
                    pause = min(0.1, pause * 2)
        shutil.rmtree(self.root, ignore_errors=True)


def _kill_cgroup(d: Path) -> None:
    try:
        pids = [int(p) for p in (d / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _kill_uid(uid: int) -> None:
    """Kill every process of ``uid`` (basic mode: a fork that left the process group)."""
    for _ in range(3):
        found = False
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if entry.stat().st_uid == uid:
                    os.kill(int(entry.name), signal.SIGKILL)
                    found = True
            except OSError:
                continue
        if not found:
            return
        time.sleep(0.05)


def open_box(plan: Plan, limits: Limits, files_from: Path) -> Box:
    """Create a kernel's sandbox: private folders, a copy of the submission's files, its uid and cgroups."""
    root = Path(tempfile.mkdtemp(prefix="vc4ml-"))
    os.chmod(root, 0o711)        # the kernel may pass through to its socket folder, not list or read the rest
    uid = UID_BASE + os.getpid() if plan.drop_uid else None
    ipc, files = root / "ipc", root / "files"
    ipc.mkdir(mode=0o700)
    files.mkdir(mode=0o755)
    copy_files(files_from, files, limits.file_size)
    if uid is not None:
        os.chown(ipc, uid, uid)
        for p in [files, *files.rglob("*")]:
            os.chown(p, uid, uid, follow_symlinks=False)
        if not plan.bwrap:
            os.chmod(files, 0o700)
    cgroups = []
    if plan.cgroup:
        name = f"vc4ml-{os.getpid()}-{root.name.split('-')[-1]}"
        cgroups = _make_cgroups(plan.cgroup, name, limits)
    from . import forkserver

    zygote = forkserver.address(plan) if uid is not None else None
    return Box(plan, limits, root, ipc, files, uid, cgroups, zygote)


def copy_files(src: Path, dest: Path, max_file: int, max_total: int = 256 * MiB) -> list[str]:
    """Copy the regular files of a submission folder, not notebooks (the graded copy holds hidden tests), not
    dot-files (the grader's own) and no links; returns what was skipped."""
    skipped, total = [], 0
    for path in sorted(src.rglob("*")) if src.is_dir() else []:
        rel = path.relative_to(src)
        if any(part.startswith(".") for part in rel.parts) or path.suffix == ".ipynb":
            continue
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            skipped.append(f"{rel} (not a regular file)")
            continue
        if path.is_dir():
            (dest / rel).mkdir(parents=True, exist_ok=True)
            continue
        size = path.stat().st_size
        if size > max_file or total + size > max_total:
            skipped.append(f"{rel} (too large)")
            continue
        total += size
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest / rel, follow_symlinks=False)
    return skipped


def _make_cgroups(cg: dict, name: str, limits: Limits) -> list[str]:
    made = []
    try:
        if cg["version"] == 2:
            d = Path(cg["memory"]) / name
            d.mkdir()
            made.append(str(d))
            (d / "memory.max").write_text(str(limits.memory))
            for opt, value in (("memory.swap.max", "0"), ("pids.max", str(limits.processes)),
                               ("cpu.max", f"{int(limits.cpus * 100000)} 100000")):
                try:
                    (d / opt).write_text(value)
                except OSError:
                    pass
        else:
            if "memory" in cg:
                d = Path(cg["memory"]) / name
                d.mkdir()
                made.append(str(d))
                (d / "memory.limit_in_bytes").write_text(str(limits.memory))
                try:
                    (d / "memory.memsw.limit_in_bytes").write_text(str(limits.memory))
                except OSError:
                    pass
            if "pids" in cg:
                d = Path(cg["pids"]) / name
                d.mkdir()
                made.append(str(d))
                (d / "pids.max").write_text(str(limits.processes))
            if "cpu" in cg:
                d = Path(cg["cpu"]) / name
                d.mkdir()
                made.append(str(d))
                (d / "cpu.cfs_period_us").write_text("100000")
                (d / "cpu.cfs_quota_us").write_text(str(int(limits.cpus * 100000)))
    except OSError:
        for d in made:
            try:
                Path(d).rmdir()
            except OSError:
                pass
        return []
    return made


# ---------------------------------------------------------------- the launcher (the kernelspec's argv)

# Runs inside bubblewrap, as root in the new namespaces: hand the home folder to the kernel's uid, drop every
# privilege for good and start the kernel.
_DROP = """
import ctypes, os, sys
uid, home, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
os.chown(home, uid, uid); os.chmod(home, 0o700)
os.setgroups([]); os.setresgid(uid, uid, uid); os.setresuid(uid, uid, uid)
ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
os.execv(argv[0], argv)
"""


def _bwrap_argv(cfg: dict, kernel: list[str], info_fd: int | None = None) -> list[str]:
    plan, limits = cfg["plan"], cfg["limits"]
    argv = [plan["bwrap"], *(["--info-fd", str(info_fd)] if info_fd is not None else []),  # the fork server's
            "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--hostname", "sandbox"]
    if not limits["network"]:
        argv.append("--unshare-net")
    argv += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "lib", "lib32", "lib64", "libx32", "sbin"):
        p = Path("/") / name
        if p.is_symlink():
            argv += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            argv += ["--ro-bind", str(p), str(p)]
    argv += ["--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev",
             "--size", str(limits["tmp_size"] // 16), "--tmpfs", "/dev/shm",
             "--perms", "1777", "--size", str(limits["tmp_size"]), "--tmpfs", "/tmp",
             "--perms", "0755", "--dir", "/home",
             "--size", str(limits["tmp_size"]), "--tmpfs", HOME]
    made = {"/", "/usr", "/etc", "/tmp", "/home", HOME}
    binds = [(d, "--ro-bind") for d in _python_dirs()] + [(cfg["ipc"], "--bind")]
    for d, how in binds:
        parents = [str(p) for p in reversed(Path(d).parents)]
        for parent in parents:
            if parent not in made:
                argv += ["--perms", "0755", "--dir", parent]
                made.add(parent)
        argv += [how, d, d]
        made.add(d)
    files = Path(cfg["files"])
    for path in sorted(files.rglob("*")):
        argv += ["--ro-bind", str(path), f"{HOME}/{path.relative_to(files)}"]
    argv += ["--chdir", HOME, "--"]
    if cfg["uid"] is not None:
        argv += [sys.executable, "-I", "-c", _DROP, str(cfg["uid"]), HOME]
    return argv + kernel


def _basic_setup(cfg: dict):
    """preexec for the kernel without bubblewrap: own session, die with the launcher, no network, own uid."""
    plan, uid = cfg["plan"], cfg["uid"]
    libc = _libc()

    def setup():
        os.setsid()
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if plan["netns"] and libc.unshare(CLONE_NEWNET) != 0:
            os._exit(70)
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            libc.prctl(38, 1, 0, 0, 0)
    return setup


# A grading kernel runs the answers op by op, so XLA compiling each new operation is most of its CPU time. These
# flags make that compile about 3x faster on CPU (fusion emitters off, no LLVM optimisation of one-operation
# programs) and leave float64 results equal to a few ulps (tests/test_sandbox_env.py). Only for jaxlib
# versions known to accept them: XLA aborts the kernel on an unknown flag.
FAST_COMPILE = {"0.10.2": ("--xla_cpu_use_fusion_emitters=false", "--xla_backend_optimization_level=0")}


def fast_compile_flags() -> tuple[str, ...]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return FAST_COMPILE.get(version("jaxlib"), ())
    except PackageNotFoundError:
        return ()


def with_fast_compile(flags: str) -> str:
    """$XLA_FLAGS for a kernel: the fast-compile flags, then ``flags`` (the instructor's own, which win where both
    set one)."""
    own = flags.split()
    return " ".join([flag for flag in fast_compile_flags() if flag not in own] + own)


def _kernel_env(cfg: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k in ENV_KEEP}
    flags = with_fast_compile(env.get("XLA_FLAGS", ""))
    if flags:
        env["XLA_FLAGS"] = flags
    home = HOME if cfg["plan"]["bwrap"] else cfg["files"]
    env.update(HOME=home, USER="student", LOGNAME="student", TMPDIR="/tmp", MPLCONFIGDIR=f"{home}/.matplotlib",
               PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1", JUPYTER_RUNTIME_DIR=cfg["ipc"],
               IPYTHONDIR=f"{home}/.ipython", OPENBLAS_NUM_THREADS="1",
               # JAX's persistent compilation cache, private to this kernel (its own /tmp under bubblewrap, its
               # own folder without): a computation the answers compile again (a while_loop, a jvp of a grad
               # called op by op) is loaded instead; no other kernel ever reads what this one wrote.
               JAX_COMPILATION_CACHE_DIR="/tmp/.jax_cache" if cfg["plan"]["bwrap"] else f"{home}/.jax_cache",
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    env.setdefault("PATH", "/usr/bin:/bin")
    return env


def data_limit(memory: int, cgroup: bool) -> int:
    """RLIMIT_DATA per process. Under a memory cgroup it stays below the cgroup's limit (which also counts shared
    libraries and tmpfs), so that one runaway process gets a MemoryError before the OOM killer takes the kernel."""
    return max(256 * MiB, memory - min(512 * MiB, memory // 4)) if cgroup else memory


def _rlimits(limits: dict, cgroup: bool) -> None:
    cpu = (limits["notebook_timeout"] + GRACE) * max(2, os.cpu_count() or 1)
    for name, value in (("RLIMIT_DATA", data_limit(limits["memory"], cgroup)), ("RLIMIT_NPROC", limits["processes"]),
                        ("RLIMIT_FSIZE", limits["file_size"]), ("RLIMIT_CORE", 0), ("RLIMIT_CPU", cpu)):
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
        except (ValueError, OSError):
            pass


def launch(kernel: list[str]) -> int:
    """Start ``kernel`` inside the sandbox described by $VC4ML_SANDBOX; wait; record how it ended."""
    cfg = json.loads(os.environ.pop(ENV_CONFIG))
    limits, uid = cfg["limits"], cfg["uid"]
    status = {"reason": "", "returncode": None}
    for procs in cfg["cgroups"]:
        try:
            Path(procs, "cgroup.procs").write_text(str(os.getpid()))
        except OSError as exc:
            status["cgroup_error"] = str(exc)
    if uid is not None:
        try:
            os.chown(kernel[kernel.index("-f") + 1], uid, uid)
        except (ValueError, IndexError, OSError):
            pass
    env = _kernel_env(cfg)
    if cfg["plan"]["bwrap"]:
        argv, setup, cwd = _bwrap_argv(cfg, kernel), None, "/"
    else:
        argv, setup, cwd = kernel, _basic_setup(cfg), cfg["files"]
    _rlimits(limits, bool(cfg["cgroups"]))
    forked = None
    if cfg["plan"]["bwrap"]:
        from . import forkserver

        forked = forkserver.launch(cfg, kernel, env, lambda cmd, fd: _bwrap_argv(cfg, cmd, fd))
    Path(cfg["status"]).with_name(START_FILE).write_text("forked" if forked else "exec'd")
    if forked:
        child, conn = forked
    else:
        log = open(cfg["log"], "ab")
        child = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 preexec_fn=setup, close_fds=True)
        log.close()

    def stop(signum, frame):  # the kernel manager shuts us down: take the sandbox with us
        status["reason"] = status["reason"] or f"stopped by the grader (signal {signum})"
        _terminate(child)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts travel as messages to the kernel itself
    deadline = time.monotonic() + limits["notebook_timeout"] + GRACE

    def past_deadline():
        status["reason"] = f"the notebook ran past its {limits['notebook_timeout']} s limit: the sandbox was killed"
        _terminate(child)

    if forked:
        code = forkserver.wait(conn, child, deadline, past_deadline)
        signum = -code if code < 0 else 0
    else:
        while child.poll() is None:
            if time.monotonic() > deadline:
                past_deadline()
                break
            time.sleep(0.2)
        child.wait()
        if not cfg["plan"]["bwrap"]:
            _terminate(child)
        code = child.returncode or 0
        # bwrap reports a child killed by signal N as exit status 128 + N
        signum = -code if code < 0 else code - 128 if cfg["plan"]["bwrap"] and 128 < code < 128 + 65 else 0
    status.update(returncode=code)
    if signum and not status["reason"]:
        try:
            status["reason"] = f"the kernel was killed by signal {signal.Signals(signum).name}"
        except ValueError:
            status["reason"] = f"the kernel was killed by signal {signum}"
    Path(cfg["status"]).write_text(json.dumps(status))
    return 0 if code == 0 else 1


def _terminate(child: subprocess.Popen, group: bool = True) -> None:
    try:
        child.kill()   # bwrap: --die-with-parent and the PID namespace take every process of the sandbox along
    except OSError:
        pass
    if group:          # without bwrap: the kernel's session (setsid) with whatever it forked and left behind
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except OSError:
            pass


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "launch" and argv[1] == "--":
        return launch(argv[2:])
    if argv[:1] == ["probe"]:
        print(probe().report())
        return 0
    print("usage: python -m autograder.sandbox launch -- <kernel argv>  |  probe", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
