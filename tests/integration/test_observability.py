"""What an operator sees of a running node, on real processes: the process_*
families and herald_build_info in /metrics against /proc and `herald
--version`, herald_http_requests_total{code} counted exactly, --log-format
json, --access-log lines for HTTP requests and WebSocket sessions,
--trusted-proxies and X-Forwarded-For (loopback addresses only: 127.0.0.2
connects as a second host), bad values, and docs/grafana-dashboard.json
querying only families a live node exposes.

Run by ctest with Debian's /usr/bin/python3 (HERALD_BUILD_DIR set).
"""
import asyncio
import http.client
import json
import os
import re
import subprocess
import time

import websockets

from herald_testlib import HERALD, Herald, recv_json, run_tests, shared_redis, wait_until

SRC = os.environ.get("HERALD_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHBOARD = os.path.join(SRC, "docs", "grafana-dashboard.json")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def scrape(node):
    """({family: type}, {sample: value}) of one GET /metrics."""
    st, text, _ = node.http("GET", "/metrics")
    assert st == 200, st
    types, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
        elif line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            samples[k] = float(v)
    return types, samples


def request(node, method, path, body=None, headers=None, source="127.0.0.1"):
    """(status, body bytes, the client's port) of one request on its own
    connection from the address `source`."""
    c = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10,
                                   source_address=(source, 0))
    c.connect()
    port = c.sock.getsockname()[1]
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data, port


def json_lines(node):
    """Every stderr line, parsed (each must be one JSON object)."""
    out = []
    for line in node.log().splitlines():
        obj = json.loads(line)
        assert isinstance(obj, dict), line
        out.append(obj)
    return out


def access_lines(node, kind):
    return [o for o in json_lines(node) if o.get("access") == kind]


def wait_access(node, kind, n):
    wait_until(lambda: len(access_lines(node, kind)) >= n, 5, what="%d %s access lines" % (n, kind))
    return access_lines(node, kind)


def proc_start_time(pid):
    with open("/proc/stat") as f:
        btime = next(int(l.split()[1]) for l in f if l.startswith("btime "))
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return btime + int(fields[19]) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- metrics

def test_process_families_match_proc():
    t0 = time.time()
    with Herald(threads=2) as node:
        pid = node.proc.pid
        types, s = scrape(node)
        for name, typ in [("process_cpu_seconds_total", "counter"),
                          ("process_resident_memory_bytes", "gauge"),
                          ("process_virtual_memory_bytes", "gauge"),
                          ("process_open_fds", "gauge"), ("process_max_fds", "gauge"),
                          ("process_start_time_seconds", "gauge"),
                          ("herald_build_info", "gauge")]:
            assert types.get(name) == typ, (name, types.get(name))
        with open("/proc/%d/status" % pid) as f:
            vmrss = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))
        rss = s["process_resident_memory_bytes"]
        assert abs(rss - vmrss) <= max(2 << 20, vmrss // 10), (rss, vmrss)
        assert s["process_virtual_memory_bytes"] >= rss
        fds = len(os.listdir("/proc/%d/fd" % pid))
        assert abs(s["process_open_fds"] - fds) <= 3, (s["process_open_fds"], fds)
        with open("/proc/%d/limits" % pid) as f:
            soft = next(l.split()[3] for l in f if l.startswith("Max open files"))
        assert s["process_max_fds"] == float(soft), (s["process_max_fds"], soft)
        start = s["process_start_time_seconds"]
        assert abs(start - proc_start_time(pid)) < 0.05, (start, proc_start_time(pid))
        assert t0 - 2 <= start <= time.time(), (t0, start)
        # open fds follow the connections: ten more sockets, ten more fds
        conns = []
        for _ in range(10):
            c = http.client.HTTPConnection("127.0.0.1", node.port, timeout=5)
            c.request("GET", "/healthz")
            c.getresponse().read()
            conns.append(c)
        _, s2 = scrape(node)
        assert s2["process_open_fds"] - s["process_open_fds"] >= 10, \
            (s["process_open_fds"], s2["process_open_fds"])
        for c in conns:
            c.close()
        # CPU time grows under load, and never goes back
        cpu0 = s2["process_cpu_seconds_total"]
        c = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
        deadline = time.monotonic() + 20
        cpu = cpu0
        while cpu <= cpu0 + 0.05 and time.monotonic() < deadline:
            for _ in range(200):
                c.request("GET", "/metrics")
                c.getresponse().read()
            _, s3 = scrape(node)
            assert s3["process_cpu_seconds_total"] >= cpu
            cpu = s3["process_cpu_seconds_total"]
        c.close()
        assert cpu > cpu0 + 0.05, (cpu0, cpu)


def test_build_info_is_the_version():
    out = subprocess.run([HERALD, "--version"], capture_output=True, text=True, timeout=10)
    version = out.stdout.split()[1]
    with Herald(threads=1) as node:
        _, s = scrape(node)
    infos = {k: v for k, v in s.items() if k.startswith("herald_build_info")}
    assert infos == {'herald_build_info{version="%s"}' % version: 1.0}, infos


async def test_http_requests_counted_by_code_exactly():
    with Herald(threads=2) as node:
        for _ in range(3):
            assert node.http("GET", "/healthz")[0] == 200
        for i in range(2):
            st, _, _ = node.http("POST", "/api/notifications", {"title": "t%d" % i})
            assert st == 202, st
        assert node.http("POST", "/api/groups/g/send", "{not json",
                         {"Content-Type": "application/json"})[0] == 400
        for _ in range(4):
            assert node.http("GET", "/nope")[0] == 404
        async with websockets.connect(node.url("/ws/health/")) as ws:
            await ws.send('{"type":"ping"}')
            await recv_json(ws)
        try:
            async with websockets.connect(node.url("/ws/nope/")):
                raise AssertionError("handshake on /ws/nope/ accepted")
        except websockets.exceptions.InvalidStatusCode as e:
            assert e.status_code == 404
        _, s = scrape(node)  # its own 200 is counted after it was rendered
        codes = {k: v for k, v in s.items() if k.startswith("herald_http_requests_total")}
        want = {"101": 1, "200": 3, "202": 2, "400": 1, "404": 5}
        for code, n in want.items():
            assert codes['herald_http_requests_total{code="%s"}' % code] == n, (code, codes)
        others = {k: v for k, v in codes.items()
                  if v and k[len('herald_http_requests_total{code="'):][:3] not in want}
        assert not others, others
        _, s = scrape(node)
        assert s['herald_http_requests_total{code="200"}'] == 4


# ---------------------------------------------------------------- logs

async def test_json_log_every_line_an_object():
    with Herald("--log-format", "json", "--access-log", "--log-level", "debug",
                "--api-key", "k3y", threads=1) as node:
        node.http("GET", "/healthz")
        node.http("POST", "/api/groups/g/send", {"type": "x"})  # 401: a logged refusal
        async with websockets.connect(node.url("/ws/notifications/")) as ws:
            await ws.send('{"type":"ping"}')
            await recv_json(ws)
        wait_access(node, "ws", 1)
        rc, _ = node.stop()
    assert rc == 0
    lines = node.log().splitlines()
    assert len(lines) >= 6, lines
    levels = set()
    for line in lines:
        obj = json.loads(line)
        assert isinstance(obj, dict), line
        assert TS.match(obj["ts"]), obj
        assert obj["level"] in ("error", "warn", "info", "debug"), obj
        assert isinstance(obj["msg"], str) and obj["msg"], obj
        levels.add(obj["level"])
    assert {"info", "debug"} <= levels, levels
    msgs = [json.loads(l)["msg"] for l in lines]
    assert any(m.startswith("api refused 401 from 127.0.0.1:") for m in msgs), msgs
    assert "stopping" in msgs, msgs


def test_text_log_unchanged_by_default():
    with Herald(threads=1) as node:
        node.http("GET", "/healthz")
        rc, _ = node.stop()
    assert rc == 0
    lines = node.log().splitlines()
    assert lines, lines
    for line in lines:
        ts, level, msg = line.split(" ", 2)
        assert TS.match(ts) and level in ("error", "warn", "info", "debug") and msg, line
        assert "/healthz" not in line, line  # no access log unless asked


def test_access_log_http_line_exact():
    with Herald("--log-format", "json", "--access-log", threads=1) as node:
        body = json.dumps({"type": "notification_message", "message": {"a": 1}})
        t0 = time.monotonic()
        st, data, port = request(node, "POST", "/api/groups/g1/send", body,
                                 {"Content-Type": "application/json"})
        took = time.monotonic() - t0
        assert st == 202 and data == b'{"group":"g1"}', (st, data)
        st, data404, port404 = request(node, "GET", "/no/such%20thing")
        assert st == 404
        lines = wait_access(node, "http", 2)
    a, b = lines[0], lines[1]
    assert a["peer"] == "127.0.0.1:%d" % port, a
    assert (a["method"], a["path"], a["status"], a["bytes"]) == \
        ("POST", "/api/groups/g1/send", 202, len(data)), a
    assert 0 <= a["duration"] <= took, (a, took)
    assert a["level"] == "info" and TS.match(a["ts"]), a
    assert a["msg"].startswith('127.0.0.1:%d - - [' % port), a
    assert a["msg"].endswith('] "POST /api/groups/g1/send" 202 14 %.6fs' % a["duration"]), a
    assert (b["peer"], b["method"], b["path"], b["status"], b["bytes"]) == \
        ("127.0.0.1:%d" % port404, "GET", "/no/such%20thing", 404, len(data404)), b


def test_access_log_text_line():
    with Herald("--access-log", threads=1) as node:
        st, data, port = request(node, "GET", "/healthz")
        assert st == 200
        wait_until(lambda: "/healthz" in node.log(), 5, what="the access line")
        line = next(l for l in node.log().splitlines() if "/healthz" in l)
    m = re.match(r'^(\S+) info 127\.0\.0\.1:(\d+) - - \[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d '
                 r'\+0000)\] "GET /healthz" 200 (\d+) (\d+\.\d{6})s$', line)
    assert m, line
    assert TS.match(m.group(1)) and int(m.group(2)) == port, line
    assert int(m.group(4)) == len(data), (line, len(data))
    time.strptime(m.group(3), "%d/%b/%Y:%H:%M:%S +0000")


async def test_access_log_websocket_session_end():
    with Herald("--log-format", "json", "--access-log", "--max-message", "64", threads=1) as node:
        t0 = time.monotonic()
        async with websockets.connect(node.url("/ws/health/")) as ws:
            port = ws.local_address[1]
            for _ in range(3):
                await ws.send('{"type":"ping"}')
                assert (await recv_json(ws))["type"] == "pong"
            await ws.send('{"type":"whoami"}')
            await recv_json(ws)
            await ws.close(code=4001)
        took = time.monotonic() - t0
        [a] = wait_access(node, "ws", 1)
        assert a["peer"] == "127.0.0.1:%d" % port, a
        assert (a["route"], a["path"], a["close_code"], a["frames_in"], a["frames_out"]) == \
            ("health", "/ws/health/", 4001, 4, 4), a
        assert 0 < a["duration"] <= took, (a, took)
        assert '"WSDISCONNECT /ws/health/" 4001 in=4 out=4 ' in a["msg"], a
        # herald closes: the code it sent (1009, a message over --max-message)
        async with websockets.connect(node.url("/ws/notifications/u_7/")) as ws:
            await ws.send("x" * 200)
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except websockets.exceptions.ConnectionClosed as e:
                assert e.code == 1009, e.code
        lines = wait_access(node, "ws", 2)
        b = lines[1]
        assert (b["route"], b["path"], b["close_code"], b["frames_out"]) == \
            ("user_notifications", "/ws/notifications/u_7/", 1009, 0), b
        # the client goes away without a close frame: 1006
        ws = await websockets.connect(node.url("/ws/notifications/"))
        ws.transport.abort()
        await asyncio.sleep(0.2)  # the loop closes the socket (wait_until blocks it)
        lines = wait_access(node, "ws", 3)
        assert (lines[2]["route"], lines[2]["close_code"]) == ("notifications", 1006), lines[2]
        # a session open at shutdown ends with 1001
        ws = await websockets.connect(node.url("/ws/health/"))
        rc, _ = node.stop()
        assert rc == 0
        await ws.close()
    lines = access_lines(node, "ws")
    assert len(lines) == 4 and lines[3]["close_code"] == 1001, lines


# ---------------------------------------------------------------- proxies

def test_trusted_proxy_forwarded_for_taken_multi_hop():
    with Herald("--log-format", "json", "--access-log", "--trusted-proxies", "127.0.0.0/8",
                threads=1) as node:
        # client, then two proxies; the nearest (127.0.0.5) is trusted
        xff = "198.51.100.7, 203.0.113.9, 127.0.0.5"
        request(node, "GET", "/healthz", headers={"X-Forwarded-For": xff})
        # only trusted hops: the leftmost
        request(node, "GET", "/healthz", headers={"X-Forwarded-For": "127.0.0.9, 127.0.0.8"})
        # not an address: the walk stops at the hop that wrote it
        _, _, port = request(node, "GET", "/healthz", headers={"X-Forwarded-For": "unknown"})
        # ports and brackets as some proxies write them
        request(node, "GET", "/healthz", headers={"X-Forwarded-For": "[2001:db8::1]:4711"})
        request(node, "GET", "/healthz", headers={"X-Forwarded-For": "192.0.2.1:80"})
        lines = wait_access(node, "http", 5)
    peers = [l["peer"] for l in lines]
    assert peers == ["203.0.113.9", "127.0.0.9", "127.0.0.1:%d" % port, "2001:db8::1",
                     "192.0.2.1"], peers


async def test_forwarded_for_only_from_trusted_addresses():
    with Herald("--log-format", "json", "--access-log", "--trusted-proxies", "127.0.0.2",
                "--allowed-origins", "https://ok.example", "--api-key", "k", threads=1) as node:
        xff = {"X-Forwarded-For": "198.51.100.7"}
        _, _, port = request(node, "GET", "/healthz", headers=xff, source="127.0.0.1")
        request(node, "GET", "/healthz", headers=xff, source="127.0.0.2")
        lines = wait_access(node, "http", 2)
        assert [l["peer"] for l in lines] == ["127.0.0.1:%d" % port, "198.51.100.7"], lines
        # the refusal lines name the same address
        st, _, _ = request(node, "POST", "/api/groups/g/send", "{}",
                           {"X-Forwarded-For": "198.51.100.8"}, source="127.0.0.2")
        assert st == 401
        st, _, port = request(node, "POST", "/api/groups/g/send", "{}",
                              {"X-Forwarded-For": "198.51.100.8"}, source="127.0.0.1")
        assert st == 401
        msgs = [o["msg"] for o in json_lines(node)]
        assert "api refused 401 from 198.51.100.8: api_key" in msgs, msgs
        assert "api refused 401 from 127.0.0.1:%d: api_key" % port in msgs, msgs
        # WebSocket sessions and refused handshakes, through lws's own parser
        headers = {"X-Forwarded-For": "198.51.100.9", "Origin": "https://ok.example"}
        sock = __import__("socket").create_connection(("127.0.0.1", node.port),
                                                      source_address=("127.0.0.2", 0))
        async with websockets.connect(node.url("/ws/health/"), sock=sock,
                                      extra_headers=headers) as ws:
            await ws.send('{"type":"ping"}')
            await recv_json(ws)
        [w] = wait_access(node, "ws", 1)
        assert w["peer"] == "198.51.100.9", w
        sock = __import__("socket").create_connection(("127.0.0.1", node.port),
                                                      source_address=("127.0.0.2", 0))
        try:
            async with websockets.connect(node.url("/ws/health/"), sock=sock,
                                          extra_headers={"X-Forwarded-For": "198.51.100.10",
                                                         "Origin": "https://evil.example"}):
                raise AssertionError("bad origin accepted")
        except websockets.exceptions.InvalidStatusCode as e:
            assert e.status_code == 403
        wait_until(lambda: any("handshake refused 403 from 198.51.100.10: origin" == o["msg"]
                               for o in json_lines(node)), 5, what="the refusal line")
        refused = [l for l in access_lines(node, "http") if l["status"] == 403]
        assert [(l["peer"], l["path"]) for l in refused] == [("198.51.100.10", "/ws/health/")], \
            refused


def test_forwarded_for_ignored_without_trusted_proxies():
    with Herald("--log-format", "json", "--access-log", threads=1) as node:
        _, _, port = request(node, "GET", "/healthz", headers={"X-Forwarded-For": "198.51.100.7"})
        [l] = wait_access(node, "http", 1)
    assert l["peer"] == "127.0.0.1:%d" % port, l


def test_ipv6_trusted_proxy():
    with Herald("--log-format", "json", "--access-log", "--trusted-proxies", "::1/128",
                threads=1, ipv6=True) as node:
        node.http("GET", "/healthz", headers={"X-Forwarded-For": "2001:db8::7"}, v6=True)
        node.http("GET", "/healthz", headers={"X-Forwarded-For": "2001:db8::7"})
        lines = wait_access(node, "http", 2)
    assert lines[0]["peer"] == "2001:db8::7", lines
    assert lines[1]["peer"].startswith("127.0.0.1:"), lines


# ---------------------------------------------------------------- options

def test_bad_values_exit_2_with_one_line():
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    cases = [(["--trusted-proxies", "10.0.0.0/33"], None, "--trusted-proxies"),
             (["--trusted-proxies", "10.0.0.1,,10.0.0.2"], None, "--trusted-proxies"),
             (["--trusted-proxies", "proxy.example"], None, "--trusted-proxies"),
             (["--trusted-proxies", "::1/129"], None, "--trusted-proxies"),
             (["--log-format", "xml"], None, "--log-format"),
             ([], {"HERALD_LOG_FORMAT": "yaml"}, "HERALD_LOG_FORMAT"),
             (["--access-log=maybe"], None, "--access-log"),
             ([], {"HERALD_ACCESS_LOG": "yes"}, "HERALD_ACCESS_LOG")]
    for args, extra, name in cases:
        for mode in (["--check"], ["--listen", "127.0.0.1:1"]):
            e = dict(env)
            e.update(extra or {})
            p = subprocess.run([HERALD, "serve"] + mode + args, capture_output=True, text=True,
                               timeout=10, env=e)
            assert p.returncode == 2 and p.stdout == "" and len(p.stderr.splitlines()) == 1 \
                and name in p.stderr, (args, extra, p.returncode, p.stdout, p.stderr)


def test_check_prints_the_new_options():
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    p = subprocess.run([HERALD, "serve", "--check"], capture_output=True, text=True, env=env,
                       timeout=10)
    assert p.returncode == 0
    assert "log-format = text\n" in p.stdout and "access-log = off\n" in p.stdout, p.stdout
    assert "# trusted-proxies: not set\n" in p.stdout, p.stdout
    env["HERALD_TRUSTED_PROXIES"] = "10.1.2.3/8, ::1"
    env["HERALD_LOG_FORMAT"] = "json"
    p = subprocess.run([HERALD, "serve", "--check", "--access-log", "--threads", "1"],
                       capture_output=True, text=True, env=env, timeout=10)
    assert p.returncode == 0, p.stderr
    for want in ("log-format = json\n", "access-log = on\n", "trusted-proxies = 10.0.0.0/8,::1\n",
                 "threads = 1\n"):
        assert want in p.stdout, (want, p.stdout)


# ---------------------------------------------------------------- dashboard

PROMQL_WORDS = {"rate", "irate", "increase", "sum", "avg", "max", "min", "count", "by",
                "without", "on", "ignoring", "group_left", "group_right", "time", "topk",
                "histogram_quantile", "delta", "deriv", "clamp_min", "clamp_max", "and", "or",
                "unless", "offset", "bool", "label_replace", "vector", "scalar", "abs",
                "max_over_time", "min_over_time", "avg_over_time", "changes", "resets"}


def expr_metrics(expr):
    """The metric names an expression reads (labels, strings, ranges and
    function names removed)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    e = re.sub(r"\$\w+", "", e)
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", e)) - PROMQL_WORDS
    return {n for n in names if not re.fullmatch(r"e\d*", n)}


def panels(dash):
    for p in dash["panels"]:
        yield p
        for q in p.get("panels", []):
            yield q


def test_grafana_dashboard_queries_only_exposed_families():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    assert dash["title"] and dash["panels"], dash.keys()
    redis = shared_redis()
    with Herald("--redis", redis.url, threads=1) as node:
        node.http("GET", "/healthz")
        types, _ = scrape(node)
    exposed = set(types)
    for name, typ in types.items():  # _bucket, _sum, _count of histograms
        if typ == "histogram":
            exposed |= {name + "_bucket", name + "_sum", name + "_count"}
    used = set()
    n = 0
    for p in panels(dash):
        if p.get("type") == "row":
            continue
        exprs = [t["expr"] for t in p.get("targets", [])]
        assert exprs, "panel %r has no query" % p.get("title")
        for e in exprs:
            names = expr_metrics(e)
            assert names, (p.get("title"), e)
            missing = names - exposed
            assert not missing, "panel %r queries %s, not in /metrics" % (p.get("title"), missing)
            used |= names
        n += 1
    assert n >= 8, n
    for must in ("process_resident_memory_bytes", "process_cpu_seconds_total",
                 "herald_http_requests_total", "herald_connections", "herald_dropped_total",
                 "herald_redis_up"):
        assert must in used, must


if __name__ == "__main__":
    run_tests(globals())
