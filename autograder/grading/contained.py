"""nbgrader's ``Execute``, contained: the submission's kernel runs in the sandbox (autograder.sandbox) and the
notebook as a whole has a deadline. Used only by the grader's workers (autograder.grading.autograde puts it in
place of ``Execute``); stock ``nbgrader autograde`` keeps nbgrader's own.

Besides starting the kernel through the sandbox kernelspec over ZMQ ``ipc`` sockets, this executor

* gives each cell nbgrader's timeout, cut to what is left of the notebook's time, and stops at the deadline;
* survives a kernel that dies (a crash, the OOM killer, ``os._exit``) or stops answering (a runaway that ignores
  interrupts): it records why, kills the sandbox, and leaves the remaining cells unexecuted instead of failing the
  notebook, so earlier cells keep their evidence;
* caps what a cell may print (``Limits.output``) and the size of any one message, and ignores display updates and
  ``clear_output``, so that output can neither exhaust the grader's memory nor rewrite another cell's evidence;
* writes what happened to each cell, and why the run stopped, to ``.run.json`` next to the graded notebook (out of
  the kernel's reach), for the trusted verdict.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute

from .. import sandbox

RUN_FILE = ".run.json"
IOPUB_WAIT = 4        # seconds to wait for a cell's last output after its reply (nbclient's default)
INTERRUPTED_WAIT = 2  # ... after a timeout interrupted it: a kernel that is still busy then ignored the interrupt
DEADLINE_ROOM = 3     # seconds kept back from the notebook's deadline for stopping the kernel
# Set by the worker around each submission (a worker grades one submission at a time).
STATE: dict = {"plan": None, "limits": None}


def _size(content: dict) -> int:
    total = 0
    for key in ("text", "evalue"):
        if isinstance(content.get(key), str):
            total += len(content[key])
    for value in (content.get("data") or {}).values():
        total += len(value) if isinstance(value, str) else len(json.dumps(value, default=str))
    total += sum(len(line) for line in content.get("traceback") or [] if isinstance(line, str))
    return total


class ContainedExecute(Execute):

    def preprocess(self, nb, resources=None, km=None):
        plan, limits = STATE["plan"], STATE["limits"]
        if plan is None:
            return super().preprocess(nb, resources, km)
        NotebookClient.__init__(self, nb, km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        folder = Path(self.resources.get("metadata", {}).get("path") or ".")
        self.kernel_name = sandbox.KERNEL_NAME
        self.timeout = limits.cell_timeout
        self.timeout_func = self._cell_timeout
        self.startup_timeout = min(60, limits.notebook_timeout)
        # Every output is in hand when the last cell returns and the sandbox is thrown away: end the kernel rather
        # than wait for its orderly exit (IPython saving its history, ...), which took ~0.8 s per submission.
        self.shutdown_kernel = "immediate"
        started = time.monotonic()
        self._deadline = started + limits.notebook_timeout
        self._box = sandbox.open_box(plan, limits, folder)
        run: dict = {"cells": [], "stopped": "", "limits": limits.describe()}
        stopped = ""
        try:
            with self.setup_kernel():
                info = self.wait_for_reply(self.kc.kernel_info())
                self.nb.metadata["language_info"] = info["content"]["language_info"]
                for index, cell in enumerate(self.nb.cells):
                    if cell.cell_type != "code" or not cell.source.strip():
                        continue
                    gid = cell.metadata.get("nbgrader", {}).get("grade_id", "")
                    if not stopped and time.monotonic() >= self._deadline - DEADLINE_ROOM - 1:
                        stopped = f"the notebook ran past its {limits.notebook_timeout} s limit"
                    if stopped:
                        run["cells"].append({"index": index, "grade_id": gid, "status": "not run", "seconds": 0})
                        continue
                    t0 = time.monotonic()
                    status = "ok"
                    self._cell_bytes, self._dropped = 0, 0
                    self.iopub_timeout = IOPUB_WAIT
                    try:
                        self.preprocess_cell(cell, resources, index)
                        if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
                            status = "timeout"
                    except CellTimeoutError:
                        status = "timeout"
                        stopped = "the kernel did not stop after a timeout (it ignored the interrupt)"
                    except DeadKernelError:
                        status = "died"
                        stopped = self._why_dead()
                    if self._dropped:
                        cell.outputs.append(NotebookNode(output_type="stream", name="stdout", text=(
                            f"\n[grader: {self._dropped / 2**20:.1f} MB of output dropped; "
                            f"the limit is {limits.output / 2**20:g} MB per cell]\n")))
                    seconds = round(time.monotonic() - t0, 2)
                    if status == "ok" and seconds > limits.cell_timeout + 1:
                        status = "timeout"
                    run["cells"].append({"index": index, "grade_id": gid, "status": status, "seconds": seconds,
                                         **({"dropped": self._dropped} if self._dropped else {})})
                self._end_kernel()
        except Exception as exc:  # the kernel could not start, or the client failed: grade what we have
            stopped = stopped or f"the kernel failed: {type(exc).__name__}: {str(exc)[:200]}"
        finally:
            if stopped:
                run["kernel_log"] = self._box.log_tail()
            self._box.close()
        run["stopped"] = stopped
        run["seconds"] = round(time.monotonic() - started, 2)
        (folder / RUN_FILE).unlink(missing_ok=True)  # nbgrader leaves an earlier run's files read-only
        (folder / RUN_FILE).write_text(json.dumps(run, indent=1))
        self.set_widgets_metadata()
        return self.nb, self.resources

    # -- the sandboxed kernel

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        km.transport = "ipc"
        km.ip = str(self._box.ipc / "k")
        km.connection_file = self._box.connection_file
        return km

    async def async_start_new_kernel(self, **kwargs):
        env = dict(os.environ)
        env[sandbox.ENV_CONFIG] = self._box.config()
        kwargs["env"] = env
        await super().async_start_new_kernel(**kwargs)

    start_new_kernel = run_sync(async_start_new_kernel)  # nbclient binds the sync names to its own coroutines

    async def async_start_new_kernel_client(self):
        import zmq

        self.km.context.setsockopt(zmq.MAXMSGSIZE, STATE["limits"].message)
        return await super().async_start_new_kernel_client()

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def _end_kernel(self) -> None:
        """Kill the sandbox's processes from the inside, then wait for the kernel's own process (the sandbox's
        launcher) to reap them and exit: killing that one first would orphan them as zombies."""
        if not self._box.stop():
            return  # nothing reaches inside: the kernel manager's kill below is all there is
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        try:
            process.wait(timeout=2)
        except Exception:  # still running or not a Popen: the kernel manager kills it
            pass

    def _cell_timeout(self, cell) -> int:
        return max(1, min(self.timeout, int(self._deadline - DEADLINE_ROOM - time.monotonic())))

    async def _async_handle_timeout(self, timeout, cell=None):
        self.iopub_timeout = INTERRUPTED_WAIT
        return await super()._async_handle_timeout(timeout, cell)

    def _why_dead(self) -> str:
        for _ in range(20):  # the launcher writes its status as it exits
            if self._box.status():
                break
            time.sleep(0.1)
        memory = f"{STATE['limits'].memory / 2**30:g} GiB"
        if self._box.oom_killed():
            return f"the kernel ran out of memory (limit {memory}) and was killed"
        log = self._box.log_tail()
        if "bad_alloc" in log or "MemoryError" in log or "Cannot allocate memory" in log:
            return f"the kernel ran out of memory (limit {memory}) and aborted"
        if "terminate called after throwing" in log:
            return f"the kernel aborted (most likely out of memory: the limit is {memory})"
        reason = self._box.status().get("reason", "")
        return reason or "the kernel died (a crash, or the code ended its own process)"

    # -- output limits

    def process_message(self, msg, cell, cell_index):
        if STATE["limits"] is None:
            return super().process_message(msg, cell, cell_index)
        kind = msg.get("msg_type", "")
        if kind in ("update_display_data", "clear_output"):
            return None   # may not rewrite outputs, least of all another cell's evidence
        content = msg.get("content") or {}
        if content.get("transient"):
            msg = dict(msg, content={k: v for k, v in content.items() if k != "transient"})
        if kind in ("stream", "display_data", "execute_result", "error"):
            size = _size(content)
            self._cell_bytes = getattr(self, "_cell_bytes", 0) + size
            if self._cell_bytes > STATE["limits"].output and kind != "error":
                self._dropped = getattr(self, "_dropped", 0) + size
                return None
        return super().process_message(msg, cell, cell_index)
