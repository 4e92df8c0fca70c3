#!/usr/bin/python3
"""The Redis bridge's shared history (docs/RECOVERY.md, "Redis layer"):
build/bridge_driver runs two herald nodes' Redis side (layer, router,
recording consumer, bridge with --history rules) against a real
redis-server, and channels_redis publishes.

- a group with history has exactly one member in Redis (the shared one),
  whatever the number of nodes; a group without keeps one per node;
- at ~200 group_sends/s every node hands on every group_send once, with the
  same (epoch, offset), offsets contiguous, within 100 ms of group_send's
  return; the sequencing is shared between the nodes;
- the default delivery path (no seam installed) reaches each node's
  consumer once per group_send;
- on shutdown a node leaves the shared member in place (other nodes serve
  the group) and removes its own memberships.
"""
import asyncio
import json
import os
import queue
import subprocess
import threading
import time

from herald_testlib import RedisServer, run_tests, wait_until

BUILD = os.environ.get("HERALD_BUILD_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
DRIVER = os.path.join(BUILD, "bridge_driver")
HISTORY = "notifications=1000:300,user_*=100:300"


class Nodes:
    def __init__(self, url, n, groups, router=False):
        args = [DRIVER, "--redis", url, "--nodes", str(n), "--groups", ",".join(groups),
                "--history", HISTORY] + (["--router"] if router else [])
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        t, line = self.lines.get(timeout=20)
        assert line == "ready", line

    def _read(self):
        for line in self.p.stdout:
            self.lines.put((time.monotonic(), line.rstrip("\n")))
        self.lines.put((time.monotonic(), None))

    def wait_lines(self, prefix, count, timeout=10):
        """Wait until `count` lines starting with prefix came (kept)."""
        self.kept = getattr(self, "kept", [])
        deadline = time.monotonic() + timeout
        while sum(1 for _, l in self.kept if l.startswith(prefix)) < count:
            t, line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "driver exited early"
            self.kept.append((t, line))

    def finish(self):
        """Close stdin; every line up to `done`, with arrival times."""
        self.p.stdin.close()
        out = list(getattr(self, "kept", []))
        while True:
            t, line = self.lines.get(timeout=30)
            assert line is not None, "driver exited early"
            out.append((t, line))
            if line == "done":
                break
        assert self.p.wait(10) == 0
        return out


def publish(url, sends, rate):
    async def main():
        from channels_redis.core import RedisChannelLayer
        # Raised capacity for the shared member, as docs/RECOVERY.md advises:
        # a loaded test machine may stall every node for 100 copies' worth.
        layer = RedisChannelLayer(hosts=[url], channel_capacity={"specific.*": 10000})
        done = {}
        t0 = time.monotonic()
        for i, (g, m) in enumerate(sends):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await layer.group_send(g, m)
            done[m["id"]] = (time.monotonic(), time.time())
        return done
    return asyncio.run(main())


def stats(out):
    res = {}
    for _, line in out:
        if line.startswith("stats "):
            f = line.split()
            res[int(f[1])] = {k: int(v) for k, v in (x.split("=") for x in f[2:])}
    return res


def test_two_nodes_agree_and_share_sequencing():
    with RedisServer() as rs:
        groups = ["notifications", "user_7", "plain"]
        nodes = Nodes(rs.url, 2, groups)
        wait_until(lambda: len(rs.members("plain")) == 2 and len(rs.members("notifications")) == 1
                   and len(rs.members("user_7")) == 1, what="memberships")
        shared = rs.members("notifications")[0]
        assert "!h.notifications" in shared, shared
        assert rs.r.get("asgi:herald:hcfg:h.notifications") == b"1000 300 notifications"
        assert rs.r.get("asgi:herald:hcfg:h.user_7") == b"100 300 user_7"
        time.sleep(0.1)
        n = 600
        sends = [(["notifications", "user_7", "plain"][i % 3], {"type": "x", "id": i})
                 for i in range(n)]
        done = publish(rs.url, sends, 200)
        time.sleep(0.3)
        out = nodes.finish()
        sequenced = {(f[b"g"].decode(), int(f[b"o"])): int(eid.split(b"-")[0]) / 1000.0
                     for eid, f in rs.r.xrange("asgi:herald:log", "-", "+")}
        hist = []
        hist_ids = sorted(i for g, m in sends if g != "plain" for i in [m["id"]])
        per_node = {0: [], 1: []}
        plain = {0: [], 1: []}
        lat = []
        for t, line in out:
            if line.startswith("ev "):
                _, node, g, e, o, data = line.split(" ", 5)
                d = json.loads(data)
                per_node[int(node)].append((d["id"], g, e, int(o)))
                lat.append(t - done[d["id"]][0])
                if node == "0":
                    hist.append(sequenced[(g, int(o))] - done[d["id"]][1])
            elif line.startswith("fan "):
                _, node, data = line.split(" ", 2)
                plain[int(node)].append(json.loads(data)["id"])
        for k in (0, 1):
            ev = per_node[k]
            assert sorted(i for i, _, _, _ in ev) == hist_ids, "node %d: missing or twice" % k
            for g in ("notifications", "user_7"):
                offs = [o for _, gg, _, o in ev if gg == g]
                assert offs == list(range(1, len(offs) + 1)), (k, g, offs[:10])
                assert len({e for _, gg, e, _ in ev if gg == g}) == 1
            # A group without history still reaches each node once, as before.
            assert sorted(plain[k]) == [m["id"] for g, m in sends if g == "plain"], k
        assert sorted(per_node[0]) == sorted(per_node[1]), "nodes disagree on (epoch, offset)"
        st = stats(out)
        assert st[0]["sequenced"] + st[1]["sequenced"] == len(hist_ids), st
        assert st[0]["hist_events"] == st[1]["hist_events"] == len(hist_ids), st
        lat.sort()
        hist.sort()
        print("in history after group_send returned: p50 %.1f ms max %.1f ms; handed on by "
              "the nodes: p50 %.1f ms p99 %.1f ms max %.1f ms; sequenced by node: %d / %d" % (
                  hist[len(hist) // 2] * 1e3, hist[-1] * 1e3, lat[len(lat) // 2] * 1e3,
                  lat[int(len(lat) * 0.99)] * 1e3, lat[-1] * 1e3, st[0]["sequenced"],
                  st[1]["sequenced"]))
        # The interface's promise: in history within 100 ms of group_send's
        # return (the log entry's id is Redis' clock at sequencing).
        assert hist[-1] < 0.100, "%.0f ms" % (hist[-1] * 1e3)
        assert lat[len(lat) // 2] < 0.050, "p50 %.0f ms" % (lat[len(lat) // 2] * 1e3)
        # Shutdown: each node removed its own memberships, the shared ones stay.
        assert rs.members("plain") == [] and rs.members("notifications") == [shared]


def test_default_path_reaches_the_router_once():
    with RedisServer() as rs:
        nodes = Nodes(rs.url, 2, ["notifications"], router=True)
        wait_until(lambda: len(rs.members("notifications")) == 1, what="shared member")
        time.sleep(0.1)
        sends = [("notifications", {"type": "x", "id": i}) for i in range(100)]
        publish(rs.url, sends, 200)
        time.sleep(0.3)
        out = nodes.finish()
        for k in (0, 1):
            got = [json.loads(l.split(" ", 2)[2])["id"] for _, l in out
                   if l.startswith("fan %d " % k)]
            # In offset order, which is the order group_send returned in.
            assert got == list(range(100)), (k, got[:10])


def test_copies_waiting_while_no_node_ran_are_delivered():
    with RedisServer() as rs:
        Nodes(rs.url, 1, ["notifications"]).finish()
        assert len(rs.members("notifications")) == 1  # the shared member stayed
        sends = [("notifications", {"type": "x", "id": i}) for i in range(10)]
        publish(rs.url, sends, 1000)
        # The first node up sequences them and hands them on itself too.
        nodes = Nodes(rs.url, 1, ["notifications"])
        wait_until(lambda: rs.r.zcard("asgi:herald:hist:notifications") == 10,
                   what="sequenced")
        time.sleep(0.2)
        out = nodes.finish()
        ev = [l.split(" ", 5) for _, l in out if l.startswith("ev ")]
        assert [(int(o), json.loads(d)["id"]) for _, _, _, _, o, d in ev] == [
            (i + 1, i) for i in range(10)], ev


def test_redis_restart_registers_again_and_sequences_on():
    with RedisServer() as rs:
        nodes = Nodes(rs.url, 2, ["notifications"])
        wait_until(lambda: len(rs.members("notifications")) == 1, what="shared member")
        publish(rs.url, [("notifications", {"type": "x", "id": i}) for i in range(5)], 500)
        nodes.wait_lines("ev ", 10)  # both nodes handed the five on
        old = rs.r.get("asgi:herald:epoch:notifications")
        rs.stop()
        time.sleep(0.5)
        rs.start()  # empty: history, epoch and memberships are gone
        wait_until(lambda: len(rs.members("notifications")) == 1
                   and rs.r.exists("asgi:herald:hcfg:h.notifications"), timeout=10,
                   what="shared member and settings registered again")
        publish(rs.url, [("notifications", {"type": "x", "id": 5 + i}) for i in range(5)], 500)
        wait_until(lambda: rs.r.get("asgi:herald:seq:notifications") == b"5", what="new epoch")
        time.sleep(0.2)
        out = nodes.finish()
        new = rs.r.get("asgi:herald:epoch:notifications")
        assert new != old
        for k in ("0", "1"):
            ev = [l.split(" ", 5) for _, l in out if l.startswith("ev %s " % k)]
            got = [(e.encode(), int(o), json.loads(d)["id"]) for _, _, _, e, o, d in ev]
            assert got == [(old, i + 1, i) for i in range(5)] + [
                (new, i + 1, 5 + i) for i in range(5)], (k, got)


if __name__ == "__main__":
    run_tests(globals())
