#!/usr/bin/env python3
"""Accept and end-to-end benchmark for Tidings on the sandbox channel.

Starts its own `tidings serve` (fresh temp dir, so a new SQLite file), a notification receiver and a
load client in this process, and measures:

  single  N single-destination requests over C keep-alive connections, one in flight per connection:
          accepted req/s (first send -> last answer), latency p50/p99, errors (anything but 1001)
  e2e     for the same requests: wait (bounded) for every accepted transid's Delivered notification;
          notifications/s and messages finished/s (first send -> last notification / last Delivered),
          and p50/p99 of (Delivered arrival - request send)
  batch   B requests of 1000 msisdns over 4 connections: destinations accepted per second; then the
          notifications they cause are drained (bounded) so the next run starts from an idle server

CPU time of the server (utime+stime from /proc, all threads, with its notification sender child) is
reported per window as % of one core, next to this process's own CPU and what the rest of the machine
used.  A warm-up precedes the measured runs; with --runs R every figure is the median of R runs.

  .venv/bin/python bench/accept.py                     # defaults: N=20000 C=64, B=100x1000, 3 runs
  .venv/bin/python bench/accept.py --n 3000 --batches 10 --runs 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HOST = "127.0.0.1"
TCK = os.sysconf("SC_CLK_TCK")
SERVICE_KEY = "bench-key"
SENDER = "CONNCT"

CONFIG_TEMPLATE = """\
[notify]
timeout_s = 10
retries = 3
retry_interval_s = 1

[sandbox]
delay_ms = {delay_ms}

[[services]]
id = "svc-bench"
key = "{key}"
secret = "c2VjcmV0LXNlY3JldA=="
tps = 100000
senderids = ["{sender}"]
notify_url = "http://{host}:{receiver_port}/dlr"
"""

# Submitted is the only intermediate status a sandbox SMS reports; anything else ends the message.
SUBMITTED = "Submitted"
DELIVERED = "Delivered"


# -- small helpers ----------------------------------------------------------------------------------


def pct(sorted_vals: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of an already sorted sequence."""
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, round(p / 100.0 * len(sorted_vals) + 0.5) - 1))
    return sorted_vals[k]


def ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000.0, 2)


def rate(count: int, seconds: float) -> float | None:
    return round(count / seconds, 1) if count and seconds > 0 else None


def msisdn(i: int, prefix: str, digits: int) -> str:
    # The sandbox ends an address whose last four digits are a documented failure code (all of them
    # 7xxx) with that failure; skipping ...7xxx keeps every message on the Delivered path.
    blocks = 10 ** (digits - 4)
    block, r = divmod(i % (9000 * blocks), 9000)
    if r >= 7000:
        r += 1000
    return f"{prefix}{block * 10000 + r:0{digits}d}"


def build_request(port: int, text: str, msisdns: list[str]) -> bytes:
    body = json.dumps(
        {
            "deliverychannel": "sms",
            "channels": {"sms": {"text": text, "senderid": SENDER}},
            "destination": [{"msisdn": msisdns}],
        },
        separators=(",", ":"),
    ).encode()
    head = (
        f"POST /resources/v1/messaging HTTP/1.1\r\nHost: {HOST}:{port}\r\nkey: {SERVICE_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# -- CPU accounting ---------------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float | None:
    """utime + stime of a process, all its threads, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # the command name may contain spaces and parentheses; the fields after the last ')' don't
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TCK
    except (OSError, IndexError, ValueError):
        return None


def child_pids(pid: int) -> list[int]:
    """The live children of a process, whichever of its threads started them."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return out


def tree_cpu_s(pid: int) -> float | None:
    """CPU seconds of a process and its live descendants: the server and its notification sender (and,
    with several API processes, each of them and its sender)."""
    own = proc_cpu_s(pid)
    if own is None:
        return None
    total, todo, seen = own, child_pids(pid), {pid}
    while todo:
        c = todo.pop()
        if c in seen:
            continue
        seen.add(c)
        total += proc_cpu_s(c) or 0.0
        todo += child_pids(c)
    return total


def machine_cpu_s() -> tuple[float, float]:
    """(all CPU time, idle + iowait time) of the whole machine, summed over cores, in seconds."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    return sum(vals[:8]) / TCK, (vals[3] + vals[4]) / TCK


@dataclass(frozen=True)
class CpuMark:
    wall: float
    server: float | None
    bench: float
    machine_total: float
    machine_idle: float


def cpu_mark(pid: int) -> CpuMark:
    total, idle = machine_cpu_s()
    return CpuMark(time.monotonic(), tree_cpu_s(pid), time.process_time(), total, idle)


def cpu_window(a: CpuMark, b: CpuMark) -> dict[str, float | None]:
    """CPU used between two marks, each as % of one core over the wall-clock window."""
    wall = max(b.wall - a.wall, 1e-9)
    server = None if a.server is None or b.server is None else b.server - a.server
    bench = b.bench - a.bench
    busy = (b.machine_total - a.machine_total) - (b.machine_idle - a.machine_idle)
    # whatever is neither the server nor this process: other people's jobs on a shared machine
    others = busy - (server or 0.0) - bench
    return {
        "window_s": round(wall, 3),
        "server_pct": None if server is None else round(100.0 * server / wall, 1),
        "bench_pct": round(100.0 * bench / wall, 1),
        "others_pct": round(100.0 * others / wall, 1),
        "machine_busy_pct": round(100.0 * busy / wall, 1),
    }


async def wait_quiet(max_wait_s: float, limit_pct: float = 20.0) -> float | None:
    """Wait (at most max_wait_s) until the machine uses under limit_pct of one core; return the last
    busy % seen.  Our server is idle between scenarios, so load seen here is somebody else's."""
    if max_wait_s <= 0:
        return None
    t_end = time.monotonic() + max_wait_s
    while True:
        t0, i0 = machine_cpu_s()
        w0 = time.monotonic()
        await asyncio.sleep(1.0)
        t1, i1 = machine_cpu_s()
        busy = 100.0 * ((t1 - t0) - (i1 - i0)) / (time.monotonic() - w0)
        if busy <= limit_pct or time.monotonic() >= t_end:
            return round(busy, 1)


# -- load client ------------------------------------------------------------------------------------


class ClientConn(asyncio.Protocol):
    """One keep-alive connection with one request in flight.

    A Protocol rather than StreamReader/Writer: no coroutine or extra future per read, which matters
    when the client shares 2 cores with the server.  Only the status line and Content-Length of the
    answer are parsed here; bodies are decoded after the clock stops."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc or 'closed by server'}"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        i = head.find(b"\r\ncontent-length:")
        if i < 0:
            waiter.set_exception(ConnectionError("answer without Content-Length"))
            self.close()
            return
        j = head.find(b"\r\n", i + 2)
        total = end + 4 + int(head[i + 17 : j if j >= 0 else len(head)])
        if len(self.buf) < total:
            return
        status = int(self.buf[9:12])
        body = bytes(self.buf[end + 4 : total])
        del self.buf[:total]
        if b"\r\nconnection: close" in head:
            self.close()
        waiter.set_result((status, body))

    def request(self, raw: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self.waiter

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()


async def open_conn(port: int) -> ClientConn:
    _, proto = await asyncio.get_running_loop().create_connection(ClientConn, HOST, port)
    return proto


@dataclass
class Load:
    """Raw outcome of one load phase, indexed by request number; 0.0 means 'never happened'."""

    t_send: list[float]
    t_recv: list[float]
    status: list[int]
    body: list[bytes | None]
    error: list[str | None]
    t_start: float = 0.0
    unanswered: int = 0
    not_sent: int = 0


async def run_load(
    port: int, requests: list[bytes], concurrency: int, max_seconds: float, per_s: float | None = None
) -> Load:
    """Send every request, one in flight per connection. With `per_s`, request i is not sent before
    t_start + i / per_s (an open loop, still capped by the connections); latency counts from the send."""
    n = len(requests)
    load = Load([0.0] * n, [0.0] * n, [0] * n, [None] * n, [None] * n)
    conns: list[ClientConn | None] = [await open_conn(port) for _ in range(min(concurrency, n))]
    next_i = 0
    load.t_start = time.monotonic()
    deadline = load.t_start + max_seconds

    async def worker(conn: ClientConn | None) -> None:
        nonlocal next_i
        while next_i < n and time.monotonic() < deadline:
            i = next_i
            next_i += 1
            if per_s is not None and (wait := load.t_start + i / per_s - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            if conn is None or conn.lost:
                try:
                    conn = await open_conn(port)
                except OSError as exc:
                    load.error[i] = f"connect: {exc}"
                    return
            load.t_send[i] = time.monotonic()
            try:
                status, body = await conn.request(requests[i])
            except (ConnectionError, OSError) as exc:
                load.error[i] = str(exc)
                conn.close()
                conn = None
                continue
            load.t_recv[i] = time.monotonic()
            load.status[i] = status
            load.body[i] = body

    tasks = [asyncio.create_task(worker(c)) for c in conns]
    # a request the server never answers must not hang the benchmark past its time limit
    _, pending = await asyncio.wait(tasks, timeout=max_seconds + 30.0)
    for t in pending:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for c in conns:
        if c is not None:
            c.close()
    load.unanswered = sum(1 for i in range(n) if load.t_send[i] and not load.t_recv[i] and not load.error[i])
    load.not_sent = sum(1 for i in range(n) if not load.t_send[i] and not load.error[i])
    return load


@dataclass
class Answers:
    """What the answers of one load phase said."""

    transids: list[str] = field(default_factory=list)  # accepted destinations, in request order
    sent_at: dict[str, float] = field(default_factory=dict)  # transid -> send time of its request
    accepted_requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # kind of failure -> requests
    samples: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # sorted, answered requests only
    t_last: float = 0.0


def read_answers(load: Load, destinations_per_request: int) -> Answers:
    out = Answers()

    def fail(kind: str, sample: str) -> None:
        out.errors[kind] = out.errors.get(kind, 0) + 1
        if len(out.samples) < 5:
            out.samples.append(sample[:300])

    for i, body in enumerate(load.body):
        if load.error[i] is not None:
            fail("connection", load.error[i] or "")
            continue
        if body is None:
            continue
        out.latencies.append(load.t_recv[i] - load.t_send[i])
        out.t_last = max(out.t_last, load.t_recv[i])
        text = body.decode("utf-8", "replace")
        try:
            items = json.loads(body)["response"]
        except (ValueError, KeyError, TypeError):
            fail(f"HTTP {load.status[i]} (not a v1 answer)", text)
            continue
        if load.status[i] != 200 or not isinstance(items, list):
            code = items.get("code") if isinstance(items, dict) else None
            fail(f"HTTP {load.status[i]} code {code}", text)
            continue
        codes = [x.get("code") for x in items]
        if len(items) != destinations_per_request or any(c != "1001" for c in codes):
            fail(f"HTTP 200 codes {sorted(set(map(str, codes)))} for {len(items)} items", text)
        ok = [x["transid"] for x in items if x.get("code") == "1001" and "transid" in x]
        if ok and len(ok) == len(items):
            out.accepted_requests += 1
        for t in ok:
            out.transids.append(t)
            out.sent_at[t] = load.t_send[i]
    if load.unanswered:
        out.errors["unanswered (time limit)"] = load.unanswered
    out.latencies.sort()
    return out


# -- notification receiver --------------------------------------------------------------------------

OK_REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
_TRANSID = b'"transid":"'
_STATUS = b'"deliveryStatus":"'


class Receiver:
    """Records the arrival of every notification by transid (time.monotonic(), same clock as sends)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total = 0
        self.by_status: dict[str, int] = {}
        self.submitted_at: dict[str, float] = {}
        self.final_at: dict[str, float] = {}  # first final notification of each transid
        self.final_status: dict[str, str] = {}  # only finals other than Delivered
        self.duplicates = 0
        self.malformed = 0
        self.samples: list[str] = []

    def note(self, target: bytes, body: bytes, now: float) -> None:
        self.total += 1
        transid, status = _extract(body)
        if transid is None or status is None or not target.startswith(b"/dlr"):
            self.malformed += 1
            if len(self.samples) < 5:
                self.samples.append(f"{target!r} {body[:300]!r}")
            return
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if status == SUBMITTED:
            if transid in self.submitted_at:
                self.duplicates += 1
            else:
                self.submitted_at[transid] = now
        elif transid in self.final_at:
            self.duplicates += 1
        else:
            self.final_at[transid] = now
            if status != DELIVERED:
                self.final_status[transid] = status


def _extract(body: bytes) -> tuple[str | None, str | None]:
    # The server writes compact JSON, so a byte search finds both fields for a fraction of the cost of
    # json.loads; anything else falls back to a full parse.
    i = body.find(_TRANSID)
    j = body.find(_STATUS)
    if i >= 0 and j >= 0:
        i += len(_TRANSID)
        j += len(_STATUS)
        return body[i : body.find(b'"', i)].decode(), body[j : body.find(b'"', j)].decode()
    try:
        note = json.loads(body)["deliveryInfoNotification"]
        return str(note["transid"]), str(note["deliveryInfo"]["deliveryStatus"])
    except (ValueError, KeyError, TypeError):
        return None, None


class ReceiverProtocol(asyncio.Protocol):
    def __init__(self, rx: Receiver) -> None:
        self.rx = rx
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buf = self.buf
        buf += data
        answered = 0
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = bytes(buf[:end]).lower()
            i = head.find(b"\r\ncontent-length:")
            clen = 0
            if i >= 0:
                j = head.find(b"\r\n", i + 2)
                clen = int(head[i + 17 : j if j >= 0 else len(head)])
            total = end + 4 + clen
            if len(buf) < total:
                break
            line_end = head.find(b"\r\n")
            target = head[: line_end if line_end >= 0 else len(head)].split(b" ")[1:2] or [b""]
            self.rx.note(target[0], bytes(buf[end + 4 : total]), now)
            del buf[:total]
            answered += 1
        if answered and self.transport is not None:
            self.transport.write(OK_REPLY * answered)


async def wait_finals(
    rx: Receiver, transids: Sequence[str], timeout_s: float, stall_s: float, poll_s: float = 0.05
) -> tuple[bool, float]:
    """Wait until every transid has a final notification, or timeout_s in all, or stall_s without any
    progress; return (complete, seconds waited)."""
    t0 = time.monotonic()
    remaining = list(transids)
    # Scanning 100k transids every poll would cost the server CPU it competes for; the receiver's count
    # of finals only grows, so rescan only once it could cover everything still missing.
    needed = 0
    last_count, last_change = len(rx.final_at), t0
    while remaining:
        count = len(rx.final_at)
        if count >= needed:
            remaining = [t for t in remaining if t not in rx.final_at]
            needed = count + len(remaining)
        now = time.monotonic()
        if count != last_count:
            last_count, last_change = count, now
        if not remaining or now - t0 > timeout_s or now - last_change > stall_s:
            break
        await asyncio.sleep(poll_s)
    return not remaining, time.monotonic() - t0


def notification_figures(rx: Receiver, ans: Answers, t_start: float) -> dict[str, Any]:
    """Delivery figures for one scenario's accepted transids, from the receiver's records."""
    delivered: list[float] = []
    lat: list[float] = []
    other_finals: dict[str, int] = {}
    submitted = out_of_order = 0
    last_any = 0.0
    for t in ans.transids:
        s_at = rx.submitted_at.get(t)
        f_at = rx.final_at.get(t)
        if s_at is not None:
            submitted += 1
            last_any = max(last_any, s_at)
        if f_at is None:
            continue
        last_any = max(last_any, f_at)
        if s_at is None or s_at > f_at:
            out_of_order += 1
        status = rx.final_status.get(t, DELIVERED)
        if status == DELIVERED:
            delivered.append(f_at)
            lat.append(f_at - ans.sent_at[t])
        else:
            other_finals[status] = other_finals.get(status, 0) + 1
    lat.sort()
    finals = len(delivered) + sum(other_finals.values())
    last_delivered = max(delivered) if delivered else 0.0
    return {
        "accepted": len(ans.transids),
        "submitted_notes": submitted,
        "delivered": len(delivered),
        "other_finals": other_finals,
        "missing_final": len(ans.transids) - finals,
        "missing_submitted": len(ans.transids) - submitted,
        "out_of_order": out_of_order,
        "duplicates": rx.duplicates,
        "malformed": rx.malformed,
        "malformed_samples": rx.samples,
        "notifications": submitted + finals,
        "notifications_per_s": rate(submitted + finals, last_any - t_start),
        "finished_per_s": rate(len(delivered), last_delivered - t_start),
        "last_delivered_after_last_answer_s": round(last_delivered - ans.t_last, 3) if delivered else None,
        "delivered_p50_ms": ms(pct(lat, 50)),
        "delivered_p99_ms": ms(pct(lat, 99)),
        "delivered_max_ms": ms(lat[-1] if lat else None),
        "t_last_delivered": last_delivered,
    }


# -- scenarios --------------------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    port: int
    server_pid: int
    server_alive: Callable[[], bool]
    rx: Receiver
    seq: int = 0

    def msisdn(self, i: int) -> str:
        return msisdn(i, self.args.msisdn_prefix, self.args.msisdn_digits)

    def single_requests(self, n: int) -> list[bytes]:
        reqs = [build_request(self.port, f"bench {self.seq + i}", [self.msisdn(i)]) for i in range(n)]
        self.seq += n
        return reqs

    def batch_requests(self, b: int, size: int) -> list[bytes]:
        reqs = [
            build_request(
                self.port, f"bench {self.seq + k}", [self.msisdn(k * size + j) for j in range(size)]
            )
            for k in range(b)
        ]
        self.seq += b
        return reqs

    def check_server(self) -> None:
        if not self.server_alive():
            raise ServerDied("the server process exited during the benchmark")

    async def single(self, n: int, with_e2e: bool, label: str) -> dict[str, Any]:
        a = self.args
        requests = self.single_requests(n)
        self.rx.reset()
        busy_before = await wait_quiet(a.quiet_wait)
        m0 = cpu_mark(self.server_pid)
        load = await run_load(self.port, requests, a.concurrency, a.max_seconds)
        m1 = cpu_mark(self.server_pid)
        ans = read_answers(load, 1)
        self.check_server()
        sent = sum(1 for t in load.t_send if t)
        accept_s = ans.t_last - load.t_start
        res: dict[str, Any] = {
            "label": label,
            "n": n,
            "concurrency": a.concurrency,
            "sent": sent,
            "not_sent_time_limit": load.not_sent,
            "accepted": ans.accepted_requests,
            "errors": sum(ans.errors.values()),
            "error_kinds": ans.errors,
            "error_samples": ans.samples,
            "accept_s": round(accept_s, 3),
            "accept_per_s": rate(ans.accepted_requests, accept_s),
            "p50_ms": ms(pct(ans.latencies, 50)),
            "p99_ms": ms(pct(ans.latencies, 99)),
            "max_ms": ms(ans.latencies[-1] if ans.latencies else None),
            "busy_before_pct": busy_before,
            "cpu_accept": cpu_window(m0, m1),
        }
        complete, waited = await wait_finals(self.rx, ans.transids, a.e2e_timeout, a.stall_seconds)
        m2 = cpu_mark(self.server_pid)
        self.check_server()
        e2e = notification_figures(self.rx, ans, load.t_start)
        e2e["complete"] = complete
        e2e["waited_after_accept_s"] = round(waited, 2)
        e2e["cpu_e2e"] = cpu_window(m0, m2)
        e2e.pop("t_last_delivered")
        res["e2e" if with_e2e else "drain"] = e2e
        return res

    async def batch(self, label: str) -> dict[str, Any]:
        a = self.args
        requests = self.batch_requests(a.batches, a.batch_size)
        self.rx.reset()
        busy_before = await wait_quiet(a.quiet_wait)
        m0 = cpu_mark(self.server_pid)
        load = await run_load(self.port, requests, a.batch_concurrency, a.max_seconds)
        m1 = cpu_mark(self.server_pid)
        ans = read_answers(load, a.batch_size)
        self.check_server()
        accept_s = ans.t_last - load.t_start
        res: dict[str, Any] = {
            "label": label,
            "batches": a.batches,
            "batch_size": a.batch_size,
            "concurrency": a.batch_concurrency,
            "sent": sum(1 for t in load.t_send if t),
            "not_sent_time_limit": load.not_sent,
            "accepted_requests": ans.accepted_requests,
            "destinations_accepted": len(ans.transids),
            "errors": sum(ans.errors.values()),
            "error_kinds": ans.errors,
            "error_samples": ans.samples,
            "accept_s": round(accept_s, 3),
            "destinations_per_s": rate(len(ans.transids), accept_s),
            "requests_per_s": rate(ans.accepted_requests, accept_s),
            "p50_ms": ms(pct(ans.latencies, 50)),
            "p99_ms": ms(pct(ans.latencies, 99)),
            "max_ms": ms(ans.latencies[-1] if ans.latencies else None),
            "busy_before_pct": busy_before,
            "cpu_accept": cpu_window(m0, m1),
        }
        # A backlog of 2 notifications per destination would otherwise load the server during the
        # next measurement; draining it also yields the delivery figures for batches.
        complete, waited = await wait_finals(self.rx, ans.transids, a.drain_timeout, a.stall_seconds)
        m2 = cpu_mark(self.server_pid)
        self.check_server()
        drain = notification_figures(self.rx, ans, load.t_start)
        drain["complete"] = complete
        drain["waited_after_accept_s"] = round(waited, 2)
        drain["cpu_drain"] = cpu_window(m1, m2)
        drain.pop("t_last_delivered")
        res["drain"] = drain
        return res


class ServerDied(Exception):
    pass


# -- the server process -----------------------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def start_server(python: str, workdir: Path, port: int) -> Server:
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                python,
                "-m",
                "tidings",
                "serve",
                "--config",
                str(workdir / "tidings.toml"),
                "--port",
                str(port),
            ],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # its own session: a Ctrl-C at the terminal reaches only us, and we stop the server by PID
            start_new_session=True,
        )
    return Server(proc, port, workdir, log_path)


def wait_healthy(server: Server, timeout_s: float = 30.0) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if not server.alive():
            raise ServerDied(f"the server exited with code {server.proc.returncode} before it was healthy")
        # http.client, not urllib: urllib would honour http_proxy even for loopback
        conn = http.client.HTTPConnection(HOST, server.port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return time.monotonic() - t0
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.1)
    raise ServerDied(f"GET /healthz did not answer 200 within {timeout_s:.0f} s")


def stop_server(server: Server) -> dict[str, Any]:
    if not server.alive():
        return {"returncode": server.proc.returncode, "how": "had already exited"}
    t0 = time.monotonic()
    os.kill(server.pid, signal.SIGTERM)
    try:
        server.proc.wait(timeout=10)
        how = "SIGTERM"
    except subprocess.TimeoutExpired:
        os.kill(server.pid, signal.SIGKILL)
        server.proc.wait()
        how = "SIGKILL after SIGTERM was ignored for 10 s"
    return {"returncode": server.proc.returncode, "how": how, "stop_s": round(time.monotonic() - t0, 2)}


# -- summary ----------------------------------------------------------------------------------------


def stat(runs: list[dict[str, Any]], *path: str) -> dict[str, float] | None:
    vals: list[float] = []
    for r in runs:
        d: Any = r
        for k in path:
            d = d.get(k) if isinstance(d, dict) else None
        if isinstance(d, int | float):
            vals.append(float(d))
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}


def fmt(s: dict[str, float] | None, unit: str = "", nd: int = 0) -> str:
    if s is None:
        return "n/a"
    f = f"{{:,.{nd}f}}"
    if s["min"] == s["max"]:
        return f"{f.format(s['median'])}{unit}"
    return f"{f.format(s['median'])}{unit} ({f.format(s['min'])}-{f.format(s['max'])})"


SUMMARY_KEYS: list[tuple[str, tuple[str, ...]]] = [
    ("single_accept_per_s", ("single", "accept_per_s")),
    ("single_p50_ms", ("single", "p50_ms")),
    ("single_p99_ms", ("single", "p99_ms")),
    ("single_errors", ("single", "errors")),
    ("single_server_cpu_pct", ("single", "cpu_accept", "server_pct")),
    ("single_bench_cpu_pct", ("single", "cpu_accept", "bench_pct")),
    ("single_others_cpu_pct", ("single", "cpu_accept", "others_pct")),
    ("e2e_notifications_per_s", ("single", "e2e", "notifications_per_s")),
    ("e2e_finished_per_s", ("single", "e2e", "finished_per_s")),
    ("e2e_delivered_p50_ms", ("single", "e2e", "delivered_p50_ms")),
    ("e2e_delivered_p99_ms", ("single", "e2e", "delivered_p99_ms")),
    ("e2e_missing_final", ("single", "e2e", "missing_final")),
    ("e2e_server_cpu_pct", ("single", "e2e", "cpu_e2e", "server_pct")),
    ("e2e_bench_cpu_pct", ("single", "e2e", "cpu_e2e", "bench_pct")),
    ("e2e_others_cpu_pct", ("single", "e2e", "cpu_e2e", "others_pct")),
    ("batch_destinations_per_s", ("batch", "destinations_per_s")),
    ("batch_p50_ms", ("batch", "p50_ms")),
    ("batch_p99_ms", ("batch", "p99_ms")),
    ("batch_errors", ("batch", "errors")),
    ("batch_server_cpu_pct", ("batch", "cpu_accept", "server_pct")),
    ("batch_bench_cpu_pct", ("batch", "cpu_accept", "bench_pct")),
    ("batch_others_cpu_pct", ("batch", "cpu_accept", "others_pct")),
    ("batch_finished_per_s", ("batch", "drain", "finished_per_s")),
    ("batch_drain_s", ("batch", "drain", "last_delivered_after_last_answer_s")),
    ("batch_missing_final", ("batch", "drain", "missing_final")),
    ("batch_drain_server_cpu_pct", ("batch", "drain", "cpu_drain", "server_pct")),
]


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, float] | None]:
    return {name: stat(runs, *path) for name, path in SUMMARY_KEYS}


def print_summary(result: dict[str, Any]) -> None:
    a = result["args"]
    s = result["summary"]
    runs = result["runs"]
    n_runs = len(runs)
    print()
    print(
        f"== Tidings accept benchmark: {result['meta']['cores']} cores, {n_runs} run(s)"
        + (", median (min-max)" if n_runs > 1 else "")
        + " =="
    )
    print(f"tidings {result['meta']['git']}, sandbox delay {a['delay_ms']} ms")
    if any("single" in r for r in runs):
        single = [r["single"] for r in runs if "single" in r]
        print(f"single   N={a['n']} C={a['concurrency']}: accepted per run {[r['accepted'] for r in single]}")
        print(f"  accepted req/s           {fmt(s['single_accept_per_s'], ' req/s')}")
        print(
            f"  latency p50 / p99        {fmt(s['single_p50_ms'], ' ms', 1)} / "
            f"{fmt(s['single_p99_ms'], ' ms', 1)}"
        )
        print(f"  errors (not 1001)        {fmt(s['single_errors'])}")
        print(
            f"  CPU % of one core        server {fmt(s['single_server_cpu_pct'], '%')}, "
            f"bench {fmt(s['single_bench_cpu_pct'], '%')}, others {fmt(s['single_others_cpu_pct'], '%')}"
        )
        if a["e2e"]:
            e2e = [r["single"]["e2e"] for r in runs if "single" in r]
            print(
                "e2e      Delivered per run "
                + str([f"{x['delivered']}/{x['accepted']}" for x in e2e])
                + (" (incomplete!)" if not all(x["complete"] for x in e2e) else "")
            )
            print(f"  notifications/s          {fmt(s['e2e_notifications_per_s'], '/s')}")
            print(f"  messages finished/s      {fmt(s['e2e_finished_per_s'], ' msg/s')}")
            print(
                f"  send->Delivered p50/p99  {fmt(s['e2e_delivered_p50_ms'], ' ms', 1)} / "
                f"{fmt(s['e2e_delivered_p99_ms'], ' ms', 1)}"
            )
            print(
                f"  CPU % of one core        server {fmt(s['e2e_server_cpu_pct'], '%')}, "
                f"bench {fmt(s['e2e_bench_cpu_pct'], '%')}, others {fmt(s['e2e_others_cpu_pct'], '%')}"
            )
    if any("batch" in r for r in runs):
        batch = [r["batch"] for r in runs if "batch" in r]
        print(
            f"batch    B={a['batches']} x {a['batch_size']} msisdns, C={a['batch_concurrency']}: "
            f"destinations accepted per run {[r['destinations_accepted'] for r in batch]}"
        )
        print(f"  destinations/s           {fmt(s['batch_destinations_per_s'], '/s')}")
        print(
            f"  request p50 / p99        {fmt(s['batch_p50_ms'], ' ms', 1)} / "
            f"{fmt(s['batch_p99_ms'], ' ms', 1)}"
        )
        print(f"  errors (not 1001)        {fmt(s['batch_errors'])}")
        print(
            f"  CPU % of one core        server {fmt(s['batch_server_cpu_pct'], '%')}, "
            f"bench {fmt(s['batch_bench_cpu_pct'], '%')}, others {fmt(s['batch_others_cpu_pct'], '%')}"
        )
        print(
            "  drain: Delivered        "
            + str([f"{r['drain']['delivered']}/{r['drain']['accepted']}" for r in batch])
            + f", {fmt(s['batch_finished_per_s'], ' msg/s')} from first send, last one "
            f"{fmt(s['batch_drain_s'], ' s', 1)} after the last answer, "
            f"server CPU {fmt(s['batch_drain_server_cpu_pct'], '%')}"
        )
    for problem in result["problems"]:
        print(f"PROBLEM: {problem}")
    print(f"(JSON: {result['meta']['json']})")


def find_problems(result: dict[str, Any]) -> list[str]:
    """Everything that looks wrong in the server's behaviour, in words."""
    out: list[str] = []
    phases = [("warm-up", result["warmup"])] if result.get("warmup") else []
    for i, r in enumerate(result["runs"], 1):
        phases += [(f"run {i} {k}", r[k]) for k in ("single", "batch") if k in r]
    for name, p in phases:
        if p.get("errors"):
            out.append(
                f"{name}: {p['errors']} failed requests {p['error_kinds']}; e.g. {p['error_samples'][:2]}"
            )
        if p.get("not_sent_time_limit"):
            out.append(f"{name}: {p['not_sent_time_limit']} requests not sent within --max-seconds")
        notes = p.get("e2e") or p.get("drain")
        if not notes:
            continue
        for key, what in [
            ("missing_final", "accepted messages got no final notification"),
            ("missing_submitted", "accepted messages got no Submitted notification"),
            ("out_of_order", "final notifications arrived before Submitted"),
            ("duplicates", "duplicate notifications"),
            ("malformed", "notifications without transid/deliveryStatus or to another path"),
        ]:
            if notes.get(key):
                out.append(f"{name}: {notes[key]} {what}")
        if notes.get("other_finals"):
            out.append(f"{name}: final statuses other than Delivered: {notes['other_finals']}")
    srv = result.get("server", {})
    if srv.get("stop", {}).get("returncode") not in (0, None):
        out.append(f"server exit: {srv['stop']}")
    if srv.get("log_problems"):
        out += [f"server log: {count} x {what}" for what, count in srv["log_problems"].items()]
    return out


_LOG_LEVEL = re.compile(r"^\S+ \S+ (INFO|WARNING|ERROR|CRITICAL) (\S+): (.*)$")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_EXCEPTION = re.compile(
    r"^(?:[\w.]+\.)?(\w+(?:Error|Exception|Exit)\b.*)$|^(Task exception was never retrieved.*)$"
)


def log_problems(text: str) -> dict[str, int]:
    """Failure log records and exception lines of the server's log, counted by their text."""
    seen: dict[str, int] = {}
    for line in text.splitlines():
        if m := _LOG_LEVEL.match(line):
            # notification retries are logged at INFO; other INFO lines are routine
            if m.group(1) == "INFO" and "fail" not in m.group(3):
                continue
            key = f"{m.group(1)} {m.group(2)}: {_UUID.sub('<id>', m.group(3))[:200]}"
        elif m := _EXCEPTION.match(line):
            key = (m.group(1) or m.group(2))[:200]
        else:
            continue
        seen[key] = seen.get(key, 0) + 1
    return seen


def git_describe() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "tidings"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+uncommitted changes in tidings/" if dirty else "")


# -- main -------------------------------------------------------------------------------------------


async def bench_main(a: argparse.Namespace, server: Server, rx_sock: socket.socket) -> dict[str, Any]:
    rx = Receiver()
    loop = asyncio.get_running_loop()
    receiver = await loop.create_server(lambda: ReceiverProtocol(rx), sock=rx_sock, backlog=1024)
    b = Bench(a, server.port, server.pid, server.alive, rx)
    result: dict[str, Any] = {"warmup": None, "runs": []}
    try:
        if a.warmup:
            print(f"warm-up: {a.warmup} single requests", flush=True)
            result["warmup"] = await b.single(a.warmup, True, "warm-up")
            w = result["warmup"]
            print(
                f"  {w['accept_per_s']} req/s, Delivered {w['e2e']['delivered']}/{w['e2e']['accepted']}",
                flush=True,
            )
        for i in range(1, a.runs + 1):
            run: dict[str, Any] = {"run": i}
            if a.single:
                print(f"run {i}/{a.runs}: single N={a.n} C={a.concurrency}", flush=True)
                run["single"] = r = await b.single(a.n, a.e2e, f"run {i}")
                notes = r["e2e"] if a.e2e else r["drain"]
                print(
                    f"  {r['accept_per_s']} req/s p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms errors "
                    f"{r['errors']}, server CPU {r['cpu_accept']['server_pct']}%; "
                    f"Delivered {notes['delivered']}/{notes['accepted']} {notes['finished_per_s']} msg/s "
                    f"p50 {notes['delivered_p50_ms']} ms p99 {notes['delivered_p99_ms']} ms",
                    flush=True,
                )
            if a.batches:
                print(
                    f"run {i}/{a.runs}: batch B={a.batches} x {a.batch_size} C={a.batch_concurrency}",
                    flush=True,
                )
                run["batch"] = r = await b.batch(f"run {i}")
                print(
                    f"  {r['destinations_per_s']} destinations/s p50 {r['p50_ms']} ms "
                    f"p99 {r['p99_ms']} ms errors "
                    f"{r['errors']}, server CPU {r['cpu_accept']['server_pct']}%; drained "
                    f"{r['drain']['delivered']}/{r['drain']['accepted']} in "
                    f"{r['drain']['waited_after_accept_s']} s",
                    flush=True,
                )
            result["runs"].append(run)
    except ServerDied as exc:
        result["aborted"] = str(exc)
        print(f"ABORTED: {exc}", flush=True)
    finally:
        receiver.close()
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000, help="single: requests per run (default 20000)")
    ap.add_argument("--concurrency", type=int, default=64, help="single: connections (default 64)")
    ap.add_argument("--batches", type=int, default=100, help="batch: requests per run; 0 skips (default 100)")
    ap.add_argument("--batch-size", type=int, default=1000, help="batch: msisdns per request (default 1000)")
    ap.add_argument("--batch-concurrency", type=int, default=4, help="batch: connections (default 4)")
    ap.add_argument(
        "--warmup", type=int, default=1000, help="single requests before measuring (default 1000)"
    )
    ap.add_argument("--runs", type=int, default=3, help="measured runs; figures are medians (default 3)")
    ap.add_argument("--no-single", dest="single", action="store_false", help="skip single (and e2e)")
    ap.add_argument("--no-e2e", dest="e2e", action="store_false", help="don't report e2e figures")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="time limit of each load phase")
    ap.add_argument("--e2e-timeout", type=float, default=120.0, help="wait at most this for Delivered")
    ap.add_argument("--drain-timeout", type=float, default=300.0, help="wait at most this for a batch drain")
    ap.add_argument("--stall-seconds", type=float, default=30.0, help="stop waiting after this long idle")
    ap.add_argument(
        "--quiet-wait", type=float, default=20.0, help="wait up to this for an idle machine (0: no)"
    )
    ap.add_argument("--delay-ms", type=int, default=200, help="sandbox delay before Delivered (default 200)")
    # +44 7700 9nnnnn (the project's own demo number is +447700900123): +4477009 with 6 more digits
    # would be 11 national digits, which the server rightly refuses as not a possible UK number.
    ap.add_argument("--msisdn-prefix", default="+4477009", help="destinations: this prefix ...")
    ap.add_argument("--msisdn-digits", type=int, default=5, help="... then this many digits (>= 4)")
    ap.add_argument("--python", default=str(REPO / ".venv/bin/python"), help="interpreter that runs tidings")
    ap.add_argument("--out-dir", default=str(HERE / "out"))
    ap.add_argument("--keep-tmp", action="store_true", help="keep the server's temp dir (DB and log)")
    a = ap.parse_args(argv)
    a.e2e = a.e2e and a.single
    if a.msisdn_digits < 4:
        ap.error("--msisdn-digits must be at least 4")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{stamp}.json"
    workdir = Path(tempfile.mkdtemp(prefix="tidings-bench-"))
    rx_sock = socket.socket()
    rx_sock.bind((HOST, 0))
    rx_sock.listen(1024)
    rx_sock.setblocking(False)
    config = CONFIG_TEMPLATE.format(
        delay_ms=a.delay_ms, key=SERVICE_KEY, sender=SENDER, host=HOST, receiver_port=rx_sock.getsockname()[1]
    )
    (workdir / "tidings.toml").write_text(config)
    port = free_port()
    result: dict[str, Any] = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "git": git_describe(),
            "json": os.path.relpath(json_path),
            "server_cmd": f"{a.python} -m tidings serve --config {workdir}/tidings.toml --port {port}",
            "config": config,
        },
        "args": vars(a),
    }
    server = start_server(a.python, workdir, port)
    print(f"server pid {server.pid} on {HOST}:{port}, workdir {workdir}", flush=True)
    try:
        result["meta"]["healthy_after_s"] = round(wait_healthy(server), 2)
        result.update(asyncio.run(bench_main(a, server, rx_sock)))
    except ServerDied as exc:
        result["aborted"] = str(exc)
        print(f"ABORTED: {exc}", flush=True)
    finally:
        stop = stop_server(server)
        rx_sock.close()
        log = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
        log_copy = out_dir / f"{stamp}-server.log"
        log_copy.write_text(log)
        result["server"] = {"stop": stop, "log": os.path.relpath(log_copy), "log_problems": log_problems(log)}
        if not a.keep_tmp:
            shutil.rmtree(workdir, ignore_errors=True)
    result.setdefault("runs", [])
    result.setdefault("warmup", None)
    result["summary"] = summarize(result["runs"])
    result["problems"] = find_problems(result)
    if result.get("aborted"):
        result["problems"].insert(0, f"aborted: {result['aborted']}")
        result["server"]["log_tail"] = server.log_tail()
    json_path.write_text(json.dumps(result, indent=1))
    print_summary(result)
    if result.get("aborted"):
        print("--- server log (tail) ---\n" + result["server"]["log_tail"])
    return 1 if result.get("aborted") else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
