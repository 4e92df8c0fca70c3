"""--event-loop poll|libev|libuv (HERALD_EVENT_LOOP, default libev): a bad value is one line
on stderr and exit 2; with each backend, a broadcast over 2 I/O threads
reaches 200 clients, the HTTP API answers, and SIGTERM closes them and exits
0 within 5 s. This is also what makes every CI run exercise the non-default
backends (the rest of the suite runs on whatever HERALD_EVENT_LOOP says)."""
import asyncio
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

import websockets

from herald_testlib import HERALD, Herald, clean_run_log, close_code, recv_json, run_tests


BACKENDS = ("poll", "libev", "libuv")
CLIENTS = 200


def bad(args, env=None):
    e = dict(os.environ)
    e.pop("HERALD_EVENT_LOOP", None)
    e.update(env or {})
    r = subprocess.run([HERALD, "serve", "--listen", "127.0.0.1:1"] + args, env=e,
                       capture_output=True, timeout=10)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def test_bad_value_exits_2_with_one_line():
    for args, env, label in ((["--event-loop", "epoll"], None, "--event-loop"),
                             (["--event-loop", ""], None, "--event-loop"),
                             ([], {"HERALD_EVENT_LOOP": "LIBEV"}, "HERALD_EVENT_LOOP")):
        rc, out, err = bad(args, env)
        assert rc == 2, (args, env, rc, err)
        assert out == "", out
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert label in lines[0] and "poll, libev or libuv" in lines[0], lines[0]


def test_flag_beats_environment():
    log = clean_run_log("--event-loop", "libev", env={"HERALD_EVENT_LOOP": "poll"})
    assert "(event loop libev)" in log, log


async def broadcast_then_sigterm(backend):
    h = Herald(env={"HERALD_EVENT_LOOP": backend}, threads=2)
    clients = []
    try:
        for _ in range(CLIENTS):
            clients.append(await websockets.connect(h.url("/ws/notifications/"), open_timeout=10))
        st, body, _ = h.http("GET", "/healthz")
        assert st == 200 and body["connections"] == CLIENTS, (st, body)
        h.publish("notifications", {"backend": backend})
        got = await asyncio.gather(*(recv_json(ws, 10) for ws in clients))
        assert all(m == {"backend": backend} for m in got), got[:3]

        fut = asyncio.get_running_loop().run_in_executor(None, h.stop, signal.SIGTERM, 5.0)
        codes = await asyncio.gather(*(close_code(ws) for ws in clients))
        rc, took = await fut
    finally:
        for ws in clients:
            await ws.close()
        if h.proc.poll() is None:
            h.stop()
    assert rc == 0 and took < 5.0, (backend, rc, took, h.stderr())
    log = h.log()
    assert "(event loop %s)" % backend in log, h.stderr()
    assert all(c == 1001 for c in codes), codes
    # nothing per client: lws 4.1.6 logs every upgrade handed to it as an
    # error unless log.c filters it
    assert log.count("\n") < 20 and "libwebsockets" not in log, log[-2000:]


async def test_poll_broadcast_200_and_sigterm():
    await broadcast_then_sigterm("poll")


async def test_libev_broadcast_200_and_sigterm():
    await broadcast_then_sigterm("libev")


async def test_libuv_broadcast_200_and_sigterm():
    await broadcast_then_sigterm("libuv")


def test_libev_cuts_a_stalled_tls_handshake_at_10s():
    """lws 4.1.6's libev glue never honoured a timeout nearer than its TLS
    vhost's 24 h certificate check, so a client that never sends its
    ClientHello held its socket forever; herald's tick (evloop.c) makes it
    close at the 10 s handshake timeout, as poll() does. Both backends at
    once, so this costs one 10 s wait."""
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                       check=True, capture_output=True, timeout=60)
        took = {}

        def stall(backend, port):
            t0 = time.monotonic()
            s = socket.create_connection(("127.0.0.1", port), timeout=20)
            try:
                r = s.recv(1)
            except OSError:
                r = b"timeout"
            took[backend] = (r, time.monotonic() - t0)
            s.close()

        with Herald("--tls-cert", cert, "--tls-key", key, "--event-loop", "poll",
                    threads=1) as hp, \
             Herald("--tls-cert", cert, "--tls-key", key, "--event-loop", "libev",
                    threads=1) as he:
            ts = [threading.Thread(target=stall, args=(b, h.port))
                  for b, h in (("poll", hp), ("libev", he))]
            for t in ts:
                t.start()
            for t in ts:
                t.join(30)
        for backend in ("poll", "libev"):
            r, secs = took[backend]
            assert r == b"" and 9 <= secs <= 13, (backend, r, secs)


if __name__ == "__main__":
    run_tests(globals())
