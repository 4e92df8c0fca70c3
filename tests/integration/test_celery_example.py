"""examples/django end to end: redis-server, herald --redis, a real Celery
worker (Debian's python3-celery, broker = the same Redis, db 1) running the
reference project's send_notification_task; the task is called with .delay and a
herald WebSocket client on /ws/notifications/ receives its message."""
import asyncio
import json
import os
import subprocess
import sys
import time

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS)
from herald_testlib import Herald, RedisServer, recv_json, run_tests, _procs  # noqa: E402

import websockets  # noqa: E402

SRC = os.environ.get("HERALD_SOURCE_DIR") or os.path.dirname(TESTS)
EXAMPLE = os.path.join(SRC, "examples", "django")


def start_worker(env, log_path):
    log = open(log_path, "wb")
    p = subprocess.Popen(
        ["/usr/bin/python3", "-m", "celery", "-A", "notify_project", "worker",
         "--pool", "solo", "--concurrency", "1", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-l", "info"],
        cwd=EXAMPLE, env=env, stdout=log, stderr=subprocess.STDOUT)
    _procs.append(p)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if p.poll() is not None:
            break
        with open(log_path, "rb") as f:
            if b" ready." in f.read():
                return p
        time.sleep(0.2)
    with open(log_path, "rb") as f:
        raise RuntimeError("celery worker did not start:\n%s" % f.read().decode()[-3000:])


async def test_celery_task_reaches_herald_client():
    rs = RedisServer()
    env = dict(os.environ)
    env["HERALD_EXAMPLE_REDIS"] = "127.0.0.1:%d" % rs.port
    env["CELERY_BROKER_URL"] = "redis://127.0.0.1:%d/1" % rs.port
    env["DJANGO_SETTINGS_MODULE"] = "notify_project.settings"
    env["PYTHONPATH"] = EXAMPLE
    log_path = "/tmp/herald-celery-%d.log" % os.getpid()
    worker = None
    try:
        with Herald("--redis", rs.url, threads=1) as h:
            worker = start_worker(env, log_path)
            async with websockets.connect(h.url("/ws/notifications/")) as ws:
                await ws.send(json.dumps({"type": "whoami"}))
                await recv_json(ws)
                # the task is queued from this process, as a Django view would
                os.environ.update({k: env[k] for k in (
                    "HERALD_EXAMPLE_REDIS", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")})
                sys.path.insert(0, EXAMPLE)
                import django
                django.setup()
                from notifications.tasks import send_notification_task
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(
                    None, lambda: send_notification_task.delay({"id": "n-42"}))
                m = await recv_json(ws, timeout=30)
                assert m["notification_id"] == "n-42" and m["status"] == "sent", m
                assert m["timestamp"].endswith("+00:00"), m
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()
        rs.stop()


if __name__ == "__main__":
    run_tests(globals())
