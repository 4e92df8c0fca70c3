"""bench/redis_latency_rounds, the Redis-layer latency rounds bench/README.md
quotes ("The history thread's wake-up"): one round of 2 s at 10
group_sends/s to 20 clients, this build with history on and off and, as
the "previous" build, the same binary: three lines, each with every frame
delivered and its percentiles in order. No speed assertions."""
import os
import re
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "bench", "redis_latency_rounds")
BUILD = os.environ.get("HERALD_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))


def main():
    if not os.path.exists(os.path.join(BUILD, "herald-bench")):
        print("herald-bench not built in %s (HERALD_BENCH=OFF): nothing to test" % BUILD)
        return
    assert shutil.which("redis-server"), "redis-server is not installed"
    r = subprocess.run([SCRIPT, "1", "2", "20", os.path.join(BUILD, "herald")],
                       env=dict(os.environ, BUILD=BUILD), capture_output=True, text=True,
                       timeout=300)
    print(r.stdout, r.stderr)
    assert r.returncode == 0, r.returncode
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "== round 1 (N=20, 2s at 10/s)", lines
    assert [l.split()[0] for l in lines[1:]] == ["herald", "herald-histoff", "herald-prev"], lines
    for l in lines[1:]:
        m = re.search(r"frames (\d+)/(\d+) +p50 ([\d.]+) +p90 ([\d.]+) +p99 ([\d.]+) +"
                      r"max ([\d.]+) ms$", l)
        assert m, l
        assert int(m[1]) == int(m[2]) == 20 * 20, l
        p = [float(m[i]) for i in range(3, 7)]
        assert 0 < p[0] <= p[1] <= p[2] <= p[3], l
    print("ok")


if __name__ == "__main__":
    main()
