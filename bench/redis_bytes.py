#!/usr/bin/python3
"""What one group_send costs in Redis: a Daphne/channels_redis group of N
connection channels vs herald's group (one member per node), same N clients.

    bench/redis_bytes.py --redis redis://127.0.0.1:P --herald 127.0.0.1:8000 --n 100 1000

channels_redis 4.0 (python3-channels-redis) does the Daphne side: N
new_channel()s of one process joined to a group; the herald side is a real
node (`herald serve --redis ...`) with N WebSocket clients on the group.
Each side: one group_send of the same ~200-byte message, then the members
written (ZCARD/len of every specific.* key) and the group list read
(ZRANGE reply bytes) are measured from Redis itself. Loopback only."""
import argparse
import asyncio
import json
import sys

import redis
import websockets
from channels_redis.core import RedisChannelLayer

MSG = {"type": "notification_message", "message": {"t": 0, "pad": "x" * 180}}


def written(r, prefix):
    keys = [k for k in r.keys(prefix + "specific.*") if not k.endswith(b"$inflight")]
    members = 0
    size = 0
    for k in keys:
        for m in r.zrange(k, 0, -1):
            members += 1
            size += len(m)
    return len(keys), members, size


def forget(r, prefix):
    for k in r.keys(prefix + "*"):
        r.delete(k)


def group_bytes(r, key):
    return sum(len(m) for m in r.zrange(key, 0, -1)), r.zcard(key)


async def daphne(url, n):
    r = redis.Redis.from_url(url)
    forget(r, "daphne")
    layer = RedisChannelLayer(hosts=[url], prefix="daphne")
    for _ in range(n):
        await layer.group_add("notifications", await layer.new_channel())
    gb, gn = group_bytes(r, "daphne:group:notifications")
    await layer.group_send("notifications", MSG)
    keys, members, size = written(r, "daphne")
    await layer.flush()
    return {"side": "daphne (1 process)", "n": n, "group_members": gn, "group_list_bytes": gb,
            "keys": keys, "members_written": members, "bytes_written": size}


async def herald(url, node, n):
    r = redis.Redis.from_url(url)
    forget(r, "copy")
    conns = []
    try:
        for _ in range(n):
            conns.append(await websockets.connect("ws://%s/ws/notifications/" % node))
        for c in conns[-1:]:
            await c.send(json.dumps({"type": "whoami"}))
            await asyncio.wait_for(c.recv(), 5)
        for _ in range(100):
            if r.zcard("asgi:group:notifications") > 0:
                break
            await asyncio.sleep(0.05)
        gb, gn = group_bytes(r, "asgi:group:notifications")
        # the node drains its process key at once: count what Redis is
        # given through MONITOR-free means, a second subscriber-less key
        # (the same group_send into a copy of the group, nobody drains it)
        members = r.zrange("asgi:group:notifications", 0, -1)
        r.zadd("copy:group:notifications", {m: 9999999999 for m in members})
        layer = RedisChannelLayer(hosts=[url], prefix="copy")
        await layer.group_send("notifications", MSG)
        keys, mem, size = written(r, "copy")
        return {"side": "herald", "n": n, "group_members": gn, "group_list_bytes": gb,
                "keys": keys, "members_written": mem, "bytes_written": size}
    finally:
        forget(r, "copy")
        for c in conns:
            await c.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis", required=True)
    ap.add_argument("--herald", required=True, help="HOST:PORT of a node on that Redis")
    ap.add_argument("--n", type=int, nargs="+", default=[100, 1000])
    a = ap.parse_args()
    for n in a.n:
        if not 1 <= n <= 5000:
            sys.exit("--n between 1 and 5000")
        for row in (await daphne(a.redis, n), await herald(a.redis, a.herald, n)):
            print(json.dumps(row))


asyncio.run(main())
