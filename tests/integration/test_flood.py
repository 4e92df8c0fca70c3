"""Three clients at once on one node: a slow reader that never reads, a
flooder sending pings at the edge of the rate limit, and a receiver that
must get every broadcast, exactly once and in order."""
import asyncio
import http.client
import json
import time

import websockets

from attacklib import delta, frame, metrics, ws_open
from herald_testlib import Herald, post_until_accepted, recv_json, rss_kb, run_tests, sanitized

N = 3000
RATE = 50  # --rate-limit: bucket of 100, refilled at 50/s


async def test_slow_reader_and_flood_do_not_starve_a_receiver():
    with Herald("--rate-limit", str(RATE), threads=1) as h:
        # one thread: all three share one I/O loop, the hardest case
        lag, status, _ = ws_open(h.port, "/ws/notifications/", rcvbuf=4096)
        assert b" 101 " in status, status
        recv = await websockets.connect(h.url("/ws/notifications/"), open_timeout=5,
                                        max_queue=None)
        flood = await websockets.connect(h.url("/ws/notifications/"), open_timeout=5,
                                         max_queue=None)
        m0 = metrics(h)
        rss0 = rss_kb(h.proc.pid)
        stop = asyncio.Event()
        flood_seq = []
        flood_stats = {"sent": 0, "pongs": 0, "errors": 0, "other": 0}

        async def flooder():
            # the whole burst first, then at RATE - 5 a second from a bucket
            # of its own that holds at most 2 * RATE - 10: however long this
            # loop stalls (the receiver shares it), it never sends more than
            # the server's bucket (2 * RATE, refilled at RATE) holds
            for _ in range(2 * RATE):
                await flood.send('{"type":"ping"}')
                flood_stats["sent"] += 1
            tokens, last = 0.0, time.monotonic()
            while not stop.is_set():
                now = time.monotonic()
                tokens = min(2 * RATE - 10, tokens + (now - last) * (RATE - 5))
                last = now
                while tokens >= 1:
                    await flood.send('{"type":"ping"}')
                    flood_stats["sent"] += 1
                    tokens -= 1
                await asyncio.sleep(0.01)

        async def flood_reader():
            try:
                while True:
                    m = json.loads(await flood.recv())
                    if "seq" in m:  # it is on the general route too
                        flood_seq.append(m["seq"])
                        continue
                    key = {"pong": "pongs", "error": "errors"}.get(m["type"], "other")
                    flood_stats[key] += 1
            except websockets.exceptions.ConnectionClosed:
                pass

        def publish_all():
            c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
            pad = "p" * 2000  # 6 MB in all: past the kernel buffers and the 1024-frame queue
            for i in range(N):
                body = json.dumps({"type": "notification_message",
                                   "message": {"seq": i, "pad": pad}})
                post_until_accepted(c, "/api/groups/notifications/send", body)
            c.close()

        loop = asyncio.get_running_loop()
        ft = asyncio.create_task(flooder())
        fr = asyncio.create_task(flood_reader())
        pub = loop.run_in_executor(None, publish_all)
        got = []
        deadline = time.monotonic() + 90
        while len(got) < N and time.monotonic() < deadline:
            m = await recv_json(recv, timeout=30)
            got.append(m["seq"])
        await pub
        stop.set()
        await ft
        await asyncio.sleep(0.5)  # the last pongs
        assert got == list(range(N)), (len(got), got[:5], got[-5:])
        # nothing more than N arrives
        try:
            extra = await asyncio.wait_for(recv.recv(), 0.5)
            raise AssertionError("extra frame %r" % extra[:80])
        except asyncio.TimeoutError:
            pass
        # the flooder stayed inside its budget: every ping answered, none refused
        assert flood_stats["errors"] == 0 and flood_stats["other"] == 0, flood_stats
        assert flood_stats["pongs"] == flood_stats["sent"], flood_stats
        assert flood.open, "flooder was closed"
        assert flood_seq == list(range(N)), (len(flood_seq), flood_seq[-5:])
        d = delta(m0, metrics(h))
        assert d.get('herald_dropped_total{reason="rate_limit"}', 0) == 0, d
        # the slow reader lost frames (bounded queue), nobody else did
        assert d.get('herald_dropped_total{reason="slow_consumer"}', 0) > 0, d
        if not sanitized(h.proc.pid):
            assert rss_kb(h.proc.pid) - rss0 < 32 * 1024, (rss0, rss_kb(h.proc.pid))
        # the slow reader is still a live connection; draining it works
        lag.sendall(frame('{"type":"ping"}'))
        fr.cancel()
        await recv.close()
        await flood.close()
        lag.close()
        print("  %d broadcasts in order; flooder %d pings, %d pongs; slow_consumer drops %d"
              % (N, flood_stats["sent"], flood_stats["pongs"],
                 d.get('herald_dropped_total{reason="slow_consumer"}', 0)))


if __name__ == "__main__":
    run_tests(globals())
