"""Redis stopped for 5 s under steady publishing, then started again (same
data, from its RDB): no crash, /healthz 503 then 200, memberships registered
again, delivery resumes, and what was lost is exactly what /metrics counts
as not federated."""
import asyncio
import json
import os
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from herald_testlib import Herald, RedisServer, recv_json, run_tests, wait_until  # noqa: E402

import websockets  # noqa: E402

PERIOD = 0.05
OUTAGE = 5.0


async def whoami(ws):
    await ws.send(json.dumps({"type": "whoami"}))
    m = await recv_json(ws)
    return m["channel"]


async def count_until_quiet(ws, seen, quiet=1.5):
    while True:
        try:
            m = json.loads(await asyncio.wait_for(ws.recv(), quiet))
        except asyncio.TimeoutError:
            return
        seen.append(m["seq"])


async def test_outage_under_publishing():
    tmp = tempfile.mkdtemp(prefix="herald-redis-")
    rs = RedisServer(dir=tmp)
    a = Herald("--redis", rs.url, "--history", "off", threads=1)
    b = Herald("--redis", rs.url, "--history", "off", threads=1)
    loop = asyncio.get_running_loop()
    try:
        wa = await websockets.connect(a.url("/ws/notifications/"))
        wb = await websockets.connect(b.url("/ws/notifications/"))
        pa = (await whoami(wa)).split("!")[0] + "!g.notifications"
        pb = (await whoami(wb)).split("!")[0] + "!g.notifications"
        # registered asynchronously, within 50 ms of the 101 (docs/PROTOCOL.md)
        wait_until(lambda: sorted(rs.members("notifications")) == sorted([pa, pb]),
                   timeout=2, what="both memberships")

        seen_a, seen_b = [], []
        ra = asyncio.ensure_future(count_until_quiet(wa, seen_a, quiet=4 + OUTAGE))
        rb = asyncio.ensure_future(count_until_quiet(wb, seen_b, quiet=4 + OUTAGE))
        health = []
        sent = 0

        async def publish_for(seconds):
            nonlocal sent
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                await loop.run_in_executor(None, a.publish, "notifications",
                                           {"seq": sent})
                sent += 1
                st, _, _ = await loop.run_in_executor(None, a.http, "GET", "/healthz")
                health.append((time.monotonic(), st))
                await asyncio.sleep(PERIOD)

        await publish_for(1.0)
        t_stop = time.monotonic()
        await loop.run_in_executor(None, lambda: rs.stop(save=True))
        await publish_for(OUTAGE)
        assert a.proc.poll() is None and b.proc.poll() is None, "a node died"
        down = [st for t, st in health if t > t_stop + 1.0]
        assert down and all(st == 503 for st in down), down
        assert a.metric("herald_redis_up") == 0

        await loop.run_in_executor(None, rs.start)
        t_start = time.time()
        await publish_for(1.0)
        # within 10 s: healthy again and both memberships registered anew
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            st_a, _, _ = a.http("GET", "/healthz")
            st_b, _, _ = b.http("GET", "/healthz")
            scores = [rs.r.zscore("asgi:group:notifications", m) for m in (pa, pb)]
            if st_a == 200 and st_b == 200 and all(s and s >= t_start - 0.5 for s in scores):
                break
            await asyncio.sleep(0.1)
        assert st_a == 200 and st_b == 200, (st_a, st_b)
        assert all(s and s >= t_start - 0.5 for s in scores), (scores, t_start)
        await publish_for(2.0)
        await asyncio.gather(ra, rb)

        failed = a.metric('herald_federation_failures_total{op="group_send"}')
        assert a.metric("herald_redis_up") == 1 and a.metric("herald_redis_reconnects_total") >= 1
        # local delivery never stopped
        assert seen_a == list(range(sent)), (len(seen_a), sent)
        # node b lost exactly what node a could not federate, nothing twice
        assert len(set(seen_b)) == len(seen_b), "duplicates on b"
        assert failed > 0, failed
        assert len(seen_b) == sent - failed, (len(seen_b), sent, failed)
        assert seen_b == sorted(seen_b)
        assert seen_b[-1] == sent - 1, "delivery did not resume"
        print("sent %d, lost on b %d (counted %d)" % (sent, sent - len(seen_b), failed))
        await wa.close()
        await wb.close()
        for n in (a, b):
            rc, took = n.stop(signal.SIGTERM)
            assert rc == 0, rc
        assert rs.members("notifications") == []
    finally:
        for n in (a, b):
            if n.proc.poll() is None:
                n.stop()
        rs.stop()


if __name__ == "__main__":
    run_tests(globals())
