"""bench/drain_rounds, the interleaved Redis drain rounds bench/README.md quotes:
one round of 2,000 prefilled group_sends against this build and, as the
"previous" build, the same binary: two lines, each with every group_send
delivered. No speed assertions."""
import os
import re
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "bench", "drain_rounds")
BUILD = os.environ.get("HERALD_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))


def main():
    if not os.path.exists(os.path.join(BUILD, "herald-bench")):
        print("herald-bench not built in %s (HERALD_BENCH=OFF): nothing to test" % BUILD)
        return
    assert shutil.which("redis-server"), "redis-server is not installed"
    r = subprocess.run([SCRIPT, "1", "2000", os.path.join(BUILD, "herald")],
                       env=dict(os.environ, BUILD=BUILD), capture_output=True, text=True,
                       timeout=300)
    print(r.stdout, r.stderr)
    assert r.returncode == 0, r.returncode
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "== round 1 (K=2000)", lines
    assert [l.split()[0] for l in lines[1:]] == ["herald", "herald-prev"], lines
    for l in lines[1:]:
        m = re.search(r"drain +(\d+) group_sends/s +frames (\d+)/(\d+)$", l)
        assert m, l
        assert int(m[1]) > 0 and int(m[2]) == int(m[3]) == 2000, l
    print("ok")


if __name__ == "__main__":
    main()
