"""SIGTERM (and SIGINT) under load: clients see close code 1001 and the node
exits 0 within 5 s."""
import asyncio
import signal
import threading
import time

import websockets

from herald_testlib import Herald, close_code, run_tests


async def shutdown_under_load(sig):
    h = Herald("--threads", "2")
    clients = [await websockets.connect(h.url(p), open_timeout=5)
               for p in ["/ws/notifications/"] * 40 + ["/ws/notifications/u/"] * 5 + ["/ws/health/"] * 5]
    stop = threading.Event()

    def publisher():
        while not stop.is_set():
            try:
                h.publish("notifications", {"load": True})
            except Exception:
                return

    th = threading.Thread(target=publisher, daemon=True)
    th.start()
    await asyncio.sleep(0.5)
    loop = asyncio.get_running_loop()
    fut = loop.run_in_executor(None, h.stop, sig, 5.0)

    codes = await asyncio.gather(*(close_code(ws) for ws in clients))
    rc, took = await fut
    stop.set()
    th.join(5)
    assert all(c == 1001 for c in codes), codes
    assert rc == 0, (rc, h.stderr())
    assert took < 5.0, took


async def test_sigterm_under_load():
    await shutdown_under_load(signal.SIGTERM)


async def test_sigint_idle():
    h = Herald("--threads", "2")
    rc, took = h.stop(signal.SIGINT)
    assert rc == 0 and took < 5.0, (rc, took)


if __name__ == "__main__":
    run_tests(globals())
