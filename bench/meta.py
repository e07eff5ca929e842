"""What bench/whatsapp.py and bench/messenger.py share: Meta's channels through the Graph stand-in.

A bench script gives a `Spec` (its app, its config, its stand-in's settings, its `GraphStack` subclass,
which builds its requests and webhook bodies) and its parsed flags to `main`, which does the rest:

  the stand-in   `python bench/<script>.py --serve-standin ...` runs `serve_standin`: tests/standins/graph.py
                 GraphStandIn (record=False) on its own uvloop event loop, following each accepted send with
                 signed, batched status webhooks to Tidings' /webhooks/<appid>, as Meta does. Its control
                 port answers GET /stats (sends, sends accepted, distinct recipients accepted and how many
                 were sent twice, webhook POSTs by the HTTP status Tidings answered), POST /reset (clears
                 the recipient counts) and POST /hold (`{"on": true}`: sends are answered and counted but
                 no webhook follows them, so their messages stay Submitted)
  tidings serve  a fresh SQLite file, one service whose notify_url (/dlr) and inbound_url (/mo) are this
                 process's receiver, one [[apps]] entry with the channel's block aimed at the stand-in

Rows: a warm-up and --runs e2e runs (`GraphStack.e2e`: requests in, Delivered notifications out, each
transid exactly once, the stand-in's counts), an optional run under py-spy, then the script's webhook runs
(`GraphStack.hook_runs`, measured by `GraphStack.post_webhooks`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(REPO))  # tests.standins, for --serve-standin

from accept import (  # noqa: E402
    HOST,
    SERVICE_KEY,
    Receiver,
    ReceiverProtocol,
    free_port,
    git_describe,
    log_problems,
    machine_cpu_s,
    pct,
    proc_cpu_s,
    rate,
    read_answers,
    run_load,
    tree_cpu_s,
    wait_quiet,
)
from push import _loop_factory  # noqa: E402
from smpp import (  # noqa: E402
    Died,
    Proc,
    Procs,
    healthy,
    http_get_json,
    profile_top,
    py_spy_path,
    read_collapsed,
    serve_control,
    wait_until,
)

# -- the stand-in process ---------------------------------------------------------------------------


async def serve_standin(control_port: int, settings: dict[str, Any]) -> None:
    """GraphStandIn with `settings` (ids, tokens, webhook_url, app_secret, batch) until SIGTERM."""
    from aiohttp import web

    from tests.standins.graph import GraphStandIn

    class Counting(GraphStandIn):
        """Counts each accepted send by recipient, so that the bench can tell losses from duplicates."""

        def __post_init__(self) -> None:
            super().__post_init__()
            self.accepted = 0
            self.per_recipient: dict[str, int] = {}
            self.hold = False

        def _queue(self, api: str, recipient: str, ident: str) -> None:
            self.accepted += 1
            self.per_recipient[recipient] = self.per_recipient.get(recipient, 0) + 1
            if not self.hold:
                super()._queue(api, recipient, ident)

    graph = Counting(record=False, **settings)
    await graph.start()

    async def stats(_: web.Request) -> web.Response:
        per = graph.per_recipient
        return web.json_response(
            {
                "received": graph.sends,
                "accepted": graph.accepted,
                "distinct": len(per),
                "repeated": sum(1 for n in per.values() if n > 1),
                "webhook_answers": {str(k): v for k, v in graph.webhook_answers.items()},
                "base_url": graph.base_url,
            }
        )

    async def reset(_: web.Request) -> web.Response:
        graph.per_recipient = {}
        return web.json_response({})

    async def hold(request: web.Request) -> web.Response:
        graph.hold = bool((await request.json()).get("on"))
        return web.json_response({"hold": graph.hold})

    app = web.Application()
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    app.router.add_post("/hold", hold)
    try:
        await serve_control(app, control_port)
    finally:
        await graph.stop()


# -- requests ---------------------------------------------------------------------------------------


def signed_post(port: int, app: str, app_secret: str, payload: dict[str, Any]) -> bytes:
    """A webhook POST to /webhooks/<app>, signed with X-Hub-Signature-256 on its raw bytes, as Meta does."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    signature = "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()
    head = (
        f"POST /webhooks/{app} HTTP/1.1\r\nHost: {HOST}:{port}\r\nX-Hub-Signature-256: {signature}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n"
    )
    return head.encode() + raw


def v1_request(port: int, body: dict[str, Any]) -> bytes:
    raw = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"POST /resources/v1/messaging HTTP/1.1\r\nHost: {HOST}:{port}\r\nkey: {SERVICE_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n"
    )
    return head.encode() + raw


def interleave(groups: list[list[tuple[str, bytes, int]]]) -> list[tuple[str, bytes, int]]:
    """One of the first group, then an even share of each other group, and again, until all are used:
    so that every kind is in flight through the whole run."""
    first, others = groups[0], groups[1:]
    steps = [max(1, len(g) // max(1, len(first))) for g in others]
    at = [0] * len(others)
    out: list[tuple[str, bytes, int]] = []
    fi = 0
    while fi < len(first) or any(i < len(g) for i, g in zip(at, others, strict=True)):
        if fi < len(first):
            out.append(first[fi])
            fi += 1
        for j, g in enumerate(others):
            take = g[at[j] : at[j] + steps[j]]
            out.extend(take)
            at[j] += len(take)
    return out


# -- the stack ----------------------------------------------------------------------------------------


class HookReceiver(Receiver):
    """accept.py's receiver, plus a count of inbound messages posted to /mo."""

    def reset(self) -> None:
        super().reset()
        self.inbound = 0

    def note(self, target: bytes, body: bytes, now: float) -> None:
        if target.startswith(b"/mo"):
            self.inbound += 1
            return
        super().note(target, body, now)


@dataclass
class GraphStack:
    """The running stand-in and `tidings serve`, and this process's receiver. A script's subclass builds
    the e2e requests (`e2e_requests`) and runs the webhook rows (`hook_runs`)."""

    args: argparse.Namespace
    procs: Procs
    standin: Proc
    tidings: Proc
    control_port: int
    http_port: int
    rx: HookReceiver
    seq: int = 0
    inbound_seq: int = 0
    profiler: Proc | None = None

    max_recipients = 100000  # distinct recipients the script's addresses give within a run
    ids_key = "wamids_total"  # the e2e figure that counts every id the stand-in issued

    def e2e_requests(self, messages: int) -> list[bytes]:
        raise NotImplementedError

    async def hook_runs(self, out: dict[str, Any]) -> None:
        raise NotImplementedError

    def check_alive(self) -> None:
        for p in (self.standin, self.tidings):
            if not p.alive():
                raise Died(f"{p.name} exited with code {p.proc.returncode}:\n{p.log_tail()}")

    async def stats(self) -> dict[str, Any]:
        return dict(await asyncio.to_thread(http_get_json, self.control_port, "/stats", 30.0))

    async def control(self, path: str, body: dict[str, Any] | None = None) -> None:
        def post() -> None:
            conn = http.client.HTTPConnection(HOST, self.control_port, timeout=30)
            try:
                conn.request("POST", path, b"" if body is None else json.dumps(body).encode())
                answer = conn.getresponse()
                answer.read()
                if answer.status != 200:
                    raise Died(f"POST {path} at the stand-in: HTTP {answer.status}")
            finally:
                conn.close()

        await asyncio.to_thread(post)

    async def reset_standin(self) -> None:
        await self.control("/reset")

    def cpu(self) -> dict[str, float]:
        total, idle = machine_cpu_s()
        return {
            "wall": time.monotonic(),
            "tidings": tree_cpu_s(self.tidings.pid) or 0.0,
            "tidings_main": proc_cpu_s(self.tidings.pid) or 0.0,
            "standin": proc_cpu_s(self.standin.pid) or 0.0,
            "profiler": (proc_cpu_s(self.profiler.pid) or 0.0) if self.profiler else 0.0,
            "bench": time.process_time(),
            "busy": total - idle,
        }

    def cpu_figures(self, c0: dict[str, float], c1: dict[str, float], count: int) -> dict[str, Any]:
        cpu = {k: round(c1[k] - c0[k], 3) for k in c0 if k != "wall"}
        wall = c1["wall"] - c0["wall"]
        others = cpu["busy"] - cpu["tidings"] - cpu["standin"] - cpu["bench"] - cpu["profiler"]
        return {
            "cpu_s": cpu,
            "cpu_us_per_item": {
                k: round(1e6 * cpu[k] / count) if count else None
                for k in ("tidings", "tidings_main", "standin", "bench")
            },
            "others_pct": round(100 * others / wall) if wall > 0 else None,
        }

    async def wait_delivered(
        self, transids: list[str], seen: dict[str, float] | None = None
    ) -> tuple[bool, float]:
        """Until every transid is in `seen` (by default: has its final notification), bounded by
        --drain-timeout and --stall-seconds."""
        a = self.args
        seen = self.rx.final_at if seen is None else seen
        t0 = last_change = time.monotonic()
        last = -1
        missing = list(transids)
        while missing:
            count = len(seen)
            if count != last:
                last, last_change = count, time.monotonic()
                missing = [t for t in missing if t not in seen]
            now = time.monotonic()
            if not missing or now - t0 > a.drain_timeout or now - last_change > a.stall_seconds:
                break
            await asyncio.sleep(0.05)
        return not missing, time.monotonic() - t0

    async def e2e(self, label: str, messages: int, profile_path: Path | None = None) -> dict[str, Any]:
        a, rx = self.args, self.rx
        if messages > self.max_recipients:
            raise Died(f"--messages above {self.max_recipients:,} would repeat recipients within a run")
        requests = self.e2e_requests(messages)
        busy_before = await wait_quiet(a.quiet_wait)
        self.check_alive()
        await self.reset_standin()
        s0 = await self.stats()
        if profile_path is not None:
            await self.start_profiler(profile_path)
        rx.reset()
        c0 = self.cpu()
        load = await run_load(self.http_port, requests, a.connections, a.max_seconds)
        ans = read_answers(load, a.batch_size)
        complete, waited = await self.wait_delivered(ans.transids)
        c2 = self.cpu()
        if self.profiler is not None:
            Procs.stop(self.profiler, signal.SIGINT, 20.0)  # py-spy writes its output on SIGINT
            self.profiler = None
        await asyncio.sleep(a.settle)  # a late duplicate would show up by now
        s1 = await self.stats()
        self.check_alive()
        delivered = [rx.final_at[t] for t in ans.transids if t in rx.final_at and t not in rx.final_status]
        submitted = sum(1 for t in ans.transids if t in rx.submitted_at)
        last = max(delivered) if delivered else 0.0
        done = len(delivered)
        accepted = s1["accepted"] - s0["accepted"]
        standin_ok = accepted == len(ans.transids) == s1["distinct"] and not s1["repeated"]
        exact = (
            done == submitted == len(ans.transids)
            and not rx.duplicates
            and set(rx.by_status) <= {"Submitted", "Delivered"}
        )
        return {
            "label": label,
            "messages": messages,
            "requests": len(requests),
            "accepted": len(ans.transids),
            "errors": ans.errors,
            "error_samples": ans.samples,
            "accepted_per_s": rate(len(ans.transids), ans.t_last - load.t_start),
            "request_p50_ms": round(1000 * statistics.median(ans.latencies), 1) if ans.latencies else None,
            "submitted": submitted,
            "delivered": done,
            "e2e_msg_per_s": rate(done, last - load.t_start),
            "last_delivered_after_last_answer_s": round(last - ans.t_last, 3) if done else None,
            "complete": complete,
            "waited_s": round(waited, 2),
            "notifications": dict(rx.by_status),
            "duplicate_notifications": rx.duplicates,
            "exactly_once": exact,
            "standin": {
                "accepted": accepted,
                "distinct": s1["distinct"],
                "repeated": s1["repeated"],
                "webhook_answers": s1["webhook_answers"],
            },
            "standin_matches": standin_ok,
            self.ids_key: s1["accepted"],
            **self.cpu_figures(c0, c2, done),
            "busy_before_pct": busy_before,
        }

    async def post_webhooks(
        self, label: str, bodies: list[tuple[str, bytes, int]], expected: dict[str, int]
    ) -> dict[str, Any]:
        """POST `bodies` ((kind, request, events in it), in this order) as fast as Tidings answers, over
        --webhook-connections; then wait (bounded) for the `expected` notifications (status -> count) and,
        for the kind `inbound`, for each of its events to reach the service's inbound_url."""
        a, rx = self.args, self.rx
        events: dict[str, int] = {}
        for kind, _, n in bodies:
            events[kind] = events.get(kind, 0) + n
        busy_before = await wait_quiet(a.quiet_wait)
        self.check_alive()
        rx.reset()
        c0 = self.cpu()
        load = await run_load(self.http_port, [b for _, b, _ in bodies], a.webhook_connections, a.max_seconds)
        c1 = self.cpu()
        answered = [i for i, t in enumerate(load.t_recv) if t]
        ok = [i for i in answered if load.status[i] == 200]
        bad: dict[str, int] = {}
        for i in range(len(bodies)):
            if load.error[i] or (load.t_recv[i] and load.status[i] != 200):
                key = load.error[i] or f"HTTP {load.status[i]}"
                bad[key] = bad.get(key, 0) + 1
        ok_events = sum(bodies[i][2] for i in ok)
        t_last = max((load.t_recv[i] for i in answered), default=load.t_start)
        lat = {k: sorted(load.t_recv[i] - load.t_send[i] for i in ok if bodies[i][0] == k) for k in events}
        inbound = events.get("inbound", 0)
        # notifications go on after the answers: wait (bounded) to see them counted
        for _ in range(int(10 * a.stall_seconds)):
            if rx.inbound >= inbound and all(rx.by_status.get(s, 0) >= n for s, n in expected.items()):
                break
            await asyncio.sleep(0.1)
        self.check_alive()

        def ms(v: float | None) -> float | None:
            return None if v is None else round(1000 * v, 1)

        return {
            "label": label,
            "posts": len(bodies),
            "events": events,
            "accepted_posts": len(ok),
            "failed": bad,
            "events_per_s": rate(ok_events, t_last - load.t_start),
            "posts_per_s": rate(len(ok), t_last - load.t_start),
            "latency_ms": {k: {"p50": ms(pct(v, 50)), "p99": ms(pct(v, 99))} for k, v in lat.items() if v},
            **{f"{s.lower()}_notifications": rx.by_status.get(s, 0) for s in expected},
            "inbound_posted": rx.inbound,
            "other_notifications": {k: v for k, v in rx.by_status.items() if k not in expected},
            **self.cpu_figures(c0, c1, ok_events),
            "busy_before_pct": busy_before,
        }

    async def start_profiler(self, raw_path: Path) -> None:
        spy = py_spy_path(self.args.python)
        if spy is None:
            raise Died("--profile needs py-spy: .venv/bin/pip install py-spy")
        cmd = [spy, "record", "--pid", str(self.tidings.pid), "--rate", str(self.args.profile_rate)]
        cmd += ["--format", "raw", "--subprocesses", "--nonblocking", "-o", str(raw_path)]
        self.profiler = self.procs.start("py-spy", cmd, REPO, raw_path.with_suffix(".log"))
        await asyncio.sleep(0.5)  # let it attach before the clock starts
        if not self.profiler.alive():
            raise Died(f"py-spy exited at once:\n{self.profiler.log_tail()}")


def e2e_line(r: dict[str, Any]) -> str:
    cpu = r["cpu_us_per_item"]
    return (
        f"  {r['label']:>8}: {r['accepted']:,}/{r['messages']:,} accepted at {r['accepted_per_s'] or 0:,.0f}"
        f" dest/s; end to end {r['e2e_msg_per_s'] or 0:,.0f} msg/s ({r['delivered']:,} Delivered,"
        f" last {r['last_delivered_after_last_answer_s']} s after the last answer);"
        f" exactly once {'ok' if r['exactly_once'] else 'NO'},"
        f" stand-in {'ok' if r['standin_matches'] else 'NO'};"
        f" CPU µs/msg tidings {cpu['tidings']} (main {cpu['tidings_main']}), stand-in {cpu['standin']},"
        f" bench {cpu['bench']}; others {r['others_pct']}%" + _store_part(r, "msg")
    )


def _store_part(r: dict[str, Any], item: str) -> str:
    """A script that counts Tidings' store commits (messenger.py) gives its rows a `store` figure."""
    store = r.get("store")
    if not store:
        return ""
    return f"; store commits {store['commits_per_item']}/{item}, {store['commit_us_per_item']} µs/{item}"


def webhook_line(r: dict[str, Any]) -> str:
    lat = r["latency_ms"]
    cpu = r["cpu_us_per_item"]
    notified = [
        (k.removesuffix("_notifications").capitalize(), v)
        for k, v in r.items()
        if k.endswith("_notifications") and k != "other_notifications"
    ]
    return (
        f"  {r['label']:>8}: {r['accepted_posts']:,}/{r['posts']:,} posts answered 200, "
        f"{r['events_per_s'] or 0:,.0f} events/s ({r['posts_per_s'] or 0:,.0f} posts/s); latency ms"
        + "".join(f" {k} p50 {v['p50']} p99 {v['p99']};" for k, v in lat.items())
        + "".join(f" {status} notified {n:,}," for status, n in notified)
        + f" inbound posted {r['inbound_posted']:,};"
        f" CPU µs/event tidings {cpu['tidings']}; others {r['others_pct']}%" + _store_part(r, "event")
    )


async def stack_main(stack: GraphStack, rx_sock: socket.socket, out_dir: Path, prefix: str) -> dict[str, Any]:
    a = stack.args
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ReceiverProtocol(stack.rx), sock=rx_sock, backlog=1024)
    out: dict[str, Any] = {"e2e": [], "webhooks": []}
    try:
        if a.warmup:
            out["warmup"] = w = await stack.e2e("warm-up", a.warmup)
            print(e2e_line(w), flush=True)
        for i in range(1, a.runs + 1):
            r = await stack.e2e(f"e2e {i}", a.messages)
            out["e2e"].append(r)
            print(e2e_line(r), flush=True)
        if a.profile:
            raw = out_dir / f"{prefix}-profile.txt"
            r = await stack.e2e("profiled", a.messages, raw)
            print(e2e_line(r) + "  (under py-spy)", flush=True)
            top = profile_top(read_collapsed(raw), stack.tidings.pid, a.profile_top)
            out["profile"] = {"run": r, "raw": str(raw), "top": top}
            for who, p in top.items():
                print(
                    f"    {who}: {p['samples']} samples; own time by package: "
                    + ", ".join(f"{x['package']} {x['pct']}%" for x in p["own_by_package"][:8])
                )
                for x in p["own_top"]:
                    print(f"      {x['pct']:5.1f}%  {x['function']}")
        await stack.hook_runs(out)
    finally:
        server.close()
    return out


# -- one bench ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """What a script (whatsapp.py, messenger.py) sets: the rest is shared."""

    name: str  # the output files' prefix: bench/out/<name>-<timestamp>...
    noun: str  # the first line: "20,000 <noun> messages per run"
    script: Path  # run with --serve-standin as the stand-in process
    workdir_prefix: str
    app: str
    config: str  # the TOML; {workdir} {host} {http_port} {key} {receiver_port} {base_url} and `fields`
    fields: dict[str, str]
    masks: dict[str, str]  # secret -> what the JSON's copy of the config shows instead
    standin: Callable[[argparse.Namespace], dict[str, Any]]  # GraphStandIn's settings from the flags
    stack: type[GraphStack]
    target: int | None  # end-to-end msg/s, MET / NOT MET in the summary
    hook_problem: Callable[[dict[str, Any]], str | None]  # a webhook run's missing notifications
    problems: Callable[[dict[str, Any]], list[str]] = lambda res: []  # what else in the result went wrong


def run(spec: Spec, a: argparse.Namespace, out_dir: Path, prefix: str) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=spec.workdir_prefix))
    rx_sock = socket.socket()
    rx_sock.bind((HOST, 0))
    rx_sock.listen(1024)
    rx_sock.setblocking(False)
    control_port, http_port = free_port(), free_port()
    procs = Procs()
    result: dict[str, Any] = {"workdir": str(workdir)}
    try:
        cmd = [a.python, str(spec.script), "--serve-standin", "--control-port", str(control_port)]
        cmd += [
            "--webhook-url",
            f"http://{HOST}:{http_port}/webhooks/{spec.app}",
            "--hook-batch",
            str(a.hook_batch),
        ]
        standin = procs.start("graph stand-in", cmd, REPO, workdir / "standin.log")
        wait_until(
            "the stand-in's control port",
            lambda: http_get_json(control_port, "/stats") is not None,
            [standin],
        )
        base_url = str(http_get_json(control_port, "/stats")["base_url"])
        config = spec.config.format(
            workdir=workdir,
            host=HOST,
            http_port=http_port,
            key=SERVICE_KEY,
            receiver_port=rx_sock.getsockname()[1],
            base_url=base_url,
            **spec.fields,
        )
        (workdir / "tidings.toml").write_text(config)
        serve = [a.python, "-m", "tidings", "serve", "--config", str(workdir / "tidings.toml")]
        tidings = procs.start("tidings", serve, workdir, workdir / "server.log")
        print(f"stand-in pid {standin.pid}, tidings serve pid {tidings.pid}, workdir {workdir}", flush=True)
        wait_until("GET /healthz", lambda: healthy(http_port), [standin, tidings])
        for secret, mask in spec.masks.items():
            config = config.replace(secret, mask)
        result["config"] = config
        stack = spec.stack(a, procs, standin, tidings, control_port, http_port, HookReceiver())
        runner = asyncio.Runner(loop_factory=_loop_factory(a.uvloop))
        with runner:
            result.update(runner.run(stack_main(stack, rx_sock, out_dir, prefix)))
    except Died as exc:
        result["error"] = str(exc)
        print(f"error: {exc}", flush=True)
    finally:
        result["stopped"] = procs.stop_all()
        rx_sock.close()
        for name in ("server.log", "standin.log"):
            path = workdir / name
            if path.exists():
                text = path.read_text(errors="replace")
                result.setdefault("log_problems", {})[name] = log_problems(text)
                shutil.copy(path, out_dir / f"{prefix}-{name}")
        if not a.keep_tmp:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def _median(vals: list[Any]) -> Any:
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def _spread(vals: list[Any]) -> str:
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    mid = statistics.median(vals)
    return f"{mid:,.0f}" + (f" ({min(vals):,.0f}-{max(vals):,.0f})" if len(vals) > 1 else "")


def print_summary(spec: Spec, res: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    runs, hooks = res.get("e2e") or [], res.get("webhooks") or []
    print()
    if res.get("error"):
        problems.append(res["error"][:300])
    if runs:
        e2e = _median([r["e2e_msg_per_s"] for r in runs])
        rates = _spread([r["e2e_msg_per_s"] for r in runs])
        if spec.target is None:
            print(f"e2e msg/s      {rates}")
        else:
            verdict = "MET" if (e2e or 0) >= spec.target else "NOT MET"
            print(f"e2e msg/s      {rates}  target {spec.target:,}: {verdict}")
        print(f"accepted dest/s {_spread([r['accepted_per_s'] for r in runs])}")
        for who in ("tidings", "tidings_main", "standin", "bench"):
            print(f"CPU µs/msg {who:<13} {_spread([r['cpu_us_per_item'][who] for r in runs])}")
        print(f"others %       {_spread([r['others_pct'] for r in runs])}")
        if all(r.get("store") for r in runs):
            print(f"store commits/msg {_median([r['store']['commits_per_item'] for r in runs])}")
        for r in runs:
            if r["errors"]:
                problems.append(f"{r['label']}: failed requests {r['errors']} {r['error_samples'][:1]}")
            if not r["exactly_once"] or not r["complete"]:
                problems.append(
                    f"{r['label']}: {r['accepted']} accepted, {r['submitted']} Submitted,"
                    f" {r['delivered']} Delivered, notifications {r['notifications']},"
                    f" duplicates {r['duplicate_notifications']}"
                )
            if not r["standin_matches"]:
                problems.append(f"{r['label']}: stand-in counted {r['standin']} for {r['accepted']}")
            if set(r["standin"]["webhook_answers"]) - {"200"}:
                problems.append(f"{r['label']}: webhook answers {r['standin']['webhook_answers']}")
    if hooks:
        print(f"webhook events/s {_spread([r['events_per_s'] for r in hooks])}")
        for kind in hooks[0]["events"]:
            p50 = [r["latency_ms"].get(kind, {}).get("p50") for r in hooks]
            p99 = [r["latency_ms"].get(kind, {}).get("p99") for r in hooks]
            print(f"  {kind:<9} latency ms p50 {_median(p50)}  p99 {_median(p99)}")
        print(f"CPU µs/event tidings {_spread([r['cpu_us_per_item']['tidings'] for r in hooks])}")
        if all(r.get("store") for r in hooks):
            print(f"store commits/event {_median([r['store']['commits_per_item'] for r in hooks])}")
        for r in hooks:
            if r["failed"]:
                problems.append(f"{r['label']}: failed posts {r['failed']}")
            if (missing := spec.hook_problem(r)) is not None:
                problems.append(f"{r['label']}: {missing}")
    problems += spec.problems(res)
    for name, counts in (res.get("log_problems") or {}).items():
        if any(counts.values()):
            problems.append(f"{name}: {counts}")
    for line in problems:
        print(f"PROBLEM: {line}")
    return problems


def _interrupt(sig: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(sig).name)


def main(spec: Spec, a: argparse.Namespace) -> int:
    if a.serve_standin:
        runner = asyncio.Runner(loop_factory=_loop_factory(True))
        with runner:
            runner.run(serve_standin(a.control_port, spec.standin(a)))
        return 0
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"{spec.name}-" + time.strftime("%Y%m%d-%H%M%S")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "git": git_describe(), "cores": os.cpu_count()}
    print(
        f"commit {meta['git']}, {meta['cores']} cores; {a.messages:,} {spec.noun} messages per run in"
        f" requests of {a.batch_size} over {a.connections} connections",
        flush=True,
    )
    result: dict[str, Any] = {}
    with contextlib.suppress(KeyboardInterrupt):
        result = run(spec, a, out_dir, prefix)
    problems = print_summary(spec, result)
    json_path = out_dir / f"{prefix}.json"
    json_path.write_text(json.dumps({"meta": meta, "args": vars(a), "result": result}, indent=1, default=str))
    print(f"\nJSON: {os.path.relpath(json_path)}")
    return 1 if problems else 0
