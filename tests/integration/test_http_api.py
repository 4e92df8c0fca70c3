"""The HTTP API of a running node: every endpoint and error code."""
import json
import sys
import socket

from herald_testlib import Herald, run_tests

H = None


def node():
    global H
    if H is None:
        H = Herald()
    return H


def test_healthz():
    st, body, hdr = node().http("GET", "/healthz")
    assert st == 200 and body["status"] == "ok", (st, body)
    assert hdr.get("content-type", hdr.get("Content-Type", "")).startswith("application/json"), hdr


def test_metrics_has_every_contract_metric():
    st, text, hdr = node().http("GET", "/metrics")
    assert st == 200, st
    for name in ['herald_connections{route="notifications"}',
                 'herald_connections{route="user_notifications"}',
                 'herald_connections{route="health"}',
                 "herald_ws_frames_sent_total", "herald_ws_frames_received_total",
                 "herald_group_sends_total", 'herald_layer_messages_total{direction="in"}',
                 'herald_layer_messages_total{direction="out"}',
                 'herald_dropped_total{reason="capacity"}', 'herald_dropped_total{reason="expired"}',
                 'herald_dropped_total{reason="unknown_type"}',
                 'herald_dropped_total{reason="slow_consumer"}',
                 'herald_dropped_total{reason="rate_limit"}', "herald_redis_up",
                 'herald_auth_failures_total{reason="api_key"}']:
        assert any(l.split(" ")[0] == name for l in text.splitlines()), name


def test_group_send_202_and_counter():
    h = node()
    before = h.metric("herald_group_sends_total")
    st, body, _ = h.http("POST", "/api/groups/some.group-1_x/send", {"type": "x.y", "a": [1, 2]})
    assert st == 202 and body == {"group": "some.group-1_x"}, (st, body)
    assert h.metric("herald_group_sends_total") == before + 1


def test_group_send_errors():
    h = node()
    cases = [
        ("POST", "/api/groups/g/send", "not json", {"Content-Type": "application/json"}, 400),
        ("POST", "/api/groups/g/send", "[1]", {"Content-Type": "application/json"}, 400),
        ("POST", "/api/groups/g/send", '{"type": 1}', {"Content-Type": "application/json"}, 400),
        ("POST", "/api/groups/g/send", '{"x": "y"}', {"Content-Type": "application/json"}, 400),
        ("POST", "/api/groups/bad!name/send", '{"type":"a"}', {"Content-Type": "application/json"}, 400),
        ("POST", "/api/groups/%s/send" % ("g" * 100), '{"type":"a"}', {"Content-Type": "application/json"}, 400),
        ("POST", "/api/groups/g/send", '{"type":"a"}', {"Content-Type": "text/plain"}, 415),
        ("GET", "/api/groups/g/send", None, {}, 405),
        ("POST", "/api/groups/g", '{"type":"a"}', {"Content-Type": "application/json"}, 404),
        ("POST", "/api/nothing", '{"type":"a"}', {"Content-Type": "application/json"}, 404),
        ("GET", "/nope", None, {}, 404),
        ("POST", "/healthz", "{}", {"Content-Type": "application/json"}, 405),
    ]
    for method, path, body, hdrs, want in cases:
        st, resp, _ = h.http(method, path, body, hdrs)
        assert st == want, (method, path, body, st, resp)
        assert isinstance(resp, dict) and isinstance(resp.get("error"), str), (path, resp)


def test_path_segments_are_split_before_decoding():
    """%2F stays inside its segment (docs/PROTOCOL.md): a group named "a/b" is an
    invalid name (400), not a longer path (404); other escapes decode."""
    h = node()
    st, resp, _ = h.http("POST", "/api/groups/a%2Fb/send", {"type": "x"})
    assert st == 400 and resp == {"error": "invalid group name"}, (st, resp)
    st, resp, _ = h.http("POST", "/api/groups/ok%2Ename/send", {"type": "x"})
    assert st == 202 and resp == {"group": "ok.name"}, (st, resp)
    st, resp, _ = h.http("POST", "/api/%67roups/g/send", {"type": "x"})
    assert st == 202 and resp == {"group": "g"}, (st, resp)
    for bad in ("/api/groups/x%zz/send", "/api/groups/x%00/send", "/api/groups/x%2/send"):
        st, resp, _ = h.http("POST", bad, {"type": "x"})
        assert st == 400 and "percent" in resp.get("error", ""), (bad, st, resp)


def test_content_type_rules():
    h = node()
    for ct, want in [("application/json; charset=utf-8", 202), ("Application/JSON", 202),
                     (None, 202), ("text/json", 415), ("application/x-www-form-urlencoded", 415)]:
        hdrs = {"Content-Type": ct} if ct else {}
        st, resp, _ = h.http("POST", "/api/groups/g/send", '{"type":"a"}', hdrs)
        assert st == want, (ct, st, resp)


def test_body_over_1mib_413():
    h = node()
    s = socket.create_connection(("127.0.0.1", h.port), timeout=10)
    s.sendall(b"POST /api/groups/g/send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 2000000\r\n\r\n{\"type\":")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data and b"}" in data.split(b"\r\n\r\n", 1)[1]:
            break
    s.close()
    assert data.startswith(b"HTTP/1.1 413"), data[:200]
    assert b'"error"' in data, data


def test_body_over_1mib_streamed_413():
    h = node()
    s = socket.create_connection(("127.0.0.1", h.port), timeout=10)
    s.sendall(b"POST /api/groups/g/send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 1048577\r\n\r\n")
    sent, data = 0, b""
    try:
        while sent < 1048577:
            n = min(65536, 1048577 - sent)
            s.sendall(b" " * n)
            sent += n
    except OSError:
        pass
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    s.close()
    assert data.startswith(b"HTTP/1.1 413"), data[:200]


def test_channel_send_to_unknown_channel_and_full():
    h = node()
    # a channel that is not a connection: stored in the layer, capacity 100
    codes = []
    for i in range(101):
        st, resp, _ = h.http("POST", "/api/channels/somewhere.x/send", {"type": "t", "i": i})
        codes.append(st)
    assert codes[:100] == [202] * 100, codes
    assert codes[100] == 503, codes[100]
    st, resp, _ = h.http("POST", "/api/channels/somewhere.x/send", {"type": "t"})
    assert st == 503 and resp == {"error": "channel full"}, (st, resp)
    st, resp, _ = h.http("POST", "/api/channels/bad name/send".replace(" ", "%20"), {"type": "t"})
    assert st == 400, (st, resp)


def test_api_key():
    with Herald("--api-key", "s3cret", threads=1) as h:
        st, resp, _ = h.http("POST", "/api/groups/g/send", {"type": "a"})
        assert st == 401 and "error" in resp, (st, resp)
        st, resp, _ = h.http("POST", "/api/groups/g/send", {"type": "a"},
                             {"Authorization": "Bearer wrong"})
        assert st == 401, st
        st, resp, _ = h.http("POST", "/api/groups/g/send", {"type": "a"},
                             {"Authorization": "Bearer s3cret"})
        assert st == 202, (st, resp)
        st, resp, _ = h.http("POST", "/api/groups/g/send", {"type": "a"}, {"X-API-Key": "s3cret"})
        assert st == 202, (st, resp)
        st, resp, _ = h.http("GET", "/healthz")
        assert st == 200
        assert h.metric('herald_auth_failures_total{reason="api_key"}') == 2


def test_notifications_endpoint():
    h = node()
    st, resp, _ = h.http("POST", "/api/notifications", {"title": "hi", "body": "b", "user_id": "u1"})
    if st == 503:
        raise AssertionError("worker not available: %r" % (resp,))
    assert st == 202 and resp["status"] == "queued" and len(resp["id"]) == 36, (st, resp)
    st2, resp2, _ = h.http("GET", "/api/notifications/%s" % resp["id"])
    assert st2 == 200 and resp2["id"] == resp["id"], (st2, resp2)
    assert resp2["status"] in ("queued", "processing", "sent"), resp2
    st3, resp3, _ = h.http("GET", "/api/notifications/00000000-0000-0000-0000-000000000000")
    assert st3 == 404, (st3, resp3)
    st4, resp4, _ = h.http("POST", "/api/notifications", {"body": "no title"})
    assert st4 == 400, (st4, resp4)


def test_keepalive_many_requests_one_connection():
    import http.client
    h = node()
    c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
    for i in range(50):
        c.request("POST", "/api/groups/ka/send", body=json.dumps({"type": "a", "i": i}),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        assert r.status == 202, r.status
        r.read()
    c.close()


def test_client_gone_before_reply():
    # the router's reply arrives for a connection that closed meanwhile: it
    # must be dropped by id, never written to a reused slot
    h = node()
    body = b'{"type":"notification_message","message":{"gone":1}}'
    for i in range(100):
        s = socket.create_connection(("127.0.0.1", h.port), timeout=5)
        s.sendall(b"POST /api/groups/gone/send HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(body), body))
        s.close()
    for i in range(20):
        st, resp, _ = h.http("POST", "/api/groups/after/send", {"type": "t", "i": i})
        assert st == 202 and resp == {"group": "after"}, (st, resp)
    st, resp, _ = h.http("GET", "/healthz")
    assert st == 200, st


def test_garbage_requests_do_not_hurt():
    h = node()
    for junk in [b"\x00\x01\x02\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"POST /api/groups/g/send HTTP/1.1\r\n"
                 b"Content-Length: -5\r\n\r\n", b"GET " + b"/a" * 5000 + b" HTTP/1.1\r\n\r\n",
                 b"GET /healthz HTTP/1.1\r\n" + b"X-Junk: " + b"y" * 9000 + b"\r\n\r\n"]:
        s = socket.create_connection(("127.0.0.1", h.port), timeout=5)
        try:
            s.sendall(junk)
            s.recv(4096)
        except OSError:
            pass
        s.close()
    st, resp, _ = h.http("GET", "/healthz")
    assert st == 200, st


if __name__ == "__main__":
    try:
        run_tests(globals())
    finally:
        if H is not None:
            rc, took = H.stop()
            if rc != 0 or took > 5:
                print("FAIL shared node: exit %r after %.1fs\n%s" % (rc, took, H.stderr()))
                sys.exit(1)
