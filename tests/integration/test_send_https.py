"""`herald send` through libcurl: https against a real node whose certificate
comes from a private CA (--cacert), host name and CA checks, a path prefix in
--url kept (a recording HTTPS server stands in for a reverse proxy), the
--timeout, a bounded answer, and the exit codes 0/1/2.

Run by ctest with Debian's /usr/bin/python3 (HERALD_BUILD_DIR set).
"""
import asyncio
import http.server
import json
import os
import ssl
import subprocess
import tempfile
import threading
import time

import websockets

from herald_testlib import HERALD, Herald, free_port, recv_json, run_tests


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)


def make_ca_and_cert(d):
    """A private CA and a server certificate it signs, for IP 127.0.0.1 only."""
    ca, ca_key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    cert, key, csr = (os.path.join(d, n) for n in ("cert.pem", "key.pem", "req.csr"))
    ext = os.path.join(d, "ext.cnf")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=herald test CA", "-keyout", ca_key, "-out", ca)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", key, "-out", csr)
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-days", "1", "-extfile", ext, "-out", cert)
    return ca, cert, key


def run(args, timeout=30):
    e = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    p = subprocess.run([HERALD] + args, capture_output=True, text=True, timeout=timeout, env=e)
    return p.returncode, p.stdout, p.stderr


async def test_https_with_private_ca():
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory() as d:
        ca, cert, key = make_ca_and_cert(d)
        with Herald("--tls-cert", cert, "--tls-key", key, "--api-key", "sesame", threads=1) as h:
            url = "https://127.0.0.1:%d" % h.port
            ctx = ssl.create_default_context(cafile=ca)
            wss = "wss://127.0.0.1:%d/ws/notifications/" % h.port
            async with websockets.connect(wss, ssl=ctx, open_timeout=5) as ws:
                rc, out, err = await loop.run_in_executor(None, run, [
                    "send", "--url", url, "--cacert", ca, "--api-key", "sesame",
                    "--group", "notifications", '{"over": "tls"}'])
                assert rc == 0, (rc, err)
                assert json.loads(out) == {"group": "notifications"}, out
                assert await recv_json(ws) == {"over": "tls"}
            # The system CA store does not know the private CA.
            rc, out, err = run(["send", "--url", url, "--api-key", "sesame",
                                "--group", "g", "{}"])
            assert rc == 1 and out == "" and len(err.splitlines()) == 1, (rc, err)
            assert "certificate" in err.lower(), err
            # The certificate names 127.0.0.1, not localhost.
            rc, out, err = run(["send", "--url", "https://localhost:%d" % h.port,
                                "--cacert", ca, "--api-key", "sesame", "--group", "g", "{}"])
            assert rc == 1 and len(err.splitlines()) == 1, (rc, err)
            assert "localhost" in err, err
            # A refusal over https is still exit 1 with the server's reason.
            rc, out, err = run(["send", "--url", url, "--cacert", ca, "--api-key", "wrong",
                                "--group", "g", "{}"])
            assert rc == 1 and "401" in err and out == "", (rc, err)
            # A --cacert that does not exist: curl cannot verify, exit 1.
            rc, out, err = run(["send", "--url", url, "--cacert", os.path.join(d, "none.pem"),
                                "--group", "g", "{}"])
            assert rc == 1 and len(err.splitlines()) == 1, (rc, err)


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every POST as the path says, and records what it saw."""
    seen = []

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Recorder.seen.append((self.path, dict(self.headers), body))
        if "/slow/" in self.path:
            time.sleep(4)
        if "/big/" in self.path:
            payload, status = b"x" * (3 << 20), 202
        elif "/plain500/" in self.path:
            payload, status = b"boom\nsecond line", 500
        else:
            payload, status = b'{"group":"g"}', 202
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass


def test_path_prefix_is_kept_over_https():
    with tempfile.TemporaryDirectory() as d:
        ca, cert, key = make_ca_and_cert(d)
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(cert, key)
        srv.socket = sctx.wrap_socket(srv.socket, server_side=True)
        srv.daemon_threads = True
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        base = "https://127.0.0.1:%d" % srv.server_address[1]
        try:
            Recorder.seen.clear()
            rc, out, err = run(["send", "--url", base + "/herald/", "--cacert", ca,
                                "--api-key", "k1", "--type", "custom.event",
                                "--channel", "specific.ab!c d", '{"n": 1}'])
            assert rc == 0, (rc, err)
            assert out == '{"group":"g"}\n', out
            path, headers, body = Recorder.seen[-1]
            assert path == "/herald/api/channels/specific.ab%21c%20d/send", path
            assert headers.get("Authorization") == "Bearer k1", headers
            assert headers.get("Content-Type") == "application/json", headers
            assert json.loads(body) == {"type": "custom.event", "message": {"n": 1}}, body

            rc, out, err = run(["send", "--url", base + "/a/b", "--cacert", ca,
                                "--user", "42", "[]"])
            assert rc == 0, (rc, err)
            path, headers, _ = Recorder.seen[-1]
            assert path == "/a/b/api/groups/user_42/send", path
            assert "Authorization" not in headers, headers

            # A refusal that is not JSON: exit 1, its start on one line.
            rc, out, err = run(["send", "--url", base + "/plain500", "--cacert", ca,
                                "--group", "g", "{}"])
            assert rc == 1 and "HTTP 500" in err and "boom second" in err, (rc, err)
            assert len(err.splitlines()) == 1 and out == "", err

            # An answer over the bound is refused, not buffered.
            rc, out, err = run(["send", "--url", base + "/big", "--cacert", ca,
                                "--group", "g", "{}"])
            assert rc == 1 and "larger than" in err and out == "", (rc, err)

            # --timeout bounds the whole exchange.
            t0 = time.monotonic()
            rc, out, err = run(["send", "--url", base + "/slow", "--cacert", ca,
                                "--timeout", "1", "--group", "g", "{}"])
            took = time.monotonic() - t0
            assert rc == 1 and "timed out" in err.lower(), (rc, err)
            assert took < 3.5, took
        finally:
            srv.shutdown()
            srv.server_close()


def test_bad_usage_exits_2():
    for args in (["--url", "https://127.0.0.1:1/x?y=1"], ["--url", "https://u:p@h"],
                 ["--url", "gopher://h"], ["--timeout", "0"], ["--cacert", ""]):
        rc, out, err = run(["send"] + args + ["--group", "g", "{}"])
        assert rc == 2 and len(err.splitlines()) == 1 and out == "", (args, rc, err)
    # https to a closed port is a refusal (1), not bad usage.
    rc, out, err = run(["send", "--url", "https://127.0.0.1:%d" % free_port(),
                        "--group", "g", "{}"])
    assert rc == 1 and "connect" in err.lower(), (rc, err)


if __name__ == "__main__":
    run_tests(globals())
