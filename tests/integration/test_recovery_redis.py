"""Recovery across reconnects on the Redis layer (docs/PROTOCOL.md
"Recovery across reconnects", docs/RECOVERY.md), with two real herald nodes
on one real redis-server, real WebSocket clients and a real channels_redis
publisher: both nodes deliver the same (epoch, offset) for the same
group_send, whoever sent it (a Python process through channels_redis, or
herald's HTTP API on either node); a client that disconnects and resumes 10
times, alternating between the nodes, while ~200 group_sends/s arrive, sees
every offset from its first to its last once, with the data published at
that offset; a node that was restarted serves a resume from Redis; SIZE,
other epochs and positions not yet reached are answered recovered:false
on any node, including one that starts later."""
import asyncio
import http.client
import json
import threading
import time

import redis as redis_py
import websockets

from herald_testlib import Herald, RedisServer, recv_json, run_tests

CAP = "specific.*!h.*=10000"  # docs/RECOVERY.md: busy history groups


def rurl(h, value):
    return h.url("/ws/notifications/") + "?recover=" + value


async def read_resume(ws, group="notifications"):
    replayed = []
    while True:
        f = await recv_json(ws, timeout=10)
        if f.get("type") == "recovered":
            assert f["group"] == group, f
            return replayed, f
        assert f.get("type") == "message" and f.get("group") == group, f
        replayed.append(f)


def http_send(h, message):
    c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
    try:
        c.request("POST", "/api/groups/notifications/send",
                  body=json.dumps({"type": "notification_message", "message": message}),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        assert r.status == 202, r.status
    finally:
        c.close()


class PyPublisher(threading.Thread):
    """channels_redis group_sends to "notifications" at `rate`/s, each
    awaited before the next ({"py": i}), for `seconds` or until stopped."""

    def __init__(self, url, rate=200, seconds=None, count=None):
        super().__init__(daemon=True)
        self.url, self.rate, self.seconds, self.count = url, rate, seconds, count
        self.sent = 0
        self.big = None
        self.stop_ev = threading.Event()
        self.error = None

    def run(self):
        try:
            asyncio.run(self._main())
        except Exception as e:  # reported by the test
            self.error = e

    async def _main(self):
        from channels_redis.core import RedisChannelLayer
        layer = RedisChannelLayer(hosts=[self.url], channel_capacity={"specific.*": 10000})
        t0 = time.monotonic()
        i = 0
        while not self.stop_ev.is_set():
            if self.seconds is not None and time.monotonic() - t0 > self.seconds:
                break
            if self.count is not None and i >= self.count:
                break
            delay = t0 + i / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            message = {"py": i, "pad": self.big} if self.big else {"py": i}
            await layer.group_send("notifications",
                                   {"type": "notification_message", "message": message})
            i += 1
            self.sent = i
        await layer.close_pools()


async def observe(h, stop, seen):
    """One connection that stays: offset -> data of every envelope."""
    async with websockets.connect(rurl(h, ""), open_timeout=10) as ws:
        _, rec = await read_resume(ws)
        assert rec["recovered"] is False and rec["missed"] == 0, rec
        seen["epoch"] = rec["epoch"]
        seen["first"] = rec["offset"] + 1
        while not stop.is_set():
            try:
                f = await asyncio.wait_for(ws.recv(), 0.2)
            except asyncio.TimeoutError:
                continue
            f = json.loads(f)
            assert f["type"] == "message" and f["epoch"] == seen["epoch"], f
            assert f["offset"] not in seen["frames"], f
            seen["frames"][f["offset"]] = f["data"]


async def test_two_nodes_200_per_s_10_resumes_alternating():
    redis = RedisServer()
    a = Herald("--redis", redis.url, "--channel-capacity", CAP, threads=1)
    b = Herald("--redis", redis.url, "--channel-capacity", CAP, threads=1)
    pub = PyPublisher(redis.url, rate=200)
    stop = threading.Event()
    obs = {"A": {"frames": {}}, "B": {"frames": {}}}
    try:
        tasks = [asyncio.ensure_future(observe(a, stop, obs["A"])),
                 asyncio.ensure_future(observe(b, stop, obs["B"]))]
        await asyncio.sleep(0.5)
        pub.start()
        got = {}     # offset -> data, as the resuming client saw it
        order = []   # offsets in the order received
        epoch = None
        last = None
        nodes = [a, b]
        http_n = 0
        for k in range(11):
            h = nodes[k % 2]
            pos = "" if last is None else "notifications@%s:%d" % (epoch, last)
            async with websockets.connect(rurl(h, pos), open_timeout=10) as ws:
                replayed, rec = await read_resume(ws)
                if last is None:
                    assert rec["recovered"] is False, rec
                    epoch = rec["epoch"]
                else:
                    assert rec["recovered"] is True and rec["epoch"] == epoch, (k, rec)
                    assert rec["missed"] == len(replayed), rec
                    assert rec["offset"] == last + len(replayed), (k, rec, last)
                for f in replayed:
                    order.append(f["offset"])
                    got[f["offset"]] = f["data"]
                last = rec["offset"]
                # herald's own group_sends, through either node
                await asyncio.get_event_loop().run_in_executor(
                    None, http_send, nodes[(k + 1) % 2], {"http": http_n})
                http_n += 1
                t_end = time.monotonic() + 0.3
                while time.monotonic() < t_end:
                    try:
                        f = json.loads(await asyncio.wait_for(ws.recv(), 0.1))
                    except asyncio.TimeoutError:
                        continue
                    assert f["type"] == "message" and f["epoch"] == epoch, f
                    order.append(f["offset"])
                    got[f["offset"]] = f["data"]
                    last = f["offset"]
            await asyncio.sleep(0.1)  # disconnected: group_sends keep coming
        pub.stop_ev.set()
        pub.join(10)
        assert pub.error is None, pub.error
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*tasks)

        first = order[0]
        assert order == list(range(first, first + len(order))), "not contiguous/once"
        assert len(order) > 200, len(order)
        pys = [d["py"] for _, d in sorted(got.items()) if "py" in d]
        assert pys == list(range(pys[0], pys[0] + len(pys))), "a Python group_send missing"
        assert sum(1 for d in got.values() if "http" in d) >= 10, got
        # both nodes delivered the same (epoch, offset) for the same message,
        # and the resuming client saw the same data at each offset
        assert obs["A"]["epoch"] == obs["B"]["epoch"] == epoch
        for side in ("A", "B"):
            fr = obs[side]["frames"]
            offs = sorted(fr)
            assert offs == list(range(obs[side]["first"], obs[side]["first"] + len(offs))), side
            for o, d in got.items():
                assert fr.get(o, d) == d, (side, o, fr.get(o), d)
        common = set(obs["A"]["frames"]) & set(obs["B"]["frames"])
        assert len(common) > 200, len(common)
        for o in common:
            assert obs["A"]["frames"][o] == obs["B"]["frames"][o], o
    finally:
        stop.set()
        pub.stop_ev.set()
        a.stop()
        b.stop()
        redis.stop()


async def test_restarted_node_serves_a_resume_from_redis():
    redis = RedisServer()
    a = Herald("--redis", redis.url, "--channel-capacity", CAP, threads=1)
    b = Herald("--redis", redis.url, "--channel-capacity", CAP, threads=1)
    b2 = None
    try:
        async with websockets.connect(rurl(b, ""), open_timeout=10) as ws:
            _, rec = await read_resume(ws)
            epoch = rec["epoch"]
            await asyncio.get_event_loop().run_in_executor(None, http_send, a, {"n": 1})
            f = await recv_json(ws, timeout=5)
            assert f["offset"] == rec["offset"] + 1 and f["data"] == {"n": 1}, f
            last = f["offset"]
        rc, _ = b.stop()
        assert rc == 0, rc
        pub = PyPublisher(redis.url, rate=200, count=7)
        pub.start()
        pub.join(20)
        assert pub.error is None and pub.sent == 7, pub.error
        await asyncio.get_event_loop().run_in_executor(None, http_send, a, {"n": 2})
        await asyncio.sleep(0.2)  # in history no later than 100 ms after
        b2 = Herald("--redis", redis.url, "--channel-capacity", CAP, threads=1)
        pos = "notifications@%s:%d" % (epoch, last)
        async with websockets.connect(rurl(b2, pos), open_timeout=10) as ws:
            replayed, rec = await read_resume(ws)
            assert rec["recovered"] is True and rec["missed"] == 8, rec
            assert [f["offset"] for f in replayed] == list(range(last + 1, last + 9))
            assert [f["data"] for f in replayed] == [{"py": i} for i in range(7)] + [{"n": 2}]
            assert rec["offset"] == last + 8 and rec["epoch"] == epoch, rec
            await asyncio.get_event_loop().run_in_executor(None, http_send, a, {"n": 3})
            f = await recv_json(ws, timeout=5)
            assert f["offset"] == last + 9 and f["data"] == {"n": 3}, f
    finally:
        a.stop()
        b.stop()
        if b2 is not None:
            b2.stop()
        redis.stop()


async def resume(h, pos):
    async with websockets.connect(rurl(h, pos), open_timeout=10) as ws:
        return await read_resume(ws)


async def test_unservable_positions_and_size_on_any_node():
    redis = RedisServer()
    hist = ("--history", "notifications=5:300")
    a = Herald("--redis", redis.url, *hist, threads=1)
    b = Herald("--redis", redis.url, *hist, threads=1)
    c = None
    try:
        # a fresh start names the shared epoch, the same on both nodes
        _, ra = await resume(a, "")
        _, rb = await resume(b, "")
        assert ra["recovered"] is False and ra["missed"] == 0 and ra["offset"] == 0, ra
        assert rb["epoch"] == ra["epoch"] and rb["offset"] == 0, (ra, rb)
        epoch = ra["epoch"]
        async with websockets.connect(rurl(b, ""), open_timeout=10) as live:
            await read_resume(live)
            for i in range(1, 9):
                await asyncio.get_event_loop().run_in_executor(None, http_send, a, {"n": i})
            for i in range(1, 9):  # wait until B has them all
                f = await recv_json(live, timeout=5)
                assert f["offset"] == i and f["data"] == {"n": i}, f
        # SIZE 5: offsets 4..8 held, a position before 3 cannot be served
        replayed, rec = await resume(b, "notifications@%s:3" % epoch)
        assert rec["recovered"] is True and rec["missed"] == 5 and rec["offset"] == 8, rec
        assert [f["data"] for f in replayed] == [{"n": i} for i in range(4, 9)]
        for pos in ("notifications@%s:1" % epoch, "notifications@0123456789abcdef:3",
                    "notifications@%s:9" % epoch):
            replayed, rec = await resume(b, pos)
            assert rec["recovered"] is False and rec["missed"] == 0 and not replayed, (pos, rec)
            assert rec["epoch"] == epoch and rec["offset"] == 8, (pos, rec)
        # a node that starts later answers from Redis the same way
        c = Herald("--redis", redis.url, *hist, threads=1)
        replayed, rec = await resume(c, "notifications@%s:5" % epoch)
        assert rec["recovered"] is True and rec["missed"] == 3 and rec["offset"] == 8, rec
        assert [f["offset"] for f in replayed] == [6, 7, 8], replayed
        _, rec = await resume(c, "notifications@%s:2" % epoch)
        assert rec["recovered"] is False and rec["epoch"] == epoch, rec
    finally:
        a.stop()
        b.stop()
        if c is not None:
            c.stop()
        redis.stop()


async def test_first_connect_gets_what_follows_its_handshake():
    """`?recover=` (empty) starts from the handshake: a node that has no ring
    for the group yet fetches the shared history first (here a large one, so
    the fetch takes a while), and every group_send made after the 101 still
    reaches the client, live, after a `recovered` frame whose offset is
    before it."""
    redis = RedisServer()
    hist = ("--history", "notifications=3000:300", "--channel-capacity", CAP)
    b = Herald("--redis", redis.url, *hist, threads=1)
    a = None
    try:
        _, rec0 = await resume(b, "")  # B's member of the group stays in Redis
        pub = PyPublisher(redis.url, rate=100000, count=3000)
        pub.big = "x" * 4000
        pub.start()
        pub.join(60)
        assert pub.error is None and pub.sent == 3000, pub.error
        r = redis_py.Redis.from_url(redis.url)
        key = r.keys("*herald:seq:notifications")[0]
        deadline = time.monotonic() + 20
        while int(r.get(key) or 0) < rec0["offset"] + 3000:  # all sequenced
            assert time.monotonic() < deadline, r.get(key)
            await asyncio.sleep(0.05)
        r.close()
        for i in range(3):  # each time a node that has no ring for the group
            a = Herald("--redis", redis.url, *hist, threads=1)
            async with websockets.connect(rurl(a, ""), open_timeout=10) as ws:
                await asyncio.get_event_loop().run_in_executor(None, http_send, b, {"n": i})
                _, rec = await read_resume(ws)
                assert rec["recovered"] is False and rec["missed"] == 0, rec
                f = await recv_json(ws, timeout=5)
                assert f["data"] == {"n": i} and f["offset"] == rec["offset"] + 1, (rec, f)
            rc, _ = a.stop()
            assert rc == 0, rc
            a = None
    finally:
        if a is not None:
            a.stop()
        b.stop()
        redis.stop()


if __name__ == "__main__":
    run_tests(globals())
