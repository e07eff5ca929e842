#!/usr/bin/env python3
"""One command for Tidings' headline figures, optionally side by side with Kannel.

For each row (a database and a process layout) it starts `tidings smsc` and Tidings on a fresh database,
sends a warm-up, then per run (bench/smpp.py's scenarios, which reuse bench/accept.py's load client and
notification receiver):

  (a) + (c)  --messages single-destination POST /resources/v1/messaging over --connections (50)
             keep-alive connections, durable (answered after the commit): accepted req/s, latency
             p50/p99; then, over SMPP to the simulator, its receipts and the notifications back to a
             receiver: end-to-end msg/s (first request sent -> last Delivered notification) and the
             receipt round trip p50/p99 (Submitted notification -> Delivered notification)
  (b)        --batch-messages destinations in requests of 1000 addresses: destinations accepted/s

Rows: SQLite (one `tidings serve`), and PostgreSQL with 1 and with 2 API processes (`tidings serve
--db postgresql://...?schema=<fresh> [--workers N]` plus `tidings worker`).  A row whose Tidings refuses
to start says "not available: <its last log line>" and the others still run.

With --with-kannel it also runs Kannel 1.4.5 through ../shared/peers/run_kannel.sh (copied to
bench/out/, since the shared folder is read-only; installed with apt-get when missing) with the same
concurrency and receipt delay, and prints Tidings/Kannel ratios and the targets: (a) >= 2x Kannel's
accept rate, (c) >= 2x Kannel's end-to-end rate with DLRs, (b) >= 50,000 destinations/s on SQLite.

  .venv/bin/python bench/run.py --quick                   # SQLite + PostgreSQL rows, 1 short run
  .venv/bin/python bench/run.py --with-kannel             # 3 runs each, and Kannel: about 14 minutes
  .venv/bin/python bench/run.py --backends sqlite --runs 1
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

# bench/ is not a package: accept.py and smpp.py sit next to this file
from accept import child_pids, git_describe, proc_cpu_s, stat
from smpp import Topology, cpu_model, run_stack
from smpp import parse_args as smpp_parse_args

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS = Path(os.environ.get("TIDINGS_PEERS", REPO.parent / "shared" / "peers"))
KANNEL_PORTS = (14000, 14001, 14013, 14775, 14780, 14080)  # fixed by the peers' kannel.conf
TARGET_ACCEPT_X = 2.0
TARGET_E2E_X = 2.0
TARGET_DESTINATIONS_PER_S = 50_000
SHARED_NOTE = (
    "The load generator, the SMSC simulator and the notification/DLR receiver run on the same "
    "{cores}-core machine as the gateway: they take part of its CPU, so every figure is below what "
    "the gateway would do alone."
)

# full run / --quick
DEFAULTS: dict[str, tuple[Any, Any]] = {
    "runs": (3, 1),
    "messages": (20000, 3000),
    "warmup": (1000, 300),
    "batch_messages": (50000, 10000),
    "quiet_wait": (10.0, 3.0),
    "kannel_timeout": (1500.0, 400.0),
}


def _interrupt(sig: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(sig).name)


# -- rows -------------------------------------------------------------------------------------------


@dataclass
class Row:
    key: str
    label: str
    backend: str  # "sqlite" | "postgres"
    topology: Topology
    schema: str | None = None
    result: dict[str, Any] = field(default_factory=dict)  # what run() made of it, for the table and JSON


def with_schema(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"] + [("schema", schema)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def without_query(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(query=""))


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_options(python: str) -> set[str]:
    """The options `tidings serve --help` lists: the PostgreSQL rows use --workers and --api-only only
    where this version has them."""
    try:
        done = subprocess.run(
            [python, "-m", "tidings", "serve", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tempfile.gettempdir(),  # where the rows run it from (not the checkout: `-m` looks in cwd)
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", done.stdout))


def postgres_cpu_s() -> float | None:
    """CPU seconds (utime + stime) of every live process named postgres on this machine: the server's
    backends that serve Tidings, and whatever else that server is doing at the time."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/comm") as f:
                if f.read().strip() != "postgres":
                    continue
        except OSError:
            continue
        total += proc_cpu_s(int(entry.name)) or 0.0
    return total


def plan_rows(a: argparse.Namespace, stamp: str) -> list[Row]:
    rows: list[Row] = []
    opts = serve_options(a.python) if "postgres" in a.backends else set()
    api_only = "--api-only" in opts and a.pg_workers > 0
    for backend in a.backends:
        if backend == "sqlite":
            rows.append(Row("sqlite", "SQLite, 1 process", "sqlite", Topology("SQLite, 1 process")))
            continue
        for n in a.pg_api:
            # a fresh schema per row and run: Tidings creates it; it is dropped afterwards
            schema = f"bench_{stamp.replace('-', '_')}_api{n}_{secrets.token_hex(3)}"
            label = f"PostgreSQL, {n} API process{'es' if n > 1 else ''}"
            label += " (HTTP only)" if api_only else ""
            label += f" + {a.pg_workers} worker" + ("s" if a.pg_workers != 1 else "")
            serve_args: list[str] = []
            # without --workers in this version, one API process is the default: leave the option out
            # so that the row says why the database is refused rather than that the option is unknown
            if n > 1 or "--workers" in opts:
                serve_args += ["--workers", str(n)]
            if api_only:
                serve_args.append("--api-only")  # the workers send; the API processes only accept
            topo = Topology(
                label,
                db_url=with_schema(a.pg_url, schema),
                serve_args=serve_args,
                workers=a.pg_workers,
                db_cpu=postgres_cpu_s,
            )
            rows.append(Row(f"postgres-{n}api", label, "postgres", topo, schema))
    return rows


def drop_schema(pg_url: str, schema: str) -> str:
    """DROP SCHEMA IF EXISTS <the fresh schema of this run> CASCADE, with psql."""
    psql = shutil.which("psql")
    if psql is None:
        return f"kept: psql not found (drop schema {schema} by hand)"
    # The DROP waits for the locks of sessions that the stopped processes left: PostgreSQL ends an
    # idle one at once, but a query still running goes on until it finishes.
    cmd = [psql, without_query(pg_url), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    cmd += ["-c", "SET lock_timeout = '120s'", "-c", f'DROP SCHEMA IF EXISTS "{schema}" CASCADE']
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=150, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"not dropped: psql took over 150 s (drop schema {schema} by hand)"
    if done.returncode != 0:
        return f"not dropped: {(done.stderr or done.stdout).strip()[:300]}"
    return "dropped"


def smpp_args(a: argparse.Namespace) -> argparse.Namespace:
    argv = [
        "--scenario",
        "all",
        "--messages",
        str(a.messages),
        "--connections",
        str(a.connections),
        "--batch-messages",
        str(a.batch_messages),
        "--batch-size",
        str(a.batch_size),
        "--batch-connections",
        str(a.batch_connections),
        "--dlr-delay-ms",
        str(a.dlr_delay_ms),
        "--window",
        str(a.window),
        "--binds",
        str(a.binds),
        "--runs",
        str(a.runs),
        "--warmup",
        str(a.warmup),
        "--max-seconds",
        str(a.max_seconds),
        "--drain-timeout",
        str(a.drain_timeout),
        "--stall-seconds",
        str(a.stall_seconds),
        "--quiet-wait",
        str(a.quiet_wait),
        "--python",
        a.python,
        "--out-dir",
        a.out_dir,
    ]
    if a.keep_tmp:
        argv.append("--keep-tmp")
    ns = smpp_parse_args(argv)
    ns.stop_on_incomplete = not a.keep_going
    return ns


def run_row(a: argparse.Namespace, row: Row, stamp: str) -> int:
    print(f"\n=== {row.label} ===", flush=True)
    t0 = time.monotonic()
    code, res = run_stack(smpp_args(a), Path(a.out_dir), f"run-{stamp}-{row.key}", row.topology)
    out: dict[str, Any] = {
        "key": row.key,
        "label": row.label,
        "backend": row.backend,
        "db_url": row.topology.db_url,
        "serve_cmd": res["meta"]["serve_cmd"],
        "worker_cmd": res["meta"]["worker_cmd"],
        "json": res["meta"]["json"],
        "elapsed_s": round(time.monotonic() - t0, 1),
    }
    if row.schema is not None:
        out["schema"] = row.schema
        out["schema_cleanup"] = (
            "kept (--pg-keep-schema)" if a.pg_keep_schema else drop_schema(a.pg_url, row.schema)
        )
    if "not_started" in res:
        out["available"] = False
        ns = res["not_started"]
        who = f"{ns['process']} " if ns.get("process") not in (None, "tidings") else ""
        out["reason"] = f"{who}{ns['reason']}".strip()
        print(f"{row.label}: not available: {out['reason']}", flush=True)
    else:
        out["available"] = True
        out["aborted"] = res.get("aborted")
        out.update(row_figures(res))
        out["problems"] = res["problems"]
    row.result = out
    return code


def row_figures(res: dict[str, Any]) -> dict[str, Any]:
    s = res["summary"]
    runs = res["runs"]
    per = [r[sc] for r in runs for sc in ("e2e", "batch") if sc in r]
    complete = bool(per) and all(
        p["errors"] == 0
        and p["missing_final"] == 0
        and p["duplicate_final"] == 0
        and not p["other_finals"]
        and p["smsc"].get("submitted_matches")
        for p in per
    )

    def counted(sc: str, key: str) -> int:
        return sum(1 for r in runs if r.get(sc, {}).get(key) is not None)

    return {
        "runs": len(runs),
        "runs_planned": res["args"]["runs"],
        "stopped_early": res.get("stopped_early"),
        # how many runs each median is of (a scenario that delivered nothing has no rate)
        "counted": {
            "a": counted("e2e", "accept_req_per_s"),
            "b": counted("batch", "accept_msg_per_s"),
            "c": counted("e2e", "e2e_msg_per_s"),
        },
        "accept_req_per_s": s["e2e_accept_req_per_s"],
        "accept_p50_ms": s["e2e_accept_p50_ms"],
        "accept_p99_ms": s["e2e_accept_p99_ms"],
        "destinations_per_s": s["batch_accept_msg_per_s"],
        "batch_p50_ms": s["batch_accept_p50_ms"],
        "batch_e2e_msg_per_s": s["batch_e2e_msg_per_s"],
        "e2e_msg_per_s": s["e2e_e2e_msg_per_s"],
        "receipt_rtt_p50_ms": s["e2e_receipt_rtt_p50_ms"],
        "receipt_rtt_p99_ms": s["e2e_receipt_rtt_p99_ms"],
        "final_p50_ms": s["e2e_accept_to_delivered_p50_ms"],
        "final_p99_ms": s["e2e_accept_to_delivered_p99_ms"],
        "gateway_cpu_pct": s["e2e_cpu_e2e_tidings_pct"],
        "db_cpu_pct": s["e2e_cpu_e2e_db_pct"],
        "others_cpu_pct": s["e2e_cpu_e2e_others_pct"],
        "complete": complete,
        "delivered": [f"{p['delivered']}/{p['destinations']}" for p in per],
    }


# -- Kannel -----------------------------------------------------------------------------------------


def kannel_installed() -> bool:
    return all(os.access(p, os.X_OK) for p in ("/usr/sbin/bearerbox", "/usr/sbin/smsbox")) and bool(
        shutil.which("curl")
    )


def install_kannel(log: TextIO) -> str | None:
    """apt-get install kannel kannel-extras curl; None when done, else why not."""
    if os.geteuid() != 0:
        return "Kannel is not installed and apt-get needs root"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-q", "kannel", "kannel-extras", "curl"],
    ):
        print(f"[kannel] {' '.join(cmd)}", flush=True)
        try:
            done = subprocess.run(
                cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{' '.join(cmd)}: {exc}"
        log.write(done.stdout + done.stderr)
        if done.returncode != 0:
            lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
            return f"{' '.join(cmd)} failed: {lines[-1] if lines else done.returncode}"
    return (
        None if kannel_installed() else "apt-get install kannel finished but /usr/sbin/bearerbox is missing"
    )


def port_busy(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, start time) of every live descendant of pid; the start time tells a reused pid apart."""
    out: list[tuple[int, str]] = []
    todo = child_pids(pid)
    while todo:
        c = todo.pop()
        st = start_time(c)
        if st is not None:
            out.append((c, st))
            todo += child_pids(c)
    return out


def start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def stop_tree(proc: subprocess.Popen[str], grace_s: float = 15.0) -> str:
    """Stop run_kannel.sh and what it started, by PID: TERM to the script and each descendant (the
    script's own trap stops its servers too), then KILL whatever is still there after the grace."""
    if proc.poll() is not None:
        return f"had exited ({proc.returncode})"
    tree = [(proc.pid, start_time(proc.pid) or ""), *descendants(proc.pid)]
    for pid, _ in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    t_end = time.monotonic() + grace_s
    while time.monotonic() < t_end and any(start_time(p) == st for p, st in tree):
        proc.poll()
        time.sleep(0.2)
    killed = 0
    for pid, st in tree:
        if start_time(pid) == st:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    return "SIGTERM" + (f", then SIGKILL to {killed}" if killed else "")


def copy_peers(dest: Path) -> None:
    """run_kannel.sh writes its run folder next to itself; the shared folder is read-only, so it runs
    from a copy (the script, tools/*.py, kannel/kannel.conf: nothing else is needed)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(PEERS / "run_kannel.sh", dest / "run_kannel.sh")
    shutil.copytree(PEERS / "tools", dest / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PEERS / "kannel", dest / "kannel")


def run_kannel(a: argparse.Namespace, stamp: str) -> dict[str, Any]:
    out_dir = Path(a.out_dir)
    work = out_dir / f"run-{stamp}-kannel"
    log_path = out_dir / f"run-{stamp}-kannel.log"
    res: dict[str, Any] = {
        "available": False,
        "log": os.path.relpath(log_path),
        "settings": {
            "N": a.kannel_n,
            "WARMUP": a.kannel_warmup,
            "REPEATS": a.kannel_repeats,
            "CONC": a.connections,
            "DLR": 1,
            "DLR_DELAY_MS": a.dlr_delay_ms,
            "QUICKACK": 1,
            "STORE": 1 if a.kannel_store else 0,
        },
    }
    print("\n=== Kannel 1.4.5 (../shared/peers/run_kannel.sh) ===", flush=True)
    t0 = time.monotonic()
    with open(log_path, "w") as log:
        if not (PEERS / "run_kannel.sh").exists():
            res["reason"] = f"{PEERS}/run_kannel.sh not found"
            return res
        if not kannel_installed():
            why = "Kannel is not installed (--no-install)" if a.no_install else install_kannel(log)
            if why:
                res["reason"] = why
                print(f"Kannel: not available: {why}", flush=True)
                return res
        busy = [p for p in KANNEL_PORTS if port_busy(p)]
        if busy:
            res["reason"] = f"ports {busy} on 127.0.0.1 are in use (run_kannel.sh needs them)"
            print(f"Kannel: not available: {res['reason']}", flush=True)
            return res
        copy_peers(work)
        env = dict(os.environ)
        env.update({k: str(v) for k, v in res["settings"].items()})
        # the tools are standard-library Python; no bytecode files anywhere; apt-get already done above
        env.update(
            PYTHONDONTWRITEBYTECODE="1", NO_INSTALL="1", PYTHON=shutil.which("python3") or sys.executable
        )
        res["cmd"] = " ".join(f"{k}={v}" for k, v in res["settings"].items()) + f" bash {work}/run_kannel.sh"
        proc = subprocess.Popen(
            ["bash", str(work / "run_kannel.sh")],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        lines: list[str] = []

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                lines.append(line.rstrip("\n"))
                # bench_run.py prints each run's figures as a long JSON line; they are in results.json
                if not line.startswith("{"):
                    print(f"[kannel] {line.rstrip()}", flush=True)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            proc.wait(timeout=a.kannel_timeout)
        except subprocess.TimeoutExpired:
            res["stop"] = stop_tree(proc)
            res["reason"] = f"run_kannel.sh did not finish within --kannel-timeout {a.kannel_timeout:.0f} s"
        except KeyboardInterrupt:
            res["stop"] = stop_tree(proc)
            res["reason"] = "interrupted"
            reader.join(timeout=5)
            raise
        reader.join(timeout=10)
    res["elapsed_s"] = round(time.monotonic() - t0, 1)
    res["returncode"] = proc.returncode
    found = sorted((work / "out").glob("kannel-*/results.json"))
    if not found:
        if "reason" not in res:
            said = [ln for ln in lines if ln.strip() and not ln.startswith("{")]
            res["reason"] = f"run_kannel.sh exited {proc.returncode}: {said[-1] if said else 'no output'}"
        print(f"Kannel: not available: {res['reason']}", flush=True)
        return res
    results = json.loads(found[-1].read_text())
    res["results_json"] = os.path.relpath(found[-1])
    res.update(kannel_figures(results))
    res["available"] = True
    return res


def kannel_figures(results: dict[str, Any]) -> dict[str, Any]:
    s = results["summary"]
    runs = results["runs"]
    complete = bool(runs) and all(
        r["accept"]["errors"] == 0
        and r["accept"]["ok"] == r["delivery"].get("count") == (r.get("dlr") or {}).get("count")
        and r["accept"]["ok"] == r["n"]
        for r in runs
    )
    gateway = [
        r["cpu_pct_of_one_core"].get("bearerbox", 0.0) + r["cpu_pct_of_one_core"].get("smsbox", 0.0)
        for r in runs
    ]
    return {
        "label": results.get("label"),
        "runs": len(runs),
        "n": results.get("n"),
        "redone_runs": len(results.get("discarded", [])),
        "accept_req_per_s": s["accept_rate"],
        "accept_p50_ms": s["accept_p50_ms"],
        "accept_p99_ms": s["accept_p99_ms"],
        "delivery_msg_per_s": s["delivery_rate"],
        # like Tidings' end-to-end figure: DLRs / (last DLR callback - first HTTP request sent)
        "e2e_msg_per_s": s["dlr_e2e_rate"],
        # DLRs / (last - first DLR callback): leaves out the first receipt's delay, so it is higher
        "dlr_msg_per_s": s["dlr_rate"],
        "final_p50_ms": s["dlr_rtt_p50_ms"],
        "final_p99_ms": s["dlr_rtt_p99_ms"],
        "gateway_cpu_pct": stat([{"v": g} for g in gateway], "v"),
        "others_cpu_pct": s.get("cpu_others_pct_of_one_core"),
        "complete": complete,
        "delivered": [
            f"{r['accept']['ok']}/{r['delivery'].get('count')}/{(r.get('dlr') or {}).get('count')}"
            for r in runs
        ],
    }


# -- report -----------------------------------------------------------------------------------------


def med(s: dict[str, float] | None) -> float | None:
    return None if s is None else s["median"]


def num(v: float | None, nd: int = 0) -> str:
    return "-" if v is None else f"{v:,.{nd}f}"


def rng(s: dict[str, float] | None, nd: int = 0) -> str:
    if s is None:
        return "-"
    if s["min"] == s["max"]:
        return num(s["median"], nd)
    return f"{num(s['median'], nd)} ({num(s['min'], nd)}-{num(s['max'], nd)})"


def pair(p50: dict[str, float] | None, p99: dict[str, float] | None) -> str:
    return f"{num(med(p50))} / {num(med(p99))}"


def ratio(x: float | None, y: float | None) -> float | None:
    return None if x is None or not y else x / y


def targets(rows: list[dict[str, Any]], kannel: dict[str, Any] | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    avail = [r for r in rows if r.get("available")]
    k_ok = kannel is not None and kannel.get("available")
    for key, what, field_, x in (
        ("a", "accept rate", "accept_req_per_s", TARGET_ACCEPT_X),
        ("c", "end-to-end rate with DLRs", "e2e_msg_per_s", TARGET_E2E_X),
    ):
        if not k_ok:
            why = "needs --with-kannel" if kannel is None else f"Kannel not available: {kannel.get('reason')}"
            out.append(
                {"target": key, "what": f"{what} >= {x:g}x Kannel's", "verdict": "NOT CHECKED", "why": why}
            )
            continue
        assert kannel is not None
        k = med(kannel[field_])
        need = None if k is None else x * k
        for r in rows:
            item: dict[str, Any] = {
                "target": key,
                "what": f"{what} >= {x:g}x Kannel's",
                "row": r["label"],
                "kannel": k,
                "needed": need,
            }
            v = med(r[field_]) if r.get("available") else None
            if not r.get("available"):
                item.update(verdict="NOT AVAILABLE", why=r.get("reason"))
            elif v is None or need is None:
                item.update(verdict="NOT CHECKED", why="no figure (see PROBLEM lines)")
            else:
                item.update(value=v, ratio=ratio(v, k))
                item["verdict"] = "MET" if v >= need else "NOT MET"
            out.append(item)
    sqlite = [r for r in avail if r["backend"] == "sqlite"]
    item = {"target": "b", "what": f"destinations/s >= {TARGET_DESTINATIONS_PER_S:,} on SQLite"}
    if sqlite:
        v = med(sqlite[0]["destinations_per_s"])
        item.update(row=sqlite[0]["label"], value=v, needed=TARGET_DESTINATIONS_PER_S)
        if v is None:
            item.update(verdict="NOT CHECKED", why="the SQLite row has no batch figure")
        else:
            item["verdict"] = "MET" if v >= TARGET_DESTINATIONS_PER_S else "NOT MET"
    else:
        item.update(verdict="NOT CHECKED", why="no SQLite row in this run")
    out.append(item)
    return out


def table(header: list[str], body: list[list[str]], spans: dict[int, str]) -> list[str]:
    """Left column left-aligned, the others right-aligned; a row in `spans` is its label + one text."""
    widths = [max([len(header[i]), *(len(r[i]) for r in body if len(r) > i)]) for i in range(len(header))]
    lines = []

    def fmt_row(cells: list[str]) -> str:
        left = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([left, *rest]).rstrip()

    lines.append(fmt_row(header))
    lines.append("  ".join("-" * w for w in widths))
    for i, cells in enumerate(body):
        if i in spans:
            lines.append(f"{cells[0].ljust(widths[0])}  {spans[i]}")
        else:
            lines.append(fmt_row(cells))
    return lines


def report(result: dict[str, Any]) -> list[str]:
    a = result["args"]
    meta = result["meta"]
    rows: list[dict[str, Any]] = result["rows"]
    kannel: dict[str, Any] | None = result.get("kannel")
    out: list[str] = []
    out.append(
        f"== Tidings {meta['git']} on {meta['cores']} cores ({meta['cpu_model']}); "
        f"{a['runs']} run(s) per row" + (", medians" if a["runs"] > 1 else "") + " =="
    )
    out.append(
        f"(a) {a['messages']:,} single-destination v1 requests, {a['connections']} connections; "
        f"(b) {a['batch_messages']:,} destinations in requests of {a['batch_size']}, "
        f"{a['batch_connections']} connections; (c) the (a) messages end to end over SMPP, receipts "
        f"{a['dlr_delay_ms']} ms after submit_sm_resp."
    )
    out.append("NOTE: " + SHARED_NOTE.format(cores=meta["cores"]))
    header = [
        "row",
        "(a) req/s",
        "p50/p99 ms",
        "(b) dest/s",
        "(c) msg/s",
        "receipt rtt p50/p99 ms",
        "to final p50/p99 ms",
        "gateway CPU%",
        "db CPU%",
        "others CPU%",
        "all delivered",
    ]
    body: list[list[str]] = []
    spans: dict[int, str] = {}
    short = False

    def cell(r: dict[str, Any], key: str, value: str) -> str:
        # "*": the median is of fewer runs than planned (stopped early, or a run delivered nothing)
        nonlocal short
        if value != "-" and r.get("counted", {}).get(key, a["runs"]) < a["runs"]:
            short = True
            return f"{value}*"
        return value

    for r in rows:
        if not r.get("available"):
            spans[len(body)] = f"not available: {r.get('reason')}"
            body.append([r["label"]])
            continue
        body.append(
            [
                r["label"] + (" (aborted)" if r.get("aborted") else ""),
                cell(r, "a", num(med(r["accept_req_per_s"]))),
                f"{num(med(r['accept_p50_ms']), 1)} / {num(med(r['accept_p99_ms']), 1)}",
                cell(r, "b", num(med(r["destinations_per_s"]))),
                cell(r, "c", num(med(r["e2e_msg_per_s"]))),
                pair(r["receipt_rtt_p50_ms"], r["receipt_rtt_p99_ms"]),
                pair(r["final_p50_ms"], r["final_p99_ms"]),
                num(med(r["gateway_cpu_pct"])),
                num(med(r["db_cpu_pct"])),
                num(med(r["others_cpu_pct"])),
                "yes" if r["complete"] else "NO",
            ]
        )
    if kannel is not None:
        label = "Kannel 1.4.5" + (" (store file)" if a["kannel_store"] else " (in memory)")
        if not kannel.get("available"):
            spans[len(body)] = f"not available: {kannel.get('reason')}"
            body.append([label])
        else:
            body.append(
                [
                    label,
                    num(med(kannel["accept_req_per_s"])),
                    f"{num(med(kannel['accept_p50_ms']), 1)} / {num(med(kannel['accept_p99_ms']), 1)}",
                    "-",
                    num(med(kannel["e2e_msg_per_s"])),
                    "-",
                    pair(kannel["final_p50_ms"], kannel["final_p99_ms"]),
                    num(med(kannel["gateway_cpu_pct"])),
                    "-",
                    num(med(kannel["others_cpu_pct"])),
                    "yes" if kannel["complete"] else "NO",
                ]
            )
    out.append("")
    out += table(header, body, spans)
    out.append("")
    if short:
        out.append(
            "*   median of fewer runs than planned: see the PROBLEM lines below (every run is in the JSON)."
        )
    out.append("(a) accepted requests/s, first request sent -> last answer; Tidings answers after its commit")
    out.append(
        "    (durable), Kannel once bearerbox queued the message"
        + (" in its store file" if a["kannel_store"] else " in memory (not durable)")
        + "."
    )
    out.append("(b) destinations accepted/s with 1000-address requests (Kannel: not measured).")
    out.append(
        "(c) messages with their final report / (last report - first request sent): Tidings' Delivered"
    )
    out.append("    notification, Kannel's DLR callback. receipt rtt: Submitted -> Delivered notification.")
    out.append("    to final: Tidings from the request's answer, Kannel from the request's send.")
    out.append(
        "CPU: % of one core over send -> last report; gateway = all Tidings processes / bearerbox+smsbox;"
    )
    out.append(
        "    db = every postgres process (PostgreSQL rows); others = the rest of the machine's busy time"
    )
    out.append(f"    (other jobs, kernel); the machine has {meta['cores'] * 100}% in all.")
    multi = [r for r in rows if r.get("available") and r["runs"] > 1]
    if multi or (kannel and kannel.get("available") and kannel["runs"] > 1):
        out.append("")
        out.append("median (min-max) over the runs:")
        for r in multi:
            out.append(
                f"  {r['label']}: (a) {rng(r['accept_req_per_s'])} req/s; "
                f"(b) {rng(r['destinations_per_s'])}/s; (c) {rng(r['e2e_msg_per_s'])} msg/s"
            )
        if kannel and kannel.get("available"):
            out.append(
                f"  Kannel: (a) {rng(kannel['accept_req_per_s'])} req/s; (c) {rng(kannel['e2e_msg_per_s'])} "
                f"msg/s; DLR callbacks first->last {rng(kannel['dlr_msg_per_s'])}/s; delivery at the SMSC "
                f"{rng(kannel['delivery_msg_per_s'])} msg/s"
            )
    if kannel and kannel.get("available"):
        out.append("")
        out.append("Tidings / Kannel, same sitting:")
        for r in rows:
            if not r.get("available"):
                continue
            ra = ratio(med(r["accept_req_per_s"]), med(kannel["accept_req_per_s"]))
            rc = ratio(med(r["e2e_msg_per_s"]), med(kannel["e2e_msg_per_s"]))
            rc2 = ratio(med(r["e2e_msg_per_s"]), med(kannel["dlr_msg_per_s"]))
            out.append(
                f"  {r['label']}: (a) accept {num(ra, 2)}x; (c) end to end with DLRs {num(rc, 2)}x "
                f"({num(rc2, 2)}x against Kannel's DLR callbacks/s counted first -> last callback)"
            )
    out.append("")
    out.append("Targets:")
    for t in result["targets"]:
        who = f" {t['row']}:" if t.get("row") else ""
        if t["verdict"] in ("NOT CHECKED", "NOT AVAILABLE"):
            out.append(f"  ({t['target']}) {t['what']}:{who} {t['verdict']} ({t['why']})")
            continue
        detail = f"{num(t.get('value'))}"
        if t.get("ratio") is not None:
            detail += f" = {t['ratio']:.2f}x Kannel's {num(t['kannel'])}, needs {num(t['needed'])}"
        else:
            detail += f", needs {num(t['needed'])}"
        out.append(f"  ({t['target']}) {t['what']}:{who} {detail}: {t['verdict']}")
    problems = [(r["label"], p) for r in rows if r.get("available") for p in r.get("problems", [])]
    if kannel and kannel.get("available") and not kannel["complete"]:
        problems.append(("Kannel", f"accepted/delivered/DLRs per run: {kannel['delivered']}"))
    for label, p in problems:
        out.append(f"PROBLEM: {label}: {p}")
    out.append("")
    parts = [f"{r['key']} {r['elapsed_s'] / 60:.1f}" for r in rows]
    if kannel is not None and "elapsed_s" in kannel:
        parts.append(f"Kannel {kannel['elapsed_s'] / 60:.1f}")
    out.append(f"took {result['elapsed_s'] / 60:.1f} min ({', '.join(parts)}); JSON: {meta['json']}")
    return out


# -- main -------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a short check: 1 run, 3000 + 10000 messages")
    ap.add_argument(
        "--backends",
        default="sqlite,postgres",
        help="comma-separated rows to run: sqlite, postgres (default: sqlite,postgres)",
    )
    ap.add_argument(
        "--with-kannel", action="store_true", help="also run Kannel 1.4.5; print ratios and targets"
    )
    ap.add_argument("--runs", type=int, help="measured runs per row (default 3; --quick 1)")
    ap.add_argument(
        "--messages", type=int, help="(a)/(c): single-destination requests (default 20000; quick 3000)"
    )
    ap.add_argument("--connections", type=int, default=50, help="(a)/(c): connections (default 50)")
    ap.add_argument("--batch-messages", type=int, help="(b): destinations (default 50000; quick 10000)")
    ap.add_argument("--batch-size", type=int, default=1000, help="(b): addresses per request (default 1000)")
    ap.add_argument("--batch-connections", type=int, default=4, help="(b): connections (default 4)")
    ap.add_argument("--warmup", type=int, help="single requests before measuring (default 1000; quick 300)")
    ap.add_argument(
        "--dlr-delay-ms",
        type=int,
        default=1000,
        help="both simulators send each receipt this long after submit_sm_resp (default 1000, the peers')",
    )
    ap.add_argument("--window", type=int, default=256, help="Tidings' [[smsc]] window (default 256)")
    ap.add_argument("--binds", type=int, default=1, help="Tidings' [[smsc]] binds (default 1)")
    ap.add_argument("--pg-url", default="postgresql://127.0.0.1:5432/test", help="PostgreSQL (loopback)")
    ap.add_argument("--pg-api", default="1,2", help="API processes of the PostgreSQL rows (default 1,2)")
    ap.add_argument("--pg-workers", type=int, default=1, help="`tidings worker` processes per PostgreSQL row")
    ap.add_argument("--pg-keep-schema", action="store_true", help="keep each row's fresh schema afterwards")
    ap.add_argument("--kannel-n", type=int, help="Kannel: messages per run (default: --messages)")
    ap.add_argument("--kannel-warmup", type=int, help="Kannel: warm-up messages (default: 2 x --warmup)")
    ap.add_argument("--kannel-repeats", type=int, help="Kannel: measured runs (default: --runs)")
    ap.add_argument("--kannel-store", action="store_true", help="Kannel keeps a store file (STORE=1)")
    ap.add_argument("--kannel-timeout", type=float, help="Kannel: stop run_kannel.sh after this (s)")
    ap.add_argument("--no-install", action="store_true", help="never apt-get install Kannel")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="time limit of each load phase")
    ap.add_argument(
        "--drain-timeout", type=float, default=300.0, help="wait at most this for every final notification"
    )
    ap.add_argument("--stall-seconds", type=float, default=15.0, help="stop waiting after this long idle")
    ap.add_argument(
        "--quiet-wait", type=float, help="wait up to this for an idle machine (default 10; quick 3)"
    )
    ap.add_argument("--python", default=str(REPO / ".venv/bin/python"), help="interpreter that runs tidings")
    ap.add_argument("--out-dir", default=str(HERE / "out"))
    ap.add_argument("--keep-tmp", action="store_true", help="keep each row's temp dir")
    ap.add_argument(
        "--keep-going",
        action="store_true",
        help="go on with a row's runs after a scenario left messages without a final notification "
        "(by default the row stops there: that backlog would spoil the next scenarios)",
    )
    a = ap.parse_args(argv)
    for name, (full, quick) in DEFAULTS.items():
        if getattr(a, name) is None:
            setattr(a, name, quick if a.quick else full)
    a.kannel_n = a.kannel_n or a.messages
    a.kannel_warmup = a.kannel_warmup if a.kannel_warmup is not None else 2 * a.warmup
    a.kannel_repeats = a.kannel_repeats or a.runs
    a.backends = [b.strip() for b in a.backends.split(",") if b.strip()]
    for b in a.backends:
        if b not in ("sqlite", "postgres"):
            ap.error(f"--backends: unknown {b!r} (sqlite, postgres)")
    try:
        a.pg_api = [int(x) for x in a.pg_api.split(",") if x.strip()]
    except ValueError:
        ap.error("--pg-api: comma-separated numbers, e.g. 1,2")
    if any(n < 1 for n in a.pg_api) or a.pg_workers < 0:
        ap.error("--pg-api must be >= 1 and --pg-workers >= 0")
    pg = urlsplit(a.pg_url)
    if pg.scheme not in ("postgresql", "postgres") or not is_loopback(pg.hostname):
        ap.error("--pg-url must be postgresql://<loopback address>[:port]/<database>")
    for name in ("runs", "messages", "connections", "batch_messages", "batch_size", "batch_connections"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    t0 = time.monotonic()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"run-{stamp}.json"
    result: dict[str, Any] = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "cores": os.cpu_count(),
            "cpu_model": cpu_model(),
            "python": platform.python_version(),
            "git": git_describe(),
            "json": os.path.relpath(json_path),
            "note": SHARED_NOTE.format(cores=os.cpu_count()),
        },
        "args": vars(a),
        "rows": [],
    }
    code = 0
    rows = plan_rows(a, stamp)
    try:
        for row in rows:
            rc = run_row(a, row, stamp)
            result["rows"].append(row.result)
            if rc == 130:
                raise KeyboardInterrupt("interrupted during " + row.label)
        if a.with_kannel:
            result["kannel"] = run_kannel(a, stamp)
    except KeyboardInterrupt as exc:
        print(f"\nINTERRUPTED ({exc or 'SIGINT'}): partial results follow", flush=True)
        result["interrupted"] = str(exc) or "SIGINT"
        code = 130
    result["targets"] = targets(result["rows"], result.get("kannel"))
    result["elapsed_s"] = round(time.monotonic() - t0, 1)
    json_path.write_text(json.dumps(result, indent=1, default=str))
    print()
    print("\n".join(report(result)))
    return code


if __name__ == "__main__":
    sys.exit(main())
