"""Pipelined HTTP/1.1 requests on one keep-alive connection (several in one
send()) are all answered, in order, and the node stays healthy and stops on
SIGTERM. lws 4.1.6's own h1 server spun forever on the second POST with a
body (transport/http1.c says why); this is its regression test."""
import json
import os
import socket
import ssl
import subprocess
import tempfile
import time

import websockets

from herald_testlib import Herald, recv_json, run_tests


def post(path, obj, extra=b""):
    body = json.dumps(obj).encode()
    return (b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\n" % (path.encode(), len(body), extra)) + body


def get(path):
    return b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode()


def read_responses(sock, n, timeout=10):
    """Read n HTTP responses (content-length framed); return [(status, body)]."""
    deadline = time.monotonic() + timeout
    buf, out = b"", []
    while len(out) < n:
        while b"\r\n\r\n" in buf:
            head, rest = buf.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            status = int(lines[0].split()[1])
            cl = 0
            for ln in lines[1:]:
                k, v = ln.split(b":", 1)
                if k.strip().lower() == b"content-length":
                    cl = int(v)
            if len(rest) < cl:
                break
            out.append((status, rest[:cl]))
            buf = rest[cl:]
            if len(out) == n:
                return out
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("only %d of %d responses in %ss: %r" % (len(out), n, timeout, buf[:200]))
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed after %d of %d responses" % (len(out), n))
        buf += chunk
    return out


def healthz_ok(h):
    st, body, _ = h.http("GET", "/healthz", timeout=3)
    assert st == 200, (st, body)


def check_pipelined(count):
    with Herald("--threads", "1") as h:
        s = socket.create_connection(("127.0.0.1", h.port), timeout=5)
        reqs = b"".join(post("/api/groups/g%d/send" % i, {"type": "m", "i": i})
                        for i in range(count))
        s.sendall(reqs)
        got = read_responses(s, count)
        for i, (st, body) in enumerate(got):
            assert st == 202, (i, st, body)
            assert json.loads(body) == {"group": "g%d" % i}, (i, body)
        # the same connection is still usable
        s.sendall(get("/healthz"))
        st, body = read_responses(s, 1)[0]
        assert st == 200 and json.loads(body)["status"] == "ok", (st, body)
        s.close()
        healthz_ok(h)
        rc, took = h.stop()
        assert rc == 0 and took < 5, (rc, took, h.stderr())


def test_two_pipelined_posts():
    check_pipelined(2)


def test_fifty_pipelined_posts():
    check_pipelined(50)


def test_mixed_pipeline_in_order_and_errors():
    """GETs, POSTs, errors decided from the head and from the body, in one send."""
    with Herald("--threads", "1") as h:
        s = socket.create_connection(("127.0.0.1", h.port), timeout=5)
        s.sendall(get("/healthz")
                  + post("/api/groups/a/send", {"type": "m"})
                  + post("/api/groups/b/send", [1, 2])          # 400 from the body
                  + post("/nope", {"type": "m"})                 # 404 with a body to skip
                  + get("/api/groups/a/send")                    # 405
                  + post("/api/groups/bad%20name/send", {"type": "m"})  # 400 bad name
                  + post("/api/groups/c/send", {"type": "m"}))
        got = [st for st, _ in read_responses(s, 7)]
        assert got == [200, 202, 400, 404, 405, 400, 202], got
        s.close()
        healthz_ok(h)


def test_pipeline_split_across_sends_and_body_in_pieces():
    with Herald("--threads", "1") as h:
        s = socket.create_connection(("127.0.0.1", h.port), timeout=5)
        data = post("/api/groups/a/send", {"type": "m"}) * 3
        for i in range(0, len(data), 7):   # a few bytes at a time
            s.sendall(data[i:i + 7])
            time.sleep(0.002)
        got = [st for st, _ in read_responses(s, 3)]
        assert got == [202, 202, 202], got
        s.close()


def test_connection_close_answers_then_closes():
    with Herald("--threads", "1") as h:
        s = socket.create_connection(("127.0.0.1", h.port), timeout=5)
        s.sendall(post("/api/groups/a/send", {"type": "m"})
                  + post("/api/groups/a/send", {"type": "m"}, b"Connection: close\r\n")
                  + post("/api/groups/a/send", {"type": "m"}))  # after close: ignored
        got = [st for st, _ in read_responses(s, 2)]
        assert got == [202, 202], got
        s.settimeout(5)
        rest = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            rest += chunk
        assert rest == b"", rest
        healthz_ok(h)


async def test_pipelined_sends_reach_websocket_clients():
    with Herald("--threads", "1") as h:
        async with websockets.connect(h.url("/ws/notifications/"), open_timeout=5) as ws:
            s = socket.create_connection(("127.0.0.1", h.port), timeout=5)
            s.sendall(b"".join(post("/api/groups/notifications/send",
                                    {"type": "notification_message", "message": i})
                               for i in range(20)))
            assert [st for st, _ in read_responses(s, 20)] == [202] * 20
            for i in range(20):
                m = await recv_json(ws)
                assert m == i, (i, m)
            s.close()


def test_pipelined_posts_over_tls_do_not_hang():
    """TLS keeps lws's h1 server: a pipelined POST may cost the connection,
    never the node."""
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                       check=True, capture_output=True, timeout=60)
        with Herald("--threads", "1", "--tls-cert", cert, "--tls-key", key) as h:
            ctx = ssl.create_default_context(cafile=cert)
            ctx.check_hostname = False
            raw = socket.create_connection(("127.0.0.1", h.port), timeout=5)
            s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            s.sendall(post("/api/groups/a/send", {"type": "m"}) * 3)
            try:
                got = read_responses(s, 3, timeout=5)
                assert [st for st, _ in got][0] == 202, got
            except (AssertionError, OSError):
                pass  # closed after the first: allowed over TLS
            s.close()
            c = socket.create_connection(("127.0.0.1", h.port), timeout=5)
            t = ctx.wrap_socket(c, server_hostname="127.0.0.1")
            t.sendall(get("/healthz"))
            assert read_responses(t, 1)[0][0] == 200
            t.close()
            rc, took = h.stop()
            assert rc == 0 and took < 5, (rc, took, h.stderr())


if __name__ == "__main__":
    run_tests(globals())
