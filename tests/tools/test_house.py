"""The house checks: no circle in the include or link graph and no call
against the module order (tools/depgraph.py), no source file over 900 lines
and no function over 150 (tools/sizes.py). Each prints its findings and
exits 1 when it has any; this test fails when either does."""
import os
import subprocess
import sys
import tempfile

SRC = os.environ.get("HERALD_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("HERALD_BUILD_DIR") or os.path.join(SRC, "build")


def run(*args):
    p = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120)
    sys.stdout.write(p.stdout)
    sys.stderr.write(p.stderr)
    return p.returncode


def self_check():
    """The tools find what they are meant to: an include circle across two
    modules, a file of 901 lines, a function of 151 lines (and not a
    prototype that spans lines)."""
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "layer"))
        os.makedirs(os.path.join(d, "actors"))
        os.makedirs(os.path.join(d, "CMakeFiles", "herald_x.dir"))
        with open(os.path.join(d, "layer", "a.h"), "w") as f:
            f.write('#include "actors/b.h"\n')
        with open(os.path.join(d, "actors", "b.h"), "w") as f:
            f.write('#include "layer/a.h"\n')
        subprocess.run(["cc", "-x", "c", "-c", "-o",
                        os.path.join(d, "CMakeFiles", "herald_x.dir", "x.c.o"), "-"],
                       input="int x;\n", text=True, check=True)
        out = subprocess.run([sys.executable, os.path.join(SRC, "tools", "depgraph.py"), d, d],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and "include cycle: actors/b.h <-> layer/a.h" in out.stdout, out
        body = ["int", "proto(int a,", "      int b);", "int", "f(void)", "{"]
        body += ["\treturn;"] * 148 + ["}"]  # f: 151 lines from its name to its }
        body += ["/* pad */"] * (901 - len(body))
        with open(os.path.join(d, "layer", "big.c"), "w") as f:
            f.write("\n".join(body) + "\n")
        out = subprocess.run([sys.executable, os.path.join(SRC, "tools", "sizes.py"), d],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1, out
        assert out.stdout.splitlines() == ["layer/big.c: 901 lines (max 900)",
                                           "layer/big.c:5: f() 151 lines (max 150)"], out.stdout


def main():
    self_check()
    rc_graph = run(os.path.join(SRC, "tools", "depgraph.py"), BUILD, SRC)
    rc_sizes = run(os.path.join(SRC, "tools", "sizes.py"), SRC)
    assert rc_graph in (0, 1) and rc_sizes in (0, 1), (rc_graph, rc_sizes)
    if rc_graph or rc_sizes:
        print("FAIL: house checks have findings (above)")
        return 1
    print("ok: include and link graphs without circles, sizes within bounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
