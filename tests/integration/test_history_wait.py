"""The Redis layer's history thread waits in Redis instead of polling it
(docs/RECOVERY.md, "The sequencer"): an idle node keeps one log read
(`XREAD BLOCK 0`) and one pop blocked per shard, runs the sequencer script
about once a second rather than every few milliseconds, and a Python
channels_redis group_send still reaches every node's clients, also after
Redis was restarted under them (the blocked waits are made again)."""
import asyncio
import json
import time

import websockets

from herald_testlib import Herald, RedisServer, recv_json, run_tests, wait_until


def blocked(redis, cmd):
    """Clients blocked in `cmd` (CLIENT LIST: flags b)."""
    n = 0
    for c in redis.r.client_list():
        if c.get("cmd") == cmd and "b" in c.get("flags", ""):
            n += 1
    return n


def calls(redis, cmd):
    stats = redis.r.info("commandstats")
    return stats.get("cmdstat_" + cmd, {}).get("calls", 0)


async def group_send_reaches(redis, socks, n):
    """A channels_redis group_send to "notifications" reaches every socket."""
    layer = redis.layer()
    await layer.group_send("notifications",
                           {"type": "notification_message", "message": {"n": n}})
    await layer.close_pools()
    for ws in socks:
        f = await recv_json(ws, timeout=10)
        assert f == {"n": n}, f


async def test_an_idle_node_waits_in_redis_and_still_delivers():
    redis = RedisServer()
    a = Herald("--redis", redis.url, threads=1)
    b = Herald("--redis", redis.url, threads=1)
    socks = []
    try:
        # each node: one log read blocked in Redis
        wait_until(lambda: blocked(redis, "xread") == 2, timeout=10,
                   what="both nodes' log reads blocked in Redis")
        # idle: a round (one log read, one sequencer script) about once a
        # second per node, not every 10 ms: two nodes polling would have
        # made ~400 of each here. EVAL also counts the drain thread's own
        # scripts (channels_redis' receive: ~7 a second per node).
        e0, x0 = calls(redis, "eval"), calls(redis, "xread")
        await asyncio.sleep(2)
        e1, x1 = calls(redis, "eval"), calls(redis, "xread")
        assert x1 - x0 <= 20, ("log reads while idle", x1 - x0)
        assert e1 - e0 <= 60, ("scripts while idle", e1 - e0)

        for h in (a, b):
            socks.append(await websockets.connect(h.url("/ws/notifications/"), open_timeout=10))
        # the shared history member is in the group once a node has a member
        wait_until(lambda: len(redis.members("notifications")) == 1, timeout=10,
                   what="the shared history member")
        await group_send_reaches(redis, socks, 1)

        # Redis restarted under both nodes (its keys gone): the blocked
        # waits come back, the membership is registered again, and a
        # group_send reaches both nodes' clients again
        redis.stop()
        time.sleep(0.5)
        redis.start()
        wait_until(lambda: blocked(redis, "xread") == 2, timeout=15,
                   what="log reads blocked again after the restart")
        wait_until(lambda: len(redis.members("notifications")) == 1, timeout=15,
                   what="the shared history member registered again")
        await group_send_reaches(redis, socks, 2)
    finally:
        for ws in socks:
            await ws.close()
        a.stop()
        b.stop()
        redis.stop()


if __name__ == "__main__":
    run_tests(globals())
