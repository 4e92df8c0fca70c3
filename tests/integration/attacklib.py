"""Raw-socket helpers for the attack tests: a WebSocket client written by
hand (masked frames, server frames parsed), so a test controls every byte
and every timing that a well-behaved library would smooth over."""
import base64
import json
import os
import socket
import struct
import time


def handshake_request(path, extra=b""):
    key = base64.b64encode(os.urandom(16))
    return (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
            b"\r\nSec-WebSocket-Version: 13\r\n" + extra + b"\r\n")


def ws_open(port, path="/ws/notifications/", extra=b"", timeout=10, rcvbuf=None):
    """Connect and upgrade; return (socket, status line, leftover bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.sendall(handshake_request(path, extra))
    resp = b""
    while b"\r\n\r\n" not in resp:
        chunk = s.recv(4096)
        if not chunk:
            break
        resp += chunk
    head, _, rest = resp.partition(b"\r\n\r\n")
    return s, head.split(b"\r\n")[0], rest


def frame(payload, opcode=1, fin=True):
    """One masked client frame."""
    if isinstance(payload, str):
        payload = payload.encode()
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
    mask = os.urandom(4)
    body = bytes(c ^ mask[i % 4] for i, c in enumerate(payload)) if n < 4096 else \
        _mask_fast(payload, mask)
    return hdr + mask + body


def _mask_fast(payload, mask):
    m = int.from_bytes(mask * ((len(payload) + 3) // 4), "big") >> (8 * (-len(payload) % 4))
    return (int.from_bytes(payload, "big") ^ m).to_bytes(len(payload), "big")


def read_until_close(s, rest=b"", timeout=10):
    """Read server frames until a close frame or EOF. Returns (texts, close
    code or None)."""
    s.settimeout(timeout)
    buf = rest
    texts = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while len(buf) >= 2:
            op = buf[0] & 0x0F
            n = buf[1] & 0x7F
            off = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n = struct.unpack("!H", buf[2:4])[0]
                off = 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n = struct.unpack("!Q", buf[2:10])[0]
                off = 10
            if len(buf) < off + n:
                break
            payload = buf[off:off + n]
            buf = buf[off + n:]
            if op == 8:
                return texts, struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            if op == 1:
                texts.append(json.loads(payload))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            return texts, None
        if not chunk:
            return texts, None
        buf += chunk
    raise AssertionError("no close within %ss; got %d frames" % (timeout, len(texts)))


def proc_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def metrics(h):
    st, text, _ = h.http("GET", "/metrics")
    assert st == 200, st
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def delta(before, after):
    """Counters that changed, as {name: increase}."""
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
