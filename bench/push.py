#!/usr/bin/env python3
"""Push sends per second through each provider's stand-in, end to end, on this machine.

For each provider in --providers it starts, each in its own process and session (stopped by PID):

  the stand-in   `python bench/push.py --serve-standin PROVIDER ...`: tests/standins/<provider>.py on its
                 own event loop, with a control port whose GET /stats counts what it received (sends,
                 sends it accepted, distinct tokens accepted) and GET /block gives the [apps.<p>] TOML
  tidings serve  a fresh SQLite file, one service whose notify_url is this process's receiver, and one
                 [[apps]] entry with only that provider's block

then sends --messages push messages in v1 requests of --batch-size (1000) provider tokens each
(`android_pushid` for FCM, `ios_pushid` hex tokens for APNs, `windows_pushid` channel URIs for WNS) or,
with `--addresses userid` (FCM, APNs), of `userid`s, one device registered per user before the clock, over
--connections (4) keep-alive connections, and waits (bounded) for every accepted message's Submitted
notification. Reported per run:

  accepted dest/s   destinations accepted / (last answer - first request sent)
  end to end msg/s  messages whose Submitted notification arrived / (last one - first request sent)
  stand-in          sends it accepted in the window: must equal the messages (no loss, no duplicates)
  CPU per message   tidings (serve + its notification sender), the stand-in, this process (load
                    client + receiver), in µs of CPU per message; and the rest of the machine in %

  .venv/bin/python bench/push.py                               # FCM, 20,000 messages, about 30 s
  .venv/bin/python bench/push.py --providers fcm,apns,wns      # a row per provider
  .venv/bin/python bench/push.py --addresses tokens,userid     # FCM tokens, then FCM registered users
  .venv/bin/python bench/push.py --profile                     # + a py-spy pass on tidings serve
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import importlib.util
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

# bench/ is not a package: accept.py and smpp.py sit next to this file
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
    read_answers,
    run_load,
    tree_cpu_s,
    wait_quiet,
)
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

APP = "app-bench"
PROVIDERS = ("fcm", "apns", "wns", "webpush")
ADDRESSES = ("tokens", "userid")  # provider tokens (deviceIds for web push), or registered users
USER_PLATFORM = {"fcm": "android", "apns": "ios"}  # what a bench user's one device is registered as
TARGET = {"fcm": 2000, "apns": 1000}  # end-to-end msg/s the issue asks for

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
secret = "c2VjcmV0LXNlY3JldA=="
tps = 1000000
senderids = ["CONNCT"]
notify_url = "http://{host}:{receiver_port}/dlr"

[[apps]]
id = "{app}"
service = "svc-bench"
client_secret = "YmVuY2gtYXBwLXNlY3JldC0wMTIzNDU2Nzg5"

{block}
"""

# What each provider's messages carry, and under which destination key their tokens go.
CONTENT: dict[str, tuple[str, dict[str, Any]]] = {
    "fcm": ("android_pushid", {"android": {"title": "Bench", "text": "hello from the benchmark"}}),
    "apns": ("ios_pushid", {"ios": {"title": "Bench", "text": "hello from the benchmark"}}),
    "wns": ("windows_pushid", {"windows": {"text": ["Bench", "hello from the benchmark"]}}),
    # web push reaches registered subscriptions only: the tokens are deviceIds registered beforehand
    "webpush": (
        "chrome_pushid",
        {"web": {"title": "Bench", "text": "hello from the benchmark", "platform_types": ["chrome"]}},
    ),
}


# -- the stand-in process ---------------------------------------------------------------------------


class CountingAnswers(dict[str, Any]):
    """The FCM stand-in's scripted answers, counting each send that passed its checks by token (it
    reads this once per such send), so that the benchmark can tell losses from duplicates."""

    def __init__(self, base: dict[str, Any]) -> None:
        super().__init__(base)
        self.per_token: dict[str, int] = {}

    def get(self, key: str, default: Any = None) -> Any:
        self.per_token[key] = self.per_token.get(key, 0) + 1
        return super().get(key, default)


def _counts(tokens: list[str], total: int) -> dict[str, int]:
    return {"received": total, "accepted": len(tokens), "distinct": len(set(tokens))}


async def _start_standin(provider: str, workdir: Path) -> tuple[Any, str, Callable[[], dict[str, Any]]]:
    """Start one stand-in; return it, its [apps.<provider>] block and a function giving its counts."""
    s = json.dumps
    if provider == "fcm":
        from tests.standins.fcm import FcmStandIn

        fcm = FcmStandIn(record=False)
        answers = CountingAnswers(fcm.answers)
        fcm.answers = answers
        await fcm.start()
        fcm.write_key_file(workdir / "fcm.json")
        block = f'[apps.fcm]\nproject_id = {s(fcm.project_id)}\nservice_account_file = "fcm.json"\n'
        block += f"base_url = {s(fcm.base_url)}\n"

        def fcm_counts() -> dict[str, Any]:
            scripted = sum(n for t, n in answers.per_token.items() if t in fcm.answers)
            accepted = sum(answers.per_token.values()) - scripted
            return {
                "received": fcm.sends,
                "accepted": accepted,
                "distinct": len(answers.per_token),
                "token_requests": fcm.token_requests,
            }

        return fcm, block, fcm_counts
    if provider == "apns":
        from tests.standins.apns import ApnsStandIn

        apns = ApnsStandIn()
        await apns.start()
        cfg = apns.write_credentials(workdir)
        block = f"[apps.apns]\nteam_id = {s(cfg.team_id)}\nkey_id = {s(cfg.key_id)}\n"
        block += f"key_file = {s(cfg.key_file)}\ntopic = {s(cfg.topic)}\nbase_url = {s(cfg.base_url)}\n"
        block += f"ca_file = {s(cfg.ca_file)}\n"

        def apns_counts() -> dict[str, Any]:
            # the stand-in keeps every request; read what it answered 200 (whatever its version records)
            seen = list(getattr(apns, "received", []))
            ok = [str(getattr(r, "token", "")) for r in seen if getattr(r, "status", 200) == 200]
            return _counts(ok, len(seen))

        return apns, block, apns_counts
    if provider == "wns":
        from tests.standins.wns import WnsStandIn

        wns = WnsStandIn(workdir)
        await wns.start()
        block = f"[apps.wns]\nclient_id = {s(wns.CLIENT_ID)}\nclient_secret = {s(wns.CLIENT_SECRET)}\n"
        block += f'token_url = {s(wns.token_url)}\nallow_hosts = ["127.0.0.1"]\n'
        block += f"ca_file = {s(wns.ca_file.name)}\n"
        block += f"# channel {wns.channel('CHANNEL')}\n"

        def wns_counts() -> dict[str, Any]:
            seen = list(wns.received)
            return _counts([r.channel for r in seen if r.status == 200], len(seen))

        return wns, block, wns_counts
    if provider == "webpush":
        from tests.standins.webpush import WebPushService, write_vapid_key

        web = WebPushService(workdir)
        await web.start()
        write_vapid_key(workdir / "vapid.pem")
        block = '[apps.webpush]\nvapid_private_key_file = "vapid.pem"\nsubject = "mailto:bench@example.com"\n'
        block += f'allow_hosts = ["127.0.0.1"]\nca_file = {s(web.ca_file.name)}\n'

        def web_counts() -> dict[str, Any]:
            return _counts([r.sub_id for r in web.received], web.requests)

        return web, block, web_counts
    raise SystemExit(f"no stand-in for {provider}")


async def serve_standin(provider: str, workdir: Path, control_port: int) -> None:
    from aiohttp import web

    standin, block, counts = await _start_standin(provider, workdir)

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(counts())

    async def get_block(_: web.Request) -> web.Response:
        return web.json_response({"block": block})

    async def subscribe(request: web.Request) -> web.Response:
        # browsers subscribing with the web push stand-in: their subscription JSON, one per id
        ids = [str(i) for i in await request.json()]
        return web.json_response([standin.new_subscription(i)[0] for i in ids])

    app = web.Application()
    app.router.add_get("/stats", stats)
    app.router.add_get("/block", get_block)
    app.router.add_post("/subscribe", subscribe)
    try:
        await serve_control(app, control_port)
    finally:
        await standin.stop()


# -- requests ---------------------------------------------------------------------------------------


def push_request(port: int, provider: str, tokens: list[str], key: str = "") -> bytes:
    key, content = key or CONTENT[provider][0], CONTENT[provider][1]
    body = json.dumps(
        {
            "appid": APP,
            "deliverychannel": "push",
            "channels": {"push": content},
            "destination": [{key: tokens}],
        },
        separators=(",", ":"),
    ).encode()
    head = (
        f"POST /resources/v1/messaging HTTP/1.1\r\nHost: {HOST}:{port}\r\nkey: {SERVICE_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def http_json(port: int, method: str, path: str, body: Any) -> Any:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        return http_json_on(conn, method, path, body, {})
    finally:
        conn.close()


def http_json_on(
    conn: http.client.HTTPConnection, method: str, path: str, body: Any, headers: dict[str, str]
) -> Any:
    conn.request(method, path, json.dumps(body), {"content-type": "application/json", **headers})
    resp = conn.getresponse()
    raw = resp.read()
    if resp.status not in (200, 201):
        raise Died(f"{method} {path}: HTTP {resp.status} {raw[:300]!r}")
    return json.loads(raw)


def token(provider: str, n: int, channel_uri: str) -> str:
    if provider == "apns":
        return f"{0xBE00000000 + n:064x}"  # 64 hex digits starting with zeros: no scripted word
    if provider == "wns":
        return channel_uri.replace("CHANNEL", f"bench{n:08d}")
    if provider == "webpush":
        return f"bench{n:08d}"  # the browser's subscription id at the stand-in
    return f"bench-fcm-token-{n:09d}"


# -- one provider ------------------------------------------------------------------------------------


@dataclass
class Row:
    args: argparse.Namespace
    provider: str
    addresses: str
    procs: Procs
    standin: Proc
    tidings: Proc
    control_port: int
    http_port: int
    channel_uri: str
    rx: Receiver
    seq: int = 0
    profiler: Proc | None = None

    def requests(self, messages: int) -> list[bytes]:
        size = self.args.batch_size
        out = []
        for start in range(0, messages, size):
            k = min(size, messages - start)
            tokens = [token(self.provider, self.seq + start + j, self.channel_uri) for j in range(k)]
            if self.addresses == "userid":
                out.append(push_request(self.http_port, self.provider, self.register_users(tokens), "userid"))
                continue
            if self.provider == "webpush":
                tokens = self.register_browsers(tokens)
            out.append(push_request(self.http_port, self.provider, tokens))
        self.seq += messages
        return out

    def register_browsers(self, ids: list[str]) -> list[str]:
        """Subscribe a browser per id with the stand-in and register each as a device: their deviceIds."""
        subscriptions = http_json(self.control_port, "POST", "/subscribe", ids)
        conn = http.client.HTTPConnection(HOST, self.http_port, timeout=30)
        devices = []
        try:
            for n, sub in zip(ids, subscriptions, strict=True):
                body = {"userid": f"bench-user-{n}", "platform": "web", "subscription": sub}
                answer = http_json_on(conn, "POST", f"/v1/apps/{APP}/devices", body, {"key": SERVICE_KEY})
                devices.append(str(answer["deviceId"]))
        finally:
            conn.close()
        return devices

    def register_users(self, tokens: list[str]) -> list[str]:
        """Register one device per token, each for its own user: the userids."""
        platform, users = (
            USER_PLATFORM[self.provider],
            [f"bench-user-{self.provider}-{t[-9:]}" for t in tokens],
        )
        conn = http.client.HTTPConnection(HOST, self.http_port, timeout=30)
        try:
            for user, tok in zip(users, tokens, strict=True):
                body = {"userid": user, "platform": platform, "provider": self.provider, "token": tok}
                http_json_on(conn, "POST", f"/v1/apps/{APP}/devices", body, {"key": SERVICE_KEY})
        finally:
            conn.close()
        return users

    async def standin_stats(self) -> dict[str, Any]:
        return dict(await asyncio.to_thread(http_get_json, self.control_port, "/stats", 30.0))

    def check_alive(self) -> None:
        for p in (self.standin, self.tidings):
            if not p.alive():
                raise Died(f"{p.name} exited with code {p.proc.returncode}:\n{p.log_tail()}")

    def cpu(self) -> dict[str, float]:
        total, idle = machine_cpu_s()
        return {
            "wall": time.monotonic(),
            "tidings": tree_cpu_s(self.tidings.pid) or 0.0,
            "tidings_main": proc_cpu_s(self.tidings.pid) or 0.0,
            "standin": proc_cpu_s(self.standin.pid) or 0.0,
            "profiler": proc_cpu_s(self.profiler.pid) or 0.0 if self.profiler else 0.0,
            "bench": time.process_time(),
            "busy": total - idle,
        }

    async def wait_submitted(self, transids: list[str]) -> tuple[bool, float]:
        """Until every transid has its Submitted notification, or --drain-timeout in all, or
        --stall-seconds without a new one."""
        a, rx = self.args, self.rx
        t0 = last_change = time.monotonic()
        last = -1
        missing = list(transids)
        while missing:
            count = len(rx.submitted_at)
            if count != last:
                last, last_change = count, time.monotonic()
                missing = [t for t in missing if t not in rx.submitted_at]
            now = time.monotonic()
            if not missing or now - t0 > a.drain_timeout or now - last_change > a.stall_seconds:
                break
            await asyncio.sleep(0.05)
        return not missing, time.monotonic() - t0

    async def scenario(self, label: str, messages: int, profile_path: Path | None = None) -> dict[str, Any]:
        a, rx = self.args, self.rx
        requests = self.requests(messages)
        busy_before = await wait_quiet(a.quiet_wait)
        self.check_alive()
        s0 = await self.standin_stats()
        if profile_path is not None:
            await self.start_profiler(profile_path)
        rx.reset()
        c0 = self.cpu()
        load = await run_load(self.http_port, requests, a.connections, a.max_seconds)
        c1 = self.cpu()
        ans = read_answers(load, a.batch_size)
        complete, waited = await self.wait_submitted(ans.transids)
        c2 = self.cpu()
        if self.profiler is not None:
            Procs.stop(self.profiler, signal.SIGINT, 20.0)  # py-spy writes its output on SIGINT
            self.profiler = None
        await asyncio.sleep(a.settle)  # a duplicate send would show up at the stand-in by now
        s1 = await self.standin_stats()
        self.check_alive()
        submitted = [rx.submitted_at[t] for t in ans.transids if t in rx.submitted_at]
        last = max(submitted) if submitted else 0.0
        done = len(submitted)
        delta = {k: s1[k] - s0.get(k, 0) for k in s1 if isinstance(s1[k], int)}
        cpu = {k: round(c2[k] - c0[k], 3) for k in c0 if k != "wall"}
        others = cpu["busy"] - cpu["tidings"] - cpu["standin"] - cpu["bench"] - cpu["profiler"]
        wall = c2["wall"] - c0["wall"]
        per_msg = {
            k: round(1e6 * cpu[k] / done) if done else None
            for k in ("tidings", "tidings_main", "standin", "bench")
        }
        return {
            "label": label,
            "provider": self.provider,
            "addresses": self.addresses,
            "messages": messages,
            "requests": len(requests),
            "accepted": len(ans.transids),
            "errors": ans.errors,
            "error_samples": ans.samples,
            "accepted_per_s": rate(len(ans.transids), ans.t_last - load.t_start),
            "request_p50_ms": round(1000 * statistics.median(ans.latencies), 1) if ans.latencies else None,
            "submitted": done,
            "e2e_msg_per_s": rate(done, last - load.t_start),
            "last_submitted_after_last_answer_s": round(last - ans.t_last, 3) if done else None,
            "complete": complete,
            "waited_s": round(waited, 2),
            "other_notifications": {k: v for k, v in rx.by_status.items() if k != "Submitted"},
            "duplicate_notifications": rx.duplicates,
            "standin": delta,
            "standin_matches": delta.get("accepted") == len(ans.transids) == delta.get("distinct"),
            "cpu_s": cpu,
            "cpu_us_per_msg": per_msg,
            "cpu_pct_accepting": {
                k: round(100 * (c1[k] - c0[k]) / max(c1["wall"] - c0["wall"], 1e-9))
                for k in ("tidings", "tidings_main", "standin", "bench")
            },
            "others_pct": round(100 * others / wall) if wall > 0 else None,
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


def one_line(r: dict[str, Any]) -> str:
    cpu = r["cpu_us_per_msg"]
    return (
        f"  {r['label']:>8}: {r['accepted']:,}/{r['messages']:,} accepted at"
        f" {r['accepted_per_s'] or 0:,.0f} dest/s; end to end {r['e2e_msg_per_s'] or 0:,.0f} msg/s"
        f" ({r['submitted']:,} Submitted); stand-in accepted {r['standin'].get('accepted', '?'):,}"
        f" ({'ok' if r['standin_matches'] else 'MISMATCH'});"
        f" CPU µs/msg tidings {cpu['tidings']} (main {cpu['tidings_main']}), stand-in {cpu['standin']},"
        f" bench {cpu['bench']}; others {r['others_pct']}%"
    )


async def row_main(row: Row, rx_sock: socket.socket, out_dir: Path, prefix: str) -> dict[str, Any]:
    a = row.args
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ReceiverProtocol(row.rx), sock=rx_sock, backlog=1024)
    out: dict[str, Any] = {"runs": []}
    try:
        if a.warmup:
            out["warmup"] = w = await row.scenario("warm-up", a.warmup)
            print(one_line(w), flush=True)
        for i in range(1, a.runs + 1):
            r = await row.scenario(f"run {i}", a.messages)
            out["runs"].append(r)
            print(one_line(r), flush=True)
        if a.profile:
            raw = out_dir / f"{prefix}-{row.provider}-{row.addresses}-profile.txt"
            r = await row.scenario("profiled", a.messages, raw)
            print(one_line(r) + "  (under py-spy)", flush=True)
            top = profile_top(read_collapsed(raw), row.tidings.pid, a.profile_top)
            out["profile"] = {"run": r, "raw": str(raw), "top": top}
            for who, p in top.items():
                print(
                    f"    {who}: {p['samples']} samples; own time by package: "
                    + ", ".join(f"{x['package']} {x['pct']}%" for x in p["own_by_package"][:8])
                )
                for x in p["own_top"]:
                    print(f"      {x['pct']:5.1f}%  {x['function']}")
    finally:
        server.close()
    return out


def run_provider(
    a: argparse.Namespace, provider: str, addresses: str, out_dir: Path, prefix: str
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"pushbench-{provider}-"))
    rx_sock = socket.socket()
    rx_sock.bind((HOST, 0))
    rx_sock.listen(1024)
    rx_sock.setblocking(False)
    control_port, http_port = free_port(), free_port()
    procs = Procs()
    result: dict[str, Any] = {"provider": provider, "addresses": addresses, "workdir": str(workdir)}
    try:
        cmd = [a.python, str(HERE / "push.py"), "--serve-standin", provider, "--workdir", str(workdir)]
        cmd += ["--control-port", str(control_port)]
        standin = procs.start(f"{provider} stand-in", cmd, REPO, workdir / "standin.log")
        wait_until(
            "the stand-in's control port",
            lambda: http_get_json(control_port, "/stats") is not None,
            [standin],
        )
        block = str(http_get_json(control_port, "/block")["block"])
        channel_uri = next(
            (ln.split(" ", 2)[2] for ln in block.splitlines() if ln.startswith("# channel ")), ""
        )
        config = CONFIG_TEMPLATE.format(
            workdir=workdir,
            host=HOST,
            http_port=http_port,
            key=SERVICE_KEY,
            receiver_port=rx_sock.getsockname()[1],
            app=APP,
            block=block,
        )
        (workdir / "tidings.toml").write_text(config)
        serve = [a.python, "-m", "tidings", "serve", "--config", str(workdir / "tidings.toml")]
        tidings = procs.start("tidings", serve, workdir, workdir / "server.log")
        print(
            f"{provider}: stand-in pid {standin.pid}, tidings serve pid {tidings.pid}, workdir {workdir}",
            flush=True,
        )
        wait_until("GET /healthz", lambda: healthy(http_port), [standin, tidings])
        result["config"] = config
        row = Row(
            a, provider, addresses, procs, standin, tidings, control_port, http_port, channel_uri, Receiver()
        )
        runner = asyncio.Runner(loop_factory=_loop_factory(a.uvloop))
        with runner:
            result.update(runner.run(row_main(row, rx_sock, out_dir, prefix)))
    except Died as exc:
        result["error"] = str(exc)
        print(f"{provider}: {exc}", flush=True)
    finally:
        result["stopped"] = procs.stop_all()
        rx_sock.close()
        for name in ("server.log", "standin.log"):
            path = workdir / name
            if path.exists():
                text = path.read_text(errors="replace")
                result.setdefault("log_problems", {})[name] = log_problems(text)
                shutil.copy(path, out_dir / f"{prefix}-{provider}-{addresses}-{name}")
        if not a.keep_tmp:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def _loop_factory(uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if uvloop and importlib.util.find_spec("uvloop") is not None:
        import uvloop as uv

        return uv.new_event_loop
    return None


def median(runs: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def print_summary(results: list[dict[str, Any]]) -> list[str]:
    problems = []
    print()
    print(
        f"{'row':<14} {'dest/s':>9} {'e2e msg/s':>10} {'target':>7} {'tidings µs/msg':>15} "
        f"{'stand-in µs/msg':>16} {'no loss/dup':>12}"
    )
    for res in results:
        runs = res.get("runs") or []
        p = res["provider"]
        row_name = f"{p} {res['addresses']}"
        if not runs:
            print(f"{row_name:<14} not available: {res.get('error', 'no run')[:200]}")
            continue
        e2e = median(runs, "e2e_msg_per_s")
        tidings = statistics.median(r["cpu_us_per_msg"]["tidings"] or 0 for r in runs)
        standin = statistics.median(r["cpu_us_per_msg"]["standin"] or 0 for r in runs)
        ok = all(r["standin_matches"] and r["complete"] and not r["errors"] for r in runs)
        target = TARGET.get(p)
        verdict = "-" if target is None else ("MET" if (e2e or 0) >= target else "NOT MET")
        print(
            f"{row_name:<14} {median(runs, 'accepted_per_s') or 0:>9,.0f} {e2e or 0:>10,.0f} {verdict:>7}"
            f" {tidings:>15,.0f} {standin:>16,.0f} {'yes' if ok else 'NO':>12}"
        )
        for r in runs:
            if r["errors"]:
                problems.append(
                    f"{row_name} {r['label']}: failed requests {r['errors']} {r['error_samples'][:1]}"
                )
            if not r["complete"]:
                problems.append(
                    f"{row_name} {r['label']}: {r['accepted'] - r['submitted']} without Submitted"
                )
            if not r["standin_matches"]:
                problems.append(
                    f"{row_name} {r['label']}: stand-in counted {r['standin']} for {r['accepted']}"
                )
            if r["other_notifications"] or r["duplicate_notifications"]:
                problems.append(
                    f"{row_name} {r['label']}: other notifications {r['other_notifications']},"
                    f" duplicates {r['duplicate_notifications']}"
                )
        for name, counts in (res.get("log_problems") or {}).items():
            if any(counts.values()):
                problems.append(f"{row_name} {name}: {counts}")
    for line in problems:
        print(f"PROBLEM: {line}")
    return problems


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--providers", default="fcm", help=f"comma-separated, of {','.join(PROVIDERS)} (default fcm)"
    )
    ap.add_argument(
        "--addresses",
        default="tokens",
        help="comma-separated, of tokens,userid: a row per provider and each (default tokens); userid"
        " registers a device per user first (FCM, APNs only)",
    )
    ap.add_argument("--messages", type=int, default=20000, help="push messages per run (default 20000)")
    ap.add_argument("--batch-size", type=int, default=1000, help="tokens per request (default 1000)")
    ap.add_argument("--connections", type=int, default=4, help="keep-alive connections (default 4)")
    ap.add_argument("--warmup", type=int, default=2000, help="messages before measuring (default 2000)")
    ap.add_argument("--runs", type=int, default=1, help="measured runs per provider (default 1)")
    ap.add_argument("--profile", action="store_true", help="one more run under py-spy (tidings serve)")
    ap.add_argument("--profile-rate", type=int, default=100, help="py-spy samples/s (default 100)")
    ap.add_argument("--profile-top", type=int, default=15, help="functions listed (default 15)")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="time limit of each load phase")
    ap.add_argument("--drain-timeout", type=float, default=180.0, help="wait at most this for notifications")
    ap.add_argument("--stall-seconds", type=float, default=15.0, help="stop waiting after this long idle")
    ap.add_argument("--settle", type=float, default=0.5, help="seconds before reading the stand-in's counts")
    ap.add_argument("--quiet-wait", type=float, default=5.0, help="wait up to this for an idle machine")
    ap.add_argument("--no-uvloop", dest="uvloop", action="store_false", help="plain asyncio for the client")
    ap.add_argument("--python", default=str(REPO / ".venv/bin/python"), help="interpreter that runs tidings")
    ap.add_argument("--out-dir", default=str(HERE / "out"))
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (DB, config, logs)")
    ap.add_argument("--serve-standin", choices=PROVIDERS, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    ap.add_argument("--control-port", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.provider_list = [p.strip() for p in a.providers.split(",") if p.strip()]
    if unknown := [p for p in a.provider_list if p not in PROVIDERS]:
        ap.error(f"unknown providers {unknown}; choose from {PROVIDERS}")
    a.address_list = [x.strip() for x in a.addresses.split(",") if x.strip()]
    if unknown := [x for x in a.address_list if x not in ADDRESSES]:
        ap.error(f"unknown addresses {unknown}; choose from {ADDRESSES}")
    if "userid" in a.address_list and (bad := [p for p in a.provider_list if p not in USER_PLATFORM]):
        ap.error(f"--addresses userid is for {', '.join(USER_PLATFORM)}, not {', '.join(bad)}")
    for name in ("messages", "batch_size", "connections", "runs"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    return a


def _interrupt(sig: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(sig).name)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.serve_standin:
        runner = asyncio.Runner(loop_factory=_loop_factory(True))
        with runner:
            runner.run(serve_standin(a.serve_standin, Path(a.workdir), a.control_port))
        return 0
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = "push-" + time.strftime("%Y%m%d-%H%M%S")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "git": git_describe(), "cores": os.cpu_count()}
    print(
        f"commit {meta['git']}, {meta['cores']} cores; {a.messages:,} messages per run, "
        f"requests of {a.batch_size} over {a.connections} connections",
        flush=True,
    )
    results = []
    with contextlib.suppress(KeyboardInterrupt):
        for provider in a.provider_list:
            for addresses in a.address_list:
                results.append(run_provider(a, provider, addresses, out_dir, prefix))
    problems = print_summary(results)
    json_path = out_dir / f"{prefix}.json"
    json_path.write_text(
        json.dumps({"meta": meta, "args": vars(a), "results": results}, indent=1, default=str)
    )
    print(f"\nJSON: {os.path.relpath(json_path)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
