"""A --listen address where a socket already listens is refused at start
(docs/PROTOCOL.md "Running a node"): exactly one stderr line naming the
address with "address in use", nothing on stdout, exit 2; SO_REUSEPORT never
lets a second node take half of the connections. A port left in TIME_WAIT
by a node that just stopped is not "in use"."""
import http.client
import re
import socket
import subprocess

from herald_testlib import HERALD, Herald, free_port, run_tests


def serve(*listen, threads=2):
    """Run `herald serve` on these --listen values; it must not start."""
    args = [HERALD, "serve", "--threads", str(threads)]
    for a in listen:
        args += ["--listen", a]
    try:
        p = subprocess.run(args, capture_output=True, timeout=20)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("herald started on a taken address: %r" % (e.stdout,))
    return p


def assert_refused(p, where):
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == b"", p.stdout
    lines = p.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert where in lines[0] and "address in use" in lines[0], lines
    assert lines[0] == "herald: %s: address in use" % where, lines


def nothing_listens(host, port, family=socket.AF_INET):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        return s.connect_ex((host, port)) != 0


def answered_by(node, n=20):
    """n fresh connections to node's port all answered /healthz 200."""
    for _ in range(n):
        st, body, _ = node.http("GET", "/healthz")
        assert st == 200, (st, body)


def test_second_node_on_a_taken_ipv4_port_exits_2():
    with Herald(threads=2) as first:
        where = "127.0.0.1:%d" % first.port
        assert_refused(serve(where, threads=2), where)
        assert_refused(serve(where, threads=1), where)
        assert first.proc.poll() is None
        answered_by(first)


def test_second_node_on_a_taken_ipv6_port_exits_2():
    with Herald(threads=2, ipv6=True) as first:
        where = "[::1]:%d" % first.port6
        assert_refused(serve(where), where)
        answered_by(first)


def test_localhost_checks_both_addresses():
    # A node holding only [::1]:P: `localhost:P` must be refused for [::1]:P
    # and must leave nothing behind on 127.0.0.1:P.
    port = free_port(socket.AF_INET6, "::1")
    with Herald("--listen", "[::1]:%d" % port, threads=1) as first:
        if not nothing_listens("127.0.0.1", port):
            return  # someone else took the v4 side meanwhile: nothing to check
        assert_refused(serve("localhost:%d" % port), "[::1]:%d" % port)
        assert nothing_listens("127.0.0.1", port)
        st, _, _ = first.http("GET", "/healthz")
        assert st == 200


def python_listener(family, host, reuseport=False):
    s = socket.socket(family, socket.SOCK_STREAM)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((host, 0))
    s.listen(8)
    return s


def test_python_socket_on_the_port_is_refused():
    for family, host, fmt in ((socket.AF_INET, "127.0.0.1", "127.0.0.1:%d"),
                              (socket.AF_INET6, "::1", "[::1]:%d")):
        for reuseport in (False, True):
            with python_listener(family, host, reuseport) as s:
                port = s.getsockname()[1]
                where = fmt % port
                assert_refused(serve(where), where)
                if family == socket.AF_INET6:
                    assert_refused(serve("localhost:%d" % port), where)
                # the socket still gets every connection: nothing joined it
                for _ in range(5):
                    with socket.create_connection((host, port), timeout=2):
                        pass
                    c, _ = s.accept()
                    c.close()


def time_wait_on(port):
    n = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                local, state = cols[1], cols[3]
                if state == "06" and int(local.rsplit(":", 1)[1], 16) == port:
                    n += 1
    return n


def test_restart_on_the_same_port_right_after_a_stop():
    first = Herald(threads=2)
    port = first.port
    # the server closes these first: their TIME_WAIT stays on its side
    for _ in range(10):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/healthz", headers={"Connection": "close"})
        r = c.getresponse()
        r.read()
        assert r.status == 200
        c.close()
    rc, _ = first.stop()
    assert rc == 0, (rc, first.stderr())
    assert time_wait_on(port) > 0, "no TIME_WAIT left on the port: the test proves nothing"
    again = subprocess.Popen([HERALD, "serve", "--threads", "2", "--listen",
                              "127.0.0.1:%d" % port], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        line = again.stdout.readline().decode()
        assert re.match(r"herald \S+ listening on http://127\.0\.0\.1:%d " % port, line), (
            line, again.poll())
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/healthz")
        assert c.getresponse().status == 200
        c.close()
    finally:
        again.terminate()
        assert again.wait(10) == 0


if __name__ == "__main__":
    run_tests(globals())
