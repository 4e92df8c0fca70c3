"""docs/PROTOCOL.md is kept true by this test.

It reads the document's option tables and metric tables. A row is *built*
unless its section heading (or the row) carries "in progress". Then:
- every built option is in `herald serve --help`, and every option of
  `--help` is a built row; an option marked in progress is not in --help
  (when it is built, drop its marker);
- every built metric family is in a live node's /metrics with the type the
  document gives and a sample for every label value it lists, and every
  family the node exposes is a built row; a family marked in progress is not
  exposed. The node runs with --redis, which exposes every family.
"""
import os
import re
import subprocess

from herald_testlib import HERALD, Herald, shared_redis, run_tests

SRC = os.environ.get("HERALD_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(SRC, "docs", "PROTOCOL.md")

OPTION_ROW = re.compile(r"^\|\s*`--([a-z0-9-]+)")
METRIC_ROW = re.compile(r"^\|\s*`((?:herald|process)_[a-z0-9_]+)`\s*\|")
TICKED = re.compile(r"`([^`]+)`")


def parse_doc():
    """{"options": {name: built}, "metrics": {name: (built, type, label, values)}}"""
    options, metrics = {}, {}
    headings = {}
    with open(DOC, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line in lines:
        m = re.match(r"^(#{1,6}) ", line)
        if m:
            level = len(m.group(1))
            headings = {k: v for k, v in headings.items() if k < level}
            headings[level] = line
            continue
        in_progress = any("in progress" in h for h in headings.values()) or "in progress" in line
        m = OPTION_ROW.match(line)
        if m:
            name = m.group(1)
            assert name not in options or options[name] == (not in_progress), \
                "--%s is both built and in progress in PROTOCOL.md" % name
            options[name] = not in_progress
            continue
        m = METRIC_ROW.match(line)
        if m:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            assert len(cells) == 4, "metric row needs 4 cells: %r" % line
            label, values = None, []
            if "=" in cells[2] and "at least" not in cells[2]:
                ticks = TICKED.findall(cells[2])
                label, values = ticks[0], ticks[1:]
            metrics[m.group(1)] = (not in_progress, cells[1], label, values)
    assert options and metrics, "no option or metric tables found in %s" % DOC
    return {"options": options, "metrics": metrics}


def help_options():
    out = subprocess.run([HERALD, "serve", "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out
    names = re.findall(r"^\s+--([a-z0-9-]+)", out.stdout, re.M)
    assert names, out.stdout
    return set(names)


def test_every_option_row_matches_serve_help():
    doc = parse_doc()["options"]
    have = help_options()
    built = {n for n, b in doc.items() if b}
    planned = {n for n, b in doc.items() if not b}
    missing = sorted(built - have)
    assert not missing, "PROTOCOL.md lists as built, herald serve --help lacks: %s" % missing
    undocumented = sorted(have - built - planned)
    assert not undocumented, "herald serve --help has, PROTOCOL.md lacks: %s" % undocumented
    stale = sorted(have & planned)
    assert not stale, "built now, still marked in progress in PROTOCOL.md: %s" % stale
    # the two of README's that the first release did not have
    assert {"event-loop", "io-uring"} <= built


def scrape(node):
    st, text, _ = node.http("GET", "/metrics")
    assert st == 200, st
    types, samples = {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
        elif line and not line.startswith("#"):
            samples.append(line.rsplit(" ", 1)[0])
    return types, samples


def test_every_metric_row_matches_a_live_node():
    doc = parse_doc()["metrics"]
    redis = shared_redis()
    with Herald("--redis", redis.url, threads=1) as node:
        types, samples = scrape(node)
        for name, (built, typ, label, values) in sorted(doc.items()):
            if not built:
                assert name not in types, \
                    "%s is exposed now: drop its in-progress marker in PROTOCOL.md" % name
                continue
            assert name in types, "PROTOCOL.md lists %s as built; /metrics lacks it" % name
            assert types[name] == typ, (name, types[name], typ)
            for v in values:
                sample = '%s{%s="%s"}' % (name, label, v)
                assert sample in samples, "%s: no sample %s" % (name, sample)
        documented = {n for n, (b, _, _, _) in doc.items() if b}
        undocumented = sorted(set(types) - documented)
        assert not undocumented, "/metrics has, PROTOCOL.md lacks: %s" % undocumented


def test_memory_node_exposes_the_families_not_marked_redis_only():
    doc = parse_doc()["metrics"]
    with open(DOC, encoding="utf-8") as f:
        redis_only = set(re.findall(r"^\| `([a-z_]+)` \|[^\n]*with Redis only", f.read(), re.M))
    assert redis_only, "no metric row says 'with Redis only'"
    with Herald(threads=1) as node:
        types, _ = scrape(node)
    built = {n for n, (b, _, _, _) in doc.items() if b}
    assert set(types) == built - redis_only, (sorted(set(types) ^ (built - redis_only)))


if __name__ == "__main__":
    run_tests(globals())
