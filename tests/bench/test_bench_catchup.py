"""herald-bench --catchup: N clients K frames behind reconnecting at once with
?recover= (bench/README.md, "Catching up after a reconnect").

Against the real herald (memory layer, one I/O thread): 50 clients, 20
frames behind, every one catches up (the K envelopes in order, then
recovered:true with missed:20) and the JSON line adds up; with a history
shorter than K every client gets recovered:false and the bench exits 1.
Against a scripted server that breaks one replay each way (a duplicate, a
gap, another epoch, recovered:false, missed off by one, a close mid-replay):
each fault is counted under its own name and only the clean replays count
as caught up. bench/catchup_rounds runs one small round on each layer, and
one on Redis with the node restarted before the reconnect (--catchup-hold):
the fresh node fills every resume from the shared history in Redis.
No timing assertions.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import threading

from herald_testlib import BUILD, Herald, run_tests

BENCH = os.path.join(BUILD, "herald-bench")
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench",
                      "catchup_rounds")
ERR_KEYS = ("err_position", "err_timeout", "err_connect", "err_closed", "err_offset",
            "err_duplicate", "err_epoch", "err_recovered", "err_parse")


def bench(port, n, k, *extra):
    cmd = [BENCH, "--url", "ws://127.0.0.1:%d/ws/notifications/" % port, "-n", str(n),
           "--publish", "http://127.0.0.1:%d/api/groups/notifications/send" % port,
           "--catchup", str(k), "--connect-rate", "0", "--connect-timeout", "20", "-q"]
    cmd += list(extra)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    print("$", " ".join(cmd), "->", r.returncode)
    print(r.stdout.strip(), r.stderr.strip())
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    assert len(lines) == 1, lines
    return r.returncode, json.loads(lines[0])


def test_every_client_catches_up_on_the_memory_layer():
    with Herald("--layer", "memory", threads=1) as h:
        rc, j = bench(h.port, 50, 20)
        assert rc == 0, rc
        assert j["mode"] == "catchup" and j["ok"] is True, j
        assert j["connections"] == 50 and j["k"] == 20, j
        assert j["caught_up"] == 50 and j["errors"] == 0, j
        for key in ERR_KEYS:
            assert j[key] == 0, (key, j)
        assert j["offset_after"] == j["offset_before"] + 20, j
        assert re.fullmatch(r"[0-9a-f]{16}", j["epoch"]), j
        assert j["replayed_frames"] == 50 * 20, j
        assert 0 < j["catchup_p50_ms"] <= j["catchup_p99_ms"] <= j["catchup_max_ms"], j
        assert 0 <= j["after_101_max_ms"] <= j["catchup_max_ms"], j
        assert j["all_caught_up_s"] >= j["catchup_max_ms"] / 1000.0 - 0.001, j
        assert j["server_cpu_s"] == -1, j  # no --server-pid
        # a second run on the same node starts where the first one left off
        rc, j2 = bench(h.port, 50, 20, "--server-pid", str(h.proc.pid))
        assert rc == 0 and j2["offset_before"] == j["offset_after"], j2
        assert j2["epoch"] == j["epoch"] and j2["caught_up"] == 50, j2
        assert j2["server_cpu_s"] >= 0, j2


def test_a_history_shorter_than_k_fails_every_client():
    with Herald("--layer", "memory", "--history", "notifications=10:300", threads=1) as h:
        rc, j = bench(h.port, 20, 12)
        assert rc == 1, rc
        assert j["ok"] is False and j["caught_up"] == 0 and j["errors"] == 20, j
        assert j["err_recovered"] == 20, j
        assert "recovered is not true" in j["first_error"], j


# ---- a scripted server that breaks one replay each way ----

EPOCH = "00000000000000aa"
BASE = 5
FAULTS = ["duplicate", "gap", "epoch", "recovered_false", "missed", "close"]


def ws_frame(text):
    b = text.encode()
    n = len(b)
    head = bytes([0x81, n]) if n < 126 else bytes([0x81, 126, n >> 8, n & 0xFF])
    return head + b


class Scripted:
    def __init__(self, k):
        self.k = k
        self.lock = threading.Lock()
        self.published = 0
        self.resumes = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        c.settimeout(30)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    got = c.recv(65536)
                    if not got:
                        return
                    buf += got
                head, buf = buf.split(b"\r\n\r\n", 1)
                line = head.split(b"\r\n")[0].decode()
                if line.startswith("POST"):
                    m = re.search(rb"(?i)content-length: *(\d+)", head)
                    need = int(m.group(1)) if m else 0
                    while len(buf) < need:
                        buf += c.recv(65536)
                    buf = buf[need:]
                    with self.lock:
                        self.published += 1
                    c.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
                    continue
                self.upgrade(c, line.split()[1])
                while c.recv(65536):
                    pass
                return
        except OSError:
            return
        finally:
            c.close()

    def upgrade(self, c, path):
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
                  b"\r\n\r\n")
        pos = path.split("recover=", 1)[1]
        with self.lock:
            latest = BASE + self.published
        rec = {"type": "recovered", "group": "notifications", "epoch": EPOCH,
               "offset": latest, "recovered": False, "missed": 0}
        if pos == "":
            c.sendall(ws_frame(json.dumps(rec, separators=(",", ":"))))
            return
        assert pos == "notifications@%s:%d" % (EPOCH, BASE), pos
        with self.lock:
            fault = FAULTS[self.resumes] if self.resumes < len(FAULTS) else None
            self.resumes += 1
        offsets = list(range(BASE + 1, BASE + self.k + 1))
        if fault == "duplicate":
            offsets.insert(2, offsets[1])
        elif fault == "gap":
            del offsets[2]
        out = b""
        for i, off in enumerate(offsets):
            if fault == "close" and i == 3:
                c.sendall(out)
                c.shutdown(socket.SHUT_RDWR)
                return
            env = {"type": "message", "group": "notifications",
                   "epoch": "00000000000000bb" if fault == "epoch" and i == 4 else EPOCH,
                   "offset": off, "data": {"catchup": off}}
            out += ws_frame(json.dumps(env, separators=(",", ":")))
        rec.update(recovered=fault != "recovered_false",
                   missed=self.k - 1 if fault == "missed" else self.k)
        c.sendall(out + ws_frame(json.dumps(rec, separators=(",", ":"))))


def test_each_fault_of_a_replay_is_counted():
    s = Scripted(10)
    rc, j = bench(s.port, 8, 10)
    assert rc == 1, rc
    assert j["offset_before"] == BASE and j["offset_after"] == BASE + 10, j
    assert j["caught_up"] == 2 and j["errors"] == 6, j
    want = {"err_duplicate": 1, "err_offset": 1, "err_epoch": 1, "err_recovered": 2,
            "err_closed": 1, "err_connect": 0, "err_parse": 0, "err_timeout": 0,
            "err_position": 0}
    assert {key: j[key] for key in want} == want, j
    assert s.resumes == 8, s.resumes


def test_bad_catchup_options_are_refused():
    for args, what in ((["--catchup-hold"], "--catchup-hold needs --catchup"),
                       (["--catchup", "5"], "--catchup K wants"),
                       (["--catchup", "0"], "--catchup wants K >= 1")):
        r = subprocess.run([BENCH, "--url", "ws://127.0.0.1:1/ws/notifications/", "-n", "1"]
                           + args, capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and what in r.stderr, (args, r.returncode, r.stderr)


def test_catchup_rounds_on_both_layers():
    assert shutil.which("redis-server"), "redis-server is not installed"
    for extra in ([], ["--redis"], ["--redis", "--restart"]):
        r = subprocess.run([SCRIPT] + extra + ["1", "50", "20"],
                           env=dict(os.environ, BUILD=BUILD), capture_output=True, text=True,
                           timeout=120)
        print(r.stdout, r.stderr)
        assert r.returncode == 0, r.returncode
        lines = r.stdout.strip().splitlines()
        assert lines[0] == "== catch-up: N=50 clients, K=20 frames behind, layer %s%s, 1 rounds" % (
            "redis" if extra else "memory",
            ", node restarted before the reconnect" if "--restart" in extra else ""), lines
        assert lines[1].startswith("round 1: caught up 50/50, errors 0, all caught up "), lines
        assert re.match(r"all caught up: median [0-9.]+ s, worst [0-9.]+ s over 1 good "
                        r"round\(s\); 0 round\(s\) failed$", lines[2]), lines


if __name__ == "__main__":
    if not os.path.exists(BENCH):
        print("herald-bench not built in %s (HERALD_BENCH=OFF): nothing to test" % BUILD)
    else:
        run_tests(globals())
