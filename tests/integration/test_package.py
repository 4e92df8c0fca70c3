"""The Debian package: `cpack -G DEB` from the build tree, its control data
(name, version, shared-library dependencies, /etc/herald/herald.conf as a
conffile) and contents; unpacked into a scratch root with `dpkg -x`, the
packaged binary serves with the packaged config, and the packaged unit
passes `systemd-analyze verify`.

Run by ctest with Debian's /usr/bin/python3 (HERALD_BUILD_DIR set).
"""
import os
import re
import subprocess
import tempfile

from herald_testlib import BUILD, HERALD, run_tests
from deploylib import MODES, clean_env, conf_examples, help_options, run_installed, systemd_verify


def build_deb(out):
    p = subprocess.run(["cpack", "-G", "DEB", "-B", out], cwd=BUILD, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    debs = [f for f in os.listdir(out) if f.endswith(".deb")]
    assert len(debs) == 1, os.listdir(out)
    return os.path.join(out, debs[0])


def field(deb, name):
    p = subprocess.run(["dpkg-deb", "-f", deb, name], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_package_builds_unpacks_and_serves():
    with tempfile.TemporaryDirectory() as d:
        deb = build_deb(os.path.join(d, "out"))
        version = subprocess.run([HERALD, "--version"], capture_output=True,
                                 text=True).stdout.split()[1]
        assert field(deb, "Package") == "herald"
        assert field(deb, "Version") == version, field(deb, "Version")
        depends = field(deb, "Depends")
        for lib in ("libwebsockets", "libcurl4", "libhiredis", "libjansson", "libssl",
                    "libinih"):
            assert lib in depends, (lib, depends)
        ctl = os.path.join(d, "control")
        subprocess.run(["dpkg-deb", "-e", deb, ctl], check=True, timeout=30)
        assert open(os.path.join(ctl, "conffiles")).read().split() == [
            "/etc/herald/herald.conf"]

        listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True,
                                 timeout=30).stdout
        files = {l.split()[-1] for l in listing.splitlines() if not l.startswith("d")}
        want = {"./usr/bin/herald", "./usr/share/man/man1/herald.1",
                "./usr/lib/systemd/system/herald.service", "./etc/herald/herald.conf"}
        assert want <= files, files
        assert files - want <= {"./usr/bin/herald-bench"}, files

        root = os.path.join(d, "root")
        subprocess.run(["dpkg", "-x", deb, root], check=True, timeout=60)
        herald = os.path.join(root, "usr/bin/herald")
        conf = os.path.join(root, "etc/herald/herald.conf")
        text = open(conf).read()
        names = [n for n, _ in help_options(herald) if n not in MODES]
        assert set(names) <= set(conf_examples(text)), names
        p = subprocess.run([herald, "serve", "--check", "--config", conf], capture_output=True,
                           text=True, timeout=20, env=clean_env())
        assert p.returncode == 0, p.stderr
        run_installed(herald, conf)

        unit = os.path.join(root, "usr/lib/systemd/system/herald.service")
        body = open(unit).read()
        assert re.search(r"^ExecStart=/usr/bin/herald serve --config /etc/herald/herald.conf$",
                         body, re.M), body
        # verify needs ExecStart's binary where the unit says; unless the
        # package is installed on this machine, check the packaged unit with
        # only that path pointed into the scratch root.
        if os.path.exists("/usr/bin/herald"):
            check = unit
        else:
            check = os.path.join(d, "herald.service")
            with open(check, "w") as f:
                f.write(body.replace("ExecStart=/usr/bin/herald",
                                     "ExecStart=%s" % herald).replace(
                    "--config /etc/herald/", "--config %s/etc/herald/" % root))
            print("note: /usr/bin/herald is not installed here; verifying the packaged unit "
                  "with ExecStart pointed into the scratch root")
        why = systemd_verify(check, os.path.join(root, "usr/share/man"))
        if why:
            print("SKIP systemd-analyze verify: %s" % why)


if __name__ == "__main__":
    run_tests(globals())
