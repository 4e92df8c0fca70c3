"""TLS listeners advertise only http/1.1 in ALPN: herald's HTTP is HTTP/1,
and a client offered h2 (curl's default) used to pick it and get an empty
reply."""
import os
import shutil
import socket
import ssl
import subprocess
import tempfile

from herald_testlib import Herald, run_tests


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_alpn_offers_only_http_1_1_and_curl_gets_an_answer():
    with tempfile.TemporaryDirectory() as d:
        cert, key = make_cert(d)
        with Herald("--tls-cert", cert, "--tls-key", key, threads=1) as h:
            ctx = ssl.create_default_context(cafile=cert)
            ctx.check_hostname = False
            ctx.set_alpn_protocols(["h2", "http/1.1"])
            with socket.create_connection(("127.0.0.1", h.port), timeout=10) as raw:
                with ctx.wrap_socket(raw) as s:
                    assert s.selected_alpn_protocol() == "http/1.1", s.selected_alpn_protocol()
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    resp = b""
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        resp += chunk
                    assert resp.startswith(b"HTTP/1.1 200"), resp[:100]
            # h2 alone: nothing in common, the handshake fails rather than
            # pick a protocol herald cannot speak
            ctx2 = ssl.create_default_context(cafile=cert)
            ctx2.check_hostname = False
            ctx2.set_alpn_protocols(["h2"])
            with socket.create_connection(("127.0.0.1", h.port), timeout=10) as raw:
                try:
                    with ctx2.wrap_socket(raw) as s:
                        assert s.selected_alpn_protocol() != "h2", s.selected_alpn_protocol()
                except (ssl.SSLError, ConnectionError):
                    pass
            if shutil.which("curl"):
                out = subprocess.run(["curl", "-s", "--cacert", cert,
                                      "https://127.0.0.1:%d/healthz" % h.port],
                                     capture_output=True, text=True, timeout=20)
                assert out.returncode == 0, (out.returncode, out.stderr)
                assert '"status":"ok"' in out.stdout, out.stdout


if __name__ == "__main__":
    run_tests(globals())
