#!/usr/bin/env python3
"""Emails per second to a local SMTP relay, end to end, on this machine.

It starts, each in its own process and session (stopped by PID):

  the relay      `python bench/emails.py --serve-relay ...`: tests/standins/smtp.py (aiosmtpd) counting
                 what it accepts (not keeping it), served on that process's uvloop loop with the
                 stand-in's fast path for plain <local@domain> paths (`SmtpStandIn.serve_here`), with a
                 control port whose GET /stats gives the counts
  tidings serve  a fresh SQLite file, one service whose notify_url is this process's receiver, an
                 [[smtp]] entry for the relay (security none: loopback) routed for email, [email] with a
                 bounce domain

then sends --messages emails in v2 requests (`POST /v2/messages`, channel email) of --batch-size (1000)
addresses each, over --connections keep-alive connections, and waits (bounded) for every accepted
message's Submitted notification (the relay answered 250 to DATA). Reported per run:

  accepted dest/s   addresses accepted / (last answer - first request sent)
  e2e emails/s      messages whose Submitted notification arrived / (last one - first request sent)
  relay             messages it accepted in the window: must equal the messages (no loss, no duplicate)
  CPU per message   tidings (serve + its notification sender), the relay, this process, in µs

  .venv/bin/python bench/emails.py                      # 20,000 emails, about a minute
  .venv/bin/python bench/emails.py --messages 5000 --smtp-connections 8 --html
Loopback only; every phase is bounded in time (--max-seconds, --drain-timeout, --stall-seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# This file's name would shadow the stdlib's email package (http.client imports it): bench/ goes last,
# where accept.py and the others are still found.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]
sys.path.insert(0, str(REPO))  # tests.standins, for --serve-relay

# bench/ is not a package: the helpers sit next to this file
from accept import (  # noqa: E402
    HOST,
    SERVICE_KEY,
    Receiver,
    ReceiverProtocol,
    free_port,
    git_describe,
    log_problems,
    machine_cpu_s,
    proc_cpu_s,
    rate,
    run_load,
    tree_cpu_s,
    wait_quiet,
)
from push import _loop_factory  # noqa: E402
from smpp import Died, Procs, healthy, http_get_json, serve_control, wait_until  # noqa: E402

TARGET = 1000  # emails/s the issue asks for

CONFIG_TEMPLATE = """\
[server]
database = "sqlite:///{workdir}/bench.db"
host = "{host}"
port = {http_port}

[notify]
timeout_s = 10
retries = 3
retry_interval_s = 1

[[services]]
id = "svc-bench"
name = "bench"
key = "{key}"
tps = 1000000
notify_url = "http://{host}:{receiver_port}/dlr"
email_from = ["@bench.example.com"]

[[smtp]]
name = "relay"
host = "{host}"
port = {relay_port}
security = "none"
connections = {smtp_connections}

[email]
bounce_domain = "bounces.bench.example.com"

[routes]
email = "relay"
"""

HTML = (
    "<html><body><h1>Hello {{name}}</h1><p>Your weekly digest: <a href='https://bench.example.com/a'>"
    "read it</a> or <a href='https://bench.example.com/b'>see more</a>.</p></body></html>"
)


def dkim_keys(workdir: Path, which: str) -> str:
    """The [email] lines of DKIM signing with fresh keys written into `workdir` ("" for none)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if which == "none":
        return ""
    pem = (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (workdir / "dkim-rsa.pem").write_bytes(rsa.generate_private_key(65537, 2048).private_bytes(*pem))
    lines = 'dkim_domain = "bench.example.com"\ndkim_selector = "rsa1"\ndkim_key_file = "dkim-rsa.pem"\n'
    if which == "both":
        (workdir / "dkim-ed25519.pem").write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(*pem))
        lines += 'dkim_ed25519_selector = "ed1"\ndkim_ed25519_key_file = "dkim-ed25519.pem"\n'
    return lines


async def serve_relay(control_port: int, relay_port: int, workdir: Path) -> None:
    from aiohttp import web

    from tests.standins.smtp import SmtpStandIn

    # Served on this process's own (uvloop) loop, not in the controller's thread: the relay's CPU per
    # email is part of what the bench measures on this machine, and a second thread only adds GIL
    # hand-offs to it.
    relay = SmtpStandIn(workdir, "none", record=False, port=relay_port)
    smtp_server = await relay.serve_here()

    async def stats(_: web.Request) -> web.Response:
        return web.json_response({"accepted": relay.accepted, "sessions": len(relay.handler.sessions)})

    app = web.Application()
    app.router.add_get("/stats", stats)
    try:
        await serve_control(app, control_port)
    finally:
        smtp_server.close()


def v2_request(port: int, first: int, count: int, html: bool) -> bytes:
    addresses = [f"reader{first + i:08d}@bench.example.net" for i in range(count)]
    content: dict[str, Any] = {"type": "text", "subject": "Your digest", "text": "Hello, here it is."}
    if html:
        content = {"type": "html", "subject": "Your digest, {{name}}", "html": HTML}
    body = json.dumps(
        {
            "channel": "email",
            "from": "news@bench.example.com",
            "to": [{"email": addresses}],
            "substitutions": {"name": "reader"},
            "options": {"trackClicks": html, "trackOpens": html},
            "content": content,
        },
        separators=(",", ":"),
    ).encode()
    head = (
        f"POST /v2/messages HTTP/1.1\r\nHost: {HOST}:{port}\r\nkey: {SERVICE_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def message_ids(load: Any) -> tuple[list[str], dict[str, int], float]:
    """The messageIds of every 201 answer, failures by kind, and the time of the last answer."""
    ids: list[str] = []
    errors: dict[str, int] = {}
    last = 0.0
    for i, body in enumerate(load.body):
        if load.error[i] is not None or body is None:
            errors["connection"] = errors.get("connection", 0) + 1
            continue
        last = max(last, load.t_recv[i])
        if load.status[i] != 201:
            errors[f"HTTP {load.status[i]}"] = errors.get(f"HTTP {load.status[i]}", 0) + 1
            continue
        answer = json.loads(body)
        ids += [m["messageId"] for m in answer.get("messages") or [answer]]
    return ids, errors, last


async def wait_submitted(a: argparse.Namespace, rx: Receiver, ids: list[str]) -> bool:
    t0 = last_change = time.monotonic()
    seen = -1
    while True:
        count = len(rx.submitted_at)
        if count != seen:
            seen, last_change = count, time.monotonic()
        now = time.monotonic()
        if all(i in rx.submitted_at for i in ids[-1:]) and count >= len(ids):
            return True
        if now - t0 > a.drain_timeout or now - last_change > a.stall_seconds:
            return False
        await asyncio.sleep(0.05)


async def scenario(
    a: argparse.Namespace,
    label: str,
    messages: int,
    http_port: int,
    control_port: int,
    pids: dict[str, int],
    rx: Receiver,
    seq: int,
) -> dict[str, Any]:
    size = a.batch_size
    requests = [
        v2_request(http_port, seq + s, min(size, messages - s), a.html) for s in range(0, messages, size)
    ]
    busy_before = await wait_quiet(a.quiet_wait)
    r0 = http_get_json(control_port, "/stats")
    rx.reset()

    def cpu() -> dict[str, float]:
        total, idle = machine_cpu_s()
        return {
            "wall": time.monotonic(),
            "tidings": tree_cpu_s(pids["tidings"]) or 0.0,
            "relay": proc_cpu_s(pids["relay"]) or 0.0,
            "bench": time.process_time(),
            "busy": total - idle,
        }

    c0 = cpu()
    load = await run_load(http_port, requests, a.connections, a.max_seconds)
    ids, errors, t_last = message_ids(load)
    complete = await wait_submitted(a, rx, ids)
    c1 = cpu()
    await asyncio.sleep(a.settle)
    r1 = http_get_json(control_port, "/stats")
    submitted = [rx.submitted_at[i] for i in ids if i in rx.submitted_at]
    done, last = len(submitted), max(submitted, default=0.0)
    spent = {k: c1[k] - c0[k] for k in c0}
    others = spent["busy"] - spent["tidings"] - spent["relay"] - spent["bench"]
    return {
        "label": label,
        "messages": messages,
        "accepted": len(ids),
        "errors": errors,
        "accepted_per_s": rate(len(ids), t_last - load.t_start),
        "submitted": done,
        "e2e_per_s": rate(done, last - load.t_start),
        "complete": complete,
        "relay_accepted": r1["accepted"] - r0["accepted"],
        "relay_sessions": r1["sessions"],
        "other_notifications": {k: v for k, v in rx.by_status.items() if k != "Submitted"},
        "duplicates": rx.duplicates,
        "cpu_us_per_msg": {
            k: round(1e6 * spent[k] / done) if done else None for k in ("tidings", "relay", "bench")
        },
        "others_pct": round(100 * others / spent["wall"]) if spent["wall"] > 0 else None,
        "busy_before_pct": busy_before,
    }


def one_line(r: dict[str, Any]) -> str:
    cpu = r["cpu_us_per_msg"]
    return (
        f"  {r['label']:>8}: {r['accepted']:,}/{r['messages']:,} accepted at"
        f" {r['accepted_per_s'] or 0:,.0f} dest/s;"
        f" end to end {r['e2e_per_s'] or 0:,.0f} emails/s ({r['submitted']:,} Submitted);"
        f" relay accepted {r['relay_accepted']:,}"
        f" ({'ok' if r['relay_accepted'] == r['accepted'] == r['submitted'] else 'MISMATCH'});"
        f" CPU µs/email tidings {cpu['tidings']}, relay {cpu['relay']}, bench {cpu['bench']};"
        f" others {r['others_pct']}%"
    )


async def bench(
    a: argparse.Namespace, http_port: int, control_port: int, pids: dict[str, int], rx_sock: socket.socket
) -> list[dict[str, Any]]:
    rx = Receiver()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ReceiverProtocol(rx), sock=rx_sock, backlog=1024)
    runs = []
    try:
        seq = 0
        if a.warmup:
            w = await scenario(a, "warm-up", a.warmup, http_port, control_port, pids, rx, seq)
            seq += a.warmup
            print(one_line(w), flush=True)
        for i in range(1, a.runs + 1):
            r = await scenario(a, f"run {i}", a.messages, http_port, control_port, pids, rx, seq)
            seq += a.messages
            runs.append(r)
            print(one_line(r), flush=True)
    finally:
        server.close()
    return runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20000, help="emails per run (default 20000)")
    ap.add_argument("--batch-size", type=int, default=1000, help="addresses per v2 request (default 1000)")
    ap.add_argument("--connections", type=int, default=4, help="HTTP keep-alive connections (default 4)")
    ap.add_argument("--smtp-connections", type=int, default=8, help="[[smtp]] connections (default 8)")
    ap.add_argument(
        "--html", action="store_true", help="HTML with tracked links and the pixel (default text)"
    )
    ap.add_argument("--warmup", type=int, default=2000, help="emails before measuring (default 2000)")
    ap.add_argument("--runs", type=int, default=1, help="measured runs (default 1)")
    ap.add_argument(
        "--dkim", choices=["none", "rsa", "both"], default="none", help="sign: RSA 2048, or RSA and Ed25519"
    )
    ap.add_argument("--max-seconds", type=float, default=120.0, help="time limit of each load phase")
    ap.add_argument("--drain-timeout", type=float, default=180.0, help="wait at most this for notifications")
    ap.add_argument("--stall-seconds", type=float, default=15.0, help="stop waiting after this long idle")
    ap.add_argument("--settle", type=float, default=0.5, help="seconds before reading the relay's counts")
    ap.add_argument("--quiet-wait", type=float, default=5.0, help="wait up to this for an idle machine")
    ap.add_argument("--python", default=str(REPO / ".venv/bin/python"), help="interpreter that runs tidings")
    ap.add_argument("--out-dir", default=str(HERE / "out"))
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (DB, config, logs)")
    ap.add_argument("--serve-relay", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--control-port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--relay-port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    for name in ("messages", "batch_size", "connections", "smtp_connections", "runs"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.serve_relay:
        with asyncio.Runner(loop_factory=_loop_factory(True)) as runner:
            runner.run(serve_relay(a.control_port, a.relay_port, Path(a.workdir)))
        return 0
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="emailbench-"))
    rx_sock = socket.socket()
    rx_sock.bind((HOST, 0))
    rx_sock.listen(1024)
    rx_sock.setblocking(False)
    control_port, relay_port, http_port = free_port(), free_port(), free_port()
    procs = Procs()
    result: dict[str, Any] = {"git": git_describe(), "cores": os.cpu_count(), "args": vars(a)}
    print(
        f"commit {result['git']}, {result['cores']} cores; {a.messages:,} emails per run in v2 requests of"
        f" {a.batch_size}, {'html with tracking' if a.html else 'text'},"
        f" {a.smtp_connections} SMTP connections",
        flush=True,
    )
    try:
        cmd = [a.python, str(HERE / "emails.py"), "--serve-relay", "--workdir", str(workdir)]
        cmd += ["--control-port", str(control_port), "--relay-port", str(relay_port)]
        relay = procs.start("relay", cmd, REPO, workdir / "relay.log")
        wait_until(
            "the relay's control port", lambda: http_get_json(control_port, "/stats") is not None, [relay]
        )
        config = CONFIG_TEMPLATE.format(
            workdir=workdir,
            host=HOST,
            http_port=http_port,
            key=SERVICE_KEY,
            receiver_port=rx_sock.getsockname()[1],
            relay_port=relay_port,
            smtp_connections=a.smtp_connections,
        )
        config = config.replace("[email]\n", "[email]\n" + dkim_keys(workdir, a.dkim))
        (workdir / "tidings.toml").write_text(config)
        serve = [a.python, "-m", "tidings", "serve", "--config", str(workdir / "tidings.toml")]
        tidings = procs.start("tidings", serve, workdir, workdir / "server.log")
        wait_until("GET /healthz", lambda: healthy(http_port), [relay, tidings])
        pids = {"tidings": tidings.pid, "relay": relay.pid}
        with asyncio.Runner(loop_factory=_loop_factory(True)) as runner:
            result["runs"] = runner.run(bench(a, http_port, control_port, pids, rx_sock))
    except Died as exc:
        result["error"] = str(exc)
        print(f"email: {exc}", flush=True)
    finally:
        result["stopped"] = procs.stop_all()
        rx_sock.close()
        for name in ("server.log", "relay.log"):
            path = workdir / name
            if path.exists():
                result.setdefault("log_problems", {})[name] = log_problems(path.read_text(errors="replace"))
        if not a.keep_tmp:
            shutil.rmtree(workdir, ignore_errors=True)
    runs = result.get("runs") or []
    best = max((r["e2e_per_s"] or 0 for r in runs), default=0)
    verdict = "MET" if best >= TARGET else "NOT MET"
    print(f"\nbest end to end {best:,.0f} emails/s; target {TARGET:,}/s {verdict}", flush=True)
    path = out_dir / ("email-" + time.strftime("%Y%m%d-%H%M%S") + ".json")
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"results: {path}")
    ok = runs and all(
        r["complete"] and not r["errors"] and r["relay_accepted"] == r["accepted"] for r in runs
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
