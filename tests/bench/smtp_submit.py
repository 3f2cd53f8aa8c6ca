#!/usr/bin/env python3
"""tests/bench/smtp_submit.py - authenticated submission load for e2e_submit.sh.

SESSIONS threads, each running whole SMTP sessions one after the other:
connect, EHLO, AUTH PLAIN, PER_SESSION messages (MAIL FROM the login's
own address, RCPTS recipients, DATA), QUIT; until MESSAGES messages have
been sent. One command in flight at a time (no PIPELINING), as a mail
client submits. Session j logs in as account j mod N (accounts file:
"login<TAB>password" lines); recipients are taken in turn from the
recipients file.

Prints one line of key=value figures on stdout, with the median and 99th
percentile of the wait for each reply (banner after connect, AUTH, MAIL,
RCPT, end of data) in ms; refusals and errors go to stderr (the first
few). The client's own CPU (os.times) is printed so that a reader can tell
whether the client was the bottleneck.
"""
import argparse
import base64
import os
import socket
import sys
import threading
import time


class Refused(Exception):
    pass


def reply(f):
    """One SMTP reply (every line of a multiline one): (code, last line)."""
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("connection closed")
        if line[3:4] != b"-":
            return int(line[:3]), line.rstrip(b"\r\n")


def cmd(s, f, data, want, times=None):
    """Send DATA, expect WANT; the wait for the reply goes to the list TIMES."""
    t = time.monotonic()
    s.sendall(data)
    code, line = reply(f)
    if times is not None:
        times.append(time.monotonic() - t)
    if code != want:
        raise Refused("%s -> %s" % (data.split(b"\r\n", 1)[0][:60].decode(), line.decode("utf-8", "replace")))


def pct(xs, p):
    """The p-th percentile of XS in milliseconds (nearest rank)."""
    if not xs:
        return 0.0
    xs = sorted(xs)
    return 1000 * xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, help="HOST:PORT")
    ap.add_argument("--accounts", required=True)
    ap.add_argument("--rcpts", required=True)
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--sessions", type=int, default=10, help="concurrent sessions")
    ap.add_argument("--per-session", type=int, default=5, help="messages per session")
    ap.add_argument("--rcpts-per-msg", type=int, default=1)
    ap.add_argument("--tag", default="bench", help="goes into the Subject and Message-ID")
    a = ap.parse_args()

    host, port = a.server.rsplit(":", 1)
    accounts = [l.rstrip("\n").split("\t", 1) for l in open(a.accounts) if l.strip()]
    rcpts = [l.strip().encode() for l in open(a.rcpts) if l.strip()]
    n_sessions = (a.messages + a.per_session - 1) // a.per_session
    body = (b"\r\n".join([b"This is a benchmark message of e2e_submit.sh."] * 6) + b"\r\n")

    lock = threading.Lock()
    state = {"next": 0, "msg": 0, "ok": 0, "refused": 0, "errors": 0, "sessions": 0}
    problems = []
    # reply waits per command, appended by the sessions (list.append is atomic)
    waits = {"connect": [], "auth": [], "mail": [], "rcpt": [], "eod": []}

    def take_session():
        with lock:
            j = state["next"]
            if j >= n_sessions:
                return None
            state["next"] += 1
            return j

    def take_rcpts(n):
        with lock:
            i = state["msg"]
            state["msg"] += 1
            return i, [rcpts[(i * n + k) % len(rcpts)] for k in range(n)]

    def note(kind, text):
        with lock:
            state[kind] += 1
            if len(problems) < 10:
                problems.append("%s: %s" % (kind, text))

    def session(j):
        login, password = accounts[j % len(accounts)]
        count = min(a.per_session, a.messages - j * a.per_session)
        done = 0
        t = time.monotonic()
        try:
            s = socket.create_connection((host, int(port)), timeout=60)
        except OSError as e:
            note("errors", "connect: %s" % e)
            return
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rb")
        try:
            code, line = reply(f)
            waits["connect"].append(time.monotonic() - t)
            if code != 220:
                raise Refused("banner: %s" % line.decode())
            cmd(s, f, b"EHLO client.bench.test\r\n", 250)
            token = base64.b64encode(b"\0" + login.encode() + b"\0" + password.encode())
            cmd(s, f, b"AUTH PLAIN " + token + b"\r\n", 235, waits["auth"])
            for _ in range(count):
                i, to = take_rcpts(a.rcpts_per_msg)
                cmd(s, f, b"MAIL FROM:<" + login.encode() + b">\r\n", 250, waits["mail"])
                for r in to:
                    cmd(s, f, b"RCPT TO:<" + r + b">\r\n", 250, waits["rcpt"])
                cmd(s, f, b"DATA\r\n", 354)
                msg = (b"From: <" + login.encode() + b">\r\nTo: <" + to[0] + b">\r\n"
                       b"Subject: " + a.tag.encode() + b" message " + str(i).encode() + b"\r\n"
                       b"Message-ID: <" + a.tag.encode() + b"." + str(i).encode() + b"@client.bench.test>\r\n"
                       b"Date: " + time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()).encode() + b"\r\n"
                       b"\r\n" + body + b".\r\n")
                cmd(s, f, msg, 250, waits["eod"])
                done += 1
                with lock:
                    state["ok"] += 1
            s.sendall(b"QUIT\r\n")
            reply(f)
        except Refused as e:
            # this message and the rest of the session are not sent
            note("refused", "%s (session %d: %d of its %d messages not sent)" % (e, j, count - done, count))
        except (OSError, ConnectionError, ValueError) as e:
            note("errors", "%s (session %d: %d of its %d messages not sent)" % (e, j, count - done, count))
        finally:
            with lock:
                state["sessions"] += 1
            f.close()
            s.close()

    def worker():
        while True:
            j = take_session()
            if j is None:
                return
            session(j)

    c0 = os.times()
    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(a.sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t1 = time.monotonic()
    c1 = os.times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    ok = state["ok"]
    for p in problems:
        print("smtp_submit: " + p, file=sys.stderr)
    print("attempted=%d accepted=%d refused=%d errors=%d sessions=%d elapsed=%.3f rate=%.1f client_cpu_us=%.1f client_cpu_pct=%.1f %s"
          % (a.messages, ok, state["refused"], state["errors"], state["sessions"], t1 - t0,
             ok / (t1 - t0) if t1 > t0 else 0, cpu * 1e6 / ok if ok else 0, 100 * cpu / (t1 - t0) if t1 > t0 else 0,
             " ".join("%s_ms=%.1f/%.1f" % (k, pct(v, 50), pct(v, 99)) for k, v in waits.items())))


if __name__ == "__main__":
    main()
