"""Server pings and ping timeouts (docs/PROTOCOL.md "Pings"): a raw-socket
client that never answers pings is closed with 1011 within ping-interval +
ping-timeout + 1 seconds and counted; a websockets client, which answers
pings by itself, stays connected over many intervals; the pings are really
on the wire at the interval; --ping-interval 0 sends none."""
import asyncio
import socket
import struct
import time

import websockets

from attacklib import delta, frame, metrics, ws_open
from herald_testlib import Herald, recv_json, run_tests

INTERVAL, TIMEOUT = 1, 2


def read_frames(s, rest, seconds):
    """Server frames for up to `seconds` (or until a close frame or EOF), as
    (arrival time, opcode, payload); the last one is ("eof", None, b"") on
    EOF."""
    out, buf = [], rest
    deadline = time.monotonic() + seconds
    while True:
        while len(buf) >= 2:
            op, n, off = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, off = struct.unpack("!H", buf[2:4])[0], 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, off = struct.unpack("!Q", buf[2:10])[0], 10
            if len(buf) < off + n:
                break
            out.append((time.monotonic(), op, buf[off:off + n]))
            buf = buf[off + n:]
            if op == 8:
                return out
        left = deadline - time.monotonic()
        if left <= 0:
            return out
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return out
        if not chunk:
            out.append((time.monotonic(), "eof", b""))
            return out
        buf += chunk


def test_a_client_that_never_answers_is_closed_with_1011_in_time():
    with Herald("--ping-interval", str(INTERVAL), "--ping-timeout", str(TIMEOUT),
                threads=1) as h:
        m0 = metrics(h)
        s, status, rest = ws_open(h.port, "/ws/health/")
        t0 = time.monotonic()
        assert b" 101 " in status, status
        frames = read_frames(s, rest, INTERVAL + TIMEOUT + 4)
        pings = [t for t, op, _ in frames if op == 9]
        closes = [(t, p) for t, op, p in frames if op == 8]
        assert closes, frames
        t_close, payload = closes[0]
        assert struct.unpack("!H", payload[:2])[0] == 1011, payload
        # nothing arrived for interval + timeout, and not a second more
        assert INTERVAL + TIMEOUT - 0.2 <= t_close - t0 <= INTERVAL + TIMEOUT + 1, t_close - t0
        # pinged until then (every interval: the next test)
        assert pings and pings[0] - t0 <= INTERVAL + 0.6, (pings, t0)
        # then the lingering close: EOF follows (the socket is shut for
        # writing), and the counter says why
        tail = read_frames(s, b"", 4)
        assert tail and tail[-1][1] == "eof", tail
        s.close()
        deadline = time.monotonic() + 5
        while True:
            d = delta(m0, metrics(h))
            if d.get('herald_ws_closed_total{reason="ping_timeout"}') == 1:
                break
            assert time.monotonic() < deadline, d
            time.sleep(0.1)
        assert 'herald_ws_closed_total{reason="client"}' not in d, d


def test_pings_come_every_interval():
    """A raw client that never answers, with a timeout long enough to watch
    several intervals: a ping about every second."""
    with Herald("--ping-interval", "1", "--ping-timeout", "20", threads=1) as h:
        s, status, rest = ws_open(h.port, "/ws/health/")
        t0 = time.monotonic()
        assert b" 101 " in status, status
        frames = read_frames(s, rest, 5.3)
        assert all(op == 9 and p == b"hrld" for _, op, p in frames), frames
        pings = [t for t, _, _ in frames]
        assert len(pings) >= 4, pings
        gaps = [b - a for a, b in zip([t0] + pings, pings)]
        # a 500 ms tick: each ping 1 to 1.5 s after the one before
        assert all(0.9 <= g <= 1.7 for g in gaps), gaps
        s.close()


def test_a_client_that_answers_stays_connected_while_idle():
    with Herald("--ping-interval", str(INTERVAL), "--ping-timeout", "1", threads=1) as h:
        m0 = metrics(h)

        async def main():
            # the client sends no pings of its own: only its pongs keep it
            async with websockets.connect(h.url("/ws/health/"), open_timeout=5,
                                          ping_interval=None) as ws:
                await asyncio.sleep(6)  # three times interval + timeout
                await ws.send('{"type":"ping"}')
                m = await recv_json(ws, timeout=5)
                assert m["type"] == "pong", m
                assert ws.open

        asyncio.run(main())
        d = delta(m0, metrics(h))
        assert 'herald_ws_closed_total{reason="ping_timeout"}' not in d, d


def test_a_talking_client_that_never_answers_stays_connected():
    """Any frame counts as activity, not only pongs."""
    with Herald("--ping-interval", str(INTERVAL), "--ping-timeout", "1", threads=1) as h:
        s, status, rest = ws_open(h.port, "/ws/health/")
        assert b" 101 " in status, status
        end = time.monotonic() + 5
        got = []
        while time.monotonic() < end:
            s.sendall(frame('{"type":"ping"}'))
            got += read_frames(s, rest, 0.5)
            rest = b""
        assert not [f for f in got if f[1] in (8, "eof")], got
        assert len([f for f in got if f[1] == 1]) >= 8, got
        assert [f for f in got if f[1] == 9], "no server ping in 5 s"
        s.close()


def test_ping_interval_0_sends_no_pings_and_closes_nothing():
    with Herald("--ping-interval", "0", "--ping-timeout", "1", threads=1) as h:
        s, status, rest = ws_open(h.port, "/ws/health/")
        assert b" 101 " in status, status
        frames = read_frames(s, rest, 4)
        assert frames == [], frames
        s.sendall(frame('{"type":"ping"}'))
        frames = read_frames(s, b"", 2)
        assert [op for _, op, _ in frames] == [1], frames
        s.close()


def test_pings_of_connections_that_came_at_once_are_spread():
    """1000 connections opened together are due together; their pings are
    spread over half of min(interval, timeout) (2 s here: 4 ticks of at
    most 251), every one pinged, none closed."""
    import selectors
    n = 1000
    with Herald("--ping-interval", "4", "--ping-timeout", "4", threads=1) as h:
        socks = []
        for _ in range(n):
            s, status, rest = ws_open(h.port, "/ws/health/")
            assert b" 101 " in status and rest == b"", status
            s.setblocking(False)
            socks.append(s)
        t_open = time.monotonic()
        sel = selectors.DefaultSelector()
        for i, s in enumerate(socks):
            sel.register(s, selectors.EVENT_READ, i)
        first = {}
        deadline = time.monotonic() + 4 + 2 + 2
        while len(first) < n and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.2):
                data = key.fileobj.recv(4096)
                assert data, "closed"
                assert data[0] == 0x89, data  # nothing but pings
                if key.data not in first:
                    first[key.data] = time.monotonic() - t_open
        assert len(first) == n, len(first)
        times = sorted(first.values())
        # spread over at least three ticks, not one burst
        assert times[-1] - times[0] >= 1.0, (times[0], times[-1])
        buckets = {}
        for t in times:
            buckets[int(t / 0.5)] = buckets.get(int(t / 0.5), 0) + 1
        assert max(buckets.values()) <= 2 * 251, buckets
        for s in socks:
            s.close()


if __name__ == "__main__":
    run_tests(globals())
