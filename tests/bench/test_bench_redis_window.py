"""herald-bench --publish-redis --window: a Redis writer gets no answer from
the node to pace it, so --window W holds each sender back while the
broadcasts it wrote are more than W ahead of what the receivers got.

A real redis-server and a real `herald serve --redis`; herald-bench connects
20 clients, the node is SIGSTOPped before publishing starts and SIGCONTed
after the publish window. With the node stopped nothing is received, so the
publisher may write only W broadcasts (plus one per sender thread that
passed the check at the same moment) instead of thousands; once the node
runs again every one of them reaches every client, with no
slow_consumer drop. Bad --window values are refused.
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from herald_testlib import BUILD, Herald, RedisServer, run_tests  # noqa: E402

BENCH = os.path.join(BUILD, "herald-bench")
N, WINDOW, SENDERS = 20, 4, 2


def bench_cmd(h, r, *extra):
    return [BENCH, "--url", "ws://127.0.0.1:%d/ws/notifications/" % h.port, "-n", str(N),
            "--publish-redis", r.url, "--rate", "0", "--pub-conns", str(SENDERS),
            "--settle", "1", "--drain", "10"] + list(extra)


def test_window_holds_the_writer_back_and_loses_nothing():
    if not os.path.exists(BENCH):
        print("herald-bench not built (HERALD_BENCH=OFF): nothing to test")
        return
    with RedisServer() as r, Herald("--redis", r.url, threads=1) as h:
        p = subprocess.Popen(bench_cmd(h, r, "--window", str(WINDOW), "-d", "1.5"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = p.stderr.readline()  # "connected 20/20 in ..."; then 1 s settle
            assert line.startswith("connected %d/%d" % (N, N)), line
            os.kill(h.proc.pid, signal.SIGSTOP)
            try:
                time.sleep(3.5)  # past the 1 s settle and the 1.5 s publish window
            finally:
                os.kill(h.proc.pid, signal.SIGCONT)
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert p.returncode == 0, (p.returncode, err)
        j = json.loads(out.strip().splitlines()[-1])
        assert j["connections"] == N, j
        assert 1 <= j["published"] <= WINDOW + SENDERS, j
        assert j["frames"] == N * j["published"], j
        assert h.metric('herald_dropped_total{reason="slow_consumer"}') == 0


def test_bad_window_refused():
    if not os.path.exists(BENCH):
        return
    for bad in ("-1", "1000001"):
        r = subprocess.run([BENCH, "--url", "ws://127.0.0.1:1/ws/notifications/",
                            "--publish-redis", "redis://127.0.0.1:1", "--window", bad],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and "--window" in r.stderr, (bad, r.returncode, r.stderr)


if __name__ == "__main__":
    run_tests(globals())
