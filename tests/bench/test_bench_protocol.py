"""herald-bench's WebSocket client and HTTP publisher against a scripted server.

A Python server (raw sockets, no WebSocket library) answers the upgrade and
then sends, per connection: small, 16-bit and 64-bit length frames, a message
fragmented over three frames, a ping (the client must answer with a masked
pong carrying the same payload), a frame dribbled one byte per write, a frame
without "t", and two frames in one write.  Publishes are answered 202 with a
chunked body, two at a time where pipelined.  Checks the counts herald-bench
reports, and what it sent: masked pongs, publish bodies with an integer "t"
wrapped as {"type":"notification_message","message":...} and padded to --size.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

BUILD = os.environ.get("HERALD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
BENCH = os.path.join(BUILD, "herald-bench")
CONNS = 3
failures = []
lock = threading.Lock()
seen = {"pongs": 0, "bad_pongs": 0, "unmasked": 0, "posts": 0, "bad_posts": [], "sizes": []}


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def frame(opcode, payload, fin=True):
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        head = struct.pack("!BB", b0, n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 126, n)
    else:
        head = struct.pack("!BBQ", b0, 127, n)
    return head + payload


def msg(extra=0, t=True):
    body = {"t": time.monotonic_ns(), "pad": "x" * extra} if t else {"no": "time"}
    return json.dumps(body).encode()  # json.dumps writes '"t": 123' with a space


def read_until(sock, marker, limit=65536):
    buf = b""
    while marker not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            return None
        buf += chunk
        if len(buf) > limit:
            return None
    return buf


def read_client_frame(sock, buf):
    """One frame from the client: (opcode, masked, payload, rest)."""
    while len(buf) < 2:
        buf += sock.recv(4096)
    b0, b1 = buf[0], buf[1]
    n = b1 & 0x7F
    pos = 2
    if n == 126:
        n = struct.unpack("!H", buf[2:4])[0]
        pos = 4
    masked = bool(b1 & 0x80)
    key = b""
    if masked:
        while len(buf) < pos + 4:
            buf += sock.recv(4096)
        key = buf[pos:pos + 4]
        pos += 4
    while len(buf) < pos + n:
        buf += sock.recv(4096)
    payload = buf[pos:pos + n]
    if masked:
        payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
    return b0 & 0x0F, masked, payload, buf[pos + n:]


SCRIPTED = 9  # messages with "t" per connection; plus one without


def accept_for(head):
    import base64
    import hashlib
    key = b""
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"sec-websocket-key:"):
            key = line.split(b":", 1)[1].strip()
    guid = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    return base64.b64encode(hashlib.sha1(key + guid).digest())


def serve_ws(sock, rest, head):
    if b"/badaccept/" in head.split(b"\r\n")[0]:
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo\r\n\r\n")
        return
    sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept_for(head) + b"\r\n\r\n" + frame(1, msg()))
    sock.sendall(frame(1, msg(300)))                       # 16-bit length
    sock.sendall(frame(1, msg(70000)))                     # 64-bit length
    m = msg(50)
    sock.sendall(frame(1, m[:10], fin=False))              # fragmented in three
    sock.sendall(frame(0, m[10:20], fin=False))
    sock.sendall(frame(9, b"ping-payload"))                # ping in between fragments
    sock.sendall(frame(0, m[20:], fin=True))
    for byte in frame(1, msg(20)):                         # one byte per write
        sock.sendall(bytes([byte]))
        time.sleep(0.001)
    sock.sendall(frame(1, msg(t=False)))                   # no "t"
    sock.sendall(frame(1, msg()) + frame(2, msg()))        # two in one write, one binary
    sock.sendall(frame(1, msg(10)) + frame(1, msg(10)))
    # the client answers the ping with a masked pong
    sock.settimeout(5)
    try:
        op, masked, payload, rest = read_client_frame(sock, rest)
        with lock:
            if op == 0xA and payload == b"ping-payload":
                seen["pongs"] += 1
            else:
                seen["bad_pongs"] += 1
            if not masked:
                seen["unmasked"] += 1
    except (OSError, struct.error):
        with lock:
            seen["bad_pongs"] += 1
    sock.settimeout(None)
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass


def serve_http(sock, buf):
    sock.settimeout(10)
    pending = []
    try:
        while True:
            while b"\r\n\r\n" in buf:
                head, rest = buf.split(b"\r\n\r\n", 1)
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                while len(rest) < length:
                    rest += sock.recv(65536)
                body, buf = rest[:length], rest[length:]
                try:
                    j = json.loads(body)
                    ok = (j.get("type") == "notification_message" and isinstance(j["message"]["t"], int)
                          and j["message"]["t"] > 0)
                    with lock:
                        seen["sizes"].append(len(json.dumps(j["message"], separators=(",", ":"))))
                except (ValueError, KeyError, TypeError):
                    ok = False
                with lock:
                    seen["posts"] += 1
                    if not ok:
                        seen["bad_posts"].append(body[:200])
                pending.append(b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n"
                               b"Content-Type: application/json\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
                if len(pending) >= 2 or b"\r\n\r\n" not in buf:
                    sock.sendall(b"".join(pending))
                    pending = []
            chunk = sock.recv(65536)
            if not chunk:
                return
            buf += chunk
    except OSError:
        return


def handle(sock):
    try:
        buf = read_until(sock, b"\r\n\r\n")
        if buf is None:
            return
        head, rest = buf.split(b"\r\n\r\n", 1)
        if head.startswith(b"GET ") and b"websocket" in head.lower():
            serve_ws(sock, rest, head)
        else:
            serve_http(sock, buf)
    finally:
        sock.close()


def main():
    if not os.path.exists(BENCH):
        print("herald-bench not built in %s (HERALD_BENCH=OFF): nothing to test" % BUILD)
        print("0 passed, 0 failed")
        return 0
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    port = lsock.getsockname()[1]

    def accept_loop():
        for _ in range(CONNS + 30):
            try:
                s, _ = lsock.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(s,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    cmd = [BENCH, "--url", "ws://127.0.0.1:%d/ws/notifications/" % port, "-n", str(CONNS),
           "--publish", "http://127.0.0.1:%d/api/groups/notifications/send" % port,
           "--rate", "0", "--pipeline", "4", "--size", "300", "-d", "1.5", "--drain", "0.5",
           "--settle", "0.5", "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    print("$", " ".join(cmd))
    print(r.stderr.strip())
    check(r.returncode == 0, "exit code %d" % r.returncode)
    try:
        j = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        failures.append("no JSON line: %r" % r.stdout)
        j = None
    if j:
        check(j["connections"] == CONNS, "connections %d" % j["connections"])
        check(j["frames"] == CONNS * (SCRIPTED + 1), "frames %d == %d" % (j["frames"], CONNS * (SCRIPTED + 1)))
        check(j["frames_without_t"] == CONNS, "frames without t %d == %d" % (j["frames_without_t"], CONNS))
        check(j["latency_samples"] == CONNS * SCRIPTED, "latency samples %d" % j["latency_samples"])
        check(j["closed_by_server"] == 0, "no connection dropped")
        check(j["publish_errors"] == 0, "publish errors %d" % j["publish_errors"])
        with lock:
            check(j["published"] == seen["posts"] and seen["posts"] > 0,
                  "published %d == posts the server saw %d" % (j["published"], seen["posts"]))
        check(0 < j["p50_ms"] <= j["max_ms"], "latencies positive and ordered")
    with lock:
        check(seen["pongs"] == CONNS, "pongs %d (bad %d)" % (seen["pongs"], seen["bad_pongs"]))
        check(seen["unmasked"] == 0, "client frames masked")
        check(not seen["bad_posts"], "publish bodies well formed: %r" % seen["bad_posts"][:2])
        check(all(295 <= s <= 305 for s in seen["sizes"]), "message padded to ~300 bytes: %r" % sorted(set(seen["sizes"]))[:5])
    # a wrong Sec-WebSocket-Accept is a failed connection, not an open one
    cmd = [BENCH, "--url", "ws://127.0.0.1:%d/badaccept/" % port, "-n", "2", "-d", "0.2",
           "--settle", "0", "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    try:
        j = json.loads(r.stdout.strip().splitlines()[-1])
        check(j["connections"] == 0 and j["connect_failures"] == 2,
              "bad accept: 0 open, 2 failed (got %d, %d)" % (j["connections"], j["connect_failures"]))
    except (ValueError, IndexError, KeyError):
        failures.append("bad accept: no JSON line: %r" % r.stdout)
    check(r.returncode == 1, "bad accept: exit code 1 when nothing connected (got %d)" % r.returncode)
    check("Sec-WebSocket-Accept" in r.stderr, "bad accept: reason printed")
    lsock.close()
    if failures:
        print("%d checks failed" % len(failures))
        return 1
    print("bench protocol: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
