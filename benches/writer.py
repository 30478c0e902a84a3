#!/usr/bin/python3
"""The failover benchmark's writer (benches/failover.sh): an application that commits one row
every 100 ms through libpq (psycopg2, Debian's python3-psycopg2) with a multi-host connection
string and target_session_attrs=read-write, on one persistent connection that it opens again
after any error. libpq itself picks the read-write host and applies connect_timeout to each
host in turn, as a real libpq application does.

Usage: writer.py RUN OUT   (the connection string on stdin; SIGTERM stops it)
Table bench_writes(run, seq) is created if missing. One line per attempt, flushed, to OUT:
  ok SEQ START_MS END_MS SERVER     the commit returned: the writer saw row (RUN, SEQ) committed
                                   on SERVER (the first of its listen_addresses: the node's
                                   address under pg_listen '${ip}', also through HAProxy and
                                   pgbouncer, which reach PostgreSQL over its unix socket)
  err SEQ START_MS END_MS REASON    the attempt failed (connection lost, refused, timed out)
A hung server (SIGSTOP) answers nothing, not even with an error: a watchdog shuts the socket
down after 2 s so that the call returns and the writer connects again (libpq alone would wait
for the kernel's TCP timeouts)."""

import signal
import socket
import sys
import threading
import time

import psycopg2

INTERVAL = 0.1
WATCHDOG = 2.0

run, out = int(sys.argv[1]), open(sys.argv[2], "w", buffering=1)
dsn = sys.stdin.read().strip()
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())


def ms():
    return int(time.time() * 1000)


def guarded(conn, fn):
    """fn() with a watchdog that shuts the connection's socket down after WATCHDOG seconds."""
    sock = socket.socket(fileno=conn.fileno()) if conn is not None else None
    timer = None
    if sock is not None:
        timer = threading.Timer(WATCHDOG, lambda: sock.shutdown(socket.SHUT_RDWR))
        timer.start()
    try:
        return fn()
    finally:
        if timer is not None:
            timer.cancel()
            sock.detach()


conn = None
seq = 0
tick = time.monotonic()
while not stop.is_set():
    seq += 1
    start = ms()
    try:
        if conn is None or conn.closed:
            conn = psycopg2.connect(dsn)
            with conn.cursor() as c:
                c.execute("CREATE TABLE IF NOT EXISTS bench_writes (run int, seq int, primary key (run, seq))")
            conn.commit()

        def write():
            with conn.cursor() as c:
                c.execute("INSERT INTO bench_writes VALUES (%s, %s) RETURNING split_part(current_setting('listen_addresses'), ',', 1)", (run, seq))
                server = c.fetchone()[0]
            conn.commit()
            return server

        server = guarded(conn, write)
        out.write(f"ok {seq} {start} {ms()} {server}\n")
    except Exception as e:  # any failure: log it, drop the connection, connect again next tick
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        out.write(f"err {seq} {start} {ms()} {reason}\n")
        try:
            if conn is not None:
                conn.close()
        except Exception:
            pass
        conn = None
    tick += INTERVAL
    delay = tick - time.monotonic()
    if delay > 0:
        stop.wait(delay)
    else:
        tick = time.monotonic()
