"""Recovery across reconnects on the Redis layer when Redis loses a group's
history while clients are connected (docs/PROTOCOL.md "Recovery across
reconnects", docs/RECOVERY.md "Exact guarantee"): a real herald node on a
real redis-server, real WebSocket clients. Two `recover` clients and a plain
one take offsets 1..3 of epoch E1 of `notifications`; then Redis loses the
history (FLUSHALL, or a restart without persistence) and the sequencer
numbers the next group_send from offset 1 in a new epoch E2. The recover
clients must be closed with 1013 (counted as `epoch_change`) before any
frame of E2, never left to skip E2's offsets as frames they already have;
the plain client gets the new notification; a resume from E1:3 is answered
recovered:false with E2, then live frames of E2."""
import asyncio
import json
import time

import websockets

from herald_testlib import Herald, RedisServer, recv_json, run_tests

CAP = "specific.*!h.*=10000"  # docs/RECOVERY.md: busy history groups
GROUP_KEY = "asgi:group:notifications"


def rurl(h, value):
    return h.url("/ws/notifications/") + "?recover=" + value


async def read_resume(ws):
    replayed = []
    while True:
        f = await recv_json(ws, timeout=10)
        if f.get("type") == "recovered":
            assert f["group"] == "notifications", f
            return replayed, f
        assert f.get("type") == "message" and f.get("group") == "notifications", f
        replayed.append(f)


async def publish(h, message):
    await asyncio.get_event_loop().run_in_executor(None, h.publish, "notifications", message)


async def until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = await asyncio.get_event_loop().run_in_executor(None, pred)
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for " + what
        await asyncio.sleep(0.05)


async def closed_with(ws, timeout):
    """Read ws until it closes: (close code, the frames read before)."""
    frames = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "not closed within %.1f s; got %r" % (timeout, frames)
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
    except websockets.exceptions.ConnectionClosed as e:
        return e.code, frames
    except asyncio.TimeoutError:
        raise AssertionError("not closed within %.1f s; got %r" % (timeout, frames))


def ready(h):
    st, _, _ = h.http("GET", "/readyz")
    return st == 200


async def lose_history(redis, h, how):
    if how == "flushall":
        redis.r.flushall()
    else:  # a restart without persistence: same port, empty
        redis.stop()
        redis.start()
    # the node registers its membership of the group again (its refresh,
    # every --group-expiry / 3 s, or when it sees Redis come back): until
    # then a group_send reaches no process key and is numbered by nobody
    await until(lambda: ready(h) and redis.r.zcard(GROUP_KEY) > 0, 15, "re-registration")


async def epoch_change_closes_recover_clients(how):
    redis = RedisServer()
    h = Herald("--redis", redis.url, "--channel-capacity", CAP, "--group-expiry", "3",
               threads=2)
    try:
        recs = []
        for _ in range(2):  # likely on both I/O threads; either way each closes
            ws = await websockets.connect(rurl(h, ""), open_timeout=10)
            _, rec = await read_resume(ws)
            assert rec["recovered"] is False and rec["offset"] == 0, rec
            recs.append(ws)
        e1 = rec["epoch"]
        plain = await websockets.connect(h.url("/ws/notifications/"), open_timeout=10)
        for i in range(1, 4):
            await publish(h, {"n": i})
        for ws in recs:
            for i in range(1, 4):
                f = await recv_json(ws, timeout=10)
                assert f["epoch"] == e1 and f["offset"] == i and f["data"] == {"n": i}, f
        for i in range(1, 4):
            assert await recv_json(plain, timeout=10) == {"n": i}
        closed0 = h.metric('herald_ws_closed_total{reason="epoch_change"}')
        slow0 = h.metric('herald_ws_closed_total{reason="slow_consumer"}')

        await lose_history(redis, h, how)
        await publish(h, {"n": "after"})
        for ws in recs:
            code, frames = await closed_with(ws, 10)
            assert code == 1013, (code, frames)
            # nothing of the new epoch reached it before the close
            assert all(f.get("epoch") == e1 for f in frames), frames
        assert await recv_json(plain, timeout=10) == {"n": "after"}

        await until(lambda: h.metric('herald_ws_closed_total{reason="epoch_change"}')
                    == closed0 + 2, 5, "epoch_change counted")
        assert h.metric('herald_ws_closed_total{reason="slow_consumer"}') == slow0

        # the client comes back with its old position
        async with websockets.connect(rurl(h, "notifications@%s:3" % e1),
                                      open_timeout=10) as ws:
            replayed, rec = await read_resume(ws)
            assert rec["recovered"] is False and rec["missed"] == 0 and not replayed, rec
            e2 = rec["epoch"]
            assert e2 != e1 and rec["offset"] == 1, rec
            await publish(h, {"n": "live"})
            f = await recv_json(ws, timeout=10)
            assert f["epoch"] == e2 and f["offset"] == 2 and f["data"] == {"n": "live"}, f
        assert await recv_json(plain, timeout=10) == {"n": "live"}
        await plain.close()
    finally:
        rc, _ = h.stop()
        redis.stop()
    assert rc == 0, (rc, h.stderr())


async def test_flushall_closes_recover_clients_with_1013():
    await epoch_change_closes_recover_clients("flushall")


async def test_redis_restart_without_persistence_closes_recover_clients():
    await epoch_change_closes_recover_clients("restart")


if __name__ == "__main__":
    run_tests(globals())
