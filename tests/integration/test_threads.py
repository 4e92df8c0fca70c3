"""The node's threads and their scheduling (actors/sys_thread.c): the I/O
threads keep the default policy; the actors (router, consumers, worker) and
nng's own threads run under SCHED_BATCH, so that none of their wake-ups
preempts an I/O thread; on the Redis layer the bridge's threads too."""
import os
import time

from herald_testlib import Herald, RedisServer, run_tests


def threads(pid):
    """name -> [policy] for every thread of pid."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            name = f.read().strip()
        out.setdefault(name, []).append(os.sched_getscheduler(int(tid)))
    return out


def settled(pid, io_threads):
    """The threads once each has its own name: a new thread carries its
    creator's name ("herald") until it sets its own, so wait (at most 5 s)
    until only the main thread and the I/O threads are called herald."""
    deadline = time.monotonic() + 5
    while True:
        t = threads(pid)
        if len(t.get("herald", [])) == 1 + io_threads or time.monotonic() > deadline:
            return t
        time.sleep(0.02)


def check(t, batch_names):
    assert t.get("herald") and all(p == os.SCHED_OTHER for p in t["herald"]), t
    for name in batch_names:
        assert t.get(name), (name, sorted(t))
        assert all(p == os.SCHED_BATCH for p in t[name]), (name, t[name])
    nng = [n for n in t if n.startswith("nng:")]
    assert "nng:task" in nng, sorted(t)
    for n in nng:
        assert all(p == os.SCHED_BATCH for p in t[n]), (n, t[n])


def test_memory_layer_actors_and_nng_are_batch_io_threads_are_not():
    h = Herald(threads=2)
    try:
        t = settled(h.proc.pid, 2)
        assert len(t["herald"]) == 3, t  # the main thread and two I/O threads
        check(t, ["herald-router", "worker", "notifications", "health"])
    finally:
        rc, _ = h.stop()
        assert rc == 0, rc


def test_redis_layer_bridge_threads_are_batch():
    redis = RedisServer()
    h = Herald("--redis", redis.url, threads=1)
    try:
        t = settled(h.proc.pid, 1)
        assert len(t["herald"]) == 2, t
        check(t, ["herald-router", "worker", "herald-drain", "herald-history"])
    finally:
        h.stop()
        redis.stop()


if __name__ == "__main__":
    run_tests(globals())
