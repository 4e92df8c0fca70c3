"""The lingering close (docs/PROTOCOL.md "Lingering close"): whenever herald
closes a WebSocket, the frames queued before the close reach the client,
then the close frame; herald then reads and discards what the client still
sends (until its close frame or EOF, at most 2 s), so a client that is still
writing never turns the close into a reset.

The issue's reproduction is the first test, exactly: Python websockets
writes 500 pings back to back without reading, then reads until closed. It
runs on plain and TLS listeners, with io_uring on and off, on every event
loop."""
import asyncio
import json
import os
import ssl
import struct
import subprocess
import tempfile
import threading
import time

import websockets

from attacklib import delta, frame, metrics, ws_open
from herald_testlib import Herald, run_tests

LOOPS = ("poll", "libev", "libuv")
TRIALS = 3


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


async def five_hundred_pings(url, ctx):
    """(pongs, error frames, close code received or None, seconds from the
    first ping to the close)"""
    async with websockets.connect(url, ssl=ctx, open_timeout=5, max_queue=None) as ws:
        t0 = time.monotonic()
        try:
            for _ in range(500):
                await ws.send('{"type":"ping"}')
        except websockets.exceptions.ConnectionClosed:
            pass  # the close came while we were still writing
        pongs = errors = 0
        try:
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if m["type"] == "pong":
                    pongs += 1
                elif m == {"type": "error", "error": "rate limit"}:
                    errors += 1
                else:
                    raise AssertionError(m)
        except websockets.exceptions.ConnectionClosed as e:
            return pongs, errors, e.rcvd.code if e.rcvd else None, time.monotonic() - t0


def check_500_pings(tls_args, scheme, ctx):
    for loop in LOOPS:
        for uring in ("on", "off"):
            with Herald(*tls_args, threads=1, env={"HERALD_EVENT_LOOP": loop,
                                                   "HERALD_IO_URING": uring}) as h:
                m0 = metrics_any(h, ctx)
                url = "%s://127.0.0.1:%d/ws/health/" % (scheme, h.port)
                for _ in range(TRIALS):
                    pongs, errors, code, took = asyncio.run(five_hundred_pings(url, ctx))
                    # 40 pongs (the full bucket, 2R), plus what the bucket
                    # refilled (R a second) if this loaded machine made
                    # the 500 writes slow; each refilled token ends a run
                    # of refusals, and the next run's first refusal gets
                    # its own error frame (docs/PROTOCOL.md: one per run)
                    assert code == 1008, (loop, uring, errors, code)
                    assert 40 <= pongs <= 40 + int(20 * took), (loop, uring, pongs, took)
                    assert 1 <= errors <= 1 + (pongs - 40), (loop, uring, errors, pongs)
                d = wait_closed(h, ctx, m0, "rate_limit", TRIALS)
                assert 'herald_ws_closed_total{reason="error"}' not in d, d


def metrics_any(h, ctx):
    if ctx is None:
        return metrics(h)
    import http.client
    c = http.client.HTTPSConnection("127.0.0.1", h.port, context=ctx, timeout=10)
    c.request("GET", "/metrics")
    r = c.getresponse()
    text = r.read().decode()
    c.close()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def wait_closed(h, ctx, m0, reason, n, timeout=5):
    key = 'herald_ws_closed_total{reason="%s"}' % reason
    deadline = time.monotonic() + timeout
    while True:
        d = delta(m0, metrics_any(h, ctx))
        if d.get(key) == n:
            return d
        assert time.monotonic() < deadline, d
        time.sleep(0.1)


def test_500_pings_plain():
    check_500_pings((), "ws", None)


def test_500_pings_tls():
    with tempfile.TemporaryDirectory() as d:
        cert, key = make_cert(d)
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False
        check_500_pings(("--tls-cert", cert, "--tls-key", key), "wss", ctx)


def split_frames(buf):
    """Complete server frames at the front of buf: ([(opcode, payload)], rest)."""
    out = []
    while len(buf) >= 2:
        op, n, off = buf[0] & 0x0F, buf[1] & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                break
            n, off = struct.unpack("!H", buf[2:4])[0], 4
        if len(buf) < off + n:
            break
        out.append((op, buf[off:off + n]))
        buf = buf[off + n:]
    return out, buf


def test_a_writer_that_keeps_writing_gets_the_close_and_a_clean_fin():
    for loop in LOOPS:
        with Herald("--rate-limit", "5", threads=1, env={"HERALD_EVENT_LOOP": loop}) as h:
            s, status, buf = ws_open(h.port, "/ws/health/")
            assert b" 101 " in status, status
            stop = threading.Event()
            werr = []
            sent_after_close = [0]
            closed_at = []

            def writer():
                # pings until told to stop, 2 ms apart: far over the rate
                try:
                    while not stop.is_set():
                        s.sendall(frame('{"type":"ping"}'))
                        if closed_at:
                            sent_after_close[0] += 1
                        time.sleep(0.002)
                except OSError as e:
                    werr.append(e)

            w = threading.Thread(target=writer)
            t_start = time.monotonic()
            w.start()
            frames, eof, reset = [], False, None
            s.settimeout(10)
            deadline = time.monotonic() + 10
            try:
                while time.monotonic() < deadline:
                    try:
                        chunk = s.recv(65536)
                    except ConnectionResetError as e:
                        reset = e
                        break
                    if not chunk:
                        eof = True
                        break
                    got, buf = split_frames(buf + chunk)
                    frames += got
                    if any(op == 8 for op, _ in got) and not closed_at:
                        closed_at.append(time.monotonic())
                # herald shut its side after the close frame: EOF, while this
                # client is still writing; keep writing a while longer
                time.sleep(0.8)
            finally:
                stop.set()
                w.join(5)
            assert reset is None, (loop, reset)
            assert eof, (loop, frames[-3:])
            ops = [op for op, _ in frames]
            assert ops.count(8) == 1 and ops[-1] == 8, (loop, ops[-5:])
            code = struct.unpack("!H", frames[-1][1][:2])[0]
            assert code == 1008, (loop, code)
            texts = [json.loads(p) for op, p in frames if op == 1]
            assert texts.count({"type": "error", "error": "rate limit"}) == 1, texts
            # the full bucket (2R = 10), plus its refill (R = 5 a second)
            # if this loaded machine stalled the writer
            pongs = sum(1 for t in texts if t["type"] == "pong")
            assert 10 <= pongs <= 10 + int(5 * (closed_at[0] - t_start)), (pongs, texts)
            # the writes after the close frame were taken, not refused
            assert not werr, (loop, werr)
            assert sent_after_close[0] > 50, (loop, sent_after_close)
            s.sendall(frame(struct.pack("!H", 1000), opcode=8))
            s.close()


def test_a_client_that_never_closes_is_cut_after_2_s():
    for loop in LOOPS:
        with Herald("--max-message", "100", threads=1, env={"HERALD_EVENT_LOOP": loop}) as h:
            m0 = metrics(h)
            s, status, buf = ws_open(h.port, "/ws/health/")
            assert b" 101 " in status, status
            s.sendall(frame("x" * 200))
            s.settimeout(5)
            frames = []
            while not any(op == 8 for op, _ in frames):
                chunk = s.recv(65536)
                assert chunk, frames
                got, buf = split_frames(buf + chunk)
                frames += got
            t_close = time.monotonic()
            code = struct.unpack("!H", frames[-1][1][:2])[0]
            assert code == 1009, code
            # never answer, never close: herald holds the socket for 2 s
            while True:
                st = metrics(h)
                if st.get('herald_connections{route="health"}', 1) == 0:
                    break
                assert time.monotonic() - t_close < 5, st
                time.sleep(0.05)
            held = time.monotonic() - t_close
            assert 1.5 <= held <= 3.2, (loop, held)
            d = delta(m0, metrics(h))
            assert d.get('herald_ws_closed_total{reason="too_big"}') == 1, d
            s.close()


def test_a_client_that_answers_the_close_is_let_go_at_once():
    with Herald(threads=1) as h:
        async def main():
            async with websockets.connect(h.url("/ws/health/"), open_timeout=5) as ws:
                await ws.send("x" * 70000)
                t0 = time.monotonic()
                try:
                    await asyncio.wait_for(ws.recv(), 5)
                except websockets.exceptions.ConnectionClosed as e:
                    assert e.rcvd.code == 1009, e
                await asyncio.wait_for(ws.wait_closed(), 5)
                # websockets answered the close; herald closed the TCP
                # connection then, not after the 2 s linger
                assert time.monotonic() - t0 < 1.0, time.monotonic() - t0

        asyncio.run(main())


if __name__ == "__main__":
    run_tests(globals())
