"""The grading kernels' client (autograder.grading.readyclient) is ready once its kernel has answered and IOPub
is connected, not once IOPub has been quiet for 0.2 s, and runs cells as jupyter_client's client does."""

import asyncio

from jupyter_client.manager import AsyncKernelManager

# A kernel whose IOPub is never quiet for 0.2 s: a thread prints every 20 ms from its start. jupyter_client's
# wait_for_ready reads IOPub until it is quiet, so it never returns for this kernel.
CHATTER = ("import threading as _t, time as _time, sys as _sys\n"
           "def _chatter():\n"
           "    while True:\n"
           "        print('.', end='', file=_sys.stderr, flush=True)\n"
           "        _time.sleep(0.02)\n"
           "_t.Thread(target=_chatter, daemon=True).start()")


async def _run(code: str) -> tuple[dict, list]:
    km = AsyncKernelManager(kernel_name="python3", client_class="autograder.grading.readyclient.ReadyClient")
    await km.start_kernel(extra_arguments=[f"--IPKernelApp.exec_lines={CHATTER}"])
    kc = km.client()
    kc.start_channels()
    try:
        await asyncio.wait_for(kc.wait_for_ready(timeout=60), 90)
        outputs = []
        reply = await kc.execute_interactive(code, timeout=60, output_hook=outputs.append)
        return reply, outputs
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


def test_ready_while_iopub_is_busy_and_cells_get_their_own_output():
    reply, outputs = asyncio.run(_run("print(6 * 7)"))
    assert reply["content"]["status"] == "ok"
    text = "".join(m["content"]["text"] for m in outputs
                   if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
    assert text == "42\n", outputs
