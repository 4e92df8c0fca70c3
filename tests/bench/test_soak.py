"""bench/soak, the 60-second version CI runs.

A real redis-server, two real herald nodes and herald-bench: 1,000
connections on node A, 5 % of them closed and reopened per minute, 50
broadcasts/s published through node B's HTTP API, node B SIGTERMed and
restarted at 25 s and Redis killed and restarted at 40 s. The script's bar
must hold for RSS, fds and every loss inside an outage window, and its JSON
and SVG must be written and well formed; its p99 item (the end of the run
against its start) is printed, not asserted: a speed belongs to the bench
run, not to a timed test (bench/README.md, "Soak", has the figures). Besides the bar: the outages were
really made and seen (failed publishes while node B was down, losses while
Redis was down, and at least as many lost broadcasts as node B itself
counted as not federated), connections really churned, and none of the
reconnects failed.
"""
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "bench", "soak")
BUILD = os.environ.get("HERALD_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))
N = 1000


def bad_options():
    bench = os.path.join(BUILD, "herald-bench")
    url = ["--url", "ws://127.0.0.1:1/ws/notifications/"]
    pub = ["--publish", "http://127.0.0.1:1/api/groups/notifications/send"]
    for extra, word in ((["--churn", "-1"], "--churn"), (["--churn", "1001"], "--churn"),
                        (["--report-interval", "-2"], "--report-interval"),
                        (["--keep-publishing"], "--keep-publishing"),
                        (pub + ["--report-file", "/tmp/x"], "--report-file"),
                        (pub + ["--report-interval", "1", "--rate", "500", "--drain", "5"], "loss tracking")):
        r = subprocess.run([bench] + url + extra, capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and word in r.stderr, (extra, r.returncode, r.stderr)


def run_soak():
    with tempfile.TemporaryDirectory(prefix="herald-test-soak-") as d:
        jpath, spath = os.path.join(d, "soak.json"), os.path.join(d, "soak.svg")
        cmd = [SCRIPT, "--duration", "60", "--connections", str(N), "--churn", "5", "--rate", "50",
               "--redis-restart-every", "40", "--node-restart-every", "25", "--sample-every", "5",
               "--build", BUILD, "--json", jpath, "--svg", spath]
        print("$", " ".join(cmd), flush=True)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
        print(r.stdout)
        print(r.stderr[-3000:])
        with open(jpath) as f:
            res = json.load(f)
        svg = ET.parse(spath).getroot()
    return r, res, svg


def main():
    if not os.path.exists(os.path.join(BUILD, "herald-bench")):
        print("herald-bench not built in %s (HERALD_BENCH=OFF): nothing to test" % BUILD)
        return 0
    bad_options()
    r, res, svg = run_soak()
    bar = {b["name"]: b for b in res["bar"]}
    assert set(bar) == {"rss", "fds", "p99", "losses", "bench"}, bar
    print("p99 (reported, not asserted): %s: %s" % (
        "held" if bar["p99"]["ok"] else "not held", bar["p99"]["detail"]))
    for b in res["bar"]:
        if b["name"] != "p99":
            assert b["ok"], "bar not held: %s: %s" % (b["name"], b["detail"])
    # the script exits 1 when any item fails: here only p99 may have
    assert r.returncode == (0 if bar["p99"]["ok"] else 1), r.returncode

    # the run: samples and intervals every 5 s over the minute
    assert len(res["samples"]) >= 10, len(res["samples"])
    assert all(s["rss_kb"] > 0 and s["fds"] >= N for s in res["samples"]), res["samples"]
    ivs = [i for i in res["intervals"] if not i["final"]]
    assert len(ivs) >= 10, len(ivs)
    assert all(i["losses_tracked"] for i in res["intervals"])
    assert all(i["open"] >= N - 10 for i in ivs), [i["open"] for i in ivs]

    # the outages were made where asked, and each ended
    kinds = sorted(o["kind"] for o in res["outages"])
    assert kinds == ["node_b", "redis"], kinds
    for o in res["outages"]:
        assert o["start"] < o["end"] <= o["recovered"], o
        want = 25 if o["kind"] == "node_b" else 40
        assert abs(o["start_t"] - want) < 3, o
    redis = [o for o in res["outages"] if o["kind"] == "redis"][0]
    assert redis["membership_back"] is not None and redis["nodes_up"] is not None, redis

    fin = res["bench_final"]
    # churn: 5 % of 1,000 per minute is ~50 closes and reopens
    assert 30 <= fin["churned"] <= 80 and fin["reopened"] >= fin["churned"] - 5, fin
    assert fin["reconnect_failures"] == 0 and fin["close_timeouts"] == 0, fin
    # node B down: publishes failed (not losses); Redis down: broadcasts lost,
    # at least every one node B counted as not federated
    assert fin["publish_errors"] >= 1, fin
    assert fin["lost_broadcasts"] >= 1 and fin["losses"] >= fin["lost_broadcasts"], fin
    assert fin["lost_broadcasts"] >= res["b_federation_failures"] >= 1, (
        fin["lost_broadcasts"], res["b_federation_failures"])
    assert fin["unchecked_broadcasts"] == 0 and fin["duplicates"] == 0, fin
    assert fin["frames_without_seq"] == 0, fin

    # the SVG: four panels, each with its data, and the outages shaded
    ns = "{http://www.w3.org/2000/svg}"
    assert svg.tag == ns + "svg", svg.tag
    texts = [t.text or "" for t in svg.iter(ns + "text")]
    for title in ("RSS", "open fds", "p99", "losses"):
        assert any(title in t for t in texts), (title, texts[:10])
    assert len(list(svg.iter(ns + "polyline"))) == 3
    shaded = [e for e in svg.iter(ns + "rect") if e.get("fill") in ("#f4b6b6", "#b6cdf4")]
    assert len(shaded) >= 2 * 4, len(shaded)  # both outages on all four panels
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
