"""--tls-cert/--tls-key: https and wss on the same listener (self-signed
certificate made with the openssl CLI)."""
import json
import os
import ssl
import subprocess
import tempfile
import http.client

import websockets

from herald_testlib import Herald, herald_version, recv_json, run_tests


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


async def test_https_and_wss_on_two_threads():
    """Two I/O threads, so two lws contexts with TLS: it serves both, then
    stops with status 0 (under ASan: nothing leaked at exit)."""
    with tempfile.TemporaryDirectory() as d:
        cert, key = make_cert(d)
        with Herald("--tls-cert", cert, "--tls-key", key, threads=2) as h:
            assert h.ready_lines[0].startswith(
                "herald %s listening on https://127.0.0.1:%d " % (herald_version(), h.port)), h.ready_lines
            ctx = ssl.create_default_context(cafile=cert)
            ctx.check_hostname = False
            url = "wss://127.0.0.1:%d/ws/notifications/" % h.port
            async with websockets.connect(url, ssl=ctx, open_timeout=5) as ws:
                c = http.client.HTTPSConnection("127.0.0.1", h.port, context=ctx, timeout=10)
                c.request("POST", "/api/groups/notifications/send",
                          body=json.dumps({"type": "notification_message", "message": {"tls": 1}}),
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                assert r.status == 202, (r.status, r.read())
                r.read()
                c.close()
                assert await recv_json(ws) == {"tls": 1}
                await ws.send(json.dumps({"type": "ping"}))
                assert (await recv_json(ws))["type"] == "pong"
                rc, _ = h.stop()
                assert rc == 0, (rc, h.stderr())
                assert "LeakSanitizer" not in h.log(), h.stderr()


def test_bad_cert_exits_2():
    from herald_testlib import HERALD, free_port
    with tempfile.TemporaryDirectory() as d:
        missing = os.path.join(d, "nope.pem")
        p = subprocess.run([HERALD, "serve", "--listen", "127.0.0.1:%d" % free_port(),
                            "--threads", "1", "--tls-cert", missing, "--tls-key", missing],
                           capture_output=True, timeout=20)
        assert p.returncode == 2, (p.returncode, p.stderr)
        assert p.stdout == b"", p.stdout
        assert b"--tls-cert" in p.stderr, p.stderr

if __name__ == "__main__":
    run_tests(globals())
