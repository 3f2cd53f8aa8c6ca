#!/usr/bin/env python3
"""restart_probe.py PORT STOPFILE KEY... - touches STOPFILE.ready once
running (python's start-up can take a while on a busy machine), then asks a tcp_table server for KEYs
in turn on one connection, from the moment it accepts (connection refused
is retried every 2 ms) until STOPFILE exists or 60 s pass; a closed
connection is reopened. Prints the sequence of answer codes per key with
runs collapsed: "KEY 400 500 200" means TEMP, then not found, then found.
Each new code is also appended to STOPFILE.progress ("KEY CODE") as it
is seen, so that the test can act on what the probe has seen.
"""
import os
import socket
import sys
import time

port, stop, keys = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
seq = {k: [] for k in keys}
deadline = time.monotonic() + 60
open(stop + ".ready", "w").close()
progress = open(stop + ".progress", "a", buffering=1)
sock = rf = None
while time.monotonic() < deadline and not os.path.exists(stop):
    if sock is None:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            rf = sock.makefile("rb")
        except OSError:
            sock = None
            time.sleep(0.002)
            continue
    try:
        for k in keys:
            sock.sendall(b"get " + k.encode() + b"\n")
            line = rf.readline()
            if not line:
                raise OSError("closed")
            code = line[:3].decode()
            if not seq[k] or seq[k][-1] != code:
                seq[k].append(code)
                progress.write("%s %s\n" % (k, code))
    except OSError:
        sock.close()
        sock = None
for k in keys:
    print(k, " ".join(seq[k]) if seq[k] else "-")
