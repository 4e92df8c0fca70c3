"""Smoke test of the load harness: build/raw-ceiling + build/herald-bench.

Starts raw-ceiling on a free loopback port, runs herald-bench for ~2 s with
50 connections and 50 broadcasts/s, and checks the JSON line: well formed,
every broadcast delivered to every connection (the raw ceiling never drops),
latencies positive and ordered.  No speed assertions.
"""
import json
import os
import re
import subprocess
import sys
import time

BUILD = os.environ.get("HERALD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
CEILING = os.path.join(BUILD, "raw-ceiling")
BENCH = os.path.join(BUILD, "herald-bench")

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def start_ceiling(batch):
    p = subprocess.Popen([CEILING, "--port", "0", "--batch", str(batch)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()  # printed once listening; the process exits if it cannot
    m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    if not m:
        p.kill()
        raise SystemExit("raw-ceiling did not start: %r %s" % (line, p.stderr.read()))
    return p, int(m.group(1))


def run_bench(port, pid, extra):
    cmd = [BENCH, "--url", "ws://127.0.0.1:%d/ws/notifications/" % port,
           "-n", "50", "--publish", "http://127.0.0.1:%d/api/groups/notifications/send" % port,
           "--rate", "50", "-d", "2", "--drain", "5", "--settle", "0.2",
           "--server-pid", str(pid), "-q"] + extra
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    print("$", " ".join(cmd))
    print(r.stderr.strip())
    check(r.returncode == 0, "herald-bench exit code %d" % r.returncode)
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    check(len(lines) == 1, "exactly one stdout line, got %d" % len(lines))
    try:
        return json.loads(lines[-1])
    except (ValueError, IndexError) as e:
        failures.append("JSON line does not parse: %s (%r)" % (e, r.stdout))
        return None


def check_result(j, label):
    if j is None:
        return
    for key in ("connections", "connect_failures", "frames", "expected", "published",
                "deliveries_per_s", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms",
                "rss_before_kb", "rss_after_kb", "bytes_per_conn"):
        check(key in j, "%s: key %s present" % (label, key))
    if failures:
        return
    check(j["connections"] == 50, "%s: 50 connections open (got %s)" % (label, j["connections"]))
    check(j["connect_failures"] == 0, "%s: no connect failures" % label)
    check(j["publish_errors"] == 0, "%s: no publish errors" % label)
    # 2 s at 50/s: about 100 broadcasts; the exact count is what the server accepted
    check(80 <= j["published"] <= 101, "%s: ~100 broadcasts published (got %d)" % (label, j["published"]))
    check(j["frames"] == j["connections"] * j["published"],
          "%s: frames %d == connections x published %d" % (label, j["frames"], j["connections"] * j["published"]))
    check(j["frames_without_t"] == 0, "%s: every frame carried t" % label)
    check(j["latency_samples"] == j["frames"], "%s: one latency sample per frame" % label)
    check(0 < j["p50_ms"] <= j["p99_ms"] <= j["max_ms"],
          "%s: 0 < p50 %.3f <= p99 %.3f <= max %.3f" % (label, j["p50_ms"], j["p99_ms"], j["max_ms"]))
    check(j["p90_ms"] <= j["p999_ms"] <= j["max_ms"], "%s: p90 <= p99.9 <= max" % label)
    check(j["deliveries_per_s"] > 0, "%s: deliveries/s positive" % label)
    check(j["rss_before_kb"] > 0 and j["rss_after_kb"] > 0, "%s: server RSS read" % label)


def main():
    if not (os.path.exists(CEILING) and os.path.exists(BENCH)):
        # the sanitizer build configures with HERALD_BENCH=OFF
        print("bench binaries not built in %s (HERALD_BENCH=OFF): nothing to test" % BUILD)
        print("0 passed, 0 failed")
        return 0
    for batch, extra, label in ((1, [], "batch1-herald-body"),
                                (16, ["--body", "raw", "--client-threads", "2"], "batch16-raw-body")):
        p, port = start_ceiling(batch)
        try:
            j = run_bench(port, p.pid, extra)
            check_result(j, label)
        finally:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                failures.append("%s: raw-ceiling did not exit on SIGTERM" % label)
    # bad usage is refused clearly: non-loopback target, missing url
    r = subprocess.run([BENCH, "--url", "ws://10.0.0.1:80/x", "-n", "1"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 2 and "non-loopback" in r.stderr, "non-loopback target refused (rc %d, %r)" % (r.returncode, r.stderr))
    r = subprocess.run([BENCH, "-n", "5"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 2 and "--url" in r.stderr, "missing --url refused")
    r = subprocess.run([BENCH, "--url", "ws://127.0.0.1:1/x", "-n", "100000000"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 2, "absurd -n refused (rc %d)" % r.returncode)
    r = subprocess.run([BENCH, "--url", "ws://127.0.0.1:1/x", "-n", "900000"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 2 and "file descriptors" in r.stderr, "fd limit explained (%r)" % r.stderr)
    if failures:
        print("%d checks failed" % len(failures))
        return 1
    print("bench smoke: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
