#!/usr/bin/env python3
"""Messenger through the Graph Send API stand-in, end to end, and webhook events accepted per second.

It starts, each in its own process and session (stopped by PID):

  the stand-in   `python bench/messenger.py --serve-standin ...`: tests/standins/graph.py GraphStandIn
                 (record=False) on its own event loop. It answers each `POST /{version}/me/messages` as
                 the Send API does (`{"recipient_id", "message_id": "m_<n>"}`) and follows the accepted
                 ones with signed `delivery` webhooks (`mids` and a `watermark`, up to --hook-batch per
                 POST) to Tidings' /webhooks/<appid>, as Meta does. Its control port answers GET /stats,
                 POST /reset and POST /hold (sends answered but followed by no webhook)
  tidings serve  a fresh SQLite file, one service whose notify_url and inbound_url are this process's
                 receiver, one [[apps]] entry with an [apps.messenger] block aimed at the stand-in
                 (`enforce_window = false`: the bench's users never wrote to the page)

Rows:

  e2e       --messages Messenger texts in v1 requests of --batch-size (1000, v1's limit) `psid`s over
            --connections (4): messages/s = Delivered notifications / (last one - first request sent);
            accepted destinations/s; CPU µs per message per process; each transid exactly one Submitted
            and one Delivered, and the stand-in accepted each recipient once
  webhooks  signed webhook bodies POSTed to /webhooks/<appid> as fast as Tidings answers them over
            --webhook-connections, mixed: `delivery` watermarks for messages left Submitted (sent while
            the stand-in held its webhooks), `read` watermarks for PSIDs the e2e runs reached (Delivered),
            --events-per-post (50) per body, and inbound text messages (one per body); events/s and
            p50/p99 latency per kind

  .venv/bin/python bench/messenger.py                  # 20,000 messages + webhooks, 1 run each
  .venv/bin/python bench/messenger.py --runs 3         # medians of 3
  .venv/bin/python bench/messenger.py --profile        # + a py-spy pass of the e2e row

What is not Messenger's (the stand-in process, the stack, the e2e row, the webhook load, the summary) is in
bench/meta.py, shared with bench/whatsapp.py.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

# bench/ is not a package: meta.py, accept.py and smpp.py sit next to this file
from accept import HOST, rate, read_answers, run_load, wait_quiet  # noqa: E402
from meta import GraphStack, Spec, interleave, signed_post, v1_request, webhook_line  # noqa: E402
from meta import main as bench_main  # noqa: E402

APP = "app-fb-bench"
PAGE_ID = "1234567890"  # the stand-in's default page
PAGE_TOKEN = "EAAms-bench-page-token-not-real"
APP_SECRET = "fb-bench-app-secret-0123456789"
VERIFY_TOKEN = "fb-bench-verify-token"
MAX_DESTINATIONS = 1000  # tidings/schema/v1.py: more addresses in one v1 request are refused (7009)
FB = {"text": "Your order has shipped (benchmark)"}  # messaging_type RESPONSE, the default

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
inbound_url = "http://{host}:{receiver_port}/mo"

[[apps]]
id = "{app}"
service = "svc-bench"

[apps.messenger]
page_id = "{page_id}"
access_token = "{token}"
app_secret = "{app_secret}"
verify_token = "{verify_token}"
base_url = "{base_url}"
# the bench's users never wrote to the page: without this the 24-hour window refuses every RESPONSE
enforce_window = false
"""


# -- requests ---------------------------------------------------------------------------------------

# Page-scoped ids: digits, one range per use, so that no user is both messaged and a sender, or messaged
# twice in a session (a watermark covers every earlier message to its PSID).
E2E, HELD, INBOUND = "24483984711", "24483984722", "24483984733"


def psid(base: str, n: int) -> str:
    return f"{base}{n:06d}"


def fb_request(port: int, psids: list[str]) -> bytes:
    body = {
        "appid": APP,
        "deliverychannel": "fb",
        "channels": {"OTT-Messaging": {"fb": FB}},
        "destination": [{"psid": psids}],
    }
    return v1_request(port, body)


def _page(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A `page` webhook body; one entry per event, each with its one messaging item, as Meta batches."""
    now = int(time.time() * 1000)
    entries = [{"id": PAGE_ID, "time": now, "messaging": [item]} for item in items]
    return {"object": "page", "entry": entries}


def _item(sender: str, event: dict[str, Any]) -> dict[str, Any]:
    head = {"sender": {"id": sender}, "recipient": {"id": PAGE_ID}, "timestamp": int(time.time() * 1000)}
    return head | event


def watermark_bodies(port: int, kind: str, psids: list[str], per_post: int) -> list[tuple[str, bytes, int]]:
    """`delivery` or `read` events by watermark only (no mids): each covers every earlier message to its
    PSID. Built after those messages were created, so their watermark (now) is later than each."""
    field = {"deliveries": "delivery", "reads": "read"}[kind]
    watermark = int(time.time() * 1000)
    out = []
    for i in range(0, len(psids), per_post):
        items = [_item(p, {field: {"watermark": watermark}}) for p in psids[i : i + per_post]]
        out.append((kind, signed_post(port, APP, APP_SECRET, _page(items)), len(items)))
    return out


def inbound_bodies(port: int, first: int, count: int) -> list[tuple[str, bytes, int]]:
    out = []
    for n in range(first, first + count):
        message = {"mid": f"m_bench_in_{n}", "text": f"hello {n}"}
        body = _page([_item(psid(INBOUND, n), {"message": message})])
        out.append(("inbound", signed_post(port, APP, APP_SECRET, body), 1))
    return out


# -- the stack ----------------------------------------------------------------------------------------


def store_commits(port: int) -> tuple[float, float]:
    """Tidings' store transactions so far (count, seconds), from its /metrics: what a message costs in
    commits (a webhook body's statuses are one store call; they were one or two per event before)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    found: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        for part in ("count", "sum"):
            if name.startswith(f"tidings_store_commit_seconds_{part}{{"):
                found[part] = found.get(part, 0.0) + float(value)
    if len(found) != 2:
        raise ValueError("no tidings_store_commit_seconds in GET /metrics")
    return found["count"], found["sum"]


def commit_figures(
    before: tuple[float, float] | None, after: tuple[float, float] | None, items: int
) -> dict[str, Any] | None:
    if before is None or after is None:
        return None
    commits, seconds = after[0] - before[0], after[1] - before[1]
    return {
        "commits": int(commits),
        "commit_s": round(seconds, 3),
        "commits_per_item": round(commits / items, 2) if items else None,
        "commit_us_per_item": round(1e6 * seconds / items) if items else None,
    }


@dataclass
class Stack(GraphStack):
    held: int = 0  # messages sent to HELD PSIDs and left Submitted (no webhook followed them)

    max_recipients = 1000000
    ids_key = "mids_total"

    def requests(self, base: str, first: int, count: int) -> list[bytes]:
        size = self.args.batch_size
        out = []
        for start in range(0, count, size):
            k = min(size, count - start)
            out.append(fb_request(self.http_port, [psid(base, first + start + j) for j in range(k)]))
        return out

    def e2e_requests(self, messages: int) -> list[bytes]:
        out = self.requests(E2E, self.seq, messages)
        self.seq += messages
        return out

    async def commits(self) -> tuple[float, float] | None:
        try:
            return await asyncio.to_thread(store_commits, self.http_port)
        except (OSError, ValueError):  # a Tidings without /metrics: the rows go without the figure
            return None

    async def e2e(self, label: str, messages: int, profile_path: Path | None = None) -> dict[str, Any]:
        before = await self.commits()
        r = await super().e2e(label, messages, profile_path)
        r["store"] = commit_figures(before, await self.commits(), r["delivered"])
        return r

    async def hold_back(self, messages: int) -> dict[str, Any]:
        """Send `messages` while the stand-in holds its webhooks, until each is Submitted: the webhook
        runs' `delivery` watermarks then have messages to move."""
        a, rx = self.args, self.rx
        requests = self.requests(HELD, self.held, messages)
        busy_before = await wait_quiet(a.quiet_wait)
        self.check_alive()
        await self.reset_standin()
        s0 = await self.stats()
        await self.control("/hold", {"on": True})
        rx.reset()
        try:
            load = await run_load(self.http_port, requests, a.connections, a.max_seconds)
            ans = read_answers(load, a.batch_size)
            complete, waited = await self.wait_delivered(ans.transids, rx.submitted_at)
            await asyncio.sleep(a.settle)  # a webhook that should not come would have come by now
        finally:
            await self.control("/hold", {"on": False})
        s1 = await self.stats()
        self.held += len(ans.transids)
        submitted = sum(1 for t in ans.transids if t in rx.submitted_at)
        accepted = s1["accepted"] - s0["accepted"]
        return {
            "messages": messages,
            "accepted": len(ans.transids),
            "errors": ans.errors,
            "accepted_per_s": rate(len(ans.transids), ans.t_last - load.t_start),
            "submitted": submitted,
            "complete": complete,
            "waited_s": round(waited, 2),
            "notifications": dict(rx.by_status),
            "standin": {"accepted": accepted, "distinct": s1["distinct"], "repeated": s1["repeated"]},
            "ok": (
                submitted == len(ans.transids) == messages == accepted == s1["distinct"]
                and not s1["repeated"]
                and set(rx.by_status) == {"Submitted"}
                and not rx.duplicates
            ),
            "busy_before_pct": busy_before,
        }

    async def webhooks(self, label: str, held: list[str], reached: list[str]) -> dict[str, Any]:
        """Delivery watermarks for `held`, read watermarks for `reached` and inbound messages, mixed."""
        a, port = self.args, self.http_port
        deliveries = watermark_bodies(port, "deliveries", held, a.events_per_post)
        reads = watermark_bodies(port, "reads", reached, a.events_per_post)
        inbound = inbound_bodies(port, self.inbound_seq, a.inbound_posts)
        self.inbound_seq += a.inbound_posts
        groups = sorted([g for g in (deliveries, reads, inbound) if g], key=len)
        expected = {"Delivered": len(held), "Read": len(reached)}
        before = await self.commits()
        r = await self.post_webhooks(label, interleave(groups) if groups else [], expected)
        events = sum(r["events"].values())
        r["store"] = commit_figures(before, await self.commits(), events)
        return r

    async def hook_runs(self, out: dict[str, Any]) -> None:
        a = self.args
        if a.webhook_deliveries:
            out["held"] = h = await self.hold_back(a.webhook_deliveries * a.runs)
            print(
                f"      held: {h['accepted']:,}/{h['messages']:,} messages sent with the stand-in's webhooks"
                f" held, {h['submitted']:,} Submitted and left so; {'ok' if h['ok'] else 'NO'}",
                flush=True,
            )
        # every PSID the e2e runs reached has its message Delivered; each run reads a fresh slice of them
        per_run = min(a.webhook_reads, self.seq // max(1, a.runs))
        per_held = min(a.webhook_deliveries, self.held // max(1, a.runs))
        for i in range(a.runs):
            held = [psid(HELD, n) for n in range(i * per_held, (i + 1) * per_held)]
            reached = [psid(E2E, n) for n in range(i * per_run, (i + 1) * per_run)]
            r = await self.webhooks(f"hooks {i + 1}", held, reached)
            out["webhooks"].append(r)
            print(webhook_line(r), flush=True)


def hook_problem(r: dict[str, Any]) -> str | None:
    events = r["events"]
    want = (events.get("deliveries", 0), events.get("reads", 0), events.get("inbound", 0))
    got = (r["delivered_notifications"], r["read_notifications"], r["inbound_posted"])
    if want == got and not r["other_notifications"]:
        return None
    return (
        f"{got[0]} Delivered for {want[0]} delivery watermarks, {got[1]} Read for {want[1]} read watermarks,"
        f" {got[2]} inbound posted for {want[2]}, other notifications {r['other_notifications']}"
    )


def held_problems(res: dict[str, Any]) -> list[str]:
    h = res.get("held")
    if not h or h["ok"]:
        return []
    return [
        f"held: {h['accepted']} of {h['messages']} accepted, {h['submitted']} Submitted, notifications"
        f" {h['notifications']}, stand-in {h['standin']}, errors {h['errors']}"
    ]


SPEC = Spec(
    name="messenger",
    noun="Messenger",
    script=HERE / "messenger.py",
    workdir_prefix="fbbench-",
    app=APP,
    config=CONFIG_TEMPLATE,
    fields={
        "app": APP,
        "page_id": PAGE_ID,
        "token": PAGE_TOKEN,
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
    },
    masks={PAGE_TOKEN: "[token]", APP_SECRET: "[secret]"},
    standin=lambda a: {
        "page_id": PAGE_ID,
        "page_token": PAGE_TOKEN,
        "webhook_url": a.webhook_url,
        "app_secret": APP_SECRET,
        "batch": a.hook_batch,
    },
    stack=Stack,
    target=None,
    hook_problem=hook_problem,
    problems=held_problems,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20000, help="Messenger messages per e2e run (20000)")
    ap.add_argument("--batch-size", type=int, default=1000, help="psids per v1 request (1000, v1's limit)")
    ap.add_argument("--connections", type=int, default=4, help="keep-alive connections for the e2e row (4)")
    # as whatsapp.py: a fresh `tidings serve` is slower for its first tens of thousands of messages, and
    # the warm-up row shows that cold start
    ap.add_argument("--warmup", type=int, default=20000, help="messages before measuring (20000)")
    ap.add_argument("--runs", type=int, default=1, help="measured runs of each row (1)")
    ap.add_argument("--hook-batch", type=int, default=100, help="deliveries per stand-in webhook POST (100)")
    ap.add_argument("--webhook-reads", type=int, default=10000, help="read watermarks per webhook run")
    ap.add_argument(
        "--webhook-deliveries", type=int, default=5000, help="delivery watermarks per webhook run (5000)"
    )
    ap.add_argument("--events-per-post", type=int, default=50, help="watermark events per webhook body (50)")
    ap.add_argument("--inbound-posts", type=int, default=2000, help="inbound text bodies per webhook run")
    ap.add_argument("--webhook-connections", type=int, default=8, help="connections posting webhooks (8)")
    ap.add_argument("--profile", action="store_true", help="one more e2e run under py-spy (tidings serve)")
    ap.add_argument("--profile-rate", type=int, default=100, help="py-spy samples/s (100)")
    ap.add_argument("--profile-top", type=int, default=15, help="functions listed (15)")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="time limit of each load phase")
    ap.add_argument("--drain-timeout", type=float, default=180.0, help="wait at most this for notifications")
    ap.add_argument("--stall-seconds", type=float, default=15.0, help="stop waiting after this long idle")
    ap.add_argument("--settle", type=float, default=0.5, help="seconds before reading the stand-in's counts")
    ap.add_argument("--quiet-wait", type=float, default=5.0, help="wait up to this for an idle machine")
    ap.add_argument("--no-uvloop", dest="uvloop", action="store_false", help="plain asyncio for the client")
    ap.add_argument("--python", default=str(REPO / ".venv/bin/python"), help="interpreter that runs tidings")
    ap.add_argument("--out-dir", default=str(HERE / "out"))
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (DB, config, logs)")
    ap.add_argument("--serve-standin", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--control-port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--webhook-url", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    for name in ("messages", "batch_size", "connections", "runs", "events_per_post", "webhook_connections"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if a.batch_size > MAX_DESTINATIONS:
        ap.error(f"--batch-size: a v1 request takes at most {MAX_DESTINATIONS} destinations")
    for name in ("warmup", "webhook_reads", "webhook_deliveries", "inbound_posts"):
        if getattr(a, name) < 0:
            ap.error(f"--{name.replace('_', '-')} must not be negative")
    return a


def main(argv: list[str] | None = None) -> int:
    return bench_main(SPEC, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
