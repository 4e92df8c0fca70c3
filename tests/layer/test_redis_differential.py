#!/usr/bin/python3
"""Differential conformance: herald's Redis layer against channels_redis 4.0.

1. Same operations, same Redis state. One script of operations runs through
   build/redis_driver (herald) and through channels_redis' RedisChannelLayer
   (asyncio), each on freshly emptied Redis servers; after each side every
   key is snapshotted: its type, its members (a message member minus its 12
   random bytes, msgpack-decoded; a group member as is), its scores relative
   to the side's start time, and its TTL. The snapshots must match (scores
   within SCORE_TOL seconds, TTLs within TTL_TOL). Done on one Redis and on
   two shards.
2. Cross-reading, the ground federation stands on: Python send/group_send
   reach herald's process key and come out with the right targets and the
   message intact; herald send/group_send reach Python's receive intact.

Known, deliberate difference (see layer/layer_redis.c): with several shards
channels_redis' send() to a specific channel hashes the *full* channel name,
while its receive() and group_send() use the non-local name. herald's send
uses the non-local name, so Python can read what herald sends, and herald's
process-key receive drains every shard, so herald reads what Python sends.
The two-shard comparison expects exactly that key on the other shard.
"""
import asyncio
import json
import os
import socket
import subprocess
import sys
import time

import msgpack
import redis
from channels_redis.core import RedisChannelLayer
from channels_redis.utils import _consistent_hash

BUILD = os.environ.get("HERALD_BUILD_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
DRIVER = os.path.join(BUILD, "redis_driver")
SCORE_TOL = 3.0
TTL_TOL = 3
FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what, flush=True)


class Server:
    def __init__(self):
        for _ in range(5):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
            s.close()
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--loglevel", "warning"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.url = "redis://127.0.0.1:%d" % self.port
            self.r = redis.Redis(host="127.0.0.1", port=self.port)
            deadline = time.time() + 5
            while time.time() < deadline:
                try:
                    if self.r.ping():
                        return
                except redis.exceptions.ConnectionError:
                    time.sleep(0.02)
            self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Driver:
    def __init__(self, urls):
        self.p = subprocess.Popen([DRIVER, "--redis", ",".join(urls)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)

    def __call__(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = self.p.stdout.readline()
        if not out:
            raise RuntimeError("driver died on: " + line)
        return out.rstrip("\n")

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


def decode_member(b):
    return msgpack.unpackb(b[12:], raw=False)


def snapshot(servers, t0):
    """{(shard, key): (type, [(member, rel score)], ttl)}"""
    snap = {}
    for i, s in enumerate(servers):
        for key in s.r.keys("*"):
            k = key.decode()
            typ = s.r.type(key).decode()
            members = []
            if typ == "zset":
                for m, score in s.r.zrange(key, 0, -1, withscores=True):
                    if ":group:" in k:
                        members.append((m.decode(), score - t0))
                    else:
                        members.append((decode_member(m), score - t0))
            snap[(i, k)] = (typ, members, s.r.ttl(key))
    return snap


def same_snapshots(a, b, what):
    check(sorted(a) == sorted(b), "%s: keys differ: herald %s python %s" % (
        what, sorted(a), sorted(b)))
    for k in sorted(set(a) & set(b)):
        ta, ma, tla = a[k]
        tb, mb, tlb = b[k]
        check(ta == tb, "%s %s: type %s vs %s" % (what, k, ta, tb))
        check(abs(tla - tlb) <= TTL_TOL, "%s %s: ttl %s vs %s" % (what, k, tla, tlb))
        check(len(ma) == len(mb), "%s %s: %d vs %d members" % (what, k, len(ma), len(mb)))
        # The same score order is not guaranteed for members written within
        # one clock tick; compare as multisets of members, scores by position.
        key = lambda x: json.dumps(x[0], sort_keys=True)
        for (xa, sa), (xb, sb) in zip(sorted(ma, key=key), sorted(mb, key=key)):
            check(xa == xb, "%s %s: member %r vs %r" % (what, k, xa, xb))
            check(abs(sa - sb) <= SCORE_TOL, "%s %s: score %s vs %s" % (what, k, sa, sb))


P0 = "specific.00000000000000000000000000000000!"   # non-local -> shard 0 of 2
P8 = "specific.00000000000000000000000000000008!"   # non-local -> shard 1 of 2
MSG1 = {"type": "chat.message", "text": "héllo", "n": 7, "f": 1.5, "ok": True,
        "none": None, "list": [1, "two", {"three": 3}]}
MSG2 = {"type": "t2", "k": -123456789012}

SCRIPT = [
    ("send", "a", MSG1), ("send", "a", MSG2), ("send", "b", MSG1),
    ("send", "small", MSG2), ("send", "small", MSG2), ("send", "small", MSG1),
    ("send", P0 + "abc", MSG1), ("send", P8 + "abc", MSG2), ("send", P8 + "xyz", MSG1),
    ("group_add", "g", "a"), ("group_add", "g", "b"), ("group_add", "g", P0 + "c1"),
    ("group_add", "g", P0 + "c2"), ("group_add", "g", P8 + "c3"), ("group_add", "g", "small"),
    ("group_add", "h", "a"), ("group_add", "h", P8 + "c3"),
    ("group_send", "g", MSG1), ("group_send", "h", MSG2),
    ("group_discard", "g", P0 + "c2"), ("group_discard", "g", "nobody"),
    ("group_send", "g", MSG2),
    ("receive", "b", None),
]


def run_python(urls, script):
    layer = RedisChannelLayer(hosts=urls, capacity=5, channel_capacity={"small": 2})
    out = []

    async def go():
        from channels.exceptions import ChannelFull
        for op, a, b in script:
            if op == "send":
                try:
                    await layer.send(a, b)
                    out.append("ok")
                except ChannelFull:
                    out.append("full")
            elif op == "group_add":
                await layer.group_add(a, b)
                out.append("ok")
            elif op == "group_discard":
                await layer.group_discard(a, b)
                out.append("ok")
            elif op == "group_send":
                await layer.group_send(a, b)
                out.append("ok")
            elif op == "receive":
                out.append(await asyncio.wait_for(layer.receive(a), 5))
        await layer.close_pools()

    asyncio.run(go())
    return out


def run_herald(urls, script):
    d = Driver(urls)
    out = []
    check(d("config capacity 5 cc small 2") == "ok", "config")
    for op, a, b in script:
        if op == "send":
            out.append(d("send %s %s" % (a, json.dumps(b))))
        elif op in ("group_add", "group_discard"):
            out.append(d("%s %s %s" % (op, a, b)))
        elif op == "group_send":
            r = d("group_send %s %s" % (a, json.dumps(b)))
            out.append(r.split(" ")[0])
        elif op == "receive":
            out.append(json.loads(d("receive " + a)))
    d.close()
    return out


def relocate_python_sends(snap, ring):
    """The deliberate difference: channels_redis' send() to a specific channel
    picks the shard by the full name. Move each such member to the shard of
    its non-local name, where herald (and channels_redis' receive) put it.
    Returns how many members moved."""
    moved = 0
    moves = []
    for (shard, key) in sorted(snap):
        typ, members, ttl = snap[(shard, key)]
        if typ != "zset" or ":group:" in key or not key.endswith("!"):
            continue
        stay = []
        for m in members:
            target = m[0].get("__asgi_channel__")
            if isinstance(target, str):
                want = _consistent_hash(target.split("!")[0] + "!", ring)
                check(_consistent_hash(target, ring) == shard,
                      "python send of %s is on shard %d" % (target, shard))
                if want != shard:
                    moves.append((want, key, m, typ, ttl))
                    moved += 1
                    continue
            stay.append(m)
        if stay:
            snap[(shard, key)] = (typ, stay, ttl)
        else:
            del snap[(shard, key)]
    for want, key, m, typ, ttl in moves:
        t, ms, tl = snap.get((want, key), (typ, [], ttl))
        snap[(want, key)] = (t, ms + [m], tl)
    return moved


async def recv_any(layer, channel):
    """Receive a normal channel with channels_redis on several shards: its
    receive() blocks on one shard (round-robin per call), so try each."""
    layer.brpop_timeout = 1
    for _ in range(2 * layer.ring_size):
        try:
            return await asyncio.wait_for(layer.receive(channel), 1.5)
        except asyncio.TimeoutError:
            pass
    return None


def flushall(servers):
    for s in servers:
        s.r.flushall()


def compare(servers, label):
    urls = [s.url for s in servers]
    flushall(servers)
    t0 = time.time()
    ho = run_herald(urls, SCRIPT)
    hs = snapshot(servers, t0)
    flushall(servers)
    t0 = time.time()
    po = run_python(urls, SCRIPT)
    ps = snapshot(servers, t0)
    check(ho == po, "%s: results differ:\n herald %s\n python %s" % (label, ho, po))
    if len(servers) == 2:
        moved = relocate_python_sends(ps, 2)
        check(moved == 2, "%s: expected python to misplace 2 sends, saw %d" % (label, moved))
    same_snapshots(hs, ps, label)
    print("%s: %d keys compared" % (label, len(hs)), flush=True)


def cross(servers, label):
    urls = [s.url for s in servers]
    flushall(servers)
    d = Driver(urls)
    check(d("config") == "ok", "config")
    cp = d("client_prefix")
    check(len(cp) == 32, "client_prefix %r" % cp)
    pk = "specific.%s!" % cp
    layer = RedisChannelLayer(hosts=urls)

    async def go():
        # Python -> herald
        await layer.group_add("room", pk + "g.room")
        await layer.group_add("room", pk + "conn1")
        await layer.group_add("room", "plainpy")
        await layer.group_send("room", MSG1)
        r = d("receive_targets " + pk)
        targets, _, js = r.partition(" ")
        check(sorted(targets.split(",")) == sorted([pk + "g.room", pk + "conn1"]),
              "%s: group_send targets %r" % (label, targets))
        check(js and json.loads(js) == MSG1, "%s: group_send message %r" % (label, js))
        for i in range(20):
            await layer.send(pk + "conn%d" % i, dict(MSG2, i=i))
        got = {}
        for i in range(20):
            r = d("receive_targets " + pk)
            targets, _, js = r.partition(" ")
            if js:
                got[targets] = json.loads(js)
        check(len(got) == 20 and all(got.get(pk + "conn%d" % i) == dict(MSG2, i=i)
                                     for i in range(20)),
              "%s: python send -> herald: %d of 20 right" % (label, len(got)))
        check(d("receive_targets " + pk) == "empty", "%s: process key left empty" % label)
        r = d("receive plainpy")
        check(r != "empty" and json.loads(r) == MSG1,
              "%s: python group_send to a plain channel -> herald %r" % (label, r))
        # herald -> Python
        mine = await layer.new_channel()
        check(d("send %s %s" % (mine, json.dumps(MSG1))) == "ok", "herald send")
        got = await asyncio.wait_for(layer.receive(mine), 5)
        check(got == MSG1, "%s: herald send -> python: %r" % (label, got))
        other = await layer.new_channel()
        check(d("group_add lobby %s" % mine) == "ok", "group_add")
        check(d("group_add lobby %s" % other) == "ok", "group_add")
        check(d("group_add lobby plainh") == "ok", "group_add")
        r = d("group_send lobby %s" % json.dumps(MSG2))
        check(r == "ok delivered=3 full=0", "%s: herald group_send %r" % (label, r))
        a = await asyncio.wait_for(layer.receive(mine), 5)
        b = await asyncio.wait_for(layer.receive(other), 5)
        c = await recv_any(layer, "plainh")
        check(a == MSG2 and b == MSG2 and c == MSG2,
              "%s: herald group_send -> python: %r %r %r" % (label, a, b, c))
        check(d("send plainh %s" % json.dumps(MSG1)) == "ok", "send plain")
        c = await recv_any(layer, "plainh")
        check(c == MSG1, "%s: herald send plain -> python %r" % (label, c))
        await layer.send("frompy", MSG2)
        r = d("receive frompy")
        check(r != "empty" and json.loads(r) == MSG2, "%s: python send plain -> herald %r"
              % (label, r))
        # flush through herald empties what Python wrote
        await layer.group_add("room2", "x")
        check(d("flush") == "ok", "flush")
        for s in servers:
            check(s.r.dbsize() == 0, "%s: flush left keys" % label)
        await layer.close_pools()

    asyncio.run(go())
    d.close()
    print("%s: cross-reading done" % label, flush=True)


def main():
    servers = [Server(), Server()]
    try:
        compare(servers[:1], "one shard")
        compare(servers, "two shards")
        cross(servers[:1], "one shard")
        cross(servers, "two shards")
    finally:
        for s in servers:
            s.stop()
    if FAILURES:
        print("%d failure(s)" % len(FAILURES))
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
