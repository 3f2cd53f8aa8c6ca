#!/usr/bin/env python3
"""answer_probe.py - watch a tcp_table server answer one key through a
(re)start: connect (retrying every INTERVAL while refused), then send
"get KEY" every INTERVAL ms on one persistent connection, each request
waiting for its reply (a stalled server shows as one long round trip).
Runs until STOPFILE exists (or --max-seconds); touches READYFILE once it
runs (python's start-up can take a while on a busy machine).

Output (stdout): connected_us first_200_us max_rtt_at_us (wall-clock
microseconds since the epoch, to compare with the caller's own clock),
requests replies_200 replies_4xx replies_5xx, late_4xx (4xx replies after
the first 200), max_rtt_ms (the slowest
request) and stall_s (the longest time without a 200 after the first one,
including the round trip).
"""
import argparse
import os
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcp", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--interval-ms", type=float, default=10)
    ap.add_argument("--stopfile", required=True)
    ap.add_argument("--readyfile", required=True)
    ap.add_argument("--max-seconds", type=float, default=300)
    a = ap.parse_args()
    host, port = a.tcp.rsplit(":", 1)
    start = time.monotonic()
    epoch0 = time.time() - start  # wall clock = epoch0 + monotonic offset
    el = lambda: time.monotonic() - start
    wall = lambda t: "%d" % ((epoch0 + start + t) * 1e6) if t is not None else "-"
    open(a.readyfile, "w").close()
    s = f = None
    connected = first200 = None
    n = ok = e4 = e5 = late4 = 0
    max_rtt, max_rtt_at, last_ok, stall = 0.0, 0.0, None, 0.0
    while el() < a.max_seconds and not os.path.exists(a.stopfile):
        t = el()
        if s is None:
            try:
                s = socket.create_connection((host, int(port)), timeout=1)
                s.settimeout(None)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                f = s.makefile("rb")
                if connected is None:
                    connected = el()
            except OSError:
                s = None
                time.sleep(a.interval_ms / 1000)
                continue
        try:
            s.sendall(b"get " + a.key.encode() + b"\n")
            line = f.readline()
        except OSError:
            line = b""
        if not line:
            s = None
            continue
        t1 = el()
        n += 1
        rtt = (t1 - t) * 1000
        if rtt > max_rtt:
            max_rtt, max_rtt_at = rtt, t
        if line.startswith(b"200"):
            ok += 1
            if first200 is None:
                first200 = t1
            if last_ok is not None:
                stall = max(stall, t1 - last_ok)
            last_ok = t1
        elif line.startswith(b"4"):
            e4 += 1
            if first200 is not None:
                late4 += 1
        else:
            e5 += 1
        nxt = t + a.interval_ms / 1000
        if nxt > el():
            time.sleep(nxt - el())
    print("connected_us=%s first_200_us=%s requests=%d replies_200=%d replies_4xx=%d replies_5xx=%d "
          "late_4xx=%d max_rtt_ms=%.0f max_rtt_at_us=%s stall_s=%.2f" % (
              wall(connected), wall(first200), n, ok, e4, e5, late4, max_rtt, wall(max_rtt_at), stall))


if __name__ == "__main__":
    sys.exit(main())
