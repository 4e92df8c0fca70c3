"""Message expiry (--expiry): expired messages stop counting against a
channel's capacity (memory layer), are never received from Redis by a
channels_redis peer, and are not delivered by a node that was stopped while
they aged in its process key."""
import asyncio
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from herald_testlib import (shared_redis, Herald, expect_silence, recv_json,  # noqa: E402
                            run_tests, wait_until)

import websockets  # noqa: E402

redis = shared_redis


def send(h, channel, n):
    return h.http("POST", "/api/channels/%s/send" % channel,
                  {"type": "notification_message", "message": {"n": n}})


def test_expired_messages_free_capacity_memory():
    with Herald("--expiry", "2", "--capacity", "3") as h:
        for i in range(3):
            st, body, _ = send(h, "nobody.reads", i)
            assert st == 202, (i, st, body)
        st, body, _ = send(h, "nobody.reads", 3)
        assert st == 503 and body == {"error": "channel full"}, (st, body)
        time.sleep(3.0)
        for i in range(3):
            st, body, _ = send(h, "nobody.reads", 10 + i)
            assert st == 202, ("after expiry", i, st, body)
        st, body, _ = send(h, "nobody.reads", 13)
        assert st == 503, ("the fresh ones count", st, body)
        assert h.metric('herald_dropped_total{reason="expired"}') >= 3


async def test_expired_message_never_reaches_channels_redis():
    with Herald("--redis", redis().url, "--expiry", "2") as h:
        st, body, _ = send(h, "py.inbox", 1)
        assert st == 202, (st, body)
        assert redis().r.zcard("asgipy.inbox") == 1
        await asyncio.sleep(3.0)
        layer = redis().layer()
        await layer.send("py.inbox", {"type": "fresh"})
        got = await asyncio.wait_for(layer.receive("py.inbox"), 5)
        assert got == {"type": "fresh"}, got
        try:
            extra = await asyncio.wait_for(layer.receive("py.inbox"), 0.5)
        except asyncio.TimeoutError:
            extra = None
        assert extra is None, ("expired message received", extra)
        await layer.flush()


async def test_stopped_node_drops_what_expired_in_its_process_key():
    with Herald("--redis", redis().url, "--expiry", "2") as h:
        async with websockets.connect(h.url("/ws/notifications/")) as ws:
            await ws.send(json.dumps({"type": "whoami"}))
            me = await recv_json(ws)
            channel = me["channel"]
            layer = redis().layer()  # Python's own expiry (60 s) keeps the key
            h.proc.send_signal(signal.SIGSTOP)
            try:
                await asyncio.sleep(0.4)  # the node's blocking pop times out
                await layer.send(channel, {"type": "notification_message",
                                           "message": {"aged": True}})
                await asyncio.sleep(3.0)
            finally:
                h.proc.send_signal(signal.SIGCONT)
            wait_until(lambda: h.metric('herald_dropped_total{reason="expired"}') >= 1,
                       timeout=5, what="the aged message counted as expired")
            await layer.send(channel, {"type": "notification_message",
                                       "message": {"fresh": True}})
            assert await recv_json(ws) == {"fresh": True}
            await expect_silence(ws)
            await layer.flush()


if __name__ == "__main__":
    run_tests(globals())
