#!/usr/bin/python3
"""Python -> herald through Redis: real channels_redis group_sends, as fast as
one Python process makes them, for --seconds; prints one JSON line.

Start herald with --redis and receivers (herald-bench holding N idle
connections, which counts the frames that arrive), then:

    /usr/bin/python3 bench/py_group_send.py --redis redis://127.0.0.1:P --seconds 5

Each message is {"type": "notification_message", "message": {"t": <CLOCK_MONOTONIC ns>, "seq": i}},
what the reference project's Celery task sends; herald-bench reads "t" for latency.
Loopback only; the loop is bounded by --seconds and --max.
"""
import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlparse


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--redis", required=True, help="redis://127.0.0.1:PORT")
    ap.add_argument("--group", default="notifications")
    ap.add_argument("--prefix", default="asgi")
    ap.add_argument("--capacity", type=int, default=1500, help="as the reference project's CHANNEL_LAYERS")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--max", type=int, default=1000000, help="at most this many group_sends")
    a = ap.parse_args()
    host = urlparse(a.redis).hostname or ""
    if not (host == "localhost" or host.startswith("127.")):
        print("py_group_send: loopback Redis only", file=sys.stderr)
        return 2
    from channels_redis.core import RedisChannelLayer
    layer = RedisChannelLayer(hosts=[a.redis], prefix=a.prefix, capacity=a.capacity)
    sent = 0
    t0 = time.monotonic()
    end = t0 + a.seconds
    while time.monotonic() < end and sent < a.max:
        await layer.group_send(a.group, {"type": "notification_message",
                                         "message": {"t": time.monotonic_ns(), "seq": sent}})
        sent += 1
    took = time.monotonic() - t0
    await layer.close_pools()
    print(json.dumps({"group_sends": sent, "seconds": round(took, 3),
                      "group_sends_per_s": round(sent / took, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
