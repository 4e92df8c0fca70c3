"""WebSocket routes, frames and delivery of a running herald node (memory
layer, 2 I/O threads): routes and refusals, connect-then-publish, whoami and
channel sends, user isolation, ping/pong, status, error frames, limits."""
import asyncio
import json
import sys

import websockets

from herald_testlib import Herald, expect_silence, herald_version, recv_json, run_tests

H = None


def node():
    global H
    if H is None:
        H = Herald("--rate-limit", "1000", ipv6=True)
    return H


async def refused(url):
    try:
        async with websockets.connect(url, open_timeout=5):
            pass
    except websockets.exceptions.InvalidStatusCode as e:
        return e.status_code
    raise AssertionError("%s: handshake accepted" % url)


async def test_routes_accept():
    h = node()
    for path in ["/ws/notifications/", "/ws/notifications/alice/", "/ws/notifications/A_1/",
                 "/ws/notifications/%s/" % ("x" * 64), "/ws/health/"]:
        async with websockets.connect(h.url(path), open_timeout=5) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            assert (await recv_json(ws))["type"] == "pong", path


async def test_routes_refused_404():
    h = node()
    for path in ["/ws/notifications", "/ws/health", "/ws/notifications/a/b/",
                 "/ws/notifications/al-ice/", "/ws/notifications/%s/" % ("x" * 65), "/ws/",
                 "/", "/ws/other/", "/ws/notifications/alice"]:
        code = await refused(h.url(path))
        assert code == 404, (path, code)


async def test_ipv6_listener():
    h = node()
    assert any("[::1]" in l for l in h.ready_lines), h.ready_lines
    async with websockets.connect(h.url("/ws/notifications/", v6=True), open_timeout=5) as ws:
        h.publish("notifications", {"v6": True})
        assert await recv_json(ws) == {"v6": True}


def test_ready_lines():
    h = node()
    assert len(h.ready_lines) == 2, h.ready_lines
    v = herald_version()
    assert h.ready_lines[0] == "herald %s listening on http://127.0.0.1:%d (threads=2, layer=memory)" % (v, h.port), h.ready_lines
    assert h.ready_lines[1] == "herald %s listening on http://[::1]:%d (threads=2, layer=memory)" % (v, h.port6), h.ready_lines


async def test_connect_then_publish_never_misses():
    h = node()
    for i in range(20):
        async with websockets.connect(h.url("/ws/notifications/"), open_timeout=5) as ws:
            # no pause: the membership is registered before the 101
            await asyncio.get_running_loop().run_in_executor(
                None, h.publish, "notifications", {"n": i})
            got = await recv_json(ws)
            assert got == {"n": i}, (i, got)


async def test_connect_then_publish_user_route():
    h = node()
    for i in range(20):
        async with websockets.connect(h.url("/ws/notifications/u%d/" % i), open_timeout=5) as ws:
            await asyncio.get_running_loop().run_in_executor(
                None, h.publish, "user_u%d" % i, {"n": i})
            assert await recv_json(ws) == {"n": i}


async def test_dotted_type_dispatch():
    h = node()
    async with websockets.connect(h.url("/ws/notifications/"), open_timeout=5) as ws:
        h.publish("notifications", {"dotted": 1}, type_="notification.message")
        assert await recv_json(ws) == {"dotted": 1}


async def test_whoami_and_channel_send_reach_only_that_client():
    h = node()
    async with websockets.connect(h.url("/ws/notifications/"), open_timeout=5) as a, \
            websockets.connect(h.url("/ws/notifications/"), open_timeout=5) as b, \
            websockets.connect(h.url("/ws/health/"), open_timeout=5) as c:
        await a.send(json.dumps({"type": "whoami"}))
        wa = await recv_json(a)
        await b.send(json.dumps({"type": "whoami"}))
        wb = await recv_json(b)
        await c.send(json.dumps({"type": "whoami"}))
        wc = await recv_json(c)
        for w in (wa, wb, wc):
            assert w["type"] == "whoami"
            assert w["channel"].startswith("specific."), w
            prefix = w["channel"][len("specific."):].split("!")[0]
            assert len(prefix) == 32 and all(ch in "0123456789abcdef" for ch in prefix), w
        assert len({wa["channel"], wb["channel"], wc["channel"]}) == 3
        st, body, _ = h.http("POST", "/api/channels/%s/send" % wa["channel"],
                             {"type": "notification_message", "message": {"to": "a"}})
        assert st == 202 and body == {"channel": wa["channel"]}, (st, body)
        assert await recv_json(a) == {"to": "a"}
        await expect_silence(b)
        await expect_silence(c)


async def test_user_isolation():
    h = node()
    async with websockets.connect(h.url("/ws/notifications/alice/"), open_timeout=5) as alice, \
            websockets.connect(h.url("/ws/notifications/bob/"), open_timeout=5) as bob:
        h.publish("user_bob", {"for": "bob"})
        h.publish("user_alice", {"for": "alice"})
        assert await recv_json(bob) == {"for": "bob"}
        assert await recv_json(alice) == {"for": "alice"}
        await expect_silence(alice)
        await expect_silence(bob)


async def test_general_group_does_not_reach_user_or_health_routes():
    h = node()
    async with websockets.connect(h.url("/ws/notifications/carol/"), open_timeout=5) as u, \
            websockets.connect(h.url("/ws/health/"), open_timeout=5) as hl, \
            websockets.connect(h.url("/ws/notifications/"), open_timeout=5) as g:
        h.publish("notifications", {"all": 1})
        assert await recv_json(g) == {"all": 1}
        await expect_silence(u)
        await expect_silence(hl)


async def test_ping_pong_timestamp():
    h = node()
    async with websockets.connect(h.url("/ws/notifications/"), open_timeout=5) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        m = await recv_json(ws)
        assert m["type"] == "pong" and set(m) == {"type", "timestamp"}, m
        from datetime import datetime
        ts = datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00"))
        assert ts.utcoffset().total_seconds() == 0, m


async def test_status_on_health_counts_all_connections():
    h = node()
    async with websockets.connect(h.url("/ws/notifications/"), open_timeout=5), \
            websockets.connect(h.url("/ws/notifications/zed/"), open_timeout=5), \
            websockets.connect(h.url("/ws/health/"), open_timeout=5) as ws:
        await ws.send(json.dumps({"type": "status"}))
        m = await recv_json(ws)
        assert m["type"] == "status" and m["status"] == "ok", m
        assert m["layer"] == "memory" and m["redis"] == "n/a", m
        assert m["connections"] == 3, m
        assert isinstance(m["uptime_s"], int) and m["uptime_s"] >= 0, m
    async with websockets.connect(h.url("/ws/notifications/"), open_timeout=5) as ws:
        await ws.send(json.dumps({"type": "status"}))
        m = await recv_json(ws)
        assert m == {"type": "error", "error": "unknown type"}, m


async def test_error_frames_keep_connection_open():
    h = node()
    async with websockets.connect(h.url("/ws/notifications/"), open_timeout=5) as ws:
        for bad in ["not json", "[1,2]", "42", json.dumps({"type": "nope"}), json.dumps({"x": 1}),
                    b"\x00\x01binary"]:
            await ws.send(bad)
            m = await recv_json(ws)
            assert m["type"] == "error" and isinstance(m["error"], str) and m["error"], (bad, m)
        await ws.send(json.dumps({"type": "ping"}))
        assert (await recv_json(ws))["type"] == "pong"


async def test_unknown_event_type_dropped_and_counted():
    h = node()
    before = h.metric('herald_dropped_total{reason="unknown_type"}')
    async with websockets.connect(h.url("/ws/notifications/"), open_timeout=5) as ws:
        st, body, _ = h.http("POST", "/api/groups/notifications/send", {"type": "other.thing", "x": 1})
        assert st == 202, (st, body)
        h.publish("notifications", {"after": 1})
        assert await recv_json(ws) == {"after": 1}
    after = h.metric('herald_dropped_total{reason="unknown_type"}')
    assert after >= before + 1, (before, after)


async def test_max_message_closes_1009():
    with Herald("--max-message", "1000") as h:
        async with websockets.connect(h.url("/ws/notifications/"), open_timeout=5) as ws:
            await ws.send(json.dumps({"type": "ping", "pad": "x" * 900}))
            assert (await recv_json(ws))["type"] == "pong"
            await ws.send(json.dumps({"type": "ping", "pad": "x" * 2000}))
            try:
                await asyncio.wait_for(ws.recv(), 5)
                raise AssertionError("still open")
            except websockets.exceptions.ConnectionClosed as e:
                assert e.code == 1009, e.code


async def test_rate_limit():
    # R = 5: burst 10, then the first refusal gets an error frame, later
    # refusals are silent, and 2R = 10 refusals in a row close with 1008.
    with Herald("--rate-limit", "5") as h:
        async with websockets.connect(h.url("/ws/notifications/"), open_timeout=5) as ws:
            for _ in range(10):
                await ws.send(json.dumps({"type": "ping"}))
            for _ in range(10):
                assert (await recv_json(ws))["type"] == "pong"
            await ws.send(json.dumps({"type": "ping"}))
            assert await recv_json(ws) == {"type": "error", "error": "rate limit"}
            for _ in range(8):
                await ws.send(json.dumps({"type": "ping"}))
            await expect_silence(ws, 0.05)
            await ws.send(json.dumps({"type": "ping"}))  # 10th refusal in a row
            try:
                m = await asyncio.wait_for(ws.recv(), 5)
                raise AssertionError("still open after 2R refusals: %r" % m)
            except websockets.exceptions.ConnectionClosed as e:
                assert e.code == 1008, e.code
            assert h.metric('herald_dropped_total{reason="rate_limit"}') >= 10


async def test_rate_limit_refills():
    with Herald("--rate-limit", "20") as h:
        async with websockets.connect(h.url("/ws/notifications/"), open_timeout=5) as ws:
            for _ in range(40):
                await ws.send(json.dumps({"type": "ping"}))
            for _ in range(40):
                assert (await recv_json(ws))["type"] == "pong"
            await asyncio.sleep(0.25)  # ~5 tokens back
            for _ in range(4):
                await ws.send(json.dumps({"type": "ping"}))
                assert (await recv_json(ws))["type"] == "pong"


async def test_notification_pipeline_reaches_general_and_user_routes():
    h = node()
    async with websockets.connect(h.url("/ws/notifications/"), open_timeout=5) as g, \
            websockets.connect(h.url("/ws/notifications/dave/"), open_timeout=5) as u, \
            websockets.connect(h.url("/ws/notifications/erin/"), open_timeout=5) as other:
        st, resp, _ = h.http("POST", "/api/notifications",
                             {"title": "T", "body": "B", "user_id": "dave", "data": {"k": 1}})
        assert st == 202, (st, resp)
        nid = resp["id"]
        for ws in (g, u):
            seen = []
            while not seen or seen[-1]["status"] not in ("sent", "failed"):
                m = await recv_json(ws, timeout=10)
                assert m["notification_id"] == nid, m
                seen.append(m)
            assert [m["status"] for m in seen] == ["queued", "processing", "sent"], seen
            assert seen[-1]["notification"] == {"id": nid, "title": "T", "body": "B",
                                                "data": {"k": 1}, "user_id": "dave"}, seen[-1]
        await expect_silence(other)
        st, info, _ = h.http("GET", "/api/notifications/%s" % nid)
        assert st == 200 and info["status"] == "sent", (st, info)


async def test_max_connections():
    with Herald("--max-connections", "2", threads=2) as h:
        a = await websockets.connect(h.url("/ws/notifications/"), open_timeout=5)
        b = await websockets.connect(h.url("/ws/health/"), open_timeout=5)
        assert await refused(h.url("/ws/notifications/")) == 503
        await a.close()
        for _ in range(200):  # the close is seen by the server shortly after
            await asyncio.sleep(0.025)
            try:
                c = await websockets.connect(h.url("/ws/notifications/"), open_timeout=5)
                break
            except websockets.exceptions.InvalidStatusCode:
                continue
        else:
            raise AssertionError("slot not freed after a close")
        await c.close()
        await b.close()


if __name__ == "__main__":
    try:
        run_tests(globals())
    finally:
        if H is not None:
            rc, took = H.stop()
            if rc != 0 or took > 5:
                print("FAIL shared node: exit %r after %.1fs\n%s" % (rc, took, H.stderr()))
                sys.exit(1)
