"""`herald serve --check`: the options loaded exactly as `serve` loads them
(flags beat environment beat file), the effective configuration printed as
config-file lines with the secrets as ***, exit 0; a bad option: one line on
stderr, exit 2. Nothing listens, so --check succeeds on a busy port.

Run by ctest with Debian's /usr/bin/python3 (HERALD_BUILD_DIR set).
"""
import os
import socket
import subprocess
import tempfile

from herald_testlib import HERALD, run_tests


def run(args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    e.update(env or {})
    p = subprocess.run([HERALD, "serve", "--check"] + args, capture_output=True, text=True,
                       timeout=20, env=e)
    return p.returncode, p.stdout, p.stderr


def settings(out):
    """name -> [values] of the non-comment lines."""
    d = {}
    for line in out.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        k, _, v = line.partition(" = ")
        d.setdefault(k, []).append(v)
    return d


def test_defaults():
    rc, out, err = run([])
    assert rc == 0 and err == "", (rc, err)
    s = settings(out)
    assert s["listen"] == ["127.0.0.1:8000", "[::1]:8000"], s
    assert s["layer"] == ["memory"] and s["prefix"] == ["asgi"], s
    assert s["capacity"] == ["100"] and s["expiry"] == ["60"], s
    assert s["group-expiry"] == ["86400"] and s["max-message"] == ["65536"], s
    assert s["rate-limit"] == ["20"] and s["max-connections"] == ["0"], s
    assert s["log-level"] == ["info"] and s["threads"] == [str(os.cpu_count())], s
    assert "# jwt-secret: not set" in out and "# redis: not set" in out, out
    # Every option of --help appears, as a value or as a comment.
    help_ = subprocess.run([HERALD, "serve", "--help"], capture_output=True, text=True).stdout
    names = [l.split()[0][2:] for l in help_.splitlines() if l.startswith("  --")]
    for n in names:
        if n in ("check", "help", "config"):
            continue
        assert n in s or ("# %s:" % n) in out, (n, out)


def test_sources_and_secrets_masked():
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "herald.conf")
        with open(conf, "w") as f:
            f.write("capacity = 7\nprefix = fromfile\napi-key = file-key-123\n"
                    "redis = redis://:hunter2pass@127.0.0.1:6390/3\n"
                    "channel-capacity = a*=5, b*=6\n")
        rc, out, err = run(["--config", conf, "--prefix", "fromflag", "--jwt-secret", "jwtsecret99"],
                           env={"HERALD_PREFIX": "fromenv", "HERALD_CAPACITY": "9",
                                "HERALD_LISTEN": "127.0.0.1:1,[::1]:2"})
        assert rc == 0, (rc, err)
        s = settings(out)
        assert s["prefix"] == ["fromflag"], s
        assert s["capacity"] == ["9"], s
        assert s["listen"] == ["127.0.0.1:1", "[::1]:2"], s
        assert s["layer"] == ["redis"], s
        assert s["redis"] == ["redis://:***@127.0.0.1:6390/3"], s
        assert s["channel-capacity"] == ["a*=5", "b*=6"], s
        assert s["api-key"] == ["***"] and s["jwt-secret"] == ["***"], s
        for secret in ("file-key-123", "hunter2pass", "jwtsecret99"):
            assert secret not in out and secret not in err, secret
        assert conf in out, out


def test_output_reads_back_as_a_config_file():
    rc, out, err = run(["--listen", "127.0.0.1:7001", "--capacity", "5", "--expiry", "2.5",
                        "--allowed-origins", "https://*.example.com, http://a:1"])
    assert rc == 0, err
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "back.conf")
        with open(conf, "w") as f:
            f.write(out)
        rc, out2, err = run(["--config", conf])
        assert rc == 0, err
        assert settings(out2) == settings(out), (out, out2)


def test_bad_option_exits_2_with_one_line():
    for args, env, name in [(["--threads", "0"], None, "--threads"),
                            ([], {"HERALD_EXPIRY": "soon"}, "HERALD_EXPIRY"),
                            (["--config", "/nonexistent.conf"], None, "--config"),
                            (["--tls-cert", "/etc/hostname"], None, "--tls-cert")]:
        rc, out, err = run(args, env)
        assert rc == 2 and out == "" and len(err.splitlines()) == 1 and name in err, \
            (args, rc, out, err)


def test_nothing_listens():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rc, out, err = run(["--listen", "127.0.0.1:%d" % port])
        assert rc == 0 and "listen = 127.0.0.1:%d" % port in out, (rc, out, err)
        assert "listening" not in out, out


if __name__ == "__main__":
    run_tests(globals())
