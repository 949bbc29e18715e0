"""nbgrader's ``Execute``, contained, with the tests run by the trusted driver: the submission's kernel runs in the
sandbox (autograder.sandbox) and only ever executes the instructor's set-up and the student's own cells; every test
cell runs in autograder.grading.driver, in this worker, calling the student's functions through the channel
(autograder.grading.channel). Used only by the grader's workers (autograder.grading.autograde puts it in place of
``Execute``); stock ``nbgrader autograde`` keeps nbgrader's own.

What each cell runs is decided by its grade id against the instructor's cells from the gradebook (``Job.cells``),
never by the submission: an instructor cell runs its trusted source (in the kernel, then in the driver), a test cell
runs its trusted source in the driver, any other code cell is the student's and runs in the kernel. Student cells
above the first instructor cell are not run. Besides that, this executor

* gives each cell nbgrader's timeout, and each test cell that much time for all its calls, cut to what is left of
  the notebook's time, and stops at the deadline;
* survives a kernel that dies or stops answering: it records why, kills the sandbox, and leaves the remaining
  cells unexecuted instead of failing the notebook, so earlier tests keep their verdicts;
* accounts every message from the kernel at its raw size: past ``Limits.output`` per cell output is dropped, past
  ``Limits.output_total`` per notebook the kernel is stopped; display updates and ``clear_output`` are ignored;
* writes the test cells' outputs itself (the verdict, in the grader's words) and the record of each cell and each
  verdict to ``.run.json`` next to the graded notebook (out of the kernel's reach).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute

from .. import sandbox
from .channel import Channel, KernelGone, StudentTimeout
from .driver import CellVerdict, Driver

RUN_FILE = ".run.json"
IOPUB_WAIT = 4        # seconds to wait for a cell's last output after its reply (nbclient's default)
INTERRUPTED_WAIT = 2  # ... after a timeout interrupted it: a kernel that is still busy then ignored the interrupt
DEADLINE_ROOM = 3     # seconds kept back from the notebook's deadline for stopping the kernel
RECONNECT_MS = 5       # how often a kernel client retries connecting to a kernel that is still starting


@dataclass
class JobSpec:
    """What one submission's execution needs, handed from the worker's job (autograder.grading.autograde)."""

    plan: sandbox.Plan
    limits: sandbox.Limits
    cells: dict = field(default_factory=dict)   # grade id -> {"role": "instructor" | "test", "source": ...}
    policy: str = "zero"
    explain: bool = False   # the instructor's solution: failures keep their point, values and exception


# nbgrader builds the preprocessor from its configuration, so the worker sets the current job here before it
# calls nbgrader's autograde for one submission (a worker grades one submission at a time).
CURRENT: dict = {"job": None}


def _size(msg: dict) -> int:
    """A message's size as it arrived: every field, every buffer."""
    total = sum(len(b) for b in msg.get("buffers") or [] if isinstance(b, (bytes, bytearray, memoryview)))
    for key in ("header", "parent_header", "metadata", "content"):
        try:
            total += len(json.dumps(msg.get(key), default=str))
        except (TypeError, ValueError):
            total += 1 << 20
    return total


class ContainedExecute(Execute):

    def preprocess(self, nb, resources=None, km=None):
        job: JobSpec | None = CURRENT["job"]
        if job is None:
            return super().preprocess(nb, resources, km)
        self._job = job
        limits = job.limits
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
        self._test_deadline = None
        self._total_bytes, self._flood, self._gone = 0, False, ""
        self._reply = None   # the last execute reply (on_cell_executed)
        self._box = sandbox.open_box(job.plan, limits, folder)
        run: dict = {"cells": [], "stopped": "", "limits": limits.describe(), "verdicts": {}}
        try:
            with self.setup_kernel():
                info = self.wait_for_reply(self.kc.kernel_info())
                self.nb.metadata["language_info"] = info["content"]["language_info"]
                self._box.seal_ipc()
                self._run_cells(run, resources)
                self._end_kernel()
        except Exception as exc:  # the kernel could not start, or the client failed: grade what we have
            self._gone = self._gone or f"the kernel failed: {type(exc).__name__}: {str(exc)[:200]}"
        finally:
            run["kernel"] = self._box.kernel_start()
            if self._gone:
                run["kernel_log"] = self._box.log_tail()
            self._box.close()
        for index, cell in enumerate(self.nb.cells):  # tests never reached: no verdict, so 0 with the reason
            spec = job.cells.get(cell.metadata.get("nbgrader", {}).get("grade_id", ""), {})
            gid = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            if spec.get("role") == "test" and gid not in run["verdicts"]:
                self._verdict(run, cell, gid, CellVerdict(False, f"not run: {self._gone or 'the notebook stopped'}"))
        run["stopped"] = self._gone
        run["seconds"] = round(time.monotonic() - started, 2)
        (folder / RUN_FILE).unlink(missing_ok=True)  # nbgrader leaves an earlier run's files read-only
        (folder / RUN_FILE).write_text(json.dumps(run, indent=1))
        self.set_widgets_metadata()
        return self.nb, self.resources

    def _run_cells(self, run: dict, resources) -> None:
        job, limits = self._job, self._job.limits
        channel = Channel(self._call_kernel)
        driver = Driver(channel, job.policy, explain=job.explain)
        instructor_seen = False
        for index, cell in enumerate(self.nb.cells):
            if cell.cell_type != "code":
                continue
            gid = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            spec = job.cells.get(gid, {})
            role = spec.get("role", "student")
            if role != "student":
                cell.source = spec["source"]     # the instructor's source, whatever the submission holds
            if not cell.source.strip() and role != "test":
                continue
            if not self._gone and time.monotonic() >= self._deadline - DEADLINE_ROOM - 1:
                self._gone = f"the notebook ran past its {limits.notebook_timeout} s limit"
            if self._gone:
                run["cells"].append({"index": index, "grade_id": gid, "status": "not run", "seconds": 0})
                continue
            if role == "student" and not instructor_seen:
                cell.outputs = []
                run["cells"].append({"index": index, "grade_id": gid, "status": "skipped", "seconds": 0})
                continue
            t0 = time.monotonic()
            if role == "test":
                self._test_deadline = t0 + limits.cell_timeout
                self._test_index = index
                try:
                    verdict = driver.test_cell(spec["source"], gid) if instructor_seen else \
                        CellVerdict(False, "the set-up cell did not run")
                finally:
                    self._test_deadline = None
                self._verdict(run, cell, gid, verdict)
                run["cells"].append({"index": index, "grade_id": gid, "status": "test",
                                     "seconds": round(time.monotonic() - t0, 2)})
                continue
            status = self._kernel_cell(cell, index, resources)
            dropped, self._test_index = self._dropped, index
            if role == "instructor" and not self._gone:
                instructor_seen = True
                try:
                    driver.instructor_cell(spec["source"], gid)
                except KernelGone:
                    pass
                except Exception as exc:  # the instructor's own code failed here: every test will say so
                    import traceback

                    run["driver_error"] = traceback.format_exc(limit=8)[-3000:]
                    self._gone = f"the instructor's cell {gid} failed in the grader ({type(exc).__name__})"
            seconds = round(time.monotonic() - t0, 2)
            if status == "ok" and seconds > limits.cell_timeout + 1:
                status = "timeout"
            raised = [o.get("ename") for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            run["cells"].append({"index": index, "grade_id": gid, "status": status, "seconds": seconds,
                                 **({"dropped": dropped} if dropped else {}),
                                 **({"raised": raised[0]} if raised and status == "ok" else {})})

    def _kernel_cell(self, cell, index: int, resources) -> str:
        """Execute one cell in the kernel; its status: ok, timeout or died."""
        self._cell_bytes, self._dropped = 0, 0
        self.iopub_timeout = IOPUB_WAIT
        status = "ok"
        try:
            self.preprocess_cell(cell, resources, index)
            if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
                status = "timeout"
        except CellTimeoutError:
            status = "timeout"
            self._gone = "the kernel did not stop after a timeout (it ignored the interrupt)"
        except DeadKernelError:
            status = "died"
            self._gone = self._gone or self._why_dead()
        if self._exit_asked():
            status = "died"
        if self._dropped:
            cell.outputs.append(NotebookNode(output_type="stream", name="stdout", text=(
                f"\n[grader: {self._dropped / 2**20:.1f} MB of output dropped; "
                f"the limit is {self._job.limits.output / 2**20:g} MB per cell]\n")))
        self._check_flood()
        return status

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)   # nbgrader's: records a timeout's error in the cell
        self._reply = kwargs.get("execute_reply")

    def _exit_asked(self) -> bool:
        """Whether the cell just run called exit() or quit(): IPython then stops the kernel 0.1 s later, so the
        next request would race its shutdown (answered or not, depending on the machine's speed). Stop it now."""
        reply, self._reply = self._reply, None
        payload = ((reply or {}).get("content") or {}).get("payload") or []
        if not any(isinstance(p, dict) and p.get("source") == "ask_exit" and not p.get("keepkernel")
                   for p in payload):
            return False
        self._gone = self._gone or "the kernel died: the code called exit() or quit(), which shuts it down"
        self._box.stop()
        return True

    def _flood_reason(self) -> str:
        return (f"the notebook printed more than {self._job.limits.output_total / 2**20:g} MB in all (output "
                "dropped): the kernel was stopped")

    def _check_flood(self) -> None:
        if self._flood and not self._gone:
            self._gone = self._flood_reason()
            self._box.stop()

    def _call_kernel(self, code: str) -> list:
        """The channel's transport: run ``code`` in the kernel within the test cell's time; its outputs."""
        if self._gone:
            raise KernelGone(self._gone)
        if time.monotonic() >= min(self._test_deadline or self._deadline, self._deadline - DEADLINE_ROOM):
            raise StudentTimeout("no time left for this test")
        cell = NotebookNode(cell_type="code", source=code, metadata={}, outputs=[], execution_count=None)
        status = self._kernel_cell_quiet(cell)
        if status == "timeout":
            raise StudentTimeout("the call ran past the time limit")
        if self._gone:
            raise KernelGone(self._gone)
        return cell.outputs

    def _kernel_cell_quiet(self, cell) -> str:
        self._cell_bytes, self._dropped = 0, 0
        self.iopub_timeout = IOPUB_WAIT
        kept = self.nb.cells[self._test_index]   # nbclient writes the executed cell back at this index
        try:
            self.execute_cell(cell, self._test_index, store_history=False)
        except CellTimeoutError:
            self._gone = "the kernel did not stop after a timeout (it ignored the interrupt)"
            return "timeout"
        except DeadKernelError:
            self._gone = self._gone or self._why_dead()
            return "died"
        finally:
            self.nb.cells[self._test_index] = kept
        if self._exit_asked():
            return "died"
        self._check_flood()
        if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
            return "timeout"
        return "ok"

    def _verdict(self, run: dict, cell, gid: str, verdict: CellVerdict) -> None:
        """The test cell's outputs and record, written by the grader: the verdict in its own words."""
        run["verdicts"][gid] = {"passed": verdict.passed, "diagnosis": verdict.diagnosis, "flags": verdict.flags}
        text = "✔ passed" if verdict.passed else f"✘ {verdict.diagnosis}"
        cell.outputs = [NotebookNode(output_type="stream", name="stdout", text=text + "\n")]
        if not verdict.passed:
            cell.outputs.append(NotebookNode(output_type="error", ename="TestFailed", evalue=verdict.diagnosis,
                                             traceback=[verdict.diagnosis]))

    # -- the sandboxed kernel

    def create_kernel_manager(self):
        from jupyter_client.kernelspec import KernelSpecManager

        km = super().create_kernel_manager()
        # the sandbox kernelspec, written into this kernel's private folder (no JUPYTER_PATH in the worker)
        km.kernel_spec_manager = KernelSpecManager(kernel_dirs=[str(sandbox.install_kernelspec(self._box.root)
                                                                    / "kernels")])
        km.client_class = "autograder.grading.readyclient.ReadyClient"   # no idle 0.2 s after the kernel is ready
        km.transport = "ipc"
        km.ip = str(self._box.ipc / "k")
        km.connection_file = self._box.connection_file
        return km

    async def async_start_new_kernel(self, **kwargs):
        env = dict(os.environ)
        env[sandbox.ENV_CONFIG] = self._box.config()
        kwargs["env"] = env
        kwargs["cwd"] = str(self._box.root)  # never the submission's folder (the launcher is trusted)
        await super().async_start_new_kernel(**kwargs)

    start_new_kernel = run_sync(async_start_new_kernel)  # nbclient binds the sync names to its own coroutines

    async def async_start_new_kernel_client(self):
        import zmq

        self.km.context.setsockopt(zmq.MAXMSGSIZE, self._job.limits.message)
        # the client connects before the kernel has bound its sockets; ZeroMQ retries every 100 ms by default,
        # which left each kernel start idle for up to that long after the kernel was ready
        self.km.context.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)
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
        left = self._deadline - DEADLINE_ROOM - time.monotonic()
        if self._test_deadline is not None:
            left = min(left, self._test_deadline - time.monotonic())
        return max(1, min(self.timeout, int(left + 0.999)))

    async def _async_handle_timeout(self, timeout, cell=None):
        self.iopub_timeout = INTERRUPTED_WAIT
        return await super()._async_handle_timeout(timeout, cell)

    def _why_dead(self) -> str:
        for _ in range(20):  # the launcher writes its status as it exits
            if self._box.status():
                break
            time.sleep(0.1)
        memory = f"{self._job.limits.memory / 2**30:g} GiB"
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
        if CURRENT["job"] is None:
            return super().process_message(msg, cell, cell_index)
        size = _size(msg)
        self._total_bytes += size
        if self._total_bytes > self._job.limits.output_total:
            if not self._flood:   # stop it now: a loop that prints would otherwise run until its timeout
                self._flood = True
                self._gone = self._gone or self._flood_reason()
                self._box.stop()
            return None
        kind = msg.get("msg_type", "")
        if kind in ("update_display_data", "clear_output"):
            return None   # may not rewrite outputs
        content = msg.get("content") or {}
        if content.get("transient"):
            msg = dict(msg, content={k: v for k, v in content.items() if k != "transient"})
        if kind in ("stream", "display_data", "execute_result", "error"):
            self._cell_bytes = getattr(self, "_cell_bytes", 0) + size
            if self._cell_bytes > self._job.limits.output:
                self._dropped = getattr(self, "_dropped", 0) + size
                return None
        return super().process_message(msg, cell, cell_index)
