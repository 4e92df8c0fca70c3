"""SIGHUP never stops a node (docs/PROTOCOL.md "Running a node"). Without TLS
it only logs; with TLS it re-reads --tls-cert and --tls-key for new
connections while connections already open keep working, and a pair that
does not load leaves the old one in place with one line on stderr."""
import asyncio
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import websockets

from herald_testlib import Herald, recv_json, run_tests, wait_until


def make_pair(d, name):
    cert, key = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    with open(cert, "rb") as f:
        der = ssl.PEM_cert_to_DER_cert(f.read().decode())
    return cert, key, hashlib.sha256(der).hexdigest()


def install(src, dst):
    """Replace dst with a copy of src atomically, as a certificate renewal does."""
    tmp = dst + ".new"
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def client_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def fingerprint(port):
    """sha256 of the certificate a new TLS connection is served."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with client_ctx().wrap_socket(raw) as s:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def log_lines(h):
    return h.log().splitlines()


def new_lines_after(h, before, what, timeout=5):
    wait_until(lambda: len(log_lines(h)) > before, timeout=timeout, what=what)
    time.sleep(0.3)  # anything else it would log about it
    return log_lines(h)[before:]


async def test_sighup_without_tls_only_logs():
    with Herald(threads=2) as h:
        async with websockets.connect(h.url("/ws/notifications/")) as ws:
            for i in range(5):
                before = len(log_lines(h))
                h.proc.send_signal(signal.SIGHUP)
                lines = new_lines_after(h, before, "the SIGHUP log line")
                # the node's own start-up lines may still be arriving: only
                # one line about SIGHUP, and nothing worse than info
                assert len([l for l in lines if "SIGHUP" in l]) == 1, lines
                assert not any(" error " in l or " warn " in l for l in lines), lines
                assert h.proc.poll() is None, "SIGHUP stopped the node"
                st, _, _ = h.http("GET", "/healthz")
                assert st == 200
                await ws.send(json.dumps({"type": "ping"}))
                assert (await recv_json(ws))["type"] == "pong"
            # several at once are fine too
            for _ in range(20):
                h.proc.send_signal(signal.SIGHUP)
            await asyncio.sleep(0.5)
            assert h.proc.poll() is None
            h.publish("notifications", {"after": "hup"})
            assert await recv_json(ws) == {"after": "hup"}
        rc, _ = h.stop()
        assert rc == 0, h.stderr()


async def reload_scenario(threads):
    d = tempfile.mkdtemp(prefix="herald-hup-")
    try:
        cert_a, key_a, fp_a = make_pair(d, "a")
        cert_b, key_b, fp_b = make_pair(d, "b")
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        install(cert_a, cert)
        install(key_a, key)
        h = Herald("--tls-cert", cert, "--tls-key", key, threads=threads)
        loop = asyncio.get_running_loop()
        try:
            for _ in range(6):
                assert fingerprint(h.port) == fp_a
            url = "wss://127.0.0.1:%d/ws/notifications/" % h.port
            old = await websockets.connect(url, ssl=client_ctx(), open_timeout=5)
            old_fp = hashlib.sha256(
                old.transport.get_extra_info("ssl_object").getpeercert(True)).hexdigest()
            assert old_fp == fp_a

            # renewed: certificate B
            install(cert_b, cert)
            install(key_b, key)
            before = len(log_lines(h))
            h.proc.send_signal(signal.SIGHUP)
            await loop.run_in_executor(None, lambda: wait_until(
                lambda: fingerprint(h.port) == fp_b, timeout=5, what="certificate B served"))
            for _ in range(20):  # every I/O thread serves B (2 threads: 2^-19 to miss one)
                assert fingerprint(h.port) == fp_b
            lines = log_lines(h)[before:]
            assert len(lines) == 1 and "SIGHUP" in lines[0], lines
            # the connection opened before keeps working, on certificate A
            await old.send(json.dumps({"type": "ping"}))
            assert (await recv_json(old))["type"] == "pong"
            async with websockets.connect(url, ssl=client_ctx(), open_timeout=5) as new:
                await new.send(json.dumps({"type": "ping"}))
                assert (await recv_json(new))["type"] == "pong"

            # a broken pair (A's key with B's certificate): one line, B stays
            install(key_a, key)
            before = len(log_lines(h))
            h.proc.send_signal(signal.SIGHUP)
            lines = await loop.run_in_executor(
                None, lambda: new_lines_after(h, before, "the refusal line"))
            assert len(lines) == 1, lines
            assert "--tls-key" in lines[0] and "is not the key of the certificate" in lines[0], lines
            for _ in range(10):
                assert fingerprint(h.port) == fp_b
            # B's key encrypted (it would prompt for a passphrase), a
            # certificate file that holds no certificate, one that is gone:
            # one line each, B stays
            enc = os.path.join(d, "enc.key")
            subprocess.run(["openssl", "pkey", "-in", key_b, "-aes256", "-passout",
                            "pass:secret", "-out", enc], check=True, capture_output=True,
                           timeout=30)
            with open(os.path.join(d, "junk.crt"), "w") as f:
                f.write("not a certificate\n")
            cases = [((cert_b, enc), "--tls-key"),
                     ((os.path.join(d, "junk.crt"), key_b), "--tls-cert"),
                     ((None, key_b), "--tls-cert")]
            for (c_src, k_src), opt in cases:
                if c_src is None:
                    os.unlink(cert)
                else:
                    install(c_src, cert)
                install(k_src, key)
                before = len(log_lines(h))
                h.proc.send_signal(signal.SIGHUP)
                lines = await loop.run_in_executor(
                    None, lambda: new_lines_after(h, before, "the refusal line"))
                assert len(lines) == 1 and opt in lines[0], lines
                assert "keeping the previous certificate" in lines[0], lines
                for _ in range(10):
                    assert fingerprint(h.port) == fp_b
            await old.send(json.dumps({"type": "ping"}))
            assert (await recv_json(old))["type"] == "pong"
            await old.close()

            # and back to A once both files are right again
            install(cert_a, cert)
            install(key_a, key)
            h.proc.send_signal(signal.SIGHUP)
            await loop.run_in_executor(None, lambda: wait_until(
                lambda: fingerprint(h.port) == fp_a, timeout=5, what="certificate A again"))
            assert h.proc.poll() is None
            # under ASan a leak at exit is a non-zero status
            rc, _ = h.stop()
            assert rc == 0, (rc, h.stderr())
        finally:
            if h.proc.poll() is None:
                h.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)


async def test_sighup_reloads_the_tls_pair_of_one_thread():
    await reload_scenario(1)


async def test_sighup_reloads_the_tls_pair_on_every_thread():
    await reload_scenario(2)


if __name__ == "__main__":
    run_tests(globals())
