"""examples/django/README.md, run as written: every ```sh block in order, in
one bash shell started in the repository's root, with free ports in
REDIS_PORT, HERALD_PORT and DJANGO_PORT. Two steps are not run but checked:
the apt-get line (each package it names must be installed; the test does
not install anything) and the build line (ctest has built herald already:
HERALD points at that build). Then what the README promises: a login, a
token for alice, the Celery task's frame and `herald send`'s frame on the
Python watcher, the browser page, and everything stopped. Before the
README's last block (which stops everything), headless Chromium, where it is
installed, logs in on the page, presses its button and sees the frames.

Run by ctest with Debian's /usr/bin/python3 (HERALD_BUILD_DIR set).
"""
import asyncio
import json
import os
import re
import shlex
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request

from herald_testlib import BUILD, _procs, free_port, run_tests

SRC = os.environ.get("HERALD_SOURCE_DIR") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
README = os.path.join(SRC, "examples", "django", "README.md")


def sh_blocks(text):
    return re.findall(r"^```sh\n(.*?)^```$", text, re.M | re.S)


def logical_lines(block):
    return block.replace("\\\n", " ").splitlines()


def script_from_readme(herald):
    out = ["set -euo pipefail"]
    packages = []
    for block in sh_blocks(open(README).read()):
        for line in logical_lines(block):
            if line.startswith("apt-get "):
                install = line[line.index("apt-get install"):]
                packages += [w for w in shlex.split(install)[2:] if not w.startswith("-")]
                continue
            if line.startswith("bash .ci/deps build && cmake"):
                continue
            if line.startswith("export HERALD="):
                out.append("export HERALD=%s" % shlex.quote(herald))
                continue
            if line.startswith('kill "$django_pid"'):
                # The stop block: let the browser check run first.
                out.append('echo "BROWSER-CHECK WORK=$WORK"')
                out.append('while [ ! -e "$TMPDIR/browser-done" ]; do sleep 0.1; done')
            out.append(line)
    return "\n".join(out) + "\n", packages


class Chromium:
    """Headless Chromium driven through the DevTools protocol (websockets)."""

    def __init__(self, tmp):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--remote-debugging-port=%d" % self.port,
             "--user-data-dir=%s" % os.path.join(tmp, "chromium"), "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        _procs.append(self.proc)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % self.port,
                                            timeout=2) as r:
                    pages = [t for t in json.load(r) if t["type"] == "page"]
                if pages:
                    self.ws_url = pages[0]["webSocketDebuggerUrl"]
                    return
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("chromium did not start")
            time.sleep(0.2)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


async def drive_page(ws_url, django_url, herald):
    """Log in as alice, wait for the page's WebSocket, press its button and
    see the task's frame, then one from `herald send`; herald is (binary,
    url). Returns the page's frames."""
    import websockets
    async with websockets.connect(ws_url, max_size=None) as cdp:
        ids = iter(range(1, 1 << 30))

        async def call(method, **params):
            i = next(ids)
            await cdp.send(json.dumps({"id": i, "method": method, "params": params}))
            while True:
                m = json.loads(await asyncio.wait_for(cdp.recv(), 20))
                if m.get("id") == i:
                    assert "error" not in m, m
                    return m["result"]

        async def js(expr):
            r = await call("Runtime.evaluate", expression=expr, returnByValue=True,
                           awaitPromise=True)
            return r["result"].get("value")

        async def until(expr, what, timeout=30):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    v = await js(expr)
                except AssertionError:
                    v = None  # the page is navigating
                if v:
                    return v
                await asyncio.sleep(0.2)
            raise AssertionError("browser: no %s; page: %r" % (
                what, await js("document.body ? document.body.innerText : ''")))

        await call("Page.navigate", url=django_url + "/")
        await until("location.pathname == '/accounts/login/' && !!document.forms[0]",
                    "login form")
        await js("document.querySelector('[name=username]').value = 'alice';"
                 "document.querySelector('[name=password]').value = 'alice-secret-pw';"
                 "document.forms[0].submit(); true")
        await until("location.pathname == '/' && document.getElementById('state') && "
                    "document.getElementById('state').textContent == 'open'",
                    "open WebSocket on the page")
        await js("document.querySelector('#notify button').click(); true")
        text = await until("(t => t.includes('\"notification_id\"') && "
                           "t.includes('Hello from the browser') && t)"
                           "(document.getElementById('frames').textContent)",
                           "frame of the Celery task")
        p = subprocess.run([herald[0], "send", "--url", herald[1], "--user", "1",
                            '{"text": "to the browser"}'], capture_output=True, text=True,
                           timeout=20)
        assert p.returncode == 0, p.stderr
        return await until("(t => t.includes('to the browser') && t)"
                           "(document.getElementById('frames').textContent)",
                           "frame of herald send")


def browser_check(django_port, herald_port, tmp):
    """The README's browser way, done by headless Chromium."""
    if not os.path.exists("/usr/bin/chromium"):
        print("SKIP browser check: chromium is not installed (Debian: chromium)")
        return None
    c = Chromium(tmp)
    try:
        return asyncio.run(drive_page(c.ws_url, "http://127.0.0.1:%s" % django_port, (
            os.path.join(BUILD, "herald"), "http://127.0.0.1:%s" % herald_port)))
    finally:
        c.stop()


def test_readme_commands_run_as_written():
    herald = os.path.join(BUILD, "herald")
    script, packages = script_from_readme(herald)
    assert len(packages) >= 6 and "python3-celery" in packages, packages
    for pkg in packages:
        p = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", pkg], capture_output=True,
                           text=True)
        assert p.stdout == "install ok installed", "README's package %s is not installed" % pkg
    assert "kill " in script and "redis-cli" in script, "the README stops what it starts"

    redis_port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("HERALD_", "DJANGO_", "CELERY_"))}
        env.update({"REDIS_PORT": str(redis_port), "HERALD_PORT": str(free_port()),
                    "DJANGO_PORT": str(free_port()), "TMPDIR": tmp,
                    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        env.pop("PYTHONPATH", None)
        # The README ends with its own `echo "$WORK"` so the test can look.
        script += 'echo "WORK=$WORK"\n'
        err_path = os.path.join(tmp, "stderr.txt")
        p = subprocess.Popen(["bash", "-c", script], cwd=SRC, env=env, stdout=subprocess.PIPE,
                             stderr=open(err_path, "w"), text=True, start_new_session=True)
        browser = None
        # A README that hangs is killed, which ends the reading below.
        killer = threading.Timer(240, lambda: os.killpg(p.pid, signal.SIGKILL))
        killer.start()
        try:
            out = ""
            for line in p.stdout:
                out += line
                if line.startswith("BROWSER-CHECK"):
                    try:
                        browser = browser_check(env["DJANGO_PORT"], env["HERALD_PORT"], tmp)
                    finally:
                        open(os.path.join(tmp, "browser-done"), "w").close()
            p.wait(30)
            err = open(err_path).read()
        finally:
            killer.cancel()
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            subprocess.run(["redis-cli", "-p", str(redis_port), "shutdown", "nosave"],
                           capture_output=True, timeout=10)
        work = re.search(r"^WORK=(.*)$", out, re.M)
        logs = ""
        if work:
            for name in ("herald.log", "celery.log", "django.log"):
                path = os.path.join(work.group(1), name)
                if os.path.exists(path):
                    logs += "\n--- %s\n%s" % (name, open(path).read()[-2500:])
        assert p.returncode == 0, "exit %d\nstdout:\n%s\nstderr:\n%s%s" % (
            p.returncode, out[-3000:], err[-3000:], logs)
        assert "listening on http://127.0.0.1:%s " % env["HERALD_PORT"] in out, out
        assert "login: 302" in out, out
        tok = json.loads(re.search(r'^\{"user_id".*\}$', out, re.M).group(0))
        assert tok["user_id"] == "1" and tok["url"].startswith(
            "ws://127.0.0.1:%s/ws/notifications/1/?token=" % env["HERALD_PORT"]), tok
        queued = json.loads(re.search(r'^\{"id".*\}$', out, re.M).group(0))
        assert queued["status"] == "queued", queued
        frames = [json.loads(l) for l in out.splitlines() if l.startswith(
            ('{"notification_id"', '{"text"'))]
        assert len(frames) == 2, out
        task, shell = frames
        assert task["notification_id"] == queued["id"] and task["status"] == "sent", task
        assert task["title"] == "Hello from Django" and task["timestamp"].endswith("+00:00"), task
        assert shell == {"text": "Hello from the shell"}, shell
        # `grep -c` of the browser page's WebSocket line.
        assert re.search(r"^1$", out, re.M), out
        if browser:
            print(browser)


if __name__ == "__main__":
    run_tests(globals())
