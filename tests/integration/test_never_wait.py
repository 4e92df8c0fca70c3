"""An I/O thread never waits on the router (docs/PROTOCOL.md: a send is
never refused because the router is busy). A burst of group sends from
3000 HTTP connections at once, each with its request in flight, on one I/O
thread that also feeds 50 WebSocket receivers: every request is answered
202, none is lost or refused, and no reply is dropped on the way back. The
path where the router's mailbox is really full is tests/transport/
test_retry.c (a real router held busy)."""
import json
import os
import subprocess

from herald_testlib import Herald, run_tests

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "bench", "http_burst.py")


def test_a_burst_of_sends_is_answered_in_full():
    with Herald(threads=1) as h:
        out = subprocess.run(["/usr/bin/python3", BENCH, "--port", str(h.port), "--conns", "3000",
                              "--receivers", "50", "--timeout", "60"],
                             capture_output=True, text=True, timeout=90)
        assert out.returncode == 0, out.stderr
        r = json.loads(out.stdout.strip().splitlines()[-1])
        assert r["statuses"] == {"202": 3000}, r
        assert r["unanswered"] == 0, r
        st, _, _ = h.http("GET", "/healthz")
        assert st == 200
        assert "lost" not in h.log(), h.stderr()
        assert "busy" not in h.log(), h.stderr()


if __name__ == "__main__":
    run_tests(globals())
