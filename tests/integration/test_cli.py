"""test_cli.py: the `herald` command line against the real binary.

Bad options exit 2 with one line on stderr naming the option; --version and
help; `herald token` checked with Python's hmac; `herald send` against a
running node, with a WebSocket client receiving what it published, and a
refusal (wrong API key) exiting 1.

Run by ctest with Debian's /usr/bin/python3 (HERALD_BUILD_DIR set).
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess

from herald_testlib import HERALD, Herald, free_port, recv_json, run_tests


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def run(args, env=None, timeout=20):
    """Run herald with a clean HERALD_* environment; (exit, stdout, stderr)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    if env:
        e.update(env)
    p = subprocess.run([HERALD] + args, capture_output=True, text=True, timeout=timeout, env=e)
    return p.returncode, p.stdout, p.stderr


def test_version_and_help():
    rc, out, err = run(["--version"])
    check(rc == 0 and out.startswith("herald ") and out.count("\n") == 1, "--version: %r %r" % (rc, out))
    rc, out, err = run(["help"])
    check(rc == 0 and "serve" in out and "send" in out and "token" in out, "help: %r" % out)
    rc, out, err = run(["serve", "--help"])
    check(rc == 0 and "--listen" in out and "--log-level" in out, "serve --help: %r" % out)
    rc, out, err = run([])
    check(rc == 2 and out == "", "no command exits 2")
    rc, out, err = run(["bogus"])
    check(rc == 2 and "bogus" in err, "unknown command: %r %r" % (rc, err))


BAD_SERVE = [
    (["--threads", "0"], None, "--threads"),
    (["--threads=abc"], None, "--threads"),
    (["--listen", "127.0.0.1"], None, "--listen"),
    (["--listen", "127.0.0.1:0"], None, "--listen"),
    (["--listen", "127.0.0.1:70000"], None, "--listen"),
    (["--listen", "::1:80"], None, "--listen"),
    (["--layer", "sql"], None, "--layer"),
    (["--redis", "http://x:1"], None, "--redis"),
    (["--capacity", "-1"], None, "--capacity"),
    (["--channel-capacity", "x"], None, "--channel-capacity"),
    (["--expiry", "0"], None, "--expiry"),
    (["--group-expiry", "soon"], None, "--group-expiry"),
    (["--max-message", "0"], None, "--max-message"),
    (["--rate-limit", "x"], None, "--rate-limit"),
    (["--max-connections", "many"], None, "--max-connections"),
    (["--tls-cert", "/etc/hostname"], None, "--tls-cert"),
    (["--tls-cert", "/nonexistent", "--tls-key", "/nonexistent"], None, "--tls-cert"),
    (["--log-level", "loud"], None, "--log-level"),
    (["--allowed-origins", "nohost"], None, "--allowed-origins"),
    (["--nope"], None, "--nope"),
    (["--config", "/nonexistent.ini"], None, "--config"),
    ([], {"HERALD_THREADS": "0"}, "HERALD_THREADS"),
    ([], {"HERALD_LISTEN": "localhost:1,bad"}, "HERALD_LISTEN"),
]


def test_bad_options_exit_2():
    for args, env, name in BAD_SERVE:
        rc, out, err = run(["serve"] + args, env=env)
        lines = err.splitlines()
        check(rc == 2, "serve %s %s: exit %d" % (args, env, rc))
        check(len(lines) == 1 and name in lines[0], "serve %s %s: stderr %r" % (args, env, err))
        check(out == "", "serve %s: stdout %r" % (args, out))


def test_token():
    rc, out, err = run(["token", "--secret", "k3y", "--user", "99", "--ttl", "120"])
    check(rc == 0, "token exit %d %r" % (rc, err))
    tok = out.strip()
    parts = tok.split(".")
    check(len(parts) == 3, "token parts %r" % tok)
    if len(parts) == 3:
        dec = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
        mac = hmac.new(b"k3y", (parts[0] + "." + parts[1]).encode(), hashlib.sha256).digest()
        check(hmac.compare_digest(mac, dec(parts[2])), "token signature")
        c = json.loads(dec(parts[1]))
        check(c.get("user_id") == "99" and c.get("sub") == "99" and c["exp"] - c["iat"] == 120, "claims %r" % c)
    rc, out, err = run(["token", "--user", "1"])
    check(rc == 2 and "--secret" in err, "token without secret: %r" % err)


def test_send_usage_and_unreachable():
    for args, what in [
        (["send", "{}"], "no target"),
        (["send", "--group", "g"], "no JSON"),
        (["send", "--group", "g", "{bad"], "bad JSON"),
        (["send", "--group", "g", "--user", "u", "{}"], "two targets"),
        (["send", "--url", "http://127.0.0.1:1/x?y", "--group", "g", "{}"], "url with a query"),
        (["send", "--url", "ftp://x", "--group", "g", "{}"], "bad url"),
        (["send", "--bogus", "--group", "g", "{}"], "unknown option"),
    ]:
        rc, out, err = run(args)
        check(rc == 2 and len(err.splitlines()) == 1, "send %s: exit %d %r" % (what, rc, err))
    port = free_port()
    rc, out, err = run(["send", "--url", "http://127.0.0.1:%d" % port, "--group", "g", "{}"])
    check(rc == 1 and "connect" in err, "send to closed port: exit %d %r" % (rc, err))


async def test_send_through_a_node():
    import websockets

    loop = asyncio.get_running_loop()
    with Herald("--api-key", "sesame", threads=1) as node:
        url = "http://127.0.0.1:%d" % node.port
        async with websockets.connect(node.url("/ws/notifications/")) as ws:
            rc, out, err = await loop.run_in_executor(None, run, [
                "send", "--url", url, "--api-key", "sesame", "--group", "notifications",
                '{"hello": [1, 2.5, "x"]}'])
            check(rc == 0, "send --group exit %d %r" % (rc, err))
            check(json.loads(out) == {"group": "notifications"}, "send --group printed %r" % out)
            got = await recv_json(ws)
            check(got == {"hello": [1, 2.5, "x"]}, "ws got %r" % got)

        async with websockets.connect(node.url("/ws/notifications/7/")) as ws:
            rc, out, err = await loop.run_in_executor(None, lambda: run(
                ["send", "--url", url + "/", "--user", "7", '"just text"'],
                env={"HERALD_API_KEY": "sesame"}))
            check(rc == 0, "send --user exit %d %r" % (rc, err))
            got = await recv_json(ws)
            check(got == "just text", "ws user got %r" % got)

        rc, out, err = run(["send", "--url", url, "--api-key", "wrong", "--group", "notifications", "{}"])
        check(rc == 1 and "401" in err and len(err.splitlines()) == 1 and out == "",
              "refused send: exit %d %r" % (rc, err))
        rc, out, err = run(["send", "--url", url, "--api-key", "sesame", "--group", "bad name!", "{}"])
        check(rc == 1 and "400" in err, "bad group refused by the server: exit %d %r" % (rc, err))
        rc, secs = node.stop()
        check(rc == 0, "node exit after SIGTERM: %r" % rc)


if __name__ == "__main__":
    run_tests(globals())
