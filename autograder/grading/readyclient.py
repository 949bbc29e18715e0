"""The kernel client of a grading kernel: jupyter_client's asynchronous client, ready as soon as its kernel is.

jupyter_client's ``wait_for_ready`` ends by reading IOPub until 0.2 s pass with no message: every kernel start
then idled 0.2 s after the kernel had answered (about a quarter of a blank submission's grading). This one is
ready once the kernel has answered a ``kernel_info`` request on the shell channel and published its idle status
for one of them on IOPub (so IOPub is connected, and the kernel has finished with them). While IOPub is still
connecting, the kernel's status is lost, and the request is sent again every ``RETRY_S``. Nor does a kernel
whose IOPub is never quiet (a thread that prints) keep it waiting, as it keeps jupyter_client's for ever. A
message left unread belongs to no cell: nbclient takes only the messages whose parent is a request it sent.
"""

from __future__ import annotations

import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient

RETRY_S = 0.05   # how long to wait for the kernel's idle status on IOPub before asking again


class ReadyClient(AsyncKernelClient):
    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.time() + (float("inf") if timeout is None else timeout)
        asked: set[str] = set()
        reply = None
        while True:
            asked.add(self.kernel_info())
            if reply is None:
                try:
                    msg = await self.shell_channel.get_msg(timeout=1)
                    reply = msg if msg["msg_type"] == "kernel_info_reply" else None
                except Empty:
                    pass
            if reply is not None and await self._idle_after(asked):
                self._handle_kernel_info_reply(reply)
                return
            if not await self.is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.time() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")

    async def _idle_after(self, asked: set[str]) -> bool:
        """Whether IOPub brings, within RETRY_S, the kernel's idle status for a request in ``asked`` (other
        messages, such as a thread's output, are read past)."""
        until = time.monotonic() + RETRY_S
        while (left := until - time.monotonic()) > 0:
            try:
                msg = await self.iopub_channel.get_msg(timeout=left)
            except Empty:
                return False
            if (msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle"
                    and msg["parent_header"].get("msg_id") in asked):
                return True
        return False
