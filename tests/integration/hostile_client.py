#!/usr/bin/env python3
"""hostile_client.py - clients that misbehave on purpose, for hostile_test.sh.

  hold ADDR N SECONDS [SRC]    open N connections and keep them for SECONDS;
                               prints how many were still open after 1 s
  flood ADDR SECONDS MAXBYTES  send tcp_table requests without ever reading;
                               prints the octets the daemon took
  trickle ADDR INTERVAL MAX    send "get x..." one octet every INTERVAL s;
                               prints the seconds until the daemon closed
                               (or "open" after MAX s)
  ask ADDR REQUEST [SRC]       send REQUEST (Python escapes, e.g. \\n) and
                               print the answer up to the first empty line
                               or newline, as the protocol ends it
  auth-list PATH WAIT          LIST then USER on the auth socket; reads
                               nothing for WAIT s, then everything; prints
                               "rows=N end=0|1 after_end=<USER answer>"

ADDR is HOST:PORT or unix:PATH.
"""
import os
import resource
import socket
import sys
import time


def connect(addr, src=None):
    if addr.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(addr[5:])
        return s
    host, port = addr.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if src:
        s.bind((src, 0))
    s.connect((host, int(port)))
    return s


def is_closed(s):
    """True when the peer closed (EOF or reset), without waiting."""
    s.setblocking(False)
    try:
        data = s.recv(1)
        return data == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


def hold(addr, n, seconds, src=None):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    socks = []
    for _ in range(n):
        try:
            socks.append(connect(addr, src))
        except OSError:
            pass
    time.sleep(1)
    print(sum(1 for s in socks if not is_closed(s)), flush=True)
    time.sleep(seconds)


def flood(addr, seconds, maxbytes):
    s = connect(addr)
    s.setblocking(False)
    chunk = b"".join(b"get flood%06d.example\n" % i for i in range(4000))
    sent = 0
    deadline = time.time() + seconds
    stalled_since = None
    while sent < maxbytes and time.time() < deadline:
        try:
            n = s.send(chunk)
            sent += n
            stalled_since = None
        except BlockingIOError:
            # the daemon stopped reading: give it a moment, then call it
            if stalled_since is None:
                stalled_since = time.time()
            elif time.time() - stalled_since > 2:
                break
            time.sleep(0.01)
        except OSError:
            break
    print(sent, flush=True)
    # keep the connection (and whatever the daemon holds for it) while
    # the test measures
    time.sleep(float(os.environ.get("FLOOD_HOLD", "3")))


def trickle(addr, interval, maximum):
    s = connect(addr)
    t0 = time.time()
    payload = b"get " + b"x" * 10000
    for i in range(len(payload)):
        if time.time() - t0 > maximum:
            print("open", flush=True)
            return
        try:
            s.send(payload[i:i + 1])
        except OSError:
            break
        time.sleep(interval)
        if is_closed(s):
            break
    print("%.1f" % (time.time() - t0), flush=True)


def ask(addr, request, src=None):
    s = connect(addr, src)
    s.settimeout(5)
    s.sendall(request.encode().decode("unicode_escape").encode("latin-1"))
    data = b""
    policy = request.startswith("request=")
    while True:
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        data += d
        if policy and b"\n\n" in data:
            break
        if not policy and b"\n" in data:
            break
    print(data.decode("latin-1").rstrip("\n"))


def auth_list(path, wait):
    s = connect("unix:" + path)
    s.sendall(b"VERSION\t1\t0\n1\tLIST\n2\tUSER\tnobody@nowhere.example\timap\n")
    time.sleep(wait)
    s.settimeout(10)
    data = b""
    while not data.endswith(b"\n") or b"\n2\t" not in data:
        d = s.recv(65536)
        if not d:
            break
        data += d
    rows = end = 0
    after = ""
    for line in data.decode().split("\n"):
        f = line.split("\t")
        if f[0] == "1" and len(f) > 1 and f[1] == "ROW":
            rows += 1
        elif f[0] == "1" and len(f) > 1 and f[1] == "END":
            end = 1
        elif f[0] == "2":
            after = line.replace("\t", " ") if end else "before-end"
    print("rows=%d end=%d after_end=%s" % (rows, end, after))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "hold":
        hold(args[0], int(args[1]), float(args[2]), args[3] if len(args) > 3 else None)
    elif cmd == "flood":
        flood(args[0], float(args[1]), int(args[2]))
    elif cmd == "trickle":
        trickle(args[0], float(args[1]), float(args[2]))
    elif cmd == "ask":
        ask(args[0], args[1], args[2] if len(args) > 2 else None)
    elif cmd == "auth-list":
        auth_list(args[0], float(args[1]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
