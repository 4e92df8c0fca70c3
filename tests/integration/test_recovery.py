"""Recovery across reconnects on the memory layer (docs/PROTOCOL.md
"Recovery across reconnects"), with real herald nodes and real WebSocket
clients: the `recover` parameter and its 400s, envelopes and what is never
wrapped, the `recovered` frame, replays after a position, unservable
positions, SIZE and TTL, epochs across a restart, offsets whoever sends,
1013 for a slow recover connection, the metrics, a hammer of resumes while
group_sends keep coming, and the 200/s load test with 10 resumes."""
import asyncio
import http.client
import json
import os
import random
import re
import socket
import struct
import subprocess
import threading
import time

import websockets

from herald_testlib import HERALD, Herald, expect_silence, recv_json, run_tests

EPOCH_RE = re.compile(r"^[0-9a-f]{16}$")


async def refused(url):
    try:
        async with websockets.connect(url, open_timeout=5):
            pass
    except websockets.exceptions.InvalidStatusCode as e:
        return e.status_code
    return None


def metric(h, name):
    try:
        return h.metric(name)
    except AssertionError:
        return None


def rurl(h, path, value):
    return h.url(path) + "?recover=" + value


async def read_resume(ws, group="notifications"):
    """Read a resume's replay and its `recovered` frame: (replayed, recovered)."""
    replayed = []
    while True:
        f = await recv_json(ws)
        if f.get("type") == "recovered":
            assert f["group"] == group, f
            return replayed, f
        assert f.get("type") == "message" and f.get("group") == group, f
        replayed.append(f)


class Publisher:
    """group_sends through one keep-alive HTTP connection: each a 202."""

    def __init__(self, h):
        self.c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)

    def send(self, group, message, type_="notification_message"):
        self.c.request("POST", "/api/groups/%s/send" % group,
                       body=json.dumps({"type": type_, "message": message}),
                       headers={"Content-Type": "application/json"})
        r = self.c.getresponse()
        r.read()
        assert r.status == 202, r.status

    def close(self):
        self.c.close()


# ---------------------------------------------------------------- the parameter


async def test_malformed_recover_values_refused_with_400():
    with Herald() as h:
        long_epoch = "a" * 2100  # one well-formed item, over 2 KiB
        bad = ["x", "notifications", "notifications@abc", "notificationsabc:1",
               "notifications@ABC:1", "notifications@xyz:1", "notifications@:1",
               "notifications@ab:-1", "notifications@ab:1.5", "notifications@ab:",
               "notifications@ab:1x", "notifications@ab:99999999999999999999999",
               "notifications@ab:1,", ",notifications@ab:1",
               ",".join("g%d@ab:1" % i for i in range(17)),
               "notifications@%s:1" % long_epoch]
        for v in bad:
            assert await refused(rurl(h, "/ws/notifications/", v)) == 400, v
            assert await refused(rurl(h, "/ws/notifications/alice/", v)) == 400, v
        # the same shapes within the limits are accepted
        good = ["", "notifications@ab:0", "other@ab:1",
                ",".join("g%d@ab:1" % i for i in range(16)),
                "notifications@%s:1" % ("a" * 2000)]
        for v in good:
            async with websockets.connect(rurl(h, "/ws/notifications/", v), open_timeout=5) as ws:
                _, rec = await read_resume(ws)
                assert rec["recovered"] is False and rec["missed"] == 0, (v, rec)
        # /ws/health/ joins no group: recover is ignored there
        async with websockets.connect(rurl(h, "/ws/health/", "x"), open_timeout=5) as ws:
            await ws.send('{"type":"ping"}')
            assert (await recv_json(ws))["type"] == "pong"


# ---------------------------------------------------------------- envelopes


async def test_envelopes_and_plain_frames():
    with Herald() as h:
        async with websockets.connect(h.url("/ws/notifications/")) as plain, \
                websockets.connect(rurl(h, "/ws/notifications/", "")) as rec:
            _, first = await read_resume(rec)
            assert set(first) == {"type", "group", "epoch", "offset", "recovered", "missed"}, first
            assert EPOCH_RE.match(first["epoch"]), first
            assert first["offset"] == 0 and first["recovered"] is False and first["missed"] == 0
            msgs = [{"n": 1}, {"s": "é\"\\", "l": [1, None, True]}, {}]
            for m in msgs:
                h.publish("notifications", m)
            for i, m in enumerate(msgs):
                assert await recv_json(plain) == m  # exactly as without recover
                env = await recv_json(rec)
                assert env == {"type": "message", "group": "notifications",
                               "epoch": first["epoch"], "offset": i + 1, "data": m}, env
            # a type no consumer handles: its offset is taken, nothing arrives
            h.publish("notifications", {"x": 1}, type_="no.such_handler")
            h.publish("notifications", {"n": 5})
            assert await recv_json(plain) == {"n": 5}
            env = await recv_json(rec)
            assert env["offset"] == 5 and env["data"] == {"n": 5}, env
            # replies to the client and error frames are never wrapped
            await rec.send('{"type":"ping"}')
            pong = await recv_json(rec)
            assert pong["type"] == "pong" and set(pong) == {"type", "timestamp"}, pong
            await rec.send('{"type":"whoami"}')
            who = await recv_json(rec)
            assert set(who) == {"type", "channel"}, who
            await rec.send("not json")
            assert await recv_json(rec) == {"type": "error", "error": "invalid JSON"}
            await rec.send('{"type":"status"}')
            assert await recv_json(rec) == {"type": "error", "error": "unknown type"}
            # the connection's own channel: an envelope without group or position
            st, _, _ = h.http("POST", "/api/channels/%s/send" % who["channel"],
                              {"type": "notification_message", "message": {"own": 1}})
            assert st == 202
            assert await recv_json(rec) == {"type": "message", "data": {"own": 1}}
            await plain.send('{"type":"whoami"}')
            pch = (await recv_json(plain))["channel"]
            st, _, _ = h.http("POST", "/api/channels/%s/send" % pch,
                              {"type": "notification.message", "message": {"own": 2}})
            assert st == 202
            assert await recv_json(plain) == {"own": 2}
            await expect_silence(plain)
            await expect_silence(rec)


async def test_user_route_and_groups_without_history():
    # only notifications has history here: user_* groups have none
    with Herald("--history", "notifications=10") as h:
        async with websockets.connect(rurl(h, "/ws/notifications/bob/", "user_bob@ab:3")) as ws:
            _, rec = await read_resume(ws, "user_bob")
            assert rec == {"type": "recovered", "group": "user_bob", "recovered": False,
                           "missed": 0}, rec
            h.publish("user_bob", {"u": 1})
            assert await recv_json(ws) == {"type": "message", "group": "user_bob",
                                           "data": {"u": 1}}
        # a position given for a group without history counts as unrecoverable
        assert h.metric("herald_history_unrecoverable_total") == 1
    with Herald("--history", "user_*=2:60") as h:
        for i in range(3):
            h.publish("user_bob", {"u": i})
        async with websockets.connect(rurl(h, "/ws/notifications/bob/", "")) as ws:
            _, rec = await read_resume(ws, "user_bob")
            epoch = rec["epoch"]
            assert rec["offset"] == 3 and rec["recovered"] is False, rec
        async with websockets.connect(
                rurl(h, "/ws/notifications/bob/", "user_bob@%s:1" % epoch)) as ws:
            replayed, rec = await read_resume(ws, "user_bob")
            assert [f["offset"] for f in replayed] == [2, 3], replayed
            assert [f["data"] for f in replayed] == [{"u": 1}, {"u": 2}]
            assert rec["recovered"] is True and rec["missed"] == 2, rec
    with Herald("--history", "off") as h:
        h.publish("notifications", {"n": 1})
        async with websockets.connect(rurl(h, "/ws/notifications/", "notifications@ab:0")) as ws:
            _, rec = await read_resume(ws)
            assert rec == {"type": "recovered", "group": "notifications", "recovered": False,
                           "missed": 0}, rec
            h.publish("notifications", {"n": 2})
            assert await recv_json(ws) == {"type": "message", "group": "notifications",
                                           "data": {"n": 2}}
        assert h.metric("herald_history_bytes") == 0


# ---------------------------------------------------------------- resumes


async def test_resume_replays_exactly_the_missing_frames():
    with Herald() as h:
        async with websockets.connect(rurl(h, "/ws/notifications/", "")) as ws:
            _, rec = await read_resume(ws)
            epoch = rec["epoch"]
        for i in range(1, 8):
            h.publish("notifications", {"n": i})
        # no wait after the 202s: each is in history already
        for after in (0, 2, 6, 7):
            async with websockets.connect(
                    rurl(h, "/ws/notifications/", "notifications@%s:%d" % (epoch, after))) as ws:
                replayed, rec = await read_resume(ws)
                want = list(range(after + 1, 8))
                assert [f["offset"] for f in replayed] == want, (after, replayed)
                for f in replayed:
                    assert f == {"type": "message", "group": "notifications", "epoch": epoch,
                                 "offset": f["offset"], "data": {"n": f["offset"]}}, f
                assert rec == {"type": "recovered", "group": "notifications", "epoch": epoch,
                               "offset": 7, "recovered": True, "missed": len(want)}, rec
                await expect_silence(ws, 0.2)
        assert h.metric("herald_history_replayed_total") == 7 + 5 + 1 + 0
        assert h.metric("herald_history_unrecoverable_total") == 0
        # live frames follow the recovered frame, from O + 1
        async with websockets.connect(
                rurl(h, "/ws/notifications/", "notifications@%s:7" % epoch)) as ws:
            _, rec = await read_resume(ws)
            h.publish("notifications", {"n": 8})
            f = await recv_json(ws)
            assert f["offset"] == 8 and f["data"] == {"n": 8}, f


async def test_unservable_positions_answer_recovered_false():
    with Herald("--history", "notifications=3:300") as h:
        for i in range(1, 7):
            h.publish("notifications", {"n": i})
        async with websockets.connect(rurl(h, "/ws/notifications/", "")) as ws:
            _, rec = await read_resume(ws)
            epoch = rec["epoch"]
            assert rec["offset"] == 6 and rec["recovered"] is False
        other = "0123456789abcdef" if epoch != "0123456789abcdef" else "fedcba9876543210"
        cases = [("notifications@%s:5" % other, False, 0),   # another epoch
                 ("notifications@%s:1" % epoch, False, 0),   # older than history (4..6)
                 ("notifications@%s:2" % epoch, False, 0),
                 ("notifications@%s:9" % epoch, False, 0),   # past the latest offset
                 ("notifications@%s:3" % epoch, True, 3),    # exactly the oldest held
                 ("notifications@%s:6" % epoch, True, 0),    # nothing missed
                 ("other@%s:1,notifications@%s:5" % (epoch, epoch), True, 1)]
        for value, ok, missed in cases:
            async with websockets.connect(rurl(h, "/ws/notifications/", value)) as ws:
                replayed, rec = await read_resume(ws)
                assert rec == {"type": "recovered", "group": "notifications", "epoch": epoch,
                               "offset": 6, "recovered": ok, "missed": missed}, (value, rec)
                assert [f["offset"] for f in replayed] == list(range(7 - missed, 7)), replayed
                await expect_silence(ws, 0.1)
        # unrecoverable counts the positions given and refused: 4 here, and
        # never the `?recover=` without a position
        assert h.metric("herald_history_unrecoverable_total") == 4


async def test_size_and_ttl_bounds():
    with Herald("--history", "notifications=3:2") as h:
        for i in range(1, 6):
            h.publish("notifications", {"n": i})
        async with websockets.connect(rurl(h, "/ws/notifications/", "")) as ws:
            _, rec = await read_resume(ws)
            epoch = rec["epoch"]
        # exactly the last SIZE frames
        async with websockets.connect(
                rurl(h, "/ws/notifications/", "notifications@%s:2" % epoch)) as ws:
            replayed, rec = await read_resume(ws)
            assert [f["offset"] for f in replayed] == [3, 4, 5] and rec["recovered"] is True
        async with websockets.connect(
                rurl(h, "/ws/notifications/", "notifications@%s:1" % epoch)) as ws:
            replayed, rec = await read_resume(ws)
            assert replayed == [] and rec["recovered"] is False, rec
        size_before = h.metric("herald_history_bytes")
        assert size_before > 0
        time.sleep(1.2)
        h.publish("notifications", {"n": 6})
        # frames 3..5 are 1.2 s old, 6 is new; after 2.5 s more, none is left
        async with websockets.connect(
                rurl(h, "/ws/notifications/", "notifications@%s:3" % epoch)) as ws:
            replayed, rec = await read_resume(ws)
            assert [f["offset"] for f in replayed] == [4, 5, 6], replayed  # SIZE 3
        time.sleep(1.2)
        # 4 and 5 are older than TTL now; 6 is not
        async with websockets.connect(
                rurl(h, "/ws/notifications/", "notifications@%s:5" % epoch)) as ws:
            replayed, rec = await read_resume(ws)
            assert [f["offset"] for f in replayed] == [6] and rec["recovered"] is True
        async with websockets.connect(
                rurl(h, "/ws/notifications/", "notifications@%s:4" % epoch)) as ws:
            replayed, rec = await read_resume(ws)
            assert replayed == [] and rec["recovered"] is False, rec
            assert rec["epoch"] == epoch and rec["offset"] == 6
            assert h.metric("herald_history_bytes") < size_before  # 4 and 5 are gone
        time.sleep(1.2)
        # nothing for TTL and nobody connected: the history expired entirely,
        # and the group starts a new epoch (as a Redis history expires)
        async with websockets.connect(
                rurl(h, "/ws/notifications/", "notifications@%s:6" % epoch)) as ws:
            replayed, rec = await read_resume(ws)
            assert replayed == [] and rec["recovered"] is False and rec["offset"] == 0, rec
            assert EPOCH_RE.match(rec["epoch"]) and rec["epoch"] != epoch, rec


async def test_history_memory_is_bounded_by_size():
    with Herald("--history", "notifications=50:300") as h:
        p = Publisher(h)
        big = {"pad": "x" * 2000}
        for i in range(50):
            p.send("notifications", big)
        full = h.metric("herald_history_bytes")
        assert 50 * 2000 < full < 50 * 2000 * 2, full
        for i in range(200):
            p.send("notifications", big)
        p.close()
        # the same 50 frames' worth (offsets have a digit more now)
        assert full <= h.metric("herald_history_bytes") <= full + 50 * 2, full


async def test_restart_draws_a_new_epoch():
    h = Herald()
    try:
        h.publish("notifications", {"n": 1})
        async with websockets.connect(rurl(h, "/ws/notifications/", "")) as ws:
            _, rec = await read_resume(ws)
            old = rec["epoch"]
    finally:
        h.stop()
    with Herald() as h2:
        h2.publish("notifications", {"n": 1})
        async with websockets.connect(
                rurl(h2, "/ws/notifications/", "notifications@%s:0" % old)) as ws:
            replayed, rec = await read_resume(ws)
            assert replayed == [] and rec["recovered"] is False and rec["missed"] == 0, rec
            assert EPOCH_RE.match(rec["epoch"]) and rec["epoch"] != old, rec
            assert rec["offset"] == 1
        assert h2.metric("herald_history_unrecoverable_total") == 1


async def test_offsets_count_every_group_send_whoever_sends():
    with Herald() as h:
        async with websockets.connect(rurl(h, "/ws/notifications/", "")) as ws:
            _, rec = await read_resume(ws)
            h.publish("notifications", {"api": 1})
            st, body, _ = h.http("POST", "/api/notifications", {"title": "t"})
            assert st == 202, body
            out = subprocess.run([HERALD, "send", "--url", "http://127.0.0.1:%d" % h.port,
                                  "--group", "notifications", '{"cli": 1}'],
                                 capture_output=True, text=True, timeout=10)
            assert out.returncode == 0, out
            got = []
            while len(got) < 5:
                got.append(await recv_json(ws))
            assert [f["offset"] for f in got] == [1, 2, 3, 4, 5], got
            assert got[0]["data"] == {"api": 1}
            statuses = [f["data"].get("status") for f in got[1:]]
            # the worker's three steps and the CLI's send, in some order
            assert sorted(s for s in statuses if s) == ["processing", "queued", "sent"], got
            assert {"cli": 1} in [f["data"] for f in got], got


# ---------------------------------------------------------------- 1013


def raw_ws(port, path, rcvbuf=4096):
    """A WebSocket handshake on a socket with a small receive buffer, that
    then does not read: returns the socket."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
               % path).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def read_frames(s, timeout=20):
    """Read server frames until the close frame: (texts, close code)."""
    s.settimeout(timeout)
    buf = b""
    texts = []

    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = s.recv(65536)
            if not chunk:
                raise EOFError
            buf += chunk

    while True:
        need(2)
        op, ln = buf[0] & 0x0F, buf[1] & 0x7F
        hl = 2
        if ln == 126:
            need(4)
            ln, hl = struct.unpack(">H", buf[2:4])[0], 4
        elif ln == 127:
            need(10)
            ln, hl = struct.unpack(">Q", buf[2:10])[0], 10
        need(hl + ln)
        payload, buf = buf[hl:hl + ln], buf[hl + ln:]
        if op == 8:
            return texts, struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
        if op == 1:
            texts.append(json.loads(payload))


def test_slow_recover_connection_closed_with_1013():
    with Herald("--max-message", "65536") as h:
        slow_rec = raw_ws(h.port, "/ws/notifications/?recover=")
        slow_plain = raw_ws(h.port, "/ws/notifications/")
        dropped0 = h.metric('herald_dropped_total{reason="slow_consumer"}')
        closed0 = metric(h, 'herald_ws_closed_total{reason="slow_consumer"}')
        p = Publisher(h)
        pad = "y" * 60000
        n = 300  # 18 MB: past 4 MiB of queue and every socket buffer
        for i in range(1, n + 1):
            p.send("notifications", {"i": i, "pad": pad})
        p.close()
        texts, code = read_frames(slow_rec)
        assert code == 1013, code
        assert texts[0]["type"] == "recovered", texts[0]
        offs = [t["offset"] for t in texts[1:]]
        # what it got before the close is whole and in order, never with a gap
        assert offs == list(range(1, len(offs) + 1)) and len(offs) < n, (len(offs), offs[-3:])
        # the plain connection dropped its oldest frames instead, and stays open
        slow_plain.settimeout(10)
        got = b""
        try:
            while len(got) < 1024 * 1024:
                chunk = slow_plain.recv(65536)
                if not chunk:
                    break
                got += chunk
        except socket.timeout:
            pass
        assert got, "the plain connection was closed"
        assert h.metric('herald_dropped_total{reason="slow_consumer"}') > dropped0
        slow_rec.close()
        # counted when the socket is closed, after the lingering close (<= 2 s)
        deadline = time.time() + 6
        closed = metric(h, 'herald_ws_closed_total{reason="slow_consumer"}')
        while closed != closed0 + 1 and time.time() < deadline:
            time.sleep(0.1)
            closed = metric(h, 'herald_ws_closed_total{reason="slow_consumer"}')
        assert closed == closed0 + 1, (closed0, closed)
        slow_plain.close()


# ---------------------------------------------------------------- under load


class Check:
    """Everything one client saw across its connections: offset -> data."""

    def __init__(self, epoch):
        self.epoch = epoch
        self.seen = []

    def connection(self, after, replayed, rec, live):
        assert rec["epoch"] == self.epoch and rec["recovered"] is True, rec
        offs = [f["offset"] for f in replayed] + [f["offset"] for f in live]
        assert offs == list(range(after + 1, after + 1 + len(offs))), (after, offs[:20])
        assert rec["missed"] == len(replayed), rec
        assert rec["offset"] == after + len(replayed), (after, rec)
        for f in replayed + live:
            assert f["epoch"] == self.epoch, f
            assert f["data"]["seq"] == f["offset"], f  # the data published at that offset
            self.seen.append(f["offset"])

    def verify(self, first_after):
        assert self.seen == list(range(first_after + 1, first_after + 1 + len(self.seen))), \
            self.seen[:40]


async def session(h, check, after, stay_s):
    """One connection from `after`: the offsets it saw, then it leaves."""
    url = rurl(h, "/ws/notifications/", "notifications@%s:%d" % (check.epoch, after))
    async with websockets.connect(url, open_timeout=10, max_queue=None) as ws:
        replayed, rec = await read_resume(ws)
        live = []
        t_end = time.monotonic() + stay_s
        while True:
            left = t_end - time.monotonic()
            if left <= 0:
                break
            try:
                f = json.loads(await asyncio.wait_for(ws.recv(), left))
            except asyncio.TimeoutError:
                break
            live.append(f)
    check.connection(after, replayed, rec, live)
    return (replayed + live)[-1]["offset"] if replayed + live else after


def publish_loop(h, n, rate, done):
    """n group_sends at `rate` a second ({"seq": i} is offset i on a fresh node)."""
    p = Publisher(h)
    t0 = time.monotonic()
    try:
        for i in range(1, n + 1):
            if rate:
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            p.send("notifications", {"seq": i})
    finally:
        p.close()
        done.set()


async def first_epoch(h):
    async with websockets.connect(rurl(h, "/ws/notifications/", "")) as ws:
        _, rec = await read_resume(ws)
        assert rec["offset"] == 0
        return rec["epoch"]


async def test_load_200_per_second_with_10_resumes():
    with Herald("--history", "notifications=1000:300") as h:
        epoch = await first_epoch(h)
        done = threading.Event()
        n = 1200
        t = threading.Thread(target=publish_loop, args=(h, n, 200, done), daemon=True)
        t.start()
        check = Check(epoch)
        last = 0
        for i in range(10):
            last = await session(h, check, last, random.uniform(0.2, 0.4))
            await asyncio.sleep(random.uniform(0.05, 0.3))  # away: frames go on
        # the last connection stays until the publisher is done
        while not done.is_set():
            last = await session(h, check, last, 0.5)
        t.join(30)
        last = await session(h, check, last, 0.3)
        check.verify(0)
        assert check.seen[-1] == n, check.seen[-5:]
        assert len(check.seen) == n


async def test_hammer_resumes_while_group_sends_arrive():
    with Herald("--history", "notifications=1000:300", threads=2) as h:
        epoch = await first_epoch(h)
        done = threading.Event()
        # as fast as one keep-alive connection goes, up to 600/s: SIZE 1000
        # gives each client well over a second to come back, the Python
        # clients keep up with 8 x 600 frames/s
        n = 3000
        t = threading.Thread(target=publish_loop, args=(h, n, 600, done), daemon=True)
        t.start()

        async def client(k):
            check = Check(epoch)
            last = 0
            loops = 0
            while not done.is_set() and loops < 200:
                last = await session(h, check, last, random.uniform(0.0, 0.05))
                loops += 1
            last = await session(h, check, last, 0.3)
            check.verify(0)
            return check, loops

        results = await asyncio.gather(*[client(k) for k in range(8)])
        t.join(30)
        print("  hammer: %d resumes, %d frames replayed" % (
            sum(l for _, l in results), h.metric("herald_history_replayed_total")))
        for check, loops in results:
            assert check.seen[-1] == n, (loops, check.seen[-3:])
        assert sum(loops for _, loops in results) >= 16, [l for _, l in results]


if __name__ == "__main__":
    run_tests(globals())
