#!/usr/bin/python3
"""The demo page (GET /) and the browser client (GET /herald.js) of
docs/PROTOCOL.md "The browser client and the demo page", in a real browser:
Debian's headless Chromium, driven over the DevTools protocol (tests/cdp.py).

- the assets: content types, the 30 KB budget, no external references,
  404 for both with --demo off (flag and environment), exit 2 on a bad value;
- a memory-layer node: the page connects, a notification published over HTTP
  and one published with the page's form appear with queued, processing and
  sent; the node is restarted on the same port and the page reconnects by
  itself (reconnecting, then connected) and goes on showing notifications;
- the user route with a JWT (page opened with ?user=&token=);
- two Redis-layer nodes behind a test proxy: the first is SIGTERMed while
  the second stays, and the page reconnects through the proxy to the second;
- herald.js against a scripted peer that plays the recovery frames of docs/PROTOCOL.md
  (envelopes, `recovered`, a duplicate, an epoch change): the `recover`
  positions it sends, what the page shows, the backoff delays.

The recovery parts against herald itself: a restarted memory node answers
`recovered:false` (always checked); the second Redis node replays what the
page missed, which needs the Redis side of "Recovery across reconnects": that
test checks first whether the node answers `?recover=` with a `recovered`
frame that has an epoch; when it does not, it prints a SKIP line saying so
and checks the rest.

Throughout, the page must log no console error and raise no exception, and
every request it makes (HTTP and WebSocket) must go to the host:port it was
loaded from. The only log entries allowed are Chromium's "WebSocket
connection to 'ws://<that host>/ws/...' failed: ...
net::ERR_CONNECTION_REFUSED" while the node is deliberately down. Every wait
is bounded; every process is killed at the end.
"""
import asyncio
import http.client
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http import HTTPStatus

import cdp
import herald_testlib
import websockets
from herald_testlib import HERALD, Herald, RedisServer, free_port, recv_json, run_tests

SRC = os.environ.get("HERALD_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUDGET = 30000  # bytes: page + client ("at most 30 KB")
STEPS = ["queued", "processing", "sent"]


def node_on(port, *extra, **kw):
    """A Herald on a chosen port (herald_testlib picks a free one itself)."""
    saved = herald_testlib.free_port
    herald_testlib.free_port = lambda *a, **k: port
    try:
        return Herald(*extra, **kw)
    finally:
        herald_testlib.free_port = saved


def get_raw(port, method, path, tls=False):
    if tls:
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                        context=ssl._create_unverified_context())
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r.getheader("content-type"), body


def publish(h, title, **kw):
    body = dict(kw, title=title)
    st, answer, _ = h.http("POST", "/api/notifications", body)
    assert st == 202, (st, answer)
    return answer["id"]


def wait_sent(h, nid, timeout=15.0):
    herald_testlib.wait_until(
        lambda: h.http("GET", "/api/notifications/" + nid)[1].get("status") == "sent",
        timeout=timeout, step=0.05, what="notification %s sent" % nid)


def only_local(page, hostport):
    """Every URL the page asked for is on hostport (data: URLs are no request)."""
    bad = []
    for u in page.requests:
        s = urllib.parse.urlsplit(u)
        if s.scheme == "data":
            continue
        if s.scheme not in ("http", "ws") or s.netloc != hostport:
            bad.append(u)
    assert not bad, "requests off %s: %r" % (hostport, bad)
    assert any(urllib.parse.urlsplit(u).scheme == "ws" for u in page.requests), page.requests


def ws_failures_of(hostport):
    prefix = "WebSocket connection to 'ws://%s/ws/" % hostport

    def allow(text):
        return text.startswith(prefix) and text.endswith("net::ERR_CONNECTION_REFUSED")
    return allow


def assert_no_errors(page, allow=None):
    errs = page.errors(allow)
    assert not errs, "page errors:\n" + "\n".join(errs)
    allowed = [t for lv, _, t, _ in page.log if lv == "error"]
    if allowed:
        print("  (%d expected WebSocket failure lines while the node was down)" % len(allowed))


async def in_thread(fn, *a, **kw):
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*a, **kw))


# ------------------------------------------------------------------ the page

NOTIF_JS = """(() => {
  const li = document.querySelector('#notifs li[data-id="' + %s + '"]');
  if (!li) return null;
  return {status: li.dataset.status || null,
          title: li.querySelector('.title').textContent,
          body: li.querySelector('.body').textContent,
          meta: li.querySelector('.meta').textContent,
          statuses: [...li.querySelectorAll('.st')].map((s) => s.textContent),
          replayed: li.classList.contains('replayed')};
})()"""

EVENTS_JS = "[...document.querySelectorAll('#events li')].map((li) => li.textContent).reverse()"

RECOVERIES_JS = """[...document.querySelectorAll('#recoveries li')].reverse().map((li) => ({
  route: li.dataset.route, group: li.dataset.group, recovered: li.dataset.recovered,
  missed: Number(li.dataset.missed), text: li.textContent}))"""


async def notif(page, nid):
    return await page.evaluate(NOTIF_JS % json.dumps(nid))


async def wait_notif(page, nid, title=None, timeout=15.0):
    """Wait until the page shows nid with all three statuses; its view."""
    deadline = time.monotonic() + timeout
    n = None
    while time.monotonic() < deadline:
        n = await notif(page, nid)
        if n and n["statuses"] == STEPS and (title is None or n["title"] == title):
            return n
        await asyncio.sleep(0.1)
    raise AssertionError("page never showed %s %r with %s: %r; events %r"
                         % (nid, title, STEPS, n, (await events(page))[-12:]))


async def wait_state(page, state, elem="state", timeout=15.0):
    await page.wait_for("document.getElementById(%s).textContent === %s"
                        % (json.dumps(elem), json.dumps(state)), timeout,
                        what="#%s %s" % (elem, state))


async def events(page):
    """The page's event log, oldest first, without the time stamps."""
    return [e.split(" ", 1)[1] for e in await page.evaluate(EVENTS_JS)]


async def wait_reconnected(page, since, route="notifications", timeout=20.0):
    """After event number `since`, the log shows route reconnecting, then
    route connected."""
    deadline = time.monotonic() + timeout
    ev = []
    while time.monotonic() < deadline:
        ev = (await events(page))[since:]
        rec = [i for i, e in enumerate(ev) if e.startswith(route + " reconnecting")]
        con = [i for i, e in enumerate(ev) if e == route + " connected"]
        if rec and con and con[-1] > rec[0]:
            return ev
        await asyncio.sleep(0.1)
    raise AssertionError("no reconnecting -> connected after event %d: %r" % (since, ev))


async def recovery_supported(port):
    """Does the node answer ?recover= with a `recovered` frame that has an
    epoch, i.e. does `notifications` have history there (the server side of
    "Recovery across reconnects")?"""
    url = "ws://127.0.0.1:%d/ws/notifications/?recover=" % port
    try:
        async with websockets.connect(url, open_timeout=5) as ws:
            f = await recv_json(ws, 1.5)
            return isinstance(f, dict) and f.get("type") == "recovered" and "epoch" in f
    except (asyncio.TimeoutError, websockets.WebSocketException, OSError):
        return False


# ------------------------------------------------------------------ tests

def test_assets_budget_types_and_demo_off():
    with open(os.path.join(SRC, "web", "index.html"), "rb") as f:
        page = f.read()
    with open(os.path.join(SRC, "web", "herald.js"), "rb") as f:
        client = f.read()
    assert len(page) + len(client) <= BUDGET, (len(page), len(client))
    # no reference to anything but this node: relative src/href, data: URLs
    for ref in re.findall(rb'(?:src|href|action)\s*=\s*["\']([^"\']*)', page):
        assert (ref.startswith(b"/") and not ref.startswith(b"//")) or ref.startswith(b"data:"), ref
    for text in (page, client):
        assert b"@import" not in text and b"url(" not in text
        assert not re.search(rb"https?://", text), re.search(rb"https?://.{0,40}", text)

    with Herald(threads=1) as h:
        st, ctype, body = get_raw(h.port, "GET", "/")
        assert (st, ctype) == (200, "text/html; charset=utf-8"), (st, ctype)
        assert body == page
        st, ctype, body = get_raw(h.port, "GET", "/herald.js")
        assert (st, ctype) == (200, "application/javascript"), (st, ctype)
        assert body == client
        st, _, _ = get_raw(h.port, "GET", "/?x=1")
        assert st == 200
        st, _, body = get_raw(h.port, "POST", "/")
        assert st == 405, (st, body)
        assert get_raw(h.port, "GET", "/index.html")[0] == 404
        assert get_raw(h.port, "GET", "/herald.js/")[0] == 404

    for args, env in ((("--demo", "off"), None), ((), {"HERALD_DEMO": "off"})):
        with Herald(*args, threads=1, env=env) as h:
            for path in ("/", "/herald.js"):
                st, ctype, body = get_raw(h.port, "GET", path)
                assert st == 404, (args, env, path, st)
                assert json.loads(body) == {"error": "not found"}, body
            assert h.http("GET", "/healthz")[0] == 200
    with Herald("--demo", "on", threads=1) as h:
        assert get_raw(h.port, "GET", "/")[0] == 200
    # TLS listeners take lws's HTTP path, not http1.c: the same answers
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                       check=True, capture_output=True, timeout=60)
        with Herald("--tls-cert", cert, "--tls-key", key, threads=1) as h:
            assert get_raw(h.port, "GET", "/", tls=True) == (200, "text/html; charset=utf-8", page)
            assert get_raw(h.port, "GET", "/herald.js", tls=True) == (
                200, "application/javascript", client)
        with Herald("--tls-cert", cert, "--tls-key", key, "--demo", "off", threads=1) as h:
            assert get_raw(h.port, "GET", "/", tls=True)[0] == 404
            assert get_raw(h.port, "GET", "/herald.js", tls=True)[0] == 404

    p = subprocess.run([HERALD, "serve", "--listen", "127.0.0.1:%d" % free_port(),
                        "--demo", "maybe"], capture_output=True, timeout=10)
    assert p.returncode == 2, p
    assert p.stdout == b""
    lines = p.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "--demo" in lines[0] and "maybe" in lines[0], lines


async def test_page_shows_notifications_and_reconnects_after_restart():
    port = free_port()
    hostport = "127.0.0.1:%d" % port
    h = node_on(port, threads=2)
    b = None
    try:
        b = await cdp.Browser.start()
        page = await b.new_page()
        await page.navigate("http://%s/" % hostport)
        await wait_state(page, "connected")

        # published over HTTP
        nid = await in_thread(publish, h, "From HTTP", body="over the API")
        n = await wait_notif(page, nid, "From HTTP")
        assert n["body"] == "over the API" and n["status"] == "sent", n

        # published with the page's form
        await page.evaluate("""(() => {
          const f = document.getElementById('pub');
          f.elements.namedItem('title').value = 'From the form';
          f.elements.namedItem('body').value = 'typed in';
          f.querySelector('button[type=submit]').click();
        })()""")
        fid = await page.wait_for("document.getElementById('pubresult').dataset.id", 10,
                                  what="the form's POST answered")
        n = await wait_notif(page, fid, "From the form")
        assert n["body"] == "typed in", n
        st, rec, _ = await in_thread(h.http, "GET", "/api/notifications/" + fid)
        assert st == 200 and rec["status"] == "sent", (st, rec)
        assert (await page.evaluate("document.getElementById('count').textContent")) == "2"

        # restart the node on the same port: the page reconnects by itself
        assert await recovery_supported(port), "?recover= gets no recovered frame with an epoch"
        since = len(await events(page))
        n_rec = len(await page.evaluate(RECOVERIES_JS))
        rc, _ = await in_thread(h.stop)
        assert rc == 0, rc
        await wait_state(page, "reconnecting", timeout=5)
        h = await in_thread(node_on, port, threads=2)
        ev = await wait_reconnected(page, since)
        assert ev[0].startswith("notifications reconnecting") and "close 1001" in ev[0], ev
        await wait_state(page, "connected")

        nid2 = await in_thread(publish, h, "After the restart")
        await wait_notif(page, nid2, "After the restart")

        # a memory node's history died with it: another epoch
        recs = await page.wait_for(
            "(%s).slice(%d).filter((r) => r.recovered === 'false')" % (RECOVERIES_JS, n_rec),
            10, what="recovered:false after the restart")
        assert recs[0]["group"] == "notifications" and recs[0]["missed"] == 0, recs
        assert "recovered:false" in recs[0]["text"], recs

        assert_no_errors(page, ws_failures_of(hostport))
        only_local(page, hostport)
        ws = [u for u in page.requests if u.startswith("ws:")]
        assert all("/ws/notifications/?recover=" in u for u in ws), ws
        assert len(ws) >= 2, ws
    finally:
        if b is not None:
            await b.close()
        h.stop()


async def test_user_route_with_token():
    secret = "demo-secret-for-the-browser-test"
    tok = subprocess.run([HERALD, "token", "--secret", secret, "--user", "alice"],
                         capture_output=True, timeout=10, check=True).stdout.decode().strip()
    h = Herald("--jwt-secret", secret, threads=1)
    hostport = "127.0.0.1:%d" % h.port
    b = None
    try:
        b = await cdp.Browser.start()
        page = await b.new_page()
        await page.navigate("http://%s/?user=alice&token=%s" % (hostport, tok))
        await wait_state(page, "connected")
        await wait_state(page, "connected", elem="ustate")
        nid = await in_thread(publish, h, "For alice", user_id="alice")
        n = await wait_notif(page, nid, "For alice")
        assert "user alice" in n["meta"], n
        ws = [u for u in page.requests if u.startswith("ws:")]
        assert len(ws) == 2, ws
        assert all("?recover=&token=" + tok in u for u in ws), ws
        assert sorted(urllib.parse.urlsplit(u).path for u in ws) == [
            "/ws/notifications/", "/ws/notifications/alice/"], ws
        assert_no_errors(page)
        only_local(page, hostport)
    finally:
        if b is not None:
            await b.close()
        h.stop()


class Proxy:
    """A TCP proxy on 127.0.0.1:<port> to one backend port at a time, on its
    own thread. hold(): new connections are accepted but wait (at most 20 s)
    until switch(port) says where they go."""

    def __init__(self, backend):
        self.backend = backend
        self.loop = asyncio.new_event_loop()
        self.port = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("proxy did not start")

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self._ready = asyncio.Event()
        self._ready.set()
        self._writers = set()
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        self._started.set()
        self.loop.run_forever()

    async def _pipe(self, r, w):
        try:
            while True:
                data = await r.read(65536)
                if not data:
                    break
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    async def _handle(self, r, w):
        self._writers.add(w)
        try:
            await asyncio.wait_for(self._ready.wait(), 20)
            br, bw = await asyncio.open_connection("127.0.0.1", self.backend)
        except (asyncio.TimeoutError, OSError):
            w.close()
            self._writers.discard(w)
            return
        self._writers.add(bw)
        await asyncio.gather(self._pipe(r, bw), self._pipe(br, w))
        self._writers.discard(w)
        self._writers.discard(bw)

    def hold(self):
        self.loop.call_soon_threadsafe(self._ready.clear)

    def switch(self, port):
        def go():
            self.backend = port
            self._ready.set()
        self.loop.call_soon_threadsafe(go)

    def close(self):
        def stop():
            self.server.close()
            for w in list(self._writers):
                w.close()
            self.loop.stop()
        self.loop.call_soon_threadsafe(stop)
        self._thread.join(10)


async def test_redis_node_sigterm_page_moves_to_second_node():
    redis = RedisServer()
    a = Herald("--redis", redis.url, threads=1)
    bnode = Herald("--redis", redis.url, threads=1)
    proxy = Proxy(a.port)
    hostport = "127.0.0.1:%d" % proxy.port
    b = None
    try:
        assert await recovery_supported(bnode.port), "?recover= gets no recovered frame with an epoch"
        b = await cdp.Browser.start()
        page = await b.new_page()
        await page.navigate("http://%s/" % hostport)
        await wait_state(page, "connected")
        nid = await in_thread(publish, a, "Before the failover")
        await wait_notif(page, nid, "Before the failover")
        since = len(await events(page))
        n_rec = len(await page.evaluate(RECOVERIES_JS))

        # node A goes away; the page's reconnect waits in the proxy while B
        # publishes what the page will have missed
        proxy.hold()
        rc, _ = await in_thread(a.stop)
        assert rc == 0, rc
        await wait_state(page, "reconnecting", timeout=5)
        missed = []
        for i in range(2):
            missed.append(await in_thread(publish, bnode, "While away %d" % i))
        for m in missed:
            await in_thread(wait_sent, bnode, m)
        await asyncio.sleep(0.2)  # in history no later than 100 ms after the 202
        proxy.switch(bnode.port)
        await wait_reconnected(page, since)
        await wait_state(page, "connected")

        for i, m in enumerate(missed):
            n = await wait_notif(page, m, "While away %d" % i)
            assert n["replayed"], n
        recs = await page.wait_for("(%s).slice(%d)" % (RECOVERIES_JS, n_rec), 10,
                                   what="a recovery entry after the failover")
        r = recs[0]
        assert r["group"] == "notifications" and r["recovered"] == "true", recs
        assert r["missed"] == 3 * len(missed), recs

        nid2 = await in_thread(publish, bnode, "After the failover")
        n = await wait_notif(page, nid2, "After the failover")
        assert not n["replayed"], n
        assert_no_errors(page)
        only_local(page, hostport)
    finally:
        if b is not None:
            await b.close()
        proxy.close()
        a.stop()
        bnode.stop()
        redis.stop()


class ScriptedPeer:
    """Until herald's own side of "Recovery across reconnects" exists, this
    WebSocket server (websockets 10.4) speaks the recovery frames of docs/PROTOCOL.md
    from a fixed script, so that the page and herald.js can be held to the
    contract now: it serves web/index.html and web/herald.js as herald
    does, records the query each connection asked for, and plays one scene
    per connection. scene(ws, n) is awaited for connection n (0-based);
    when it returns, the connection is closed with 1001."""

    def __init__(self, scenes, default=None):
        self.scenes = scenes
        self.default = default
        self.queries = []
        self.next_scene = asyncio.Event()
        self.closing = False
        self.server = None
        self.port = None

    async def start(self):
        self.server = await websockets.serve(
            self._handle, "127.0.0.1", 0, process_request=self._http, compression=None)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _http(self, path, headers):
        if path.startswith("/ws/"):
            return None
        files = {"/": ("index.html", "text/html; charset=utf-8"),
                 "/herald.js": ("herald.js", "application/javascript")}
        if path not in files:
            return (HTTPStatus.NOT_FOUND, [("Content-Type", "application/json")],
                    b'{"error":"not found"}')
        name, ctype = files[path]
        with open(os.path.join(SRC, "web", name), "rb") as f:
            return (HTTPStatus.OK, [("Content-Type", ctype)], f.read())

    async def _handle(self, ws, path):
        n = len(self.queries)
        self.queries.append(urllib.parse.urlsplit(path).query)
        if n < len(self.scenes):
            await self.scenes[n](ws, self)
        elif self.default is not None:
            await self.default(ws, self)
        else:
            await self.wait_next()
        await ws.close(1001, "scene over")

    async def wait_next(self, timeout=20):
        """Wait until the test says the current scene may end."""
        await asyncio.wait_for(self.next_scene.wait(), timeout)
        if not self.closing:
            self.next_scene.clear()

    async def close(self):
        self.closing = True
        self.next_scene.set()
        self.server.close()
        await self.server.wait_closed()


def env(offset, data, group="notifications", epoch="e1"):
    return json.dumps({"type": "message", "group": group, "epoch": epoch,
                       "offset": offset, "data": data})


def status(nid, st):
    return {"notification_id": nid, "status": st, "timestamp": "2026-01-01T00:00:00Z"}


def recovered(offset, ok, missed, epoch="e1"):
    return json.dumps({"type": "recovered", "group": "notifications", "epoch": epoch,
                       "offset": offset, "recovered": ok, "missed": missed})


async def test_client_speaks_recovery_to_a_scripted_peer():
    sent = {"notification_id": "n2", "status": "sent", "timestamp": "2026-01-01T00:00:02Z",
            "notification": {"id": "n2", "title": "Second", "body": "b", "data": None,
                             "user_id": None}}

    async def first(ws, peer):   # a fresh start: recovered:false, then live frames
        await ws.send(recovered(5, False, 0))
        for off, st in ((6, "queued"), (7, "processing")):
            await ws.send(env(off, status("n1", st)))
        await peer.wait_next()

    async def second(ws, peer):  # resumed from e1:7: two replayed, then live
        await ws.send(env(8, status("n2", "queued")))
        await ws.send(env(9, status("n2", "processing")))
        await ws.send(recovered(9, True, 2))
        await ws.send(env(9, {"duplicate": 9}))        # seen already: dropped
        await ws.send(env(10, sent))
        await ws.send(json.dumps({"type": "message", "data": {"direct": 1}}))
        await ws.send(json.dumps({"plain": "frame"}))  # no envelope (older servers)
        await peer.wait_next()

    async def third(ws, peer):   # history lost: another epoch
        await ws.send(recovered(3, False, 0, epoch="e2"))
        await peer.wait_next()

    async def fourth(ws, peer):  # resumed in the new epoch
        await ws.send(recovered(3, True, 0, epoch="e2"))
        await ws.send(env(4, {"live": "e2"}, epoch="e2"))
        await peer.wait_next()

    peer = ScriptedPeer([first, second, third, fourth])
    await peer.start()
    hostport = "127.0.0.1:%d" % peer.port
    b = None
    try:
        b = await cdp.Browser.start()
        page = await b.new_page()
        await page.navigate("http://%s/" % hostport)
        await wait_state(page, "connected")
        n = await page.wait_for(NOTIF_JS % json.dumps("n1") + "?.statuses.length === 2 && "
                                + NOTIF_JS % json.dumps("n1"), 10, what="n1 queued+processing")
        assert n["statuses"] == ["queued", "processing"] and not n["replayed"], n

        for i in range(3):
            since = len(await events(page))
            peer.next_scene.set()
            await wait_reconnected(page, since)
            await wait_state(page, "connected")
            await page.wait_for("(%s).length >= %d" % (RECOVERIES_JS, i + 2), 10,
                                what="recovery %d" % (i + 2))
        await page.wait_for("document.getElementById('other').textContent.includes('e2')", 10,
                            what="the live frame of epoch e2")

        assert peer.queries == ["recover=", "recover=notifications@e1:7",
                                "recover=notifications@e1:10",
                                "recover=notifications@e2:3"], peer.queries
        recs = await page.evaluate(RECOVERIES_JS)
        assert [(r["recovered"], r["missed"]) for r in recs] == [
            ("false", 0), ("true", 2), ("false", 0), ("true", 0)], recs
        assert "replayed offsets 8, 9" in recs[1]["text"], recs[1]
        assert "from e1:7 to e1:9" in recs[1]["text"], recs[1]
        assert "from e1:10 to e2:3" in recs[2]["text"], recs[2]
        assert "reload your state" in recs[2]["text"], recs[2]
        n2 = await notif(page, "n2")
        assert n2["statuses"] == STEPS and n2["title"] == "Second" and n2["replayed"], n2
        other = await page.evaluate(
            "[...document.querySelectorAll('#other pre')].map((p) => p.textContent).reverse()")
        assert other == ['{"direct":1}', '{"plain":"frame"}', '{"live":"e2"}'], other
        # the backoff grows while no connection stays up for 5 s: attempt n
        # waits within [500 * 2^(n-1) / 2, 500 * 2^(n-1)] ms
        delays = [int(re.search(r" in (\d+) ms \(attempt (\d+)", e).group(1))
                  for e in await events(page) if "reconnecting in" in e]
        assert len(delays) == 3, delays
        for k, d in enumerate(delays):
            top = 500 * 2 ** k
            assert top / 2 <= d <= top, (k, d, delays)
        assert_no_errors(page)
        only_local(page, hostport)
    finally:
        if b is not None:
            await b.close()
        await peer.close()


async def test_client_heartbeat_gives_up_on_a_silent_peer():
    received = []

    async def silent(ws, peer):  # reads everything, answers nothing
        try:
            async for m in ws:
                received.append(m)
        except websockets.ConnectionClosed:
            pass

    peer = ScriptedPeer([], default=silent)
    await peer.start()
    hostport = "127.0.0.1:%d" % peer.port
    b = None
    try:
        b = await cdp.Browser.start()
        page = await b.new_page()
        await page.navigate("http://%s/" % hostport)
        await wait_state(page, "connected")
        await page.evaluate("""(() => {
          window.hb = [];
          window.hbc = new Herald.Client('/ws/health/', {recover: false, heartbeat: 300,
            onstate: (e) => window.hb.push([e.detail.state, e.detail.code || 0])});
        })()""")
        seen = await page.wait_for(
            "window.hb.filter((s) => s[0] === 'connected').length >= 2 && window.hb", 15,
            what="connected, given up, connected again")
        assert seen[:3] == [["connecting", 0], ["connected", 0], ["reconnecting", 4000]], seen
        assert '{"type":"ping"}' in received, received
        assert await page.evaluate("window.hbc.close(), window.hbc.state") == "closed"
        assert await page.evaluate("document.getElementById('state').textContent") == "connected"
        assert_no_errors(page)
        only_local(page, hostport)
    finally:
        if b is not None:
            await b.close()
        await peer.close()


if __name__ == "__main__":
    if not os.path.exists(cdp.CHROMIUM):
        print("FAIL: %s is missing (Debian package chromium; `.ci/deps test` installs it)"
              % cdp.CHROMIUM)
        sys.exit(1)
    run_tests(globals())
