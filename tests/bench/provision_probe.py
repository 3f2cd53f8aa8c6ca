#!/usr/bin/env python3
"""provision_probe.py - provisioning through mailrosterd's admin socket.

  adds ADMIN_SOCKET N CONNS HASH  : N "user add" with a ready hash over CONNS
                                    connections, pipelined; prints accounts/s
  lookups SMAP_SOCKET KEY SECONDS [STOPFILE] : one lookup at a time on one
                                    socketmap connection for SECONDS or until
                                    STOPFILE exists; prints the latencies
                                    (ms) as p50 p99 max count
"""
import socket, sys, threading, time

def ns(s):
    b = s.encode()
    return str(len(b)).encode() + b":" + b + b","

def adds(path, n, conns, h):
    per = n // conns
    errors = []
    def worker(k):
        s = socket.socket(socket.AF_UNIX); s.connect(path)
        req = b"".join(("user add u%d-%d@bench.example password=%s\n" % (k, i, h)).encode() for i in range(per))
        s.sendall(req)
        buf = b""; got = 0
        while got < per:
            d = s.recv(65536)
            if not d: break
            buf += d
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.startswith(b"OK") or line.startswith(b"ERR"):
                    got += 1
                    if line.startswith(b"ERR"): errors.append(line)
        s.close()
    t0 = time.monotonic()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(conns)]
    for t in ts: t.start()
    for t in ts: t.join()
    dt = time.monotonic() - t0
    print("%d %.3f %.0f %d" % (per * conns, dt, per * conns / dt, len(errors)))
    if errors: print(errors[0].decode(errors="replace"), file=sys.stderr)

def lookups(path, key, seconds, stopfile=None):
    import os
    s = socket.socket(socket.AF_UNIX); s.connect(path)
    req = ns("mailboxes " + key)
    lat = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (stopfile and os.path.exists(stopfile)):
        t0 = time.monotonic()
        s.sendall(req)
        buf = b""
        while not buf.endswith(b","):
            buf += s.recv(4096)
        lat.append((time.monotonic() - t0) * 1000)
        time.sleep(0.001)
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    print("%.3f %.3f %.3f %d" % (q(0.50), q(0.99), lat[-1], len(lat)))

if __name__ == "__main__":
    if sys.argv[1] == "adds":
        adds(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        lookups(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else None)
