"""Shared helpers for herald's integration tests.

Start the real `build/herald serve` on a free loopback port, wait for its
ready line, talk HTTP (http.client) and WebSocket (websockets 10.4 from
Debian's /usr/bin/python3) to it, and make sure it is gone when the test
exits. Every wait is bounded in time.
"""
import asyncio
import atexit
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import traceback

BUILD = os.environ.get("HERALD_BUILD_DIR") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build")
HERALD = os.path.join(BUILD, "herald")

_procs = []


def herald_version():
    """The version `herald --version` prints ("0.2.0")."""
    out = subprocess.run([HERALD, "--version"], capture_output=True, text=True,
                         timeout=10).stdout
    return out.split()[1]


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_cleanup)


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def clean_run_log(*extra, env=None, threads=1):
    """Start a node, check it answers /healthz, stop it (exit 0 asserted) and
    return all it logged."""
    h = Herald(*extra, threads=threads, env=env)
    try:
        st, _, _ = h.http("GET", "/healthz")
        assert st == 200, st
    finally:
        rc, _ = h.stop()
    assert rc == 0, (rc, h.stderr())
    return h.log()


class Herald:
    """A herald node on 127.0.0.1:<free port> (and [::1] with ipv6=True)."""

    def __init__(self, *extra, threads=2, ipv6=False, env=None):
        self.port = free_port()
        args = [HERALD, "serve", "--listen", "127.0.0.1:%d" % self.port,
                "--threads", str(threads)]
        self.port6 = None
        if ipv6:
            self.port6 = free_port(socket.AF_INET6, "::1")
            args += ["--listen", "[::1]:%d" % self.port6]
        args += list(extra)
        self.args = args
        self.stderr_path = "/tmp/herald-test-%d-%d.log" % (os.getpid(), self.port)
        self._stderr = open(self.stderr_path, "wb")
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._stderr, env=e)
        _procs.append(self.proc)
        self.ready_lines = []
        want = 2 if ipv6 else 1
        deadline = time.monotonic() + 10
        buf = b""
        while len(self.ready_lines) < want:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError("herald did not become ready: %r\nstderr:\n%s" % (
                    buf, self.stderr()))
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    continue
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self.ready_lines.append(line.decode())

    def stderr(self):
        return self.log()[-4000:]

    def log(self):
        """Everything it wrote on stderr so far."""
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def url(self, path, v6=False):
        if v6:
            return "ws://[::1]:%d%s" % (self.port6, path)
        return "ws://127.0.0.1:%d%s" % (self.port, path)

    def http(self, method, path, body=None, headers=None, v6=False, timeout=10):
        """(status, parsed-JSON-or-text, headers). body: dict/list -> JSON, str/bytes raw."""
        host = "::1" if v6 else "127.0.0.1"
        c = http.client.HTTPConnection(host, self.port6 if v6 else self.port, timeout=timeout)
        h = {}
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = data.decode(errors="replace")
        return r.status, parsed, dict(r.getheaders())

    def publish(self, group, message, type_="notification_message"):
        st, body, _ = self.http("POST", "/api/groups/%s/send" % group,
                                {"type": type_, "message": message})
        if st != 202:
            raise AssertionError("publish to %s: %s %r" % (group, st, body))
        return body

    def metric(self, name):
        st, text, _ = self.http("GET", "/metrics")
        assert st == 200, st
        for line in text.splitlines():
            if not line.startswith("#") and line.rsplit(" ", 1)[0] == name:
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError("metric %s not found" % name)

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Signal the node; return (exit code, seconds it took)."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            rc = None
        self._stderr.close()
        return rc, time.monotonic() - t0

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *a):
        # A node still running at the end of its block must stop cleanly
        # on SIGTERM: exit 0, so that a crash at shutdown or a leak that
        # LeakSanitizer reports (the sanitizer build) fails the test.
        if self.proc.poll() is None:
            rc, _ = self.stop()
            if exc_type is None and rc != 0:
                raise AssertionError("herald exited %r after SIGTERM:\n%s" % (rc, self.stderr()))


async def recv_json(ws, timeout=5):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def expect_silence(ws, timeout=0.3):
    try:
        m = await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        return
    raise AssertionError("unexpected message: %r" % (m,))


async def close_code(ws, timeout=6):
    """Read ws until it closes: the close code, or "timeout"."""
    import websockets  # only the WebSocket tests need it

    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except websockets.exceptions.ConnectionClosed as e:
        return e.code
    except asyncio.TimeoutError:
        return "timeout"


def run_tests(module_globals):
    """Run every test_* function of the calling module (async ones in a
    fresh loop), print each outcome, exit 1 if any failed."""
    names = sorted(n for n in module_globals if n.startswith("test_") and callable(module_globals[n]))
    only = os.environ.get("HERALD_TEST_ONLY")
    failed = []
    for n in names:
        if only and only not in n:
            continue
        fn = module_globals[n]
        t0 = time.monotonic()
        try:
            if asyncio.iscoroutinefunction(fn):
                asyncio.run(asyncio.wait_for(fn(), 120))
            else:
                fn()
            print("PASS %s (%.2fs)" % (n, time.monotonic() - t0), flush=True)
        except Exception:
            failed.append(n)
            print("FAIL %s (%.2fs)" % (n, time.monotonic() - t0), flush=True)
            traceback.print_exc()
    if failed:
        print("FAILED: %s" % ", ".join(failed))
        sys.exit(1)
    print("all passed")


class RedisServer:
    """A real redis-server on 127.0.0.1:<free port>, killed at exit.

    Persistence is off unless `dir` is given: then `stop(save=True)` writes
    an RDB there and `start()` loads it again (same port), so a test can stop
    Redis for a while without losing its keys."""

    def __init__(self, dir=None):
        import redis  # python3-redis, pulled in by python3-channels-redis
        self._redis = redis
        self.dir = dir
        self.port = free_port()
        self.url = "redis://127.0.0.1:%d" % self.port
        self.proc = None
        self.start()

    def start(self, timeout=5.0):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--appendonly", "no", "--loglevel", "warning"]
        if self.dir:
            args += ["--dir", self.dir, "--dbfilename", "dump.rdb", "--save", ""]
        else:
            args += ["--save", ""]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        _procs.append(self.proc)
        self.r = self._redis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if self.r.ping():
                    return
            except self._redis.exceptions.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server on port %d did not start" % self.port)

    def stop(self, save=False):
        """Stop the server (SHUTDOWN SAVE when save, else kill)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if save:
            try:
                self.r.shutdown(save=True)
            except self._redis.exceptions.ConnectionError:
                pass
            try:
                self.proc.wait(10)
                return
            except subprocess.TimeoutExpired:
                pass
        self.proc.kill()
        self.proc.wait(5)

    def layer(self, **kw):
        """A channels_redis RedisChannelLayer on this server (make it inside
        the event loop that uses it)."""
        from channels_redis.core import RedisChannelLayer
        return RedisChannelLayer(hosts=[self.url], **kw)

    def members(self, group, prefix="asgi"):
        return sorted(m.decode() for m in self.r.zrange("%s:group:%s" % (prefix, group), 0, -1))

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def rss_kb(pid):
    """VmRSS of a process, in kB (0 if /proc does not say)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def sanitized(pid):
    """True when the process runs under ASan or TSan (RSS then says nothing:
    freed memory sits in quarantine)."""
    with open("/proc/%d/maps" % pid) as f:
        return any("libasan" in line or "libtsan" in line for line in f)


def post_until_accepted(conn, path, body, tries=200):
    """POST a JSON body on a keep-alive http.client connection until it is
    answered 202, sleeping 10 ms after each 429 (the router's backpressure);
    any other status fails. Bounded: `tries` attempts."""
    for _ in range(tries):
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status == 202:
            return
        assert r.status == 429, r.status
        time.sleep(0.01)
    raise AssertionError("POST %s never accepted" % path)


_shared_redis = None


def shared_redis():
    """One RedisServer for the whole test file, started on first use."""
    global _shared_redis
    if _shared_redis is None:
        _shared_redis = RedisServer()
    return _shared_redis


def wait_until(cond, timeout=5.0, step=0.02, what="condition"):
    """Poll cond() until it is true; AssertionError naming `what` after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(step)
    if not cond():
        raise AssertionError("timed out waiting for %s" % what)
