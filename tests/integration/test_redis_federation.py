"""herald nodes federating through a real redis-server with real channels_redis
4.0 peers (Debian's python3-channels-redis): Python -> herald, herald ->
Python, several herald nodes on one Redis, capacity, and start-up errors."""
import asyncio
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from herald_testlib import (shared_redis, HERALD, Herald, expect_silence, recv_json,  # noqa: E402
                            run_tests, wait_until)

import websockets  # noqa: E402

redis = shared_redis


# --history off: these tests count per-node memberships of plain groups (a
# group with history has one shared member instead: test_recovery_redis.py).
def node(*extra, threads=2):
    return Herald("--redis", redis().url, "--history", "off", *extra, threads=threads)


async def whoami(ws):
    await ws.send(json.dumps({"type": "whoami"}))
    m = await recv_json(ws)
    assert m["type"] == "whoami", m
    return m["channel"]


def process_prefix(channel):
    return channel[:channel.index("!") + 1]


async def test_python_group_send_reaches_clients():
    with node() as h:
        async with websockets.connect(h.url("/ws/notifications/")) as general, \
                websockets.connect(h.url("/ws/notifications/alice/")) as alice, \
                websockets.connect(h.url("/ws/notifications/bob/")) as bob:
            await whoami(general)  # all three are registered by now
            await whoami(alice)
            await whoami(bob)
            layer = redis().layer()
            for i, t in enumerate(["notification_message", "notification.message"]):
                msg = {"n": i, "title": "héllo", "nested": {"list": [1, 2.5, None, True]}}
                await layer.group_send("notifications", {"type": t, "message": msg})
                assert await recv_json(general) == msg
                await layer.group_send("user_alice", {"type": t, "message": msg})
                assert await recv_json(alice) == msg
            await expect_silence(general)
            await expect_silence(alice)
            await expect_silence(bob)
            assert h.metric('herald_layer_messages_total{direction="in"}') == 4


async def test_python_send_to_one_connection():
    with node() as h:
        async with websockets.connect(h.url("/ws/notifications/")) as a, \
                websockets.connect(h.url("/ws/notifications/")) as b:
            ch_a = await whoami(a)
            await whoami(b)
            assert ch_a.startswith("specific.") and len(process_prefix(ch_a)) == 9 + 32 + 1
            layer = redis().layer()
            await layer.send(ch_a, {"type": "notification_message", "message": {"only": "a"}})
            assert await recv_json(a) == {"only": "a"}
            await expect_silence(b)
            await expect_silence(a)


async def test_python_group_send_50ms_after_101():
    with node() as h:
        layer = redis().layer()
        for i in range(5):
            user = "fresh%d_%d" % (os.getpid(), i)
            async with websockets.connect(h.url("/ws/notifications/%s/" % user)) as ws:
                await asyncio.sleep(0.05)
                await layer.group_send("user_" + user, {"type": "notification_message",
                                                        "message": {"i": i}})
                assert await recv_json(ws) == {"i": i}, user


async def test_herald_to_python_group_and_channel():
    with node() as h:
        layer = redis().layer()
        ch = await layer.new_channel()
        await layer.group_add("notifications", ch)
        try:
            msg = {"type": "notification_message",
                   "message": {"id": 7, "text": "ünï", "f": 1.5, "l": [1, None, False]}}
            st, body, _ = h.http("POST", "/api/groups/notifications/send", msg)
            assert st == 202, (st, body)
            got = await asyncio.wait_for(layer.receive(ch), 5)
            assert got == msg, got
            direct = {"type": "chat.message", "text": "to python", "n": 3}
            st, body, _ = h.http("POST", "/api/channels/%s/send" % ch, direct)
            assert st == 202 and body == {"channel": ch}, (st, body)
            got = await asyncio.wait_for(layer.receive(ch), 5)
            assert got == direct, got
            # a normal (non-specific) channel too
            st, body, _ = h.http("POST", "/api/channels/py.inbox/send", direct)
            assert st == 202, (st, body)
            got = await asyncio.wait_for(layer.receive("py.inbox"), 5)
            assert got == direct, got
        finally:
            await layer.group_discard("notifications", ch)


async def test_three_nodes_federate_and_sigterm_leaves():
    nodes = [node(threads=1) for _ in range(3)]
    try:
        conns = [await websockets.connect(n.url("/ws/notifications/")) for n in nodes]
        prefixes = [process_prefix(await whoami(c)) for c in conns]
        wait_until(lambda: all(p + "g.notifications" in redis().members("notifications")
                               for p in prefixes), timeout=2, what="three memberships")
        for i, n in enumerate(nodes):
            n.publish("notifications", {"from": i})
            for c in conns:
                assert await recv_json(c) == {"from": i}
        for c in conns:
            await expect_silence(c)
        # node 2 goes away: exit 0, its membership leaves the group key
        rc, took = nodes[2].stop(signal.SIGTERM)
        assert rc == 0 and took < 5, (rc, took)
        members = redis().members("notifications")
        assert not any(m.startswith(prefixes[2]) for m in members), members
        assert prefixes[0] + "g.notifications" in members, members
        nodes[1].publish("notifications", {"after": 1})
        for c in conns[:2]:
            assert await recv_json(c) == {"after": 1}
        for c in conns:
            try:
                await c.close()
            except Exception:
                pass
    finally:
        for n in nodes:
            if n.proc.poll() is None:
                n.stop()


async def test_two_nodes_user_groups_long_names():
    # group names too long for "specific.<cp>!g.<group>" use a hashed member
    user = "u" * 64
    a, b = node(threads=1), node(threads=1)
    try:
        async with websockets.connect(a.url("/ws/notifications/%s/" % user)) as wa, \
                websockets.connect(b.url("/ws/notifications/%s/" % user)) as wb:
            await whoami(wa)
            await whoami(wb)
            wait_until(lambda: len(redis().members("user_" + user)) == 2, timeout=2,
                       what="two memberships")
            members = redis().members("user_" + user)
            assert len(members) == 2 and all(len(m) < 100 for m in members), members
            a.publish("user_" + user, {"long": True})
            assert await recv_json(wa) == {"long": True}
            assert await recv_json(wb) == {"long": True}
            layer = redis().layer()
            await layer.group_send("user_" + user, {"type": "notification_message",
                                                    "message": {"py": 1}})
            assert await recv_json(wa) == {"py": 1}
            assert await recv_json(wb) == {"py": 1}
    finally:
        a.stop()
        b.stop()


def test_capacity_fourth_send_is_503():
    with node("--capacity", "3") as h:
        name = "nobody.reads.%d" % os.getpid()
        got = []
        for i in range(4):
            st, body, _ = h.http("POST", "/api/channels/%s/send" % name,
                                 {"type": "x", "i": i})
            got.append((st, body))
        assert [s for s, _ in got] == [202, 202, 202, 503], got
        assert got[3][1] == {"error": "channel full"}, got
        assert redis().r.zcard("asgi" + name) == 3


def test_unreachable_redis_at_start_exits_2():
    from herald_testlib import free_port
    p = free_port()
    url = "redis://127.0.0.1:%d" % p
    r = subprocess.run([HERALD, "serve", "--listen", "127.0.0.1:%d" % free_port(), "--redis", url],
                       capture_output=True, timeout=15)
    assert r.returncode == 2, r
    err = r.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "redis" in err[0] and url in err[0], err
    assert r.stdout == b"", r.stdout


def test_healthz_and_status_say_up():
    with node() as h:
        st, body, _ = h.http("GET", "/healthz")
        assert st == 200 and body["redis"] == "up" and body["layer"] == "redis", (st, body)
        assert h.metric("herald_redis_up") == 1
        assert "layer=redis" in h.ready_lines[0], h.ready_lines


if __name__ == "__main__":
    run_tests(globals())  # the redis-server is killed at exit (herald_testlib)
