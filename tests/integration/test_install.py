"""`cmake --install` of the build tree: with DESTDIR into a scratch directory
the layout (bin/herald, bin/herald-bench, share/man/man1/herald.1,
lib/systemd/system/herald.service, etc/herald/herald.conf), the man page
against `herald serve --help`, the unit's hardening, the config file (every
option of --help present, commented out, and each example value valid), and
the installed binary serving with the installed config. With --prefix, the
unit through `systemd-analyze verify`.

Run by ctest with Debian's /usr/bin/python3 (HERALD_BUILD_DIR set).
"""
import os
import re
import shutil
import subprocess
import tempfile

from herald_testlib import BUILD, HERALD, run_tests
from deploylib import (MODES, clean_env, conf_examples, conf_settings, help_options,
                       run_installed, systemd_verify)


def install(dest=None, prefix="/usr/local"):
    e = dict(os.environ)
    if dest is not None:
        e["DESTDIR"] = dest
    p = subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix], capture_output=True,
                       text=True, timeout=120, env=e)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def files_under(root):
    out = set()
    for d, _, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def test_destdir_layout_and_installed_node():
    with tempfile.TemporaryDirectory() as dest:
        install(dest)
        root = os.path.join(dest, "usr/local")
        want = {"bin/herald", "share/man/man1/herald.1", "lib/systemd/system/herald.service",
                "etc/herald/herald.conf"}
        if os.path.exists(os.path.join(BUILD, "herald-bench")):
            want.add("bin/herald-bench")
        assert files_under(dest) == {"usr/local/" + f for f in want}, files_under(dest)
        for b in ("bin/herald", "bin/herald-bench"):
            if b in want:
                assert os.access(os.path.join(root, b), os.X_OK), b
        herald = os.path.join(root, "bin/herald")
        conf = os.path.join(root, "etc/herald/herald.conf")
        v = subprocess.run([herald, "--version"], capture_output=True, text=True, timeout=10)
        assert v.returncode == 0 and v.stdout.startswith("herald "), v
        # The installed config as it is: only defaults, so --check is clean.
        p = subprocess.run([herald, "serve", "--check", "--config", conf], capture_output=True,
                           text=True, timeout=20, env=clean_env())
        assert p.returncode == 0 and conf in p.stdout, (p.returncode, p.stderr)
        run_installed(herald, conf)


def test_man_page_agrees_with_serve_help():
    with tempfile.TemporaryDirectory() as dest:
        install(dest)
        page = os.path.join(dest, "usr/local/share/man/man1/herald.1")
        text = open(page).read()
        opts = help_options(HERALD)
        # Each .TP entry of the OPTIONS section: ".B \-\-name" then the text.
        entries = re.findall(r"^\.TP\n\.B \\-\\-([a-z0-9\\-]+)\n(.*)$", text, re.M)
        got = [(n.replace("\\-", "-"), t.replace("\\-", "-").replace("\\e", "\\"))
               for n, t in entries]
        want = [(n, re.sub(" +", " ", rest)) for n, rest in opts]
        assert got == want, (got, want)
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "FILES", "EXIT STATUS"):
            assert ".SH %s" % section in text or '.SH "%s"' % section in text, section
        ver = subprocess.run([HERALD, "--version"], capture_output=True, text=True).stdout.split()[1]
        assert '"herald %s"' % ver in text, "version in .TH"
        if shutil.which("groff"):
            p = subprocess.run(["groff", "-man", "-ww", "-z", page], capture_output=True,
                               text=True, timeout=30)
            assert p.returncode == 0 and p.stderr == "", p.stderr
        else:
            print("SKIP groff check: groff is not installed")


def unit_keys(text):
    d = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            k, _, v = line.partition("=")
            d.setdefault(k.strip(), []).append(v.strip())
    return d


def test_unit_hardening_and_verify():
    with tempfile.TemporaryDirectory() as d:
        prefix = os.path.join(d, "opt")
        install(prefix=prefix)
        unit = os.path.join(prefix, "lib/systemd/system/herald.service")
        k = unit_keys(open(unit).read())
        assert k["Type"] == ["simple"], k
        assert k["ExecStart"] == ["%s/bin/herald serve --config %s/etc/herald/herald.conf" % (
            prefix, prefix)], k["ExecStart"]
        for key, want in (("DynamicUser", "yes"), ("ProtectSystem", "strict"),
                          ("NoNewPrivileges", "yes"), ("ProtectHome", "yes"),
                          ("PrivateTmp", "yes"), ("Restart", "on-failure")):
            assert k.get(key) == [want], (key, k.get(key))
        assert int(k["LimitNOFILE"][0]) >= 65536, k["LimitNOFILE"]
        assert k["WantedBy"] == ["multi-user.target"], k
        why = systemd_verify(unit, os.path.join(prefix, "share/man"))
        if why:
            print("SKIP systemd-analyze verify: %s" % why)


def test_config_file_lists_every_option_commented():
    with tempfile.TemporaryDirectory() as dest:
        install(dest)
        conf = os.path.join(dest, "usr/local/etc/herald/herald.conf")
        herald = os.path.join(dest, "usr/local/bin/herald")
        text = open(conf).read()
        assert conf_settings(text) == [], conf_settings(text)
        ex = conf_examples(text)
        names = [n for n, _ in help_options(HERALD) if n not in MODES]
        missing = [n for n in names if n not in ex]
        assert not missing, "options of serve --help missing from herald.conf: %r" % missing
        # Each example value, uncommented alone, is one that serve accepts.
        for name in names:
            if name in ("tls-cert", "tls-key"):
                continue  # files that this machine does not have
            for value in ex[name]:
                one = os.path.join(dest, "one.conf")
                with open(one, "w") as f:
                    f.write("[herald]\n%s = %s\n" % (name, value))
                p = subprocess.run([herald, "serve", "--check", "--config", one],
                                   capture_output=True, text=True, timeout=20, env=clean_env())
                assert p.returncode == 0, (name, value, p.stderr)


if __name__ == "__main__":
    run_tests(globals())
