"""JWT checks on several I/O threads at once: each handshake verifies its own
token. The token used to be copied into one buffer shared by every I/O
thread, so with --threads > 1 a handshake could verify another's token
(refused as the wrong user, or let in as someone else)."""
import base64
import hashlib
import hmac
import json
import socket
import time

from attacklib import handshake_request
from herald_testlib import Herald, run_tests

SECRET = "s3cret-for-the-race"
N = 300
ROUNDS = 10
THREADS = 2


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def token(user, pad):
    h = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    p = b64(json.dumps({"user_id": user, "pad": "x" * pad}).encode())
    sig = b64(hmac.new(SECRET.encode(), h + b"." + p, hashlib.sha256).digest())
    return (h + b"." + p + b"." + sig).decode()


def test_concurrent_handshakes_each_verify_their_own_token():
    with Herald("--jwt-secret", SECRET, "--rate-limit", "1000", threads=THREADS) as h:
        bad = []
        for r in range(ROUNDS):
            socks = []
            for i in range(N):
                user = "u%d_%d" % (r, i)
                # a long token: the copy and the HMAC take long enough for
                # the other thread's handshake to land in between
                tok = token(user, 3000 + 3 * i)
                s = socket.create_connection(("127.0.0.1", h.port), timeout=20)
                socks.append((user, s, handshake_request(
                    "/ws/notifications/%s/" % user,
                    b"Authorization: Bearer " + tok.encode() + b"\r\n")))
            for _, s, req in socks:  # every request on the wire at once
                s.sendall(req)
            deadline = time.monotonic() + 30
            for user, s, _ in socks:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                resp = b""
                while b"\r\n\r\n" not in resp:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    resp += chunk
                status = resp.split(b"\r\n", 1)[0]
                if b" 101 " not in status:
                    bad.append((user, status))
                s.close()
        assert not bad, "%d of %d refused, e.g. %r" % (len(bad), N * ROUNDS, bad[:3])
        failures = [l for l in h.log().splitlines() if "handshake refused" in l]
        assert not failures, failures[:3]


if __name__ == "__main__":
    run_tests(globals())
