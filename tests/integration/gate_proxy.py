#!/usr/bin/env python3
"""gate_proxy.py PORT UPSTREAM GATEFILE [HOLD_S] - a TCP proxy on
127.0.0.1:PORT in front of PostgreSQL's unix socket UPSTREAM that holds
every connection until GATEFILE exists, then relays it: the test decides
when the daemon's database connection comes up (a slow database, without
timing). With HOLD_S (benchmarks), a connection is also held at least that
many seconds after it was accepted. Touches GATEFILE.ready once it listens.
"""
import os
import socket
import sys
import threading
import time

port, upstream, gate = int(sys.argv[1]), sys.argv[2], sys.argv[3]
hold = float(sys.argv[4]) if len(sys.argv) > 4 else 0


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def relay(client):
    until = time.monotonic() + hold
    while not os.path.exists(gate) or time.monotonic() < until:
        time.sleep(0.01)
    up = socket.socket(socket.AF_UNIX)
    try:
        up.connect(upstream)
    except OSError:
        client.close()
        return
    t = threading.Thread(target=pipe, args=(client, up), daemon=True)
    t.start()
    pipe(up, client)
    t.join()
    client.close()
    up.close()


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(16)
open(gate + ".ready", "w").close()
while True:
    c, _ = ls.accept()
    threading.Thread(target=relay, args=(c,), daemon=True).start()
