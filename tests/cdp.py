"""A tiny Chrome DevTools Protocol driver for the browser tests.

Starts Debian's headless `chromium` on a private profile with the DevTools
endpoint on a kernel-chosen port (read from the "DevTools listening on
ws://..." line it prints on stderr), opens a page target and talks to it
over a WebSocket (python3-websockets 10.4, asyncio). It records every
console message, exception, log entry and network request of the page, so
that a test can assert there were no errors and no request left the node.

Every wait is bounded in time; `close()` (also run at exit) kills the whole
browser process group and removes the profile.
"""
import asyncio
import atexit
import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse

import websockets

CHROMIUM = os.environ.get("HERALD_CHROMIUM", "/usr/bin/chromium")

_browsers = []


def _cleanup():
    for b in list(_browsers):
        b.kill()


atexit.register(_cleanup)


class CDPError(Exception):
    pass


class Browser:
    """A headless Chromium; `await Browser.start()`, then `await b.new_page()`."""

    def __init__(self):
        self.proc = None
        self.profile = None
        self.ws_url = None
        self.port = None
        self.stderr_lines = []
        self._drain = None

    @classmethod
    async def start(cls, timeout=45.0):
        b = cls()
        b.profile = tempfile.mkdtemp(prefix="herald-chromium-")
        args = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--remote-debugging-port=0", "--user-data-dir=" + b.profile,
                "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage",
                "--disable-features=Translate,OptimizationHints,MediaRouter",
                "--mute-audio", "about:blank"]
        b.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, start_new_session=True)
        _browsers.append(b)
        deadline = time.monotonic() + timeout
        buf = b""
        fd = b.proc.stderr.fileno()
        while b.ws_url is None:
            left = deadline - time.monotonic()
            if left <= 0 or b.proc.poll() is not None:
                b.kill()
                raise RuntimeError("chromium did not open its DevTools endpoint:\n%s"
                                   % buf.decode(errors="replace")[-3000:])
            r, _, _ = select.select([fd], [], [], min(left, 0.5))
            if not r:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                continue
            buf += chunk
            m = re.search(rb"DevTools listening on (ws://[^\s]+)", buf)
            if m:
                b.ws_url = m.group(1).decode()
        b.stderr_lines = buf.decode(errors="replace").splitlines()
        b.port = urllib.parse.urlsplit(b.ws_url).port
        # keep reading stderr so that chromium never blocks on a full pipe
        b._drain = threading.Thread(target=b._drain_stderr, daemon=True)
        b._drain.start()
        return b

    def _drain_stderr(self):
        try:
            for line in self.proc.stderr:
                if len(self.stderr_lines) < 2000:
                    self.stderr_lines.append(line.decode(errors="replace").rstrip())
        except (OSError, ValueError):
            pass

    async def new_page(self, timeout=20.0):
        """A new page target (about:blank), connected and with Runtime, Log,
        Network and Page enabled."""
        async with websockets.connect(self.ws_url, max_size=None, open_timeout=timeout) as bws:
            s = Session(bws)
            await s.start()
            try:
                r = await s.send("Target.createTarget", {"url": "about:blank"}, timeout)
            finally:
                await s.stop()
        target = r["targetId"]
        url = "ws://127.0.0.1:%d/devtools/page/%s" % (self.port, target)
        ws = await websockets.connect(url, max_size=None, open_timeout=timeout)
        page = Page(ws)
        await page.start()
        for domain in ("Runtime", "Log", "Network", "Page"):
            await page.send(domain + ".enable", {}, timeout)
        return page

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None and self.proc.stderr is not None:
            try:
                self.proc.stderr.close()
            except OSError:
                pass
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None
        if self in _browsers:
            _browsers.remove(self)

    async def close(self):
        """Ask the browser to quit, then make sure its whole group is gone."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                async with websockets.connect(self.ws_url, max_size=None, open_timeout=5) as bws:
                    s = Session(bws)
                    await s.start()
                    try:
                        await s.send("Browser.close", {}, 5)
                    except (CDPError, asyncio.TimeoutError, websockets.ConnectionClosed):
                        pass
                    await s.stop()
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
                pass
            for _ in range(50):
                if self.proc.poll() is not None:
                    break
                await asyncio.sleep(0.1)
        self.kill()


class Session:
    """One CDP connection: numbered commands, and the events as they come."""

    def __init__(self, ws):
        self.ws = ws
        self._next = 0
        self._pending = {}
        self.events = []
        self._reader = None
        self._changed = asyncio.Event()

    async def start(self):
        self._reader = asyncio.ensure_future(self._read())

    async def stop(self):
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
        await self.ws.close()

    async def _read(self):
        try:
            async for raw in self.ws:
                m = json.loads(raw)
                if "id" in m:
                    fut = self._pending.pop(m["id"], None)
                    if fut is not None and not fut.done():
                        fut.set_result(m)
                elif len(self.events) < 100000:
                    self.events.append(m)
                    self._on_event(m)
                    self._changed.set()
        except websockets.ConnectionClosed:
            pass
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(CDPError("DevTools connection closed"))

    def _on_event(self, m):
        pass

    async def send(self, method, params=None, timeout=10.0):
        self._next += 1
        i = self._next
        fut = asyncio.get_event_loop().create_future()
        self._pending[i] = fut
        await self.ws.send(json.dumps({"id": i, "method": method, "params": params or {}}))
        try:
            m = await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(i, None)
        if "error" in m:
            raise CDPError("%s: %s" % (method, m["error"]))
        return m.get("result", {})


class Page(Session):
    """A page target: navigate, evaluate, and what the page did."""

    def __init__(self, ws):
        super().__init__(ws)
        self.console = []     # (level, text) of console API calls
        self.exceptions = []  # exception descriptions
        self.log = []         # (level, source, text, url) of Log.entryAdded
        self.requests = []    # URLs of requests and WebSockets the page made

    def _on_event(self, m):
        method, p = m.get("method"), m.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            self.console.append((p.get("type"), text))
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            desc = d.get("exception", {}).get("description") or d.get("text")
            self.exceptions.append(desc)
        elif method == "Log.entryAdded":
            e = p.get("entry", {})
            self.log.append((e.get("level"), e.get("source"), e.get("text"), e.get("url")))
        elif method == "Network.requestWillBeSent":
            self.requests.append(p.get("request", {}).get("url"))
        elif method == "Network.webSocketCreated":
            self.requests.append(p.get("url"))

    async def navigate(self, url, timeout=20.0):
        """Load url and wait for its load event."""
        n = len(self.events)
        r = await self.send("Page.navigate", {"url": url}, timeout)
        if r.get("errorText"):
            raise CDPError("navigate %s: %s" % (url, r["errorText"]))
        await self.wait_event(lambda e: e.get("method") == "Page.loadEventFired", timeout, since=n)

    async def wait_event(self, pred, timeout=10.0, since=0):
        deadline = time.monotonic() + timeout
        i = since
        while True:
            while i < len(self.events):
                if pred(self.events[i]):
                    return self.events[i]
                i += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError("no matching DevTools event in %.1fs" % timeout)
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass

    async def evaluate(self, expression, timeout=10.0):
        """The value of a JavaScript expression in the page (JSON-able)."""
        r = await self.send("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True}, timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CDPError("evaluate: %s" % (d.get("exception", {}).get("description")
                                             or d.get("text")))
        return r.get("result", {}).get("value")

    async def wait_for(self, expression, timeout=10.0, step=0.1, what=None):
        """Evaluate expression until it is truthy; its value. Bounded."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = await self.evaluate(expression)
            if last:
                return last
            await asyncio.sleep(step)
        raise AssertionError("timed out (%.1fs) waiting for %s (last value %r)"
                             % (timeout, what or expression, last))

    def errors(self, allow=None):
        """Console errors, exceptions and error log entries, except those
        for which allow(text) is true."""
        out = []
        for level, text in self.console:
            if level in ("error", "assert"):
                out.append("console.%s: %s" % (level, text))
        for desc in self.exceptions:
            out.append("exception: %s" % desc)
        for level, source, text, url in self.log:
            if level == "error" and not (allow and allow(text or "")):
                out.append("log %s: %s (%s)" % (source, text, url))
        return out
