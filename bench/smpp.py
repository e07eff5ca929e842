#!/usr/bin/env python3
"""End-to-end benchmark for Tidings over SMPP: HTTP -> SMPP connector -> SMSC simulator -> receipts ->
notifications, all on this machine.

Starts its own `tidings smsc` (the SMSC simulator: submit_sm -> message id, deliver_sm receipt after
--dlr-delay-ms) and `tidings serve` (fresh temp dir, so a new SQLite file; one transceiver bind to the
simulator), a notification receiver and a load client in this process, and measures:

  e2e    --messages single-destination requests over --connections keep-alive connections: accepted
         req/s and latency p50/p99; then, until every accepted message has its final notification
         (bounded): messages/s from the first request sent to the last Delivered notification, the
         receipt round trip (Submitted notification -> Delivered notification, per message) and
         accept -> Delivered p50/p99
  batch  --batch-messages destinations in requests of --batch-size (1000) msisdns over
         --batch-connections (4): destinations accepted/s, then drained: delivered messages/s from the
         first request sent to the last Delivered notification

Every scenario checks for losses: each accepted transid must get exactly one final notification
(duplicates are counted apart), and the simulator's submit_sm count (GET /stats) must grow by exactly
the number of accepted messages.  CPU seconds are reported for tidings (its process and its notification
sender child), the SMSC simulator, this process (load client + receiver) and the rest of the machine.

  .venv/bin/python bench/smpp.py                                # e2e + batch, 1 run, < 1 minute
  .venv/bin/python bench/smpp.py --scenario all --runs 3        # medians of 3 runs
  .venv/bin/python bench/smpp.py --scenario e2e --profile       # + a py-spy profile of tidings serve
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import importlib.util
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

# bench/ is not a package: accept.py sits next to this file
from accept import (
    DELIVERED,
    HOST,
    SERVICE_KEY,
    SUBMITTED,
    TCK,
    Load,
    Receiver,
    ReceiverProtocol,
    _extract,
    build_request,
    fmt,
    free_port,
    git_describe,
    log_problems,
    machine_cpu_s,
    ms,
    msisdn,
    pct,
    proc_cpu_s,
    rate,
    read_answers,
    run_load,
    stat,
    tree_cpu_s,
    wait_finals,
    wait_quiet,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SMSC_SYSTEM_ID = "tidings"
SMSC_PASSWORD = "secret"
TEXT = "bench"
TARGET_MSG_PER_S = 2000

CONFIG_TEMPLATE = """\
[server]
database = "sqlite:///{workdir}/bench.db"
host = "{host}"
port = {http_port}

[notify]
timeout_s = 10
retries = 3
retry_interval_s = 1
{notify_extra}
[[services]]
id = "svc-bench"
key = "{key}"
tps = 100000
notify_url = "http://{host}:{receiver_port}/dlr"
senderids = ["CONNCT"]

[[smsc]]
name = "sim"
host = "{host}"
port = {smpp_port}
system_id = "{system_id}"
password = "{password}"
window = {window}
binds = {binds}

[routes]
sms = "sim"
"""


class Died(Exception):
    """A process this benchmark needs exited, or did not come up."""


# -- notifications ----------------------------------------------------------------------------------


class SmppReceiver(Receiver):
    """accept.py's receiver, with duplicate Submitted and duplicate final notifications counted apart."""

    def reset(self) -> None:
        super().reset()
        self.dup_submitted = 0
        self.dup_final = 0

    def note(self, target: bytes, body: bytes, now: float) -> None:
        transid, status = _extract(body)
        if transid is not None and status is not None:
            if status == SUBMITTED and transid in self.submitted_at:
                self.dup_submitted += 1
            elif status != SUBMITTED and transid in self.final_at:
                self.dup_final += 1
        super().note(target, body, now)


# -- processes --------------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path | None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None:
            return ""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Procs:
    """Every process this benchmark started, stopped by PID (never by name) in stop_all."""

    started: list[Proc] = field(default_factory=list)

    def start(self, name: str, cmd: list[str], cwd: Path, log_path: Path | None) -> Proc:
        out = open(log_path, "wb") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
        try:
            popen = subprocess.Popen(
                cmd,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # own session: a Ctrl-C at the terminal reaches only us; we stop them by PID
                start_new_session=True,
            )
        finally:
            if log_path is not None:
                out.close()  # type: ignore[union-attr]
        p = Proc(name, popen, log_path)
        self.started.append(p)
        return p

    @staticmethod
    def stop(p: Proc, sig: int = signal.SIGTERM, grace_s: float = 10.0) -> dict[str, Any]:
        if not p.alive():
            return {"returncode": p.proc.returncode, "how": "had already exited"}
        t0 = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, sig)
        try:
            p.proc.wait(timeout=grace_s)
            how = signal.Signals(sig).name
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
            p.proc.wait()
            how = f"SIGKILL after {signal.Signals(sig).name} was ignored for {grace_s:.0f} s"
        return {"returncode": p.proc.returncode, "how": how, "stop_s": round(time.monotonic() - t0, 2)}

    def stop_all(self) -> dict[str, dict[str, Any]]:
        # last started first: the profiler, then tidings (it unbinds from the simulator), then the SMSC
        return {p.name: self.stop(p) for p in reversed(self.started)}


async def serve_control(app: web.Application, port: int) -> None:
    """Serve a stand-in's control `app` (its /stats, ...) on HOST:`port` until SIGTERM or SIGINT: how
    every bench's stand-in process waits to be stopped by PID."""
    from aiohttp import web

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, HOST, port).start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def http_get_json(port: int, path: str, timeout_s: float = 5.0) -> Any:
    # http.client, not urllib: urllib would honour http_proxy even for loopback
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise OSError(f"GET {path}: HTTP {resp.status}")
        return json.loads(body) if body else None
    finally:
        conn.close()


def wait_until(
    what: str, check: Callable[[], bool], procs: list[Proc], timeout_s: float = 30.0, step_s: float = 0.1
) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        for p in procs:
            if not p.alive():
                raise Died(f"{p.name} exited with code {p.proc.returncode} before {what}:\n{p.log_tail()}")
        try:
            if check():
                return time.monotonic() - t0
        except (OSError, ValueError):
            pass
        time.sleep(step_s)
    raise Died(f"no {what} within {timeout_s:.0f} s")


def smsc_bound(control_port: int) -> bool:
    stats = http_get_json(control_port, "/stats")
    return any(b.get("system_id") == SMSC_SYSTEM_ID for b in stats.get("bound", []))


def wait_binds_settle(control_port: int, procs: list[Proc], quiet_s: float = 2.0, max_s: float = 20.0) -> int:
    """Wait until the simulator's bind count has not changed for quiet_s (at most max_s); return it."""
    t0 = time.monotonic()
    binds = int(http_get_json(control_port, "/stats")["binds"])
    since = t0
    while time.monotonic() - since < quiet_s and time.monotonic() - t0 < max_s:
        time.sleep(0.2)
        for p in procs:
            if not p.alive():
                raise Died(f"{p.name} exited with code {p.proc.returncode} after binding:\n{p.log_tail()}")
        now = int(http_get_json(control_port, "/stats")["binds"])
        if now != binds:
            binds, since = now, time.monotonic()
    return binds


def healthy(port: int) -> bool:
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    finally:
        conn.close()


# -- CPU accounting ---------------------------------------------------------------------------------


def proc_sys_s(pid: int) -> float | None:
    """stime of a process (all threads): the kernel's share, e.g. fsync, socket writes, epoll."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[12]) / TCK
    except (OSError, IndexError, ValueError):
        return None


@dataclass(frozen=True)
class Mark:
    wall: float
    tidings: float | None  # serve and its children (the notification sender), and any worker processes
    tidings_main: float | None  # serve alone: HTTP, store, dispatch, SMPP, notification claims
    tidings_main_sys: float | None  # its kernel time
    smsc: float | None
    profiler: float | None
    bench: float  # this process: load client and notification receiver
    machine_total: float
    machine_idle: float
    db: float | None = None  # a database server's processes (PostgreSQL), when the caller counts them


def mark(
    tidings_pid: int,
    smsc_pid: int,
    profiler_pid: int | None,
    worker_pids: Sequence[int] = (),
    db_cpu: Callable[[], float | None] | None = None,
) -> Mark:
    total, idle = machine_cpu_s()
    tidings = tree_cpu_s(tidings_pid)
    if tidings is not None:
        tidings += sum(tree_cpu_s(w) or 0.0 for w in worker_pids)
    return Mark(
        time.monotonic(),
        tidings,
        proc_cpu_s(tidings_pid),
        proc_sys_s(tidings_pid),
        tree_cpu_s(smsc_pid),
        None if profiler_pid is None else proc_cpu_s(profiler_pid),
        time.process_time(),
        total,
        idle,
        None if db_cpu is None else db_cpu(),
    )


def cpu_split(a: Mark, b: Mark, messages: int) -> dict[str, Any]:
    """CPU seconds of each party between two marks, and each as % of one core over the window."""
    wall = max(b.wall - a.wall, 1e-9)

    def d(x: float | None, y: float | None) -> float | None:
        return None if x is None or y is None else y - x

    parts = {
        "tidings": d(a.tidings, b.tidings),
        "smsc": d(a.smsc, b.smsc),
        "bench": b.bench - a.bench,
        "profiler": d(a.profiler, b.profiler),
        "db": d(a.db, b.db),
    }
    busy = (b.machine_total - a.machine_total) - (b.machine_idle - a.machine_idle)
    parts["others"] = busy - sum(v or 0.0 for v in parts.values())
    out: dict[str, Any] = {"window_s": round(wall, 3), "cores": os.cpu_count()}
    for k, v in parts.items():
        if k in ("profiler", "db") and v is None:
            continue
        out[f"{k}_s"] = None if v is None else round(v, 2)
        out[f"{k}_pct"] = None if v is None else round(100.0 * v / wall, 1)
    main = d(a.tidings_main, b.tidings_main)
    sender = None if main is None or parts["tidings"] is None else parts["tidings"] - main
    main_sys = d(a.tidings_main_sys, b.tidings_main_sys)
    for k, v in (("tidings_main", main), ("tidings_main_sys", main_sys), ("tidings_sender", sender)):
        out[f"{k}_s"] = None if v is None else round(v, 2)
        out[f"{k}_pct"] = None if v is None else round(100.0 * v / wall, 1)
    out["machine_busy_pct"] = round(100.0 * busy / wall, 1)
    out["machine_capacity_pct"] = 100 * (os.cpu_count() or 1)
    tid = parts["tidings"]
    out["tidings_us_per_msg"] = round(1e6 * tid / messages, 1) if tid is not None and messages else None
    smsc = parts["smsc"]
    out["smsc_us_per_msg"] = round(1e6 * smsc / messages, 1) if smsc is not None and messages else None
    out["bench_us_per_msg"] = round(1e6 * (b.bench - a.bench) / messages, 1) if messages else None
    return out


# -- profiling --------------------------------------------------------------------------------------


def py_spy_path(python: str) -> str | None:
    cand = Path(python).parent / "py-spy"
    if cand.exists():
        return str(cand)
    return shutil.which("py-spy")


def read_collapsed(path: Path) -> list[tuple[list[str], int]]:
    stacks: list[tuple[list[str], int]] = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def _function(frame: str) -> str:
    # "name (file.py:123)" -> "name (file.py)": own time per function, not per line
    name, sep, loc = frame.partition(" (")
    if not sep:
        return frame
    return f"{name} ({loc.rsplit(':', 1)[0].rstrip(')')})"


def _package(frame: str) -> str:
    # "name (tidings/store/sqlite.py:12)" -> "tidings/store"; "send (uvicorn/protocols/...)" -> "uvicorn"
    _, sep, loc = frame.partition(" (")
    if not sep:
        return frame  # a native frame without a file, e.g. with --profile-native
    parts = loc.rsplit(":", 1)[0].rstrip(")").split("/")
    n = 2 if parts[0] == "tidings" and len(parts) > 1 else 1
    return "/".join(parts[:n]).removesuffix(".py")


def profile_top(stacks: list[tuple[list[str], int]], root_pid: int, top: int = 15) -> dict[str, Any]:
    """Own (leaf) and total (inclusive) samples per function, per process: py-spy --subprocesses nests
    a child's stacks under a 'process PID:"cmd"' frame of each ancestor."""
    per_proc: dict[str, dict[str, Any]] = {}
    for frames, count in stacks:
        procs = [f for f in frames if f.startswith("process ")]
        code = [f for f in frames if not f.startswith("process ")]
        if not procs:
            key = f"pid {root_pid}"
        else:
            pid = procs[-1].split(":", 1)[0].removeprefix("process ")
            key = "tidings serve" if pid == str(root_pid) else f"child pid {pid} (notification sender)"
        p = per_proc.setdefault(key, {"samples": 0, "own": {}, "total": {}, "package": {}})
        p["samples"] += count
        if not code:
            continue
        leaf = _function(code[-1])
        p["own"][leaf] = p["own"].get(leaf, 0) + count
        pkg = _package(code[-1])
        p["package"][pkg] = p["package"].get(pkg, 0) + count
        for fn in {_function(f) for f in code}:
            p["total"][fn] = p["total"].get(fn, 0) + count
    out: dict[str, Any] = {}
    for key, p in sorted(per_proc.items(), key=lambda kv: -kv[1]["samples"]):
        n = p["samples"] or 1
        own = sorted(p["own"].items(), key=lambda kv: -kv[1])[:top]
        total = sorted(p["total"].items(), key=lambda kv: -kv[1])[:top]
        pkgs = sorted(p["package"].items(), key=lambda kv: -kv[1])
        out[key] = {
            "samples": p["samples"],
            "own_by_package": [{"package": f, "pct": round(100.0 * c / n, 1)} for f, c in pkgs],
            "own_top": [{"function": f, "samples": c, "pct": round(100.0 * c / n, 1)} for f, c in own],
            "total_top": [{"function": f, "samples": c, "pct": round(100.0 * c / n, 1)} for f, c in total],
        }
    return out


def write_speedscope(stacks: list[tuple[list[str], int]], path: Path, name: str) -> None:
    """The collapsed stacks as a speedscope file (https://www.speedscope.app, 'sampled' profile)."""
    index: dict[str, int] = {}
    samples: list[list[int]] = []
    weights: list[int] = []
    for frames, count in stacks:
        samples.append([index.setdefault(f, len(index)) for f in frames])
        weights.append(count)
    doc = {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": [{"name": f} for f in index]},
        "profiles": [
            {
                "type": "sampled",
                "name": name,
                "unit": "none",
                "startValue": 0,
                "endValue": sum(weights),
                "samples": samples,
                "weights": weights,
            }
        ],
        "name": name,
        "exporter": "bench/smpp.py",
    }
    path.write_text(json.dumps(doc))


# -- syscall counts (--syscalls) ---------------------------------------------------------------------

SYSCALLS = (
    "fdatasync",
    "fsync",
    "pwrite64",
    "pread64",
    "write",
    "writev",
    "sendto",
    "sendmsg",
    "read",
    "recvfrom",
    "epoll_wait",
    "epoll_pwait",
    "futex",
    "getpid",
)


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def read_perf_stat(path: Path) -> dict[str, int]:
    """perf stat -x, output: count,unit,event,...; '<not counted>' (no such event happened) is 0."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            f = line.split(",")
            if len(f) < 3 or line.startswith("#"):
                continue
            name = f[2].removeprefix("syscalls:sys_enter_").replace("raw_syscalls:sys_enter", "all syscalls")
            out[name] = int(f[0]) if f[0].isdigit() else 0
    return out


# -- per-second samples ------------------------------------------------------------------------------


class Sampler:
    """Every `period_s` during a scenario: the simulator's counters (GET /stats) and the CPU seconds of
    tidings serve, its notification sender and the simulator, to show where the time goes over a run."""

    def __init__(self, env: Env, period_s: float) -> None:
        self.env = env
        self.period_s = period_s
        self.rows: list[tuple[float, dict[str, Any] | None, float | None, float | None, float | None]] = []
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        env = self.env
        try:
            stats: dict[str, Any] | None = await env.smsc_stats()
        except (OSError, ValueError):
            stats = None
        t = time.monotonic()
        main = proc_cpu_s(env.tidings.pid)
        tree = tree_cpu_s(env.tidings.pid)
        self.rows.append(
            (t, stats, main, None if tree is None or main is None else tree - main, tree_cpu_s(env.smsc.pid))
        )

    async def _run(self) -> None:
        while True:
            await self._sample()
            await asyncio.sleep(self.period_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._sample()

    def series(self, t_start: float) -> list[dict[str, Any]]:
        """Per interval: its end (s after the first request), submit_sm/s and receipts acked/s at the
        simulator, and CPU % of one core of serve, the notification sender and the simulator."""
        out: list[dict[str, Any]] = []
        for (t0, s0, m0, c0, k0), (t1, s1, m1, c1, k1) in itertools.pairwise(self.rows):
            dt = max(t1 - t0, 1e-9)
            out.append(
                {
                    "t_s": round(t1 - t_start, 2),
                    "submit_sm_per_s": _per_s(s0, s1, "submitted", dt),
                    "receipts_acked_per_s": _per_s(s0, s1, "receipts_acked", dt),
                    "serve_cpu_pct": _cpu_pct(m0, m1, dt),
                    "sender_cpu_pct": _cpu_pct(c0, c1, dt),
                    "smsc_cpu_pct": _cpu_pct(k0, k1, dt),
                }
            )
        return out


def _per_s(a: dict[str, Any] | None, b: dict[str, Any] | None, key: str, dt: float) -> float | None:
    return None if a is None or b is None else round((b[key] - a[key]) / dt, 1)


def _cpu_pct(a: float | None, b: float | None, dt: float) -> float | None:
    return None if a is None or b is None else round(100.0 * (b - a) / dt, 1)


# -- scenarios --------------------------------------------------------------------------------------


@dataclass
class Env:
    args: argparse.Namespace
    procs: Procs
    tidings: Proc
    smsc: Proc
    http_port: int
    control_port: int
    rx: SmppReceiver
    out_dir: Path
    prefix: str  # of the files this run writes in out_dir, e.g. "smpp-20261122-163435"
    seq: int = 0
    profiler: Proc | None = None
    workers: list[Proc] = field(default_factory=list)  # `tidings worker` processes, if any
    db_cpu: Callable[[], float | None] | None = None  # CPU seconds of the database server, if counted

    def check_alive(self) -> None:
        for p in (self.tidings, self.smsc, *self.workers):
            if not p.alive():
                raise Died(f"{p.name} exited with code {p.proc.returncode} during the benchmark")

    def requests(self, destinations: int, per_request: int) -> list[bytes]:
        a = self.args
        reqs = []
        for start in range(0, destinations, per_request):
            k = min(per_request, destinations - start)
            addrs = [msisdn(self.seq + start + j, a.msisdn_prefix, a.msisdn_digits) for j in range(k)]
            reqs.append(build_request(self.http_port, TEXT, addrs))
        self.seq += destinations
        return reqs

    async def smsc_stats(self) -> dict[str, Any]:
        return dict(await asyncio.to_thread(http_get_json, self.control_port, "/stats"))

    def mark(self) -> Mark:
        return mark(
            self.tidings.pid,
            self.smsc.pid,
            self.profiler.pid if self.profiler else None,
            [w.pid for w in self.workers],
            self.db_cpu,
        )

    async def start_profiler(self, raw_path: Path) -> None:
        a = self.args
        spy = py_spy_path(a.python)
        if spy is None:
            raise Died("--profile needs py-spy: .venv/bin/pip install py-spy")
        cmd = [spy, "record", "--pid", str(self.tidings.pid), "--rate", str(a.profile_rate)]
        cmd += ["--format", "raw", "--subprocesses", "-o", str(raw_path)]
        # --nonblocking: sample without pausing tidings (py-spy cannot unwind C frames that way)
        cmd.append("--native" if a.profile_native else "--nonblocking")
        log_path = self.out_dir / f"{self.prefix}-py-spy.log"
        self.profiler = self.procs.start("py-spy", cmd, REPO, log_path)
        await asyncio.sleep(0.5)  # let it attach before the clock starts
        if not self.profiler.alive():
            raise Died(f"py-spy exited at once:\n{self.profiler.log_tail()}")

    async def start_perf(self, label: str) -> list[tuple[str, Proc, Path]]:
        """`perf stat` counting syscalls of serve and of its notification sender, in the kernel."""
        perf = shutil.which("perf")
        if perf is None:
            raise Died("--syscalls needs perf (apt-get install linux-perf)")
        events = [f"syscalls:sys_enter_{n}" for n in SYSCALLS] + ["raw_syscalls:sys_enter"]
        started = []
        sender = children(self.tidings.pid)
        for who, pid in [("serve", self.tidings.pid)] + [("sender", c) for c in sender[:1]]:
            path = self.out_dir / f"{self.prefix}-perf-{label.replace(' ', '_')}-{who}.csv"
            cmd = [perf, "stat", "-x", ",", "-o", str(path), "-e", ",".join(events), "-p", str(pid)]
            started.append((who, self.procs.start(f"perf-{who}", cmd, REPO, None), path))
        await asyncio.sleep(0.3)
        return started

    @staticmethod
    def stop_perf(started: list[tuple[str, Proc, Path]], messages: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for who, proc, path in started:
            Procs.stop(proc, signal.SIGINT, 10.0)  # perf stat writes its counts on SIGINT
            counts = read_perf_stat(path)
            out[who] = {
                "counts": counts,
                "per_msg": {k: round(v / messages, 3) for k, v in counts.items() if v} if messages else {},
                "csv": os.path.relpath(path),
            }
        return out

    def stop_profiler(self) -> dict[str, Any]:
        assert self.profiler is not None
        # py-spy writes its output on SIGINT (Ctrl-C)
        res = Procs.stop(self.profiler, signal.SIGINT, 20.0)
        self.profiler = None
        return res

    async def scenario(
        self, kind: str, label: str, destinations: int, per_request: int, connections: int, profile: bool
    ) -> dict[str, Any]:
        a = self.args
        rx = self.rx
        requests = self.requests(destinations, per_request)
        busy_before = await wait_quiet(a.quiet_wait)
        self.check_alive()
        s0 = await self.smsc_stats()
        raw_path = self.out_dir / f"{self.prefix}-profile.txt"
        if profile:
            await self.start_profiler(raw_path)
        perf = await self.start_perf(f"{label}-{kind}") if a.syscalls else None
        rx.reset()
        sampler = Sampler(self, a.sample_period)
        m0 = self.mark()
        sampler.start()
        per_s = a.rate if a.rate and kind == "e2e" else None
        load = await run_load(self.http_port, requests, connections, a.max_seconds, per_s)
        m1 = self.mark()
        ans = read_answers(load, per_request)
        self.check_alive()
        complete, waited = await wait_finals(rx, ans.transids, a.drain_timeout, a.stall_seconds, poll_s=0.02)
        m2 = self.mark()
        await sampler.stop()
        syscalls = self.stop_perf(perf, len(rx.final_at)) if perf is not None else None
        prof_stop = self.stop_profiler() if profile else None
        self.check_alive()
        # receipts are acknowledged just before their notifications go out; give the counters a moment
        s1 = await self.smsc_stats()
        for _ in range(20):
            if s1["receipts_acked"] - s0["receipts_acked"] >= len(ans.transids):
                break
            await asyncio.sleep(0.1)
            s1 = await self.smsc_stats()
        accept_s = ans.t_last - load.t_start
        res: dict[str, Any] = {
            "label": label,
            "scenario": kind,
            "destinations": destinations,
            "per_request": per_request,
            "requests": len(requests),
            "connections": connections,
            "sent": sum(1 for t in load.t_send if t),
            "not_sent_time_limit": load.not_sent,
            "accepted_requests": ans.accepted_requests,
            "accepted_messages": len(ans.transids),
            "errors": sum(ans.errors.values()),
            "error_kinds": ans.errors,
            "error_samples": ans.samples,
            "accept_s": round(accept_s, 3),
            "accept_req_per_s": rate(ans.accepted_requests, accept_s),
            "accept_msg_per_s": rate(len(ans.transids), accept_s),
            "accept_p50_ms": ms(pct(ans.latencies, 50)),
            "accept_p99_ms": ms(pct(ans.latencies, 99)),
            "accept_max_ms": ms(ans.latencies[-1] if ans.latencies else None),
            "busy_before_pct": busy_before,
            "cpu_accept": cpu_split(m0, m1, len(ans.transids)),
        }
        res.update(delivery_figures(rx, load, ans.transids, load.t_start, ans.t_last))
        res["complete"] = complete
        res["waited_after_accept_s"] = round(waited, 2)
        res["cpu_e2e"] = cpu_split(m0, m2, res["delivered"])
        res["smsc"] = {
            k: s1[k] - s0[k] for k in ("submitted", "receipts_sent", "receipts_acked", "binds", "mo_sent")
        }
        res["smsc"]["receipts_held"] = s1["receipts_held"]
        res["samples"] = sampler.series(load.t_start)
        if syscalls is not None:
            res["syscalls"] = syscalls
        res["smsc"]["submitted_matches"] = res["smsc"]["submitted"] == len(ans.transids) == destinations
        if profile:
            res["profile"] = self.profile_report(raw_path, prof_stop)
        return res

    def profile_report(self, raw_path: Path, stop: dict[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {"py_spy_stop": stop, "raw": os.path.relpath(raw_path)}
        if not raw_path.exists():
            out["error"] = "py-spy wrote no output; see " + os.path.relpath(
                self.out_dir / f"{self.prefix}-py-spy.log"
            )
            return out
        stacks = read_collapsed(raw_path)
        sc = raw_path.with_suffix(".speedscope.json")
        write_speedscope(stacks, sc, f"tidings serve, e2e {self.args.messages} messages")
        out["speedscope"] = os.path.relpath(sc)
        out["rate_hz"] = self.args.profile_rate
        out["by_process"] = profile_top(stacks, self.tidings.pid, self.args.profile_top)
        return out


def delivery_figures(
    rx: SmppReceiver, load: Load, transids: list[str], t_start: float, t_last_answer: float
) -> dict[str, Any]:
    # the answer time of each accepted transid (the request's answer), for accept -> Delivered
    answered_at: dict[str, float] = {}
    for i, body in enumerate(load.body):
        if body is None or load.status[i] != 200:
            continue
        with contextlib.suppress(ValueError, KeyError, TypeError):
            for item in json.loads(body)["response"]:
                if item.get("code") == "1001" and "transid" in item:
                    answered_at[item["transid"]] = load.t_recv[i]
    delivered: list[float] = []
    rtt: list[float] = []  # Submitted notification -> Delivered notification
    acc: list[float] = []  # accept answer -> Delivered notification
    other_finals: dict[str, int] = {}
    submitted = out_of_order = 0
    last_any = 0.0
    for t in transids:
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
        if status != DELIVERED:
            other_finals[status] = other_finals.get(status, 0) + 1
            continue
        delivered.append(f_at)
        if s_at is not None:
            rtt.append(f_at - s_at)
        if t in answered_at:
            acc.append(f_at - answered_at[t])
    rtt.sort()
    acc.sort()
    finals = len(delivered) + sum(other_finals.values())
    # how delivery kept pace with accepting: Delivered while requests were still being answered, and after
    during = sum(1 for f in delivered if f <= t_last_answer)
    after = len(delivered) - during
    # per second from the first request sent: answers, Submitted and Delivered notifications
    timeline: dict[str, list[int]] = {"answered": [], "submitted": [], "delivered": []}

    def bucket(series: list[int], t: float) -> None:
        k = max(0, int(t - t_start))
        if k >= len(series):
            series.extend([0] * (k + 1 - len(series)))
        series[k] += 1

    for i, t_recv in enumerate(load.t_recv):
        if t_recv and load.body[i] is not None:
            bucket(timeline["answered"], t_recv)
    for t in transids:
        if (s_at := rx.submitted_at.get(t)) is not None:
            bucket(timeline["submitted"], s_at)
    for f in delivered:
        bucket(timeline["delivered"], f)
    known = set(transids)
    last_delivered = max(delivered) if delivered else 0.0
    return {
        "delivered": len(delivered),
        "other_finals": other_finals,
        "missing_final": len(transids) - finals,
        "missing_submitted": len(transids) - submitted,
        "duplicate_final": rx.dup_final,
        "duplicate_submitted": rx.dup_submitted,
        "out_of_order": out_of_order,
        "stray_notifications": sum(1 for t in rx.final_at if t not in known)
        + sum(1 for t in rx.submitted_at if t not in known),
        "malformed": rx.malformed,
        "malformed_samples": rx.samples,
        "notifications": rx.total,
        "notifications_by_status": dict(rx.by_status),
        "e2e_s": round(last_delivered - t_start, 3) if delivered else None,
        "e2e_msg_per_s": rate(len(delivered), last_delivered - t_start),
        "notifications_per_s": rate(submitted + finals, last_any - t_start),
        "last_delivered_after_last_answer_s": round(last_delivered - t_last_answer, 3) if delivered else None,
        "delivered_during_accept": during,
        "delivered_during_accept_per_s": rate(during, t_last_answer - t_start),
        "delivered_after_accept_per_s": rate(after, last_delivered - t_last_answer),
        "receipt_rtt_p50_ms": ms(pct(rtt, 50)),
        "receipt_rtt_p99_ms": ms(pct(rtt, 99)),
        "receipt_rtt_max_ms": ms(rtt[-1] if rtt else None),
        "accept_to_delivered_p50_ms": ms(pct(acc, 50)),
        "accept_to_delivered_p99_ms": ms(pct(acc, 99)),
        "accept_to_delivered_max_ms": ms(acc[-1] if acc else None),
        "timeline_1s": timeline,
    }


def one_line(r: dict[str, Any]) -> str:
    c = r["cpu_e2e"]
    return (
        f"  accepted {r['accepted_messages']}/{r['destinations']} msgs, {r['accept_req_per_s']} req/s "
        f"({r['accept_msg_per_s']} msg/s) p50 {r['accept_p50_ms']} p99 {r['accept_p99_ms']} ms, errors "
        f"{r['errors']}; Delivered {r['delivered']} at {r['e2e_msg_per_s']} msg/s e2e, receipt rtt p50 "
        f"{r['receipt_rtt_p50_ms']} p99 {r['receipt_rtt_p99_ms']} ms; missing {r['missing_final']}, "
        f"dup {r['duplicate_final']}, smsc submitted {r['smsc']['submitted']}; CPU s tidings "
        f"{c['tidings_s']} smsc {c['smsc_s']} bench {c['bench_s']} others {c['others_s']} "
        f"in {c['window_s']} s"
    )


async def bench_main(env: Env, rx_sock: socket.socket, result: dict[str, Any]) -> None:
    a = env.args
    loop = asyncio.get_running_loop()
    receiver = await loop.create_server(lambda: ReceiverProtocol(env.rx), sock=rx_sock, backlog=1024)
    batch_size = min(a.batch_size, a.batch_messages) or 1
    try:
        if a.warmup:
            print(f"warm-up: {a.warmup} single requests", flush=True)
            w = await env.scenario("e2e", "warm-up", a.warmup, 1, a.connections, False)
            result["warmup"] = w
            print(one_line(w), flush=True)
        # run.py sets stop_on_incomplete: messages still without a final notification after the wait
        # would be delivered during the next scenarios and spoil their figures, so stop there
        stop_on_incomplete = getattr(a, "stop_on_incomplete", False)
        for i in range(1, a.runs + 1):
            run: dict[str, Any] = {"run": i}
            result["runs"].append(run)
            if a.scenario in ("e2e", "all"):
                print(f"run {i}/{a.runs}: e2e N={a.messages} C={a.connections}", flush=True)
                run["e2e"] = r = await env.scenario("e2e", f"run {i}", a.messages, 1, a.connections, False)
                print(one_line(r), flush=True)
                if stop_on_incomplete and r["missing_final"]:
                    result["stopped_early"] = f"run {i} e2e: {r['missing_final']} messages without a final"
                    break
            if a.scenario in ("batch", "all"):
                print(
                    f"run {i}/{a.runs}: batch {a.batch_messages} destinations in requests of "
                    f"{batch_size}, C={a.batch_connections}",
                    flush=True,
                )
                run["batch"] = r = await env.scenario(
                    "batch", f"run {i}", a.batch_messages, batch_size, a.batch_connections, False
                )
                print(one_line(r), flush=True)
                if stop_on_incomplete and r["missing_final"]:
                    result["stopped_early"] = f"run {i} batch: {r['missing_final']} messages without a final"
                    break
        if result.get("stopped_early"):
            print(f"STOPPED EARLY: {result['stopped_early']} notification after the wait", flush=True)
        if a.profile:
            print(f"profiled e2e (py-spy on tidings serve): N={a.messages} C={a.connections}", flush=True)
            r = await env.scenario("e2e", "profiled", a.messages, 1, a.connections, True)
            result["profiled_e2e"] = r
            print(one_line(r), flush=True)
    finally:
        receiver.close()


# -- summary ----------------------------------------------------------------------------------------

SUMMARY_KEYS: list[tuple[str, tuple[str, ...]]] = []
for _sc in ("e2e", "batch"):
    for _k in (
        "accept_req_per_s",
        "accept_msg_per_s",
        "accept_p50_ms",
        "accept_p99_ms",
        "errors",
        "e2e_msg_per_s",
        "notifications_per_s",
        "receipt_rtt_p50_ms",
        "receipt_rtt_p99_ms",
        "accept_to_delivered_p50_ms",
        "accept_to_delivered_p99_ms",
        "last_delivered_after_last_answer_s",
        "delivered_during_accept_per_s",
        "delivered_after_accept_per_s",
        "missing_final",
        "duplicate_final",
    ):
        SUMMARY_KEYS.append((f"{_sc}_{_k}", (_sc, _k)))
    for _w in ("cpu_accept", "cpu_e2e"):
        for _k in (
            "window_s",
            "tidings_s",
            "tidings_pct",
            "tidings_main_pct",
            "tidings_main_sys_pct",
            "tidings_sender_pct",
            "smsc_s",
            "smsc_pct",
            "bench_s",
            "bench_pct",
            "others_s",
            "others_pct",
            "db_s",
            "db_pct",
            "machine_busy_pct",
            "tidings_us_per_msg",
            "smsc_us_per_msg",
            "bench_us_per_msg",
        ):
            SUMMARY_KEYS.append((f"{_sc}_{_w}_{_k}", (_sc, _w, _k)))


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, float] | None]:
    return {name: stat(runs, *path) for name, path in SUMMARY_KEYS}


def print_summary(result: dict[str, Any]) -> None:
    a = result["args"]
    s = result["summary"]
    runs = result["runs"]
    meta = result["meta"]
    n = len(runs)
    print()
    print(
        f"== Tidings SMPP end-to-end benchmark: {meta['cores']} cores ({meta['cpu_model']}), all on this "
        f"machine, {n} run(s)" + (", median (min-max)" if n > 1 else "") + " =="
    )
    print(
        f"tidings {meta['git']}, {meta.get('database', 'SQLite')}, "
        f"SMSC simulator receipts after {a['dlr_delay_ms']} ms, "
        f"window {a['window']}, binds {a['binds']}; load client + receiver: {meta['bench_loop']} loop"
    )
    rows: list[tuple[str, str]] = []

    def cpu_rows(prefix: str, window: str, what: str) -> None:
        k = f"{prefix}_{window}_"
        rows.append(
            (
                f"  CPU s ({what})",
                f"tidings {fmt(s[k + 'tidings_s'], '', 2)}, smsc {fmt(s[k + 'smsc_s'], '', 2)}, "
                f"bench {fmt(s[k + 'bench_s'], '', 2)}, "
                + (f"database {fmt(s[k + 'db_s'], '', 2)}, " if s[k + "db_s"] else "")
                + f"others {fmt(s[k + 'others_s'], '', 2)} "
                f"in {fmt(s[k + 'window_s'], ' s', 2)}",
            )
        )
        rows.append(
            (
                "    % of one core",
                f"tidings {fmt(s[k + 'tidings_pct'], '%')}, smsc {fmt(s[k + 'smsc_pct'], '%')}, "
                f"bench {fmt(s[k + 'bench_pct'], '%')}, "
                + (f"database {fmt(s[k + 'db_pct'], '%')}, " if s[k + "db_pct"] else "")
                + f"others {fmt(s[k + 'others_pct'], '%')}; "
                f"machine {fmt(s[k + 'machine_busy_pct'], '%')} of {100 * (meta['cores'] or 1)}%",
            )
        )
        rows.append(
            (
                "    tidings split",
                f"serve process {fmt(s[k + 'tidings_main_pct'], '%')} (kernel "
                f"{fmt(s[k + 'tidings_main_sys_pct'], '%')}), notification sender "
                f"{fmt(s[k + 'tidings_sender_pct'], '%')} (of one core)",
            )
        )
        rows.append(
            (
                "    CPU per message",
                f"tidings {fmt(s[k + 'tidings_us_per_msg'], ' us')}, smsc "
                f"{fmt(s[k + 'smsc_us_per_msg'], ' us')}, bench {fmt(s[k + 'bench_us_per_msg'], ' us')}",
            )
        )

    def check_row(sc: str) -> None:
        per = [r[sc] for r in runs if sc in r]
        rows.append(
            (
                "  losses",
                "Delivered "
                + ", ".join(f"{r['delivered']}/{r['accepted_messages']}" for r in per)
                + "; missing final "
                + ", ".join(str(r["missing_final"]) for r in per)
                + "; duplicate finals "
                + ", ".join(str(r["duplicate_final"]) for r in per)
                + "; SMSC submitted "
                + ", ".join(f"{r['smsc']['submitted']}" for r in per)
                + f" (expected {per[0]['destinations'] if per else '?'})",
            )
        )

    if any("e2e" in r for r in runs):
        paced = f", paced at {a['rate']:,.0f} req/s" if a["rate"] else ""
        rows.append(
            (f"e2e: {a['messages']} single-destination requests, {a['connections']} conns{paced}", "")
        )
        rows.append(("  accepted", f"{fmt(s['e2e_accept_req_per_s'], ' req/s')}"))
        rows.append(
            (
                "  accept latency p50 / p99",
                f"{fmt(s['e2e_accept_p50_ms'], ' ms', 1)} / {fmt(s['e2e_accept_p99_ms'], ' ms', 1)}",
            )
        )
        rows.append(("  END TO END (send -> last Delivered)", f"{fmt(s['e2e_e2e_msg_per_s'], ' msg/s')}"))
        rows.append(
            (
                "  Delivered while accepting / after",
                f"{fmt(s['e2e_delivered_during_accept_per_s'], ' msg/s')} / "
                f"{fmt(s['e2e_delivered_after_accept_per_s'], ' msg/s')} "
                f"(last {fmt(s['e2e_last_delivered_after_last_answer_s'], ' s', 1)} after last answer)",
            )
        )
        rows.append(("  notifications", f"{fmt(s['e2e_notifications_per_s'], '/s')}"))
        rows.append(
            (
                "  receipt round trip p50 / p99",
                f"{fmt(s['e2e_receipt_rtt_p50_ms'], ' ms', 1)} / {fmt(s['e2e_receipt_rtt_p99_ms'], ' ms', 1)}"
                "  (Submitted notification -> Delivered notification)",
            )
        )
        rows.append(
            (
                "  accept -> Delivered p50 / p99",
                f"{fmt(s['e2e_accept_to_delivered_p50_ms'], ' ms', 1)} / "
                f"{fmt(s['e2e_accept_to_delivered_p99_ms'], ' ms', 1)}",
            )
        )
        check_row("e2e")
        cpu_rows("e2e", "cpu_accept", "accept window")
        cpu_rows("e2e", "cpu_e2e", "send -> last final")
    if any("batch" in r for r in runs):
        rows.append(
            (
                f"batch: {a['batch_messages']} destinations, {min(a['batch_size'], a['batch_messages'])} "
                f"per request, {a['batch_connections']} conns",
                "",
            )
        )
        rows.append(("  destinations accepted", f"{fmt(s['batch_accept_msg_per_s'], '/s')}"))
        rows.append(
            (
                "  request latency p50 / p99",
                f"{fmt(s['batch_accept_p50_ms'], ' ms', 1)} / {fmt(s['batch_accept_p99_ms'], ' ms', 1)}",
            )
        )
        rows.append(("  END TO END (send -> last Delivered)", f"{fmt(s['batch_e2e_msg_per_s'], ' msg/s')}"))
        rows.append(
            (
                "  Delivered while accepting / after",
                f"{fmt(s['batch_delivered_during_accept_per_s'], ' msg/s')} / "
                f"{fmt(s['batch_delivered_after_accept_per_s'], ' msg/s')} "
                f"(last {fmt(s['batch_last_delivered_after_last_answer_s'], ' s', 1)} after last answer)",
            )
        )
        rows.append(
            (
                "  receipt round trip p50 / p99",
                f"{fmt(s['batch_receipt_rtt_p50_ms'], ' ms', 1)} / "
                f"{fmt(s['batch_receipt_rtt_p99_ms'], ' ms', 1)}",
            )
        )
        check_row("batch")
        cpu_rows("batch", "cpu_e2e", "send -> last final")
    width = max(len(r[0]) for r in rows) if rows else 0
    for left, right in rows:
        print(f"{left:<{width}}  {right}".rstrip())
    if s.get("e2e_e2e_msg_per_s"):
        med = s["e2e_e2e_msg_per_s"]["median"]
        verdict = "MET" if med >= TARGET_MSG_PER_S else "NOT MET"
        print(f"target >= {TARGET_MSG_PER_S:,} msg/s end to end (e2e median {med:,.0f}): {verdict}")
    prof = result.get("profiled_e2e")
    if prof:
        print()
        print("profiled e2e (py-spy running; not part of the medians):")
        print(one_line(prof))
        p = prof.get("profile", {})
        if "error" in p:
            print(f"  profile: {p['error']}")
        for proc, d in p.get("by_process", {}).items():
            print(f"  {proc}: {d['samples']} samples at {p['rate_hz']} Hz; top by own time:")
            for j, f in enumerate(d["own_top"], 1):
                print(f"    {j:>2}. {f['pct']:5.1f}%  {f['function']}")
            print(
                "    own time by package: "
                + ", ".join(f"{x['package']} {x['pct']:.0f}%" for x in d["own_by_package"] if x["pct"] >= 1)
            )
        if p.get("speedscope"):
            print(f"  flame graph: {p['speedscope']} (speedscope.app), collapsed stacks: {p['raw']}")
    if a["syscalls"]:
        for r in runs[-1:]:
            for sc in ("e2e", "batch"):
                for who, d in r.get(sc, {}).get("syscalls", {}).items():
                    top = sorted(d["per_msg"].items(), key=lambda kv: -kv[1])
                    print(
                        f"run {r['run']} {sc}: syscalls per delivered message, {who}: "
                        + ", ".join(f"{k} {v:g}" for k, v in top)
                    )
    if a["timeline"]:
        for r in runs:
            for sc in ("e2e", "batch"):
                if sc in r:
                    print()
                    print_timeline(f"run {r['run']} {sc}", r[sc])
        if prof:
            print()
            print_timeline("profiled e2e", prof)
    for problem in result["problems"]:
        print(f"PROBLEM: {problem}")
    print(f"(JSON: {meta['json']})")


def print_timeline(name: str, r: dict[str, Any]) -> None:
    """Per second from the first request sent: what the client and the receiver saw, what the simulator
    counted, and how busy each process was (the samples' intervals are matched to the nearest second)."""
    tl = r["timeline_1s"]
    samples = r.get("samples", [])
    n = max([len(v) for v in tl.values()] + [round(x["t_s"]) for x in samples] + [0])
    print(f"{name}: per second (answers and notifications as received; simulator and CPU from samples)")
    print("    s  answered  Submitted  Delivered  submit_sm  receipts  serve%  sender%  smsc%")
    for k in range(n):
        row = [tl[key][k] if k < len(tl[key]) else 0 for key in ("answered", "submitted", "delivered")]
        x = min(samples, key=lambda x: abs(x["t_s"] - (k + 1)), default=None)
        if x is None or abs(x["t_s"] - (k + 1)) > 0.6:
            x = {}

        def v(key: str, x: dict[str, Any] = x) -> str:
            val = x.get(key)
            return "" if val is None else f"{val:,.0f}"

        print(
            f"  {k + 1:>3}  {row[0]:>8,}  {row[1]:>9,}  {row[2]:>9,}  {v('submit_sm_per_s'):>9}  "
            f"{v('receipts_acked_per_s'):>8}  {v('serve_cpu_pct'):>6}  {v('sender_cpu_pct'):>7}  "
            f"{v('smsc_cpu_pct'):>5}"
        )


def find_problems(result: dict[str, Any]) -> list[str]:
    out: list[str] = []
    phases: list[tuple[str, dict[str, Any]]] = []
    if result.get("warmup"):
        phases.append(("warm-up", result["warmup"]))
    for r in result["runs"]:
        phases += [(f"run {r['run']} {k}", r[k]) for k in ("e2e", "batch") if k in r]
    if result.get("profiled_e2e"):
        phases.append(("profiled e2e", result["profiled_e2e"]))
    for name, p in phases:
        if p.get("errors"):
            out.append(
                f"{name}: {p['errors']} failed requests {p['error_kinds']}; e.g. {p['error_samples'][:2]}"
            )
        if p.get("not_sent_time_limit"):
            out.append(f"{name}: {p['not_sent_time_limit']} requests not sent within --max-seconds")
        for key, what in [
            ("missing_final", "accepted messages got no final notification"),
            ("missing_submitted", "accepted messages got no Submitted notification"),
            ("duplicate_final", "duplicate final notifications"),
            ("duplicate_submitted", "duplicate Submitted notifications"),
            ("out_of_order", "final notifications arrived before Submitted"),
            ("stray_notifications", "notifications for transids not accepted in this scenario"),
            ("malformed", "notifications without transid/deliveryStatus or to another path"),
        ]:
            if p.get(key):
                out.append(f"{name}: {p[key]} {what}")
        if p.get("other_finals"):
            out.append(f"{name}: final statuses other than Delivered: {p['other_finals']}")
        smsc = p.get("smsc", {})
        if smsc and not smsc.get("submitted_matches"):
            out.append(
                f"{name}: SMSC saw {smsc.get('submitted')} submit_sm for {p['destinations']} destinations "
                f"({p['accepted_messages']} accepted)"
            )
        if smsc.get("binds"):
            out.append(f"{name}: tidings bound to the SMSC {smsc['binds']} more time(s) (reconnects)")
    for name, stop in result.get("stops", {}).items():
        if stop.get("returncode") not in (0, None, -signal.SIGTERM, -signal.SIGINT) and name != "py-spy":
            out.append(f"{name} exit: {stop}")
    for name, logp in result.get("logs", {}).items():
        out += [f"{name} log: {count} x {what}" for what, count in logp.get("problems", {}).items()]
    return out


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


# -- main -------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=["e2e", "batch", "all"], default="all")
    ap.add_argument("--messages", type=int, default=20000, help="e2e: requests (1 destination each)")
    ap.add_argument("--connections", type=int, default=64, help="e2e: keep-alive connections (default 64)")
    ap.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="e2e: send at most this many requests/s (open loop); 0: as fast as answered (default)",
    )
    ap.add_argument("--batch-messages", type=int, default=50000, help="batch: destinations (default 50000)")
    ap.add_argument("--batch-size", type=int, default=1000, help="batch: msisdns per request (default 1000)")
    ap.add_argument("--batch-connections", type=int, default=4, help="batch: connections (default 4)")
    ap.add_argument("--dlr-delay-ms", type=int, default=50, help="simulator's receipt delay (default 50)")
    ap.add_argument("--window", type=int, default=256, help="[[smsc]] window (default 256)")
    ap.add_argument("--binds", type=int, default=1, help="[[smsc]] binds (default 1)")
    ap.add_argument("--notify-concurrency", type=int, help="[notify] concurrency (default: Tidings' own)")
    ap.add_argument("--runs", type=int, default=1, help="measured runs; figures are medians (default 1)")
    ap.add_argument("--warmup", type=int, default=1000, help="e2e requests before measuring (default 1000)")
    ap.add_argument("--profile", action="store_true", help="add an e2e pass under py-spy (tidings serve)")
    ap.add_argument("--profile-rate", type=int, default=200, help="py-spy samples/s (default 200)")
    ap.add_argument("--profile-native", action="store_true", help="py-spy --native: C frames too")
    ap.add_argument("--profile-top", type=int, default=15, help="functions listed (default 15)")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="time limit of each load phase")
    ap.add_argument("--drain-timeout", type=float, default=120.0, help="wait at most this for all finals")
    ap.add_argument("--stall-seconds", type=float, default=15.0, help="stop waiting after this long idle")
    ap.add_argument("--quiet-wait", type=float, default=10.0, help="wait up to this for an idle machine")
    ap.add_argument(
        "--syscalls", action="store_true", help="count serve's and the sender's syscalls with perf stat"
    )
    ap.add_argument("--sample-period", type=float, default=1.0, help="seconds between samples (default 1)")
    ap.add_argument("--timeline", action="store_true", help="print each scenario's per-second samples")
    ap.add_argument("--msisdn-prefix", default="+4477009", help="destinations: this prefix ...")
    ap.add_argument("--msisdn-digits", type=int, default=5, help="... then this many digits (>= 4)")
    ap.add_argument("--no-uvloop", dest="uvloop", action="store_false", help="plain asyncio for the client")
    ap.add_argument("--python", default=str(REPO / ".venv/bin/python"), help="interpreter that runs tidings")
    ap.add_argument("--out-dir", default=str(HERE / "out"))
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (DB, config, logs)")
    a = ap.parse_args(argv)
    if a.msisdn_digits < 4:
        ap.error("--msisdn-digits must be at least 4")
    if a.rate < 0:
        ap.error("--rate must be 0 (unpaced) or more")
    for name in ("messages", "connections", "batch_messages", "batch_size", "batch_connections", "runs"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    return a


def _interrupt(sig: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(sig).name)


@dataclass
class Topology:
    """How tidings runs. The default is this benchmark's own: one `tidings serve` on a fresh SQLite file
    in the temp dir (the config's [server] database)."""

    label: str = "SQLite, 1 process"
    db_url: str | None = None  # --db for serve and the workers; None: the config's SQLite file
    serve_args: list[str] = field(default_factory=list)  # e.g. ["--workers", "2"]
    workers: int = 0  # `tidings worker` processes, started once serve is healthy (same --config, --db)
    db_cpu: Callable[[], float | None] | None = None  # CPU seconds of the database server's processes


def last_line(text: str) -> str:
    """The last non-empty line of a log: what a process said when it refused to start."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def run_stack(
    a: argparse.Namespace, out_dir: Path, prefix: str, topo: Topology | None = None
) -> tuple[int, dict[str, Any]]:
    """Start the simulator and tidings (as `topo` says), run the warm-up and the measured runs, stop
    everything this started (by PID), and return (exit code, result).  Files are written to out_dir as
    `<prefix>.json` and `<prefix>-<process>.log`.  When a process exits before tidings is healthy and
    bound, result["not_started"] says which one and why (its last log line), and no scenario runs."""
    topo = topo or Topology()
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{prefix}.json"
    workdir = Path(tempfile.mkdtemp(prefix="tidings-smpp-bench-"))
    rx_sock = socket.socket()
    rx_sock.bind((HOST, 0))
    rx_sock.listen(1024)
    rx_sock.setblocking(False)
    ports: set[int] = {rx_sock.getsockname()[1]}
    while len(ports) < 4:
        ports.add(free_port())
    smpp_port, control_port, http_port = sorted(ports - {rx_sock.getsockname()[1]})
    config = CONFIG_TEMPLATE.format(
        workdir=workdir,
        host=HOST,
        http_port=http_port,
        key=SERVICE_KEY,
        receiver_port=rx_sock.getsockname()[1],
        smpp_port=smpp_port,
        system_id=SMSC_SYSTEM_ID,
        password=SMSC_PASSWORD,
        window=a.window,
        notify_extra="" if a.notify_concurrency is None else f"concurrency = {a.notify_concurrency}\n",
        binds=a.binds,
    )
    config_path = workdir / "tidings.toml"
    config_path.write_text(config)
    smsc_cmd = [a.python, "-m", "tidings", "smsc", "--host", HOST, "--port", str(smpp_port)]
    smsc_cmd += ["--control-port", str(control_port), "--dlr-delay-ms", str(a.dlr_delay_ms)]
    db_args = ["--db", topo.db_url] if topo.db_url else []
    serve_cmd = [a.python, "-m", "tidings", "serve", "--config", str(config_path), *db_args, *topo.serve_args]
    worker_cmd = [a.python, "-m", "tidings", "worker", "--config", str(config_path), *db_args]
    use_uvloop = a.uvloop and importlib.util.find_spec("uvloop") is not None
    result: dict[str, Any] = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "cores": os.cpu_count(),
            "cpu_model": cpu_model(),
            "python": platform.python_version(),
            "git": git_describe(),
            "json": os.path.relpath(json_path),
            "database": topo.label,
            "smsc_cmd": " ".join(smsc_cmd),
            "serve_cmd": " ".join(serve_cmd),
            "worker_cmd": " ".join(worker_cmd) if topo.workers else None,
            "workers": topo.workers,
            "config": config,
            "bench_loop": "uvloop" if use_uvloop else "asyncio",
        },
        "args": vars(a),
        "warmup": None,
        "runs": [],
    }
    procs = Procs()
    code = 0
    ready = False
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        smsc = procs.start("smsc", smsc_cmd, workdir, workdir / "smsc.log")
        print(f"smsc pid {smsc.pid} on {HOST}:{smpp_port} (control {control_port})", flush=True)
        wait_until("SMSC control port", lambda: http_get_json(control_port, "/stats") is not None, [smsc])
        tidings = procs.start("tidings", serve_cmd, workdir, workdir / "server.log")
        print(f"tidings serve pid {tidings.pid} on {HOST}:{http_port}, workdir {workdir}", flush=True)
        result["meta"]["healthy_after_s"] = round(
            wait_until("GET /healthz", lambda: healthy(http_port), [smsc, tidings]), 2
        )
        workers = [
            procs.start(f"worker{i}", worker_cmd, workdir, workdir / f"worker{i}.log")
            for i in range(1, topo.workers + 1)
        ]
        if workers:
            print(f"tidings worker pids {[w.pid for w in workers]}", flush=True)
        wait_until("SMPP bind", lambda: smsc_bound(control_port), [smsc, tidings, *workers])
        # with several processes, each may bind: wait until no new bind came for 2 s, so that a late
        # one does not count as a reconnect in the first scenario
        result["meta"]["binds_at_start"] = wait_binds_settle(control_port, [smsc, tidings, *workers])
        ready = True
        env = Env(a, procs, tidings, smsc, http_port, control_port, SmppReceiver(), out_dir, prefix)
        env.workers = workers
        env.db_cpu = topo.db_cpu
        runner = asyncio.run
        if use_uvloop:
            import uvloop

            runner = uvloop.run
        runner(bench_main(env, rx_sock, result))
    except Died as exc:
        result["aborted"] = str(exc)
        print(f"ABORTED: {exc}", flush=True)
        code = 1
    except KeyboardInterrupt as exc:
        why = str(exc) or "SIGINT"
        result["aborted"] = f"interrupted ({why})"
        print(f"\nINTERRUPTED ({why}): stopping the processes this benchmark started", flush=True)
        code = 130
    finally:
        # no second interrupt while stopping: every process we started must be stopped
        for sig in handlers:
            signal.signal(sig, signal.SIG_IGN)
        if not ready and code == 1:
            dead = next((p for p in procs.started if not p.alive()), None)
            if dead is not None:
                result["not_started"] = {
                    "process": dead.name,
                    "returncode": dead.proc.returncode,
                    "reason": last_line(dead.log_tail()) or f"exit code {dead.proc.returncode}",
                    "log_tail": dead.log_tail(),
                }
            else:
                result["not_started"] = {"process": None, "reason": result["aborted"]}
        result["stops"] = procs.stop_all()
        rx_sock.close()
        result["logs"] = {}
        for p in procs.started:
            if p.log_path is None or not p.log_path.exists():
                continue
            text = p.log_path.read_text(errors="replace")
            copy = out_dir / f"{prefix}-{p.name}.log"
            if p.log_path.parent != out_dir:
                copy.write_text(text)
            result["logs"][p.name] = {"path": os.path.relpath(copy)}
            if p.name != "py-spy":
                result["logs"][p.name]["problems"] = log_problems(text)
        if not a.keep_tmp:
            shutil.rmtree(workdir, ignore_errors=True)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    result["summary"] = summarize(result["runs"])
    result["problems"] = find_problems(result)
    if result.get("aborted"):
        result["problems"].insert(0, f"aborted: {result['aborted']}")
    if result.get("stopped_early"):
        result["problems"].insert(0, f"stopped early: {result['stopped_early']} notification after the wait")
    json_path.write_text(json.dumps(result, indent=1))
    return code, result


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    # SIGTERM/SIGHUP stop us like Ctrl-C does, so that run_stack stops every process we started
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    code, result = run_stack(a, Path(a.out_dir), f"smpp-{stamp}")
    print_summary(result)
    return code


if __name__ == "__main__":
    sys.exit(main())
