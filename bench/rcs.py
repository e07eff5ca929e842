#!/usr/bin/env python3
"""RCS messages per second to the RBM stand-in, end to end, on this machine.

It starts, each in its own process and session (stopped by PID):

  the stand-in   `python bench/rcs.py --serve-standin ...`: tests/standins/rbm.py (token grant, agentMessages
                 checking token, query and body) on its own event loop, every bench number reachable, with
                 a control port whose GET /stats counts the sends it accepted and the distinct messageIds
  tidings serve  a fresh SQLite file, one service, one [[apps]] entry with the stand-in's [apps.rcs] block

then sends --messages RCS text messages with two suggestions in `POST /v2/messages` requests of
--batch-size addresses each (one keep-alive connection), and polls the stand-in until it has taken them
all (bounded). Reported per run: accepted dest/s (the API's answers), sent msg/s (the stand-in's accepted
sends / time from the first request until it had them all; no loss, no duplicates is checked), and CPU
µs per message of tidings (serve and its children) and of the stand-in.

  .venv/bin/python bench/rcs.py                  # 10,000 messages, a warm-up and 3 runs
  .venv/bin/python bench/rcs.py --messages 2000 --runs 1

The process helpers are bench/smpp.py's and bench/push.py's (started and stopped by PID).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(REPO))  # tests.standins, for --serve-standin

from accept import HOST, SERVICE_KEY, free_port, git_describe, log_problems, rate, tree_cpu_s  # noqa: E402
from push import http_json_on, median  # noqa: E402
from smpp import Died, Procs, healthy, http_get_json, serve_control, wait_until  # noqa: E402

APP = "rcs-bench"
CONFIG = """\
[server]
database = "sqlite:///{workdir}/bench.db"
host = "{host}"
port = {http_port}

[[services]]
id = "svc-bench"
name = "bench"
key = "{key}"
tps = 1000000
senderids = ["CONNCT"]

[[apps]]
id = "{app}"
service = "svc-bench"

[apps.rcs]
agent_id = "{agent}"
service_account_file = "rbm.json"
client_token = "bench-client-token"
base_url = "{base_url}"
"""
CONTENT = {
    "type": "text",
    "text": "Your parcel is on its way",
    "suggestions": [
        {"type": "reply", "displayText": "Track", "postbackData": "track"},
        {"type": "openUrl", "displayText": "Open", "url": "https://example.com/p/1"},
    ],
}


def number(i: int) -> str:
    return f"+4477009{i % 100_000:05d}" if i < 100_000 else f"+447{i:09d}"


# -- the stand-in process -----------------------------------------------------------------------------


async def serve_standin(workdir: Path, control_port: int, count: int) -> None:
    from aiohttp import web

    from tests.standins.rbm import ALL_FEATURES, RbmStandIn

    rbm = RbmStandIn(record=False, reachable=dict.fromkeys((number(i) for i in range(count)), ALL_FEATURES))
    await rbm.start()
    rbm.write_key_file(workdir / "rbm.json")

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(
            {"received": rbm.sends, "accepted": len(rbm.seen), "token_requests": rbm.token_requests,
             "agent": rbm.agent_id, "base_url": rbm.base_url}
        )  # fmt: skip

    app = web.Application()
    app.router.add_get("/stats", stats)
    try:
        await serve_control(app, control_port)
    finally:
        await rbm.stop()


# -- a run ----------------------------------------------------------------------------------------------


def one_run(
    a: argparse.Namespace, http_port: int, control_port: int, pids: dict[str, int], start: int
) -> dict[str, Any]:
    before = http_get_json(control_port, "/stats")
    cpu0 = {k: tree_cpu_s(pid) or 0.0 for k, pid in pids.items()}
    conn = http.client.HTTPConnection(HOST, http_port, timeout=60)
    t0 = time.monotonic()
    accepted = 0
    try:
        for first in range(start, start + a.messages, a.batch_size):
            to = [number(i) for i in range(first, min(first + a.batch_size, start + a.messages))]
            body = {"channel": "rcs", "from": APP, "to": [{"msisdn": to}], "content": CONTENT}
            answer = http_json_on(conn, "POST", "/v2/messages", body, {"key": SERVICE_KEY})
            accepted += len(answer.get("messages") or [answer])
    finally:
        conn.close()
    t_answered = time.monotonic()
    want = before["accepted"] + a.messages
    deadline = t0 + a.timeout
    now = http_get_json(control_port, "/stats")
    while now["accepted"] < want and time.monotonic() < deadline:
        time.sleep(0.05)
        now = http_get_json(control_port, "/stats")
    t_done = time.monotonic()
    cpu1 = {k: tree_cpu_s(pid) or 0.0 for k, pid in pids.items()}
    sent = now["accepted"] - before["accepted"]
    cpu = {k: round((cpu1[k] - cpu0[k]) / max(sent, 1) * 1e6) for k in pids}
    return {
        "messages": a.messages,
        "accepted": accepted,
        "accepted_per_s": rate(accepted, t_answered - t0),
        "sent": sent,
        "received": now["received"] - before["received"],
        "sent_per_s": rate(sent, t_done - t0),
        "no_loss_no_duplicates": sent == a.messages and now["received"] - before["received"] == a.messages,
        "cpu_us_per_msg": cpu,
    }


def line(label: str, r: dict[str, Any]) -> str:
    return (
        f"  {label:>8}: {r['accepted']:,} accepted at {r['accepted_per_s'] or 0:,.0f} dest/s;"
        f" {r['sent']:,} sent to RBM at {r['sent_per_s'] or 0:,.0f} msg/s"
        f" ({'ok' if r['no_loss_no_duplicates'] else 'LOSS OR DUPLICATES'});"
        f" CPU µs/msg tidings {r['cpu_us_per_msg']['tidings']}, stand-in {r['cpu_us_per_msg']['standin']}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2000)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--out", default=str(HERE / "out"))
    p.add_argument("--keep-tmp", action="store_true")
    p.add_argument("--serve-standin", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--workdir", default="", help=argparse.SUPPRESS)
    p.add_argument("--control-port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--numbers", type=int, default=0, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.serve_standin:
        asyncio.run(serve_standin(Path(a.workdir), a.control_port, a.numbers))
        return 0
    total = a.warmup + a.messages * a.runs
    workdir = Path(tempfile.mkdtemp(prefix="rcsbench-"))
    control_port, http_port = free_port(), free_port()
    procs = Procs()
    result: dict[str, Any] = {"version": git_describe(), "args": vars(a), "runs": []}
    try:
        cmd = [a.python, str(HERE / "rcs.py"), "--serve-standin", "--workdir", str(workdir)]
        cmd += ["--control-port", str(control_port), "--numbers", str(total)]
        standin = procs.start("rbm stand-in", cmd, REPO, workdir / "standin.log")
        wait_until("the stand-in", lambda: http_get_json(control_port, "/stats") is not None, [standin])
        info = http_get_json(control_port, "/stats")
        (workdir / "tidings.toml").write_text(
            CONFIG.format(
                workdir=workdir,
                host=HOST,
                http_port=http_port,
                key=SERVICE_KEY,
                app=APP,
                agent=info["agent"],
                base_url=info["base_url"],
            )
        )
        serve = [a.python, "-m", "tidings", "serve", "--config", str(workdir / "tidings.toml")]
        tidings = procs.start("tidings", serve, workdir, workdir / "server.log")
        wait_until("GET /healthz", lambda: healthy(http_port), [standin, tidings])
        pids = {"tidings": tidings.pid, "standin": standin.pid}
        start = 0
        if a.warmup:
            warm = argparse.Namespace(**{**vars(a), "messages": a.warmup})
            print(line("warm-up", one_run(warm, http_port, control_port, pids, start)), flush=True)
            start += a.warmup
        for i in range(1, a.runs + 1):
            r = one_run(a, http_port, control_port, pids, start)
            start += a.messages
            result["runs"].append(r)
            print(line(f"run {i}", r), flush=True)
        result["median_sent_per_s"] = median(result["runs"], "sent_per_s")
        result["median_accepted_per_s"] = median(result["runs"], "accepted_per_s")
        print(f"median: {result['median_sent_per_s'] or 0:,.0f} RCS msg/s to the stand-in", flush=True)
    except Died as exc:
        result["error"] = str(exc)
        print(exc, flush=True)
    finally:
        result["stopped"] = procs.stop_all()
        log = workdir / "server.log"
        if log.exists():
            result["log_problems"] = log_problems(log.read_text(errors="replace"))
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"rcs-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(result, indent=2))
        if not a.keep_tmp:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
