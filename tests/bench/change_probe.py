#!/usr/bin/env python3
"""change_probe.py - how long after a provisioning COMMIT does mailrosterd
answer for the new mailbox?

Per trial: INSERT one mailbox through a persistent psql session (as the
admin role, autocommit); the clock starts when psql hands back the
INSERT's RETURNING row, i.e. after COMMIT returned. Then a persistent
tcp_table connection asks "get ADDRESS" every 1 ms (on a fixed 1 ms grid
from that start) until the answer is 200; the latency is the arrival of
that 200 reply. Resolution: 1 ms (the poll grid) plus one round trip.

--baseline-pg does the same against PostgreSQL itself (the status quo, a
pgsql: map, sees a committed row at its next query): a second persistent
psql session as the reader role runs the pgsql map's query every 1 ms.

--writers N (N > 1): N persistent psql sessions write at once, in ROUNDS
bursts of BURST autocommitted INSERTs each, back to back (the issue's
"six writers inserting 240 mailboxes concurrently"); one persistent
tcp_table connection asks for every change not yet answered, about every
1 ms, and a round ends when all its changes are answered (or time out).
The clock of each change starts when psql hands back its RETURNING row.

Output (stdout): one line of key=value pairs; every trial's latency goes to
stderr when --verbose.
Needs PGHOST/PGPORT in the environment (as the stack exports them).
"""
import argparse
import random
import socket
import subprocess
import sys
import time


def percentile(values, p):
    """linear interpolation between closest ranks (numpy's default)"""
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


class Psql:
    def __init__(self, user, db):
        self.p = subprocess.Popen(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", db],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0)

    def one_line(self, stmt):
        self.p.stdin.write(stmt.encode() + b"\n")
        line = self.p.stdout.readline()
        if not line:
            sys.exit("change_probe: psql ended: " + stmt)
        return line.decode().rstrip("\n")

    def close(self):
        self.p.stdin.close()
        self.p.wait()


class TcpTable:
    def __init__(self, hostport):
        host, port = hostport.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile("rb")

    def get(self, key):
        self.s.sendall(b"get " + key.encode() + b"\n")
        line = self.f.readline()
        if not line:
            sys.exit("change_probe: tcp_table connection closed")
        return line.decode().rstrip("\n")


def insert(admin, local, domain):
    row = admin.one_line(
        "INSERT INTO mailroster.mailboxes (domain_id, local_part, password) "
        "SELECT id, '%s', '{SHA512-CRYPT}$6$probe$' || repeat('p', 86) FROM mailroster.domains "
        "WHERE name = '%s' RETURNING id;" % (local, domain))
    if not row.isdigit():
        sys.exit("change_probe: INSERT failed: " + row)
    return time.monotonic()


def poll(check, t0, timeout):
    """call check() on a 1 ms grid from t0 until it is true; the time it was"""
    k = 0
    while True:
        if check():
            return time.monotonic()
        k += 1
        nxt = t0 + k * 0.001
        now = time.monotonic()
        if now - t0 > timeout:
            return None
        if nxt > now:
            time.sleep(nxt - now)


def concurrent(a):
    """N writers in bursts; one prober; latency per change"""
    import threading
    sessions = [Psql(a.admin, a.db) for _ in range(a.writers)]
    for s in sessions:
        s.one_line("SELECT 1;")  # connected before the clock runs
    tcp = TcpTable(a.tcp)
    lock = threading.Lock()
    pending, lat = {}, []

    def writer(w, r, start):
        start.wait()
        for k in range(a.burst):
            local = "%sw%dr%dk%d" % (a.prefix, w, r, k)
            t0 = insert(sessions[w], local, a.domain)
            with lock:
                pending["%s@%s" % (local, a.domain)] = t0

    timeouts = 0
    for r in range(a.rounds):
        start = threading.Barrier(a.writers)
        th = [threading.Thread(target=writer, args=(w, r, start)) for w in range(a.writers)]
        for t in th:
            t.start()
        while True:
            alive = any(t.is_alive() for t in th)
            with lock:
                items = list(pending.items())
            if not items and not alive:
                break
            for key, t0 in items:
                if tcp.get(key).startswith("200"):
                    t1 = time.monotonic()
                    lat.append((t1 - t0) * 1000)
                    with lock:
                        del pending[key]
                    if a.verbose:
                        print("round %d %s: %.2f ms" % (r, key, lat[-1]), file=sys.stderr)
                elif time.monotonic() - t0 > a.timeout:
                    timeouts += 1
                    with lock:
                        del pending[key]
            time.sleep(0.001)
        for t in th:
            t.join()
        time.sleep(random.uniform(0, a.gap_ms / 1000))
    for s in sessions:
        s.close()
    n = a.rounds * a.writers * a.burst
    print("trials=%d timeouts=%d min_ms=%.2f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f" % (
        n, timeouts, min(lat) if lat else float("nan"), percentile(lat, 0.5),
        percentile(lat, 0.99), max(lat) if lat else float("nan")))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcp", required=True, help="tcp_table mailboxes HOST:PORT")
    ap.add_argument("--domain", required=True)
    ap.add_argument("--prefix", default="probe")
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--gap-ms", type=float, default=100, help="random pause of 0..GAP between trials")
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--db", default="mailroster")
    ap.add_argument("--admin", default="mradm")
    ap.add_argument("--reader", default="mrd")
    ap.add_argument("--baseline-pg", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--writers", type=int, default=1, help="concurrent writers (> 1: bursts)")
    ap.add_argument("--rounds", type=int, default=10, help="bursts, with --writers")
    ap.add_argument("--burst", type=int, default=5, help="INSERTs per writer per burst")
    a = ap.parse_args()
    random.seed(4242)
    if a.writers > 1:
        concurrent(a)
        return

    admin = Psql(a.admin, a.db)
    tcp = TcpTable(a.tcp)
    lat, timeouts = [], 0
    for i in range(a.trials):
        local = "%s%d" % (a.prefix, i)
        key = "%s@%s" % (local, a.domain)
        before = tcp.get(key)
        if not before.startswith("500"):
            sys.exit("change_probe: %s is already answered before the INSERT: %s" % (key, before))
        t0 = insert(admin, local, a.domain)
        t1 = poll(lambda: tcp.get(key).startswith("200"), t0, a.timeout)
        if t1 is None:
            timeouts += 1
            if a.verbose:
                print("trial %d: timeout" % i, file=sys.stderr)
        else:
            lat.append((t1 - t0) * 1000)
            if a.verbose:
                print("trial %d: %.2f ms" % (i, lat[-1]), file=sys.stderr)
        time.sleep(random.uniform(0, a.gap_ms / 1000))

    out = "trials=%d timeouts=%d min_ms=%.2f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f" % (
        a.trials, timeouts, min(lat) if lat else float("nan"), percentile(lat, 0.5),
        percentile(lat, 0.99), max(lat) if lat else float("nan"))

    if a.baseline_pg:
        reader = Psql(a.reader, a.db)
        reader.one_line("SELECT 1;")  # connected before the clock runs
        q = ("SELECT count(*) FROM mailroster.mailboxes m JOIN mailroster.domains d "
             "ON d.id = m.domain_id WHERE m.local_part = '%s' AND d.name = '%s' "
             "AND m.enabled AND m.may_receive AND d.enabled;")
        blat = []
        for i in range(a.trials):
            local = "%spg%d" % (a.prefix, i)
            t0 = insert(admin, local, a.domain)
            t1 = poll(lambda: reader.one_line(q % (local, a.domain)) == "1", t0, a.timeout)
            if t1 is not None:
                blat.append((t1 - t0) * 1000)
            time.sleep(random.uniform(0, a.gap_ms / 1000))
        reader.close()
        out += " pg_p50_ms=%.2f pg_p99_ms=%.2f pg_max_ms=%.2f" % (
            percentile(blat, 0.5), percentile(blat, 0.99), max(blat) if blat else float("nan"))
    admin.close()
    print(out)


if __name__ == "__main__":
    main()
