"""GET /livez and GET /readyz (docs/PROTOCOL.md "HTTP API"): exact codes and
bodies on the memory layer, on the Redis layer while Redis is down and after
it came back, and while the node is stopping."""
import asyncio
import base64
import http.client
import json
import os
import signal
import socket
import time

from herald_testlib import Herald, RedisServer, recv_json, run_tests, wait_until

import websockets

LIVE = b'{"status":"ok"}'
READY = b'{"status":"ready"}'
REDIS_DOWN = b'{"status":"not ready","reason":"redis down"}'
STOPPING = b'{"status":"not ready","reason":"stopping"}'


def get(port, path, conn=None, method="GET"):
    """(status, raw body, Content-Type) of one request; conn: a keep-alive
    http.client connection to reuse."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, path)
    r = c.getresponse()
    body = r.read()
    if conn is None:
        c.close()
    return r.status, body, r.getheader("Content-Type")


def test_memory_node_is_live_and_ready():
    with Herald("--api-key", "k", threads=2) as h:
        for _ in range(4):  # both threads, most likely
            assert get(h.port, "/livez") == (200, LIVE, "application/json")
            assert get(h.port, "/readyz") == (200, READY, "application/json")
        assert get(h.port, "/livez", method="POST")[0] == 405
        assert get(h.port, "/readyz/")[0] == 404
        st, body, _ = get(h.port, "/healthz")
        assert st == 200 and json.loads(body)["status"] == "ok", body


async def test_redis_down_is_not_ready_but_live():
    rs = RedisServer()
    h = Herald("--redis", rs.url, threads=1)
    loop = asyncio.get_running_loop()
    try:
        assert get(h.port, "/readyz") == (200, READY, "application/json")
        async with websockets.connect(h.url("/ws/notifications/")) as ws:
            rs.stop()
            # the bridge notices within its backoff (at most 1 s)
            await loop.run_in_executor(None, lambda: wait_until(
                lambda: get(h.port, "/readyz")[:2] == (503, REDIS_DOWN), timeout=5,
                what="/readyz 503 redis down"))
            assert get(h.port, "/livez") == (200, LIVE, "application/json")
            assert get(h.port, "/healthz")[0] == 503
            assert h.metric("herald_redis_up") == 0
            # its local WebSocket clients are still served
            await ws.send(json.dumps({"type": "ping"}))
            assert (await recv_json(ws))["type"] == "pong"
            h.publish("notifications", {"during": "outage"})
            assert await recv_json(ws) == {"during": "outage"}
            async with websockets.connect(h.url("/ws/health/")) as ws2:
                await ws2.send(json.dumps({"type": "status"}))
                st = await recv_json(ws2)
                assert st["redis"] == "down" and st["connections"] == 2, st
            assert get(h.port, "/livez")[:2] == (200, LIVE)

            await loop.run_in_executor(None, rs.start)
            t0 = time.monotonic()
            await loop.run_in_executor(None, lambda: wait_until(
                lambda: get(h.port, "/readyz")[:2] == (200, READY), timeout=10,
                what="/readyz 200 within 10 s of Redis back"))
            assert time.monotonic() - t0 < 10
            assert h.metric("herald_redis_up") == 1
            await ws.send(json.dumps({"type": "ping"}))
            assert (await recv_json(ws))["type"] == "pong"
        rc, _ = h.stop()
        assert rc == 0, h.stderr()
    finally:
        if h.proc.poll() is None:
            h.stop()
        rs.stop()


def stuck_websocket(port):
    """A WebSocket that completes its handshake and then never reads (with a
    tiny receive window): once the node has queued more for it than the
    socket buffers hold, its 1001 close waits for the whole grace period."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /ws/notifications/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def test_stopping_node_says_so():
    h = Herald(threads=1)
    conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=5)
    try:
        assert get(h.port, "/readyz", conn) == (200, READY, "application/json")
        ws = stuck_websocket(h.port)
        filler = {"pad": "x" * 60000}
        for _ in range(150):  # 9 MB: more than the socket buffers take
            st, _, _ = h.http("POST", "/api/groups/notifications/send",
                              {"type": "notification_message", "message": filler})
            assert st == 202, st
        t0 = time.monotonic()
        h.proc.send_signal(signal.SIGTERM)
        answers, lives = [], []
        while time.monotonic() - t0 < 5 and h.proc.poll() is None:
            try:
                st, body, _ = get(h.port, "/readyz", conn)
                answers.append((st, body))
                # livez still says the process serves HTTP
                lives.append(get(h.port, "/livez", conn)[:2])
            except (OSError, http.client.HTTPException):
                break  # the node closed the connection: it no longer answers
            time.sleep(0.05)
        assert set(lives) <= {(200, LIVE)}, lives
        assert set(answers) <= {(200, READY), (503, STOPPING)}, answers
        # ready until the signal lands, then stopping until the end
        assert answers, "the node answered nothing during its grace period"
        assert answers[-1] == (503, STOPPING), answers
        first = answers.index((503, STOPPING))
        assert set(answers[first:]) == {(503, STOPPING)}, answers
        ws.close()
        assert h.proc.wait(10) == 0, h.stderr()
    finally:
        conn.close()
        if h.proc.poll() is None:
            h.stop()


if __name__ == "__main__":
    run_tests(globals())
