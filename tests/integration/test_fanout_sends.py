"""--io-uring on|off (HERALD_IO_URING): the fan-out sends at the end of a
mailbox drain go out batched through io_uring, or as one sendmsg() each. The
log says which; a bad value is one line on stderr and exit 2. With either, a
reader that stalls gets sends cut short in the middle of frames, and lws
answers its pings on the same socket meanwhile: the byte stream it reads
afterwards must still be whole frames, in publish order, every pong intact."""
import ctypes
import http.client
import json
import os
import socket
import subprocess
import threading
import time

from herald_testlib import HERALD, Herald, clean_run_log, run_tests
from test_broadcast import raw_ws


def uring_available():
    """Whether this kernel lets this process create an io_uring (syscall 425,
    io_uring_setup, on every architecture)."""
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)
    fd = libc.syscall(425, 8, params)
    if fd < 0:
        return False
    os.close(fd)
    return True


def test_log_says_which_sends():
    want_on = "fan-out sends: io_uring" if uring_available() else "fan-out sends: sendmsg"
    for mode, env, want in (("on", None, want_on), ("off", None, "fan-out sends: sendmsg"),
                            (None, {"HERALD_IO_URING": "off"}, "fan-out sends: sendmsg")):
        log = clean_run_log(*(("--io-uring", mode) if mode else ()), env=env)
        assert want in log, (mode, env, log)


def test_bad_value_exits_2_with_one_line():
    for args, env, label in ((["--io-uring", "yes"], {}, "--io-uring"),
                             ([], {"HERALD_IO_URING": "1"}, "HERALD_IO_URING")):
        e = dict(os.environ)
        e.pop("HERALD_IO_URING", None)
        e.update(env)
        r = subprocess.run([HERALD, "serve", "--listen", "127.0.0.1:1"] + args, env=e,
                           capture_output=True, timeout=10)
        assert r.returncode == 2, (args, env, r.returncode, r.stderr)
        assert r.stdout == b"", r.stdout
        lines = r.stderr.decode().strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert label in lines[0] and "on or off" in lines[0], lines[0]


def pad_len(i):
    return (i * 7919) % 6000 + 50  # sizes that leave sends cut anywhere


def masked_ping(payload):
    key = os.urandom(4)
    return bytes([0x89, 0x80 | len(payload)]) + key + bytes(
        b ^ key[k % 4] for k, b in enumerate(payload))


def slow_read(sock, stop, out, chunk=8192, pause=0.002, idle=1.5):
    """Read chunk bytes every pause s into out until stop is set and the
    socket stays quiet for idle s: a reader slower than the publisher."""
    sock.settimeout(idle)
    while True:
        try:
            data = sock.recv(chunk)
        except socket.timeout:
            if stop.is_set():
                return
            continue
        if not data:
            return
        out += data
        if not stop.is_set():
            time.sleep(pause)


def parse_frames(buf):
    """Every server frame in buf: (opcode, payload); buf must end on a frame."""
    out, pos = [], 0
    while pos < len(buf):
        assert buf[pos] in (0x81, 0x8A), ("not a frame start", buf[pos:pos + 8], len(out))
        assert buf[pos + 1] & 0x80 == 0, "server frames are unmasked"
        ln, off = buf[pos + 1] & 0x7F, 2
        if ln == 126:
            ln, off = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
        elif ln == 127:
            ln, off = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
        assert pos + off + ln <= len(buf), ("a frame cut short", len(out))
        out.append((buf[pos] & 0x0F, bytes(buf[pos + off:pos + off + ln])))
        pos += off + ln
    return out


def stalled_reader_gets_whole_frames(mode):
    # ~9 MB to a reader taking ~4 MB/s: its socket fills and drains again
    # and again, so sends are cut short at every kind of place
    n, every = 3000, 250
    with Herald("--io-uring", mode, threads=1) as h:
        s = raw_ws(h.port, "/ws/notifications/", rcvbuf=4096)
        pings, raw, stop = [], bytearray(), threading.Event()
        reader = threading.Thread(target=slow_read, args=(s, stop, raw))
        reader.start()

        def publish_all():
            c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
            for i in range(n):
                c.request("POST", "/api/groups/notifications/send",
                          body=json.dumps({"type": "notification_message",
                                           "message": {"seq": i, "pad": "x" * pad_len(i)}}),
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                assert r.status == 202, r.status
                if i % every == every - 1:
                    p = b"ping-%d" % i
                    pings.append(p)
                    s.sendall(masked_ping(p))
            c.close()

        pub = threading.Thread(target=publish_all)
        pub.start()
        pub.join(60)
        assert not pub.is_alive()
        stop.set()
        reader.join(60)
        assert not reader.is_alive()
        frames = parse_frames(raw)
        texts = [json.loads(p) for op, p in frames if op == 1]
        pongs = [p for op, p in frames if op == 10]
        dropped = h.metric('herald_dropped_total{reason="slow_consumer"}')
        seqs = [m["seq"] for m in texts]
        assert seqs == sorted(set(seqs)), "out of order or duplicated"
        assert seqs[-1] == n - 1, seqs[-3:]
        assert len(seqs) + dropped == n, (len(seqs), dropped)
        for m in texts:
            assert m["pad"] == "x" * pad_len(m["seq"]), m["seq"]
        # lws 4.1.6 keeps one ping pending and drops those that come while
        # it is (ops-ws.c): the pongs are some of the pings, whole, in order
        assert pongs, pings
        idx = [pings.index(p) for p in pongs]
        assert idx == sorted(set(idx)), (pongs, pings)
        # and the connection is sound afterwards: a ping now is answered
        s.sendall(masked_ping(b"after"))
        tail = bytearray()
        slow_read(s, stop, tail, idle=1.0)
        assert parse_frames(tail) == [(10, b"after")], tail
        s.close()
        return len(seqs), dropped


def test_stalled_reader_io_uring_on():
    got, dropped = stalled_reader_gets_whole_frames("on")
    print("io_uring on: %d frames, %d dropped" % (got, dropped))


def test_stalled_reader_io_uring_off():
    got, dropped = stalled_reader_gets_whole_frames("off")
    print("io_uring off: %d frames, %d dropped" % (got, dropped))


if __name__ == "__main__":
    run_tests(globals())
