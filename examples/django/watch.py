#!/usr/bin/python3
"""Watch the frames that herald sends on a WebSocket: print each one on a
line of its own, as it arrives.

    python3 watch.py URL [--count N]

URL is a herald route, e.g. the "url" that the example's /token/ view
answers (ws://127.0.0.1:8000/ws/notifications/1/?token=...). A first line
"# connected to URL" says when the socket is open; with --count N it exits
after N frames. Needs Debian's python3-websockets.
"""
import argparse
import asyncio
import sys

import websockets


async def watch(url, count):
    async with websockets.connect(url, open_timeout=10) as ws:
        print("# connected to %s" % url.split("?")[0], flush=True)
        seen = 0
        while count is None or seen < count:
            frame = await ws.recv()
            print(frame, flush=True)
            seen += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("--count", type=int, default=None, help="exit after N frames")
    a = ap.parse_args()
    try:
        asyncio.run(watch(a.url, a.count))
    except (OSError, websockets.exceptions.WebSocketException) as e:
        print("watch.py: %s: %s" % (a.url.split("?")[0], e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
