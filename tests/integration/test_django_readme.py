"""examples/django/README.md, run as written: every ```sh block in order, in
one bash shell started in the repository's root, with free ports in
REDIS_PORT, HERALD_PORT and DJANGO_PORT. Two steps are not run but checked:
the apt-get line (each package it names must be installed; the test does
not install anything) and the build line (ctest has built herald already:
HERALD points at that build). Then what the README promises: a login, a
token for alice, the Celery task's frame and `herald send`'s frame on the
Python watcher, the browser page, and everything stopped.

Run by ctest with Debian's /usr/bin/python3 (HERALD_BUILD_DIR set).
"""
import json
import os
import re
import shlex
import signal
import subprocess
import tempfile

from herald_testlib import BUILD, free_port, run_tests

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
            out.append(line)
    return "\n".join(out) + "\n", packages


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
        p = subprocess.Popen(["bash", "-c", script], cwd=SRC, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = p.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            raise AssertionError("README commands took over 240 s:\n%s\n%s" % (
                out[-3000:], err[-3000:]))
        finally:
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


if __name__ == "__main__":
    run_tests(globals())
