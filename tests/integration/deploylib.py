"""Helpers shared by test_install.py and test_package.py: the options of
`herald serve --help`, the example config file's commented lines, and a run
of an installed herald binary with an installed config file."""
import http.client
import os
import re
import select
import signal
import subprocess
import time

from herald_testlib import _procs, free_port

# Lines of --help that are modes of `serve`, not options a file may set.
MODES = ("check", "help", "config")


def help_options(herald):
    """[(name, rest)] of each `  --name rest` line of `herald serve --help`."""
    p = subprocess.run([herald, "serve", "--help"], capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    out = []
    for line in p.stdout.splitlines():
        m = re.match(r"^  --([a-z0-9-]+) *(.*)$", line)
        if m:
            out.append((m.group(1), m.group(2)))
    assert len(out) >= 20, p.stdout
    return out


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}


def conf_examples(text):
    """{name: [values]} of the commented-out `#name = value` lines."""
    d = {}
    for line in text.splitlines():
        m = re.match(r"^#([a-z][a-z0-9-]*) = (.*)$", line)
        if m:
            d.setdefault(m.group(1), []).append(m.group(2))
    return d


def conf_settings(text):
    """Lines that set something (neither comment, section nor blank)."""
    return [l for l in text.splitlines()
            if l.strip() and not l.lstrip().startswith(("#", ";", "["))]


def run_installed(herald, conf, env=None):
    """Start `herald serve --config conf` on a free loopback port, check its
    ready line and /healthz, stop it with SIGTERM; returns the ready line."""
    port = free_port()
    e = clean_env()
    e.update(env or {})
    p = subprocess.Popen([herald, "serve", "--config", conf, "--listen", "127.0.0.1:%d" % port,
                          "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=e)
    _procs.append(p)
    try:
        r, _, _ = select.select([p.stdout], [], [], 15)
        assert r, "no ready line from %s" % herald
        line = p.stdout.readline().decode()
        assert line.startswith("herald ") and ("listening on http://127.0.0.1:%d " % port) in line, \
            (line, p.stderr.read1(4000) if p.poll() is not None else b"")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/healthz")
        res = c.getresponse()
        assert res.status == 200, res.status
        res.read()
        c.close()
        p.send_signal(signal.SIGTERM)
        rc = p.wait(10)
        assert rc == 0, (rc, p.stderr.read().decode()[-2000:])
        return line
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)


def systemd_verify(unit, manpath):
    """`systemd-analyze verify` on unit (its ExecStart must exist); returns
    None, or why it could not run here (printed by the caller)."""
    if not os.path.exists("/usr/bin/systemd-analyze"):
        return "systemd-analyze is not installed (Debian: systemd)"
    e = dict(os.environ, MANPATH=manpath)
    p = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True,
                       timeout=60, env=e)
    assert p.returncode == 0 and p.stderr.strip() == "", (p.returncode, p.stdout, p.stderr)
    p = subprocess.run(["systemd-analyze", "security", "--offline=yes", unit],
                       capture_output=True, text=True, timeout=60, env=e)
    m = re.search(r"Overall exposure level for herald.service: ([0-9.]+)", p.stdout)
    assert m, (p.returncode, p.stdout[-2000:], p.stderr)
    # systemd rates 0..10; below 5 is "OK" or better.
    assert float(m.group(1)) < 5.0, p.stdout
    return None
