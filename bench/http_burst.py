#!/usr/bin/python3
"""A burst of group sends from many HTTP connections at once, each with one
request in flight, while WebSocket receivers in the group read everything:
enough requests in flight to fill a node's router mailbox (8192 mails) when
the node falls behind. Prints one JSON line: how each request was answered
(status counts, none lost), the answer times and the wall time.

    bench/http_burst.py --port 8000 --conns 9000 --receivers 100

Loopback only; every wait is bounded (--timeout)."""
import argparse
import base64
import json
import os
import selectors
import socket
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conns", type=int, default=9000)
    ap.add_argument("--receivers", type=int, default=100)
    ap.add_argument("--group", default="notifications")
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()

    sel = selectors.DefaultSelector()
    # receivers: raw WebSockets in the group, read and discarded
    recv_bytes = 0
    for _ in range(a.receivers):
        s = socket.create_connection(("127.0.0.1", a.port), timeout=10)
        key = base64.b64encode(os.urandom(16))
        s.sendall(b"GET /ws/notifications/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
                  b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            assert chunk, "handshake refused"
            head += chunk
        assert b" 101 " in head.split(b"\r\n")[0], head
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, ("ws", None))

    body = json.dumps({"type": "notification_message", "message": {"x": "y" * 100}}).encode()
    req = (b"POST /api/groups/%s/send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
           b"\r\nContent-Length: %d\r\n\r\n" % (a.group.encode(), len(body))) + body
    pubs = []
    t0 = time.monotonic()
    for i in range(a.conns):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", a.port))
        st = {"sock": s, "out": req, "in": b"", "t0": None, "status": None}
        pubs.append(st)
        sel.register(s, selectors.EVENT_WRITE, ("pub", st))
    statuses, answer_ms, pending = {}, [], a.conns
    deadline = time.monotonic() + a.timeout
    while pending and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=0.5):
            kind, st = key.data
            s = key.fileobj
            if kind == "ws":
                try:
                    d = s.recv(1 << 20)
                    recv_bytes += len(d)
                except BlockingIOError:
                    pass
                continue
            if ev & selectors.EVENT_WRITE:
                if st["t0"] is None:
                    st["t0"] = time.monotonic()
                try:
                    n = s.send(st["out"])
                except (BlockingIOError, OSError):
                    continue
                st["out"] = st["out"][n:]
                if not st["out"]:
                    sel.modify(s, selectors.EVENT_READ, key.data)
                continue
            try:
                d = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            st["in"] += d
            if b"\r\n\r\n" in st["in"] or not d:
                code = st["in"].split(b" ", 2)[1].decode() if st["in"] else "closed"
                statuses[code] = statuses.get(code, 0) + 1
                answer_ms.append((time.monotonic() - st["t0"]) * 1000)
                sel.unregister(s)
                s.close()
                pending -= 1
    wall = time.monotonic() - t0
    answer_ms.sort()
    q = lambda p: round(answer_ms[min(len(answer_ms) - 1, int(p * len(answer_ms)))], 1) \
        if answer_ms else None
    print(json.dumps({"conns": a.conns, "receivers": a.receivers, "statuses": statuses,
                      "unanswered": pending, "wall_s": round(wall, 2), "answer_p50_ms": q(0.5),
                      "answer_p99_ms": q(0.99), "answer_max_ms": q(1.0) if answer_ms else None,
                      "received_mb": round(recv_bytes / 1e6, 1)}))


if __name__ == "__main__":
    main()
