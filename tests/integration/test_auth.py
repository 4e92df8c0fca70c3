"""Handshake auth: HS256 JWT on the notification routes (?token= or
Authorization: Bearer; exp/nbf; user_id/sub on the user route) and the
Origin allow-list. Refusals are 403; /ws/health/ stays open."""
import base64
import hashlib
import hmac
import json
import time

import websockets

from herald_testlib import Herald, recv_json, run_tests

SECRET = "topsecret"


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(claims, secret=SECRET, alg="HS256"):
    h = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    p = b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), ("%s.%s" % (h, p)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (h, p, b64(sig))


async def status(url, **kw):
    try:
        async with websockets.connect(url, open_timeout=5, **kw) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            assert (await recv_json(ws))["type"] == "pong"
            return 101
    except websockets.exceptions.InvalidStatusCode as e:
        return e.status_code


async def test_jwt():
    now = int(time.time())
    with Herald("--jwt-secret", SECRET, threads=1) as h:
        g = h.url("/ws/notifications/")
        cases = [
            (g, {}, 403),
            (g + "?token=garbage", {}, 403),
            (g + "?token=" + token({"user_id": "a", "exp": now + 60}), {}, 101),
            (g + "?token=" + token({"user_id": "a"}), {}, 101),  # no exp: accepted
            (g + "?token=" + token({"user_id": "a", "exp": now - 100}), {}, 403),
            (g + "?token=" + token({"user_id": "a", "nbf": now + 600}), {}, 403),
            (g + "?token=" + token({"user_id": "a"}, secret="wrong"), {}, 403),
            (g, {"extra_headers": {"Authorization": "Bearer " + token({"sub": "x"})}}, 101),
            (h.url("/ws/notifications/alice/") + "?token=" + token({"user_id": "alice"}), {}, 101),
            (h.url("/ws/notifications/alice/") + "?token=" + token({"user_id": "bob"}), {}, 403),
            (h.url("/ws/notifications/42/") + "?token=" + token({"sub": 42}), {}, 101),
            (h.url("/ws/notifications/42/") + "?token=" + token({"sub": 43}), {}, 403),
            (h.url("/ws/health/"), {}, 101),
        ]
        for url, kw, want in cases:
            got = await status(url, **kw)
            assert got == want, (url, kw, got, want)
        jwt = sum(h.metric('herald_auth_failures_total{reason="%s"}' % r)
                  for r in ["missing", "malformed", "bad_signature", "alg", "expired",
                            "not_yet_valid", "wrong_user"])
        assert jwt == 7, jwt
        assert h.metric('herald_auth_failures_total{reason="missing"}') == 1
        assert h.metric('herald_auth_failures_total{reason="expired"}') == 1
        assert h.metric('herald_auth_failures_total{reason="wrong_user"}') == 2


async def test_origins():
    with Herald("--allowed-origins", "https://app.example.com, https://*.example.org",
                threads=1) as h:
        u = h.url("/ws/health/")
        cases = [
            (None, 403),
            ("https://app.example.com", 101),
            ("https://evil.com", 403),
            ("https://a.example.org", 101),
            ("https://a.b.example.org", 101),
            ("https://example.org", 403),
            ("http://a.example.org", 403),
            ("https://app.example.com.evil.com", 403),
        ]
        for origin, want in cases:
            kw = {"origin": origin} if origin else {}
            got = await status(u, **kw)
            assert got == want, (origin, got, want)


def test_bad_origin_list_exits_2():
    import subprocess
    from herald_testlib import HERALD, free_port
    p = subprocess.run([HERALD, "serve", "--listen", "127.0.0.1:%d" % free_port(), "--threads", "1",
                        "--allowed-origins", "https://a.example.com/path"],
                       capture_output=True, timeout=20)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert b"origin" in p.stderr.lower(), p.stderr


async def test_origin_wildcard():
    with Herald("--allowed-origins", "*", threads=1) as h:
        assert await status(h.url("/ws/notifications/"), origin="https://any.thing") == 101


if __name__ == "__main__":
    run_tests(globals())
