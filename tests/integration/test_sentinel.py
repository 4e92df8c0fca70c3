"""herald on Redis Sentinel (docs/PROTOCOL.md "Redis Sentinel"): bad
redis+sentinel:// URLs refused at start, sentinels that cannot name a master
refused at start, and a node that finds the master through real
redis-sentinel processes and interoperates with channels_redis 4 configured
with the same sentinels, both ways, with and without a password."""
import asyncio
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from herald_testlib import (HERALD, Herald, free_port, recv_json, run_tests,  # noqa: E402
                            shared_redis, wait_until)
from sentinel_cluster import SentinelCluster  # noqa: E402

import websockets  # noqa: E402


def refused(*args):
    """herald serve with args: (exit code, stderr lines, stdout)."""
    out = subprocess.run([HERALD, "serve", "--listen", "127.0.0.1:%d" % free_port()] + list(args),
                         capture_output=True, text=True, timeout=20)
    return out.returncode, out.stderr.strip().splitlines(), out.stdout


def test_bad_sentinel_urls_exit_2_with_one_line():
    bad = [
        "redis+sentinel://127.0.0.1:26379",             # no master
        "redis+sentinel://127.0.0.1:26379/",            # empty master
        "redis+sentinel://127.0.0.1/mymaster",          # sentinel without a port
        "redis+sentinel://127.0.0.1:26379,/mymaster",   # empty sentinel
        "redis+sentinel://127.0.0.1:0/mymaster",        # port 0
        "redis+sentinel://127.0.0.1:26379/my master",   # bad master name
        "redis+sentinel://127.0.0.1:26379/mymaster/x",  # db not a number
        "redis+sentinel://user:pw@127.0.0.1:26379/mymaster",
        "redis+sentinels://127.0.0.1:26379/mymaster",
    ]
    for url in bad:
        rc, err, out = refused("--redis", url)
        assert rc == 2, (url, rc, err)
        assert len(err) == 1 and err[0].startswith("herald: ") and "redis" in err[0], (url, err)
        assert out == "", (url, out)


def test_sentinels_that_cannot_name_a_master_refuse_the_start():
    # nobody listens there
    rc, err, out = refused("--redis", "redis+sentinel://127.0.0.1:%d/mymaster" % free_port())
    assert rc == 2 and len(err) == 1 and err[0].startswith("herald: ") and out == "", (rc, err)
    with SentinelCluster() as c:
        # the sentinels answer, but know no such master
        url = c.url().replace("/mymaster", "/nosuchmaster")
        rc, err, out = refused("--redis", url)
        assert rc == 2 and len(err) == 1 and err[0].startswith("herald: ") and out == "", \
            (rc, err)


async def whoami(ws):
    await ws.send(json.dumps({"type": "whoami"}))
    m = await recv_json(ws)
    assert m["type"] == "whoami", m
    return m["channel"]


async def both_ways(c, url):
    with Herald("--redis", url, "--history", "off", threads=1) as h:
        async with websockets.connect(h.url("/ws/notifications/")) as ws:
            node = (await whoami(ws)).split("!")[0] + "!g.notifications"
            # registered on the master the sentinels name
            wait_until(lambda: node in [m.decode() for m in
                                        c.master.r.zrange("asgi:group:notifications", 0, -1)],
                       timeout=5, what="the node's membership on the master")
            layer = c.layer()
            # channels_redis through the same sentinels -> a herald WebSocket
            msg = {"n": 1, "text": "héllo via sentinel"}
            await layer.group_send("notifications", {"type": "notification_message",
                                                     "message": msg})
            assert await recv_json(ws) == msg
            # herald's HTTP group send -> a Python receive
            ch = await layer.new_channel()
            await layer.group_add("notifications", ch)
            h.publish("notifications", {"n": 2})
            got = await asyncio.wait_for(layer.receive(ch), 5)
            assert got == {"type": "notification_message", "message": {"n": 2}}, got
            assert await recv_json(ws) == {"n": 2}
            await layer.group_discard("notifications", ch)
            await layer.close_pools()
            assert h.metric("herald_redis_up") == 1
            assert h.metric("herald_redis_failovers_total") == 0
            st, body, _ = h.http("GET", "/healthz")
            assert st == 200, (st, body)
            # what the node wrote went to the master, nothing to the replica
            # by hand: the replica has it by replication only
            assert c.replica.r.info("replication")["role"] == "slave"


async def test_node_finds_the_master_and_interoperates_with_channels_redis():
    with SentinelCluster() as c:
        await both_ways(c, c.url())
        # HERALD_REDIS takes a comma list of URLs, and a sentinel URL has
        # commas of its own: a ring of a sentinel shard and a plain one
        plain = shared_redis()
        with Herald("--history", "off", threads=1, env={"HERALD_REDIS": "%s, %s" % (c.url(), plain.url)}) as h:
            assert "layer=redis" in h.ready_lines[0], h.ready_lines
            st, body, _ = h.http("GET", "/healthz")
            assert st == 200, (st, body)
            # 64 groups spread over both shards: some land on each
            async with websockets.connect(h.url("/ws/notifications/")) as ws:
                await whoami(ws)
            for i in range(64):
                h.publish("g%d" % i, {"i": i})
            assert h.metric('herald_federation_failures_total{op="group_send"}') == 0


async def test_password_goes_to_the_master_and_open_sentinels_are_asked_without_it():
    with SentinelCluster(password="s3cret") as c:
        await both_ways(c, c.url(db=0))
        # the master refuses a client without the password
        rc, err, _ = refused("--redis", c.url(password=False))
        assert rc == 2 and len(err) == 1 and err[0].startswith("herald: "), (rc, err)


if __name__ == "__main__":
    run_tests(globals())
