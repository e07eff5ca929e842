#!/usr/bin/env python3
"""WhatsApp through the Cloud API stand-in, end to end, and webhook events accepted per second.

It starts, each in its own process and session (stopped by PID):

  the stand-in   `python bench/whatsapp.py --serve-standin ...`: tests/standins/graph.py GraphStandIn
                 (record=False) on its own event loop. It follows each accepted send with signed,
                 batched `sent` + `delivered` status webhooks to Tidings' /webhooks/<appid>, as Meta
                 does. Its control port answers GET /stats (sends, sends accepted, distinct recipients
                 accepted, webhook POSTs by HTTP status) and POST /reset (clears the recipient counts)
  tidings serve  a fresh SQLite file, one service whose notify_url and inbound_url are this process's
                 receiver, one [[apps]] entry with an [apps.whatsapp] block aimed at the stand-in
                 (`enforce_window = false`: the bench's users never wrote to the number)

Rows:

  e2e       --messages WhatsApp texts in v1 requests of --batch-size (1000) `waid`s over --connections
            (4): messages/s = Delivered notifications / (last one - first request sent); accepted
            destinations/s; CPU µs per message per process; each transid exactly one Submitted and
            one Delivered, and the stand-in accepted each recipient once
  webhooks  signed webhook bodies POSTed to /webhooks/<appid> as fast as Tidings answers them over
            --webhook-connections: `read` statuses for wamids the e2e runs sent, --statuses-per-post
            (50) per body, and inbound text messages (one per body); events/s and p50/p99 latency

  .venv/bin/python bench/whatsapp.py                   # 20,000 messages + webhooks, 1 run each
  .venv/bin/python bench/whatsapp.py --runs 3          # medians of 3
  .venv/bin/python bench/whatsapp.py --profile         # + a py-spy pass of the e2e row

What is not WhatsApp's (the stand-in process, the stack, the e2e row, the webhook load, the summary) is in
bench/meta.py, shared with bench/messenger.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

# bench/ is not a package: meta.py (shared with messenger.py) sits next to this file
from meta import GraphStack, Spec, interleave, signed_post, v1_request, webhook_line  # noqa: E402
from meta import main as bench_main  # noqa: E402

APP = "app-wa-bench"
PHONE_NUMBER_ID = "106540352242922"  # the stand-in's default number
WA_TOKEN = "EAAwa-bench-token-not-real"
APP_SECRET = "wa-bench-app-secret-0123456789"
VERIFY_TOKEN = "wa-bench-verify-token"
TARGET = 2000  # end-to-end msg/s the issue asks for
TEXT = {"type": "text", "text": {"body": "Your order has shipped (benchmark)"}}

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

[apps.whatsapp]
phone_number_id = "{phone_number_id}"
access_token = "{token}"
app_secret = "{app_secret}"
verify_token = "{verify_token}"
base_url = "{base_url}"
# the bench's users never wrote to the number: without this the 24-hour window refuses them (7710)
enforce_window = false
"""


# -- requests ---------------------------------------------------------------------------------------


def waid(n: int) -> str:
    # UK mobile numbers the server takes; 5 digits, so a run may hold 100,000 distinct users
    return f"+4477009{n % 100000:05d}"


def wa_request(port: int, numbers: list[str]) -> bytes:
    body = {
        "appid": APP,
        "deliverychannel": "whatsapp",
        "channels": {"OTT-Messaging": {"wa": TEXT}},
        "destination": [{"waid": numbers}],
    }
    return v1_request(port, body)


def webhook_request(port: int, payload: dict[str, Any]) -> bytes:
    return signed_post(port, APP, APP_SECRET, payload)


def _envelope(value: dict[str, Any]) -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
        **value,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def status_bodies(port: int, wamids: list[str], per_post: int) -> list[tuple[str, bytes, int]]:
    now = str(int(time.time()))
    out = []
    for i in range(0, len(wamids), per_post):
        statuses = [
            {"id": w, "status": "read", "timestamp": now, "recipient_id": "447700900000"}
            for w in wamids[i : i + per_post]
        ]
        out.append(("statuses", webhook_request(port, _envelope({"statuses": statuses})), len(statuses)))
    return out


def inbound_bodies(port: int, first: int, count: int) -> list[tuple[str, bytes, int]]:
    now = str(int(time.time()))
    out = []
    for n in range(first, first + count):
        sender = f"4477009{n % 100000:05d}"
        message = {"from": sender, "id": f"wamid.bench-in-{n}", "timestamp": now, "type": "text"}
        message["text"] = {"body": f"hello {n}"}  # type: ignore[assignment]
        value = {"contacts": [{"profile": {"name": "Bench"}, "wa_id": sender}], "messages": [message]}
        out.append(("inbound", webhook_request(port, _envelope(value)), 1))
    return out


# -- the stack ----------------------------------------------------------------------------------------


class Stack(GraphStack):
    def e2e_requests(self, messages: int) -> list[bytes]:
        size = self.args.batch_size
        out = []
        for start in range(0, messages, size):
            k = min(size, messages - start)
            out.append(wa_request(self.http_port, [waid(self.seq + start + j) for j in range(k)]))
        self.seq += messages
        return out

    async def webhooks(self, label: str, wamids: list[str]) -> dict[str, Any]:
        """Status bodies for `wamids` and as many inbound bodies, mixed, as fast as Tidings answers."""
        a = self.args
        statuses = status_bodies(self.http_port, wamids, a.statuses_per_post)
        inbound = inbound_bodies(self.http_port, self.inbound_seq, a.inbound_posts)
        self.inbound_seq += a.inbound_posts
        return await self.post_webhooks(label, interleave([statuses, inbound]), {"Read": len(wamids)})

    async def hook_runs(self, out: dict[str, Any]) -> None:
        a = self.args
        # every wamid the stand-in issued is Delivered now; each webhook run reads a fresh slice of them
        total = int((await self.stats())["accepted"])
        per_run = min(a.webhook_statuses, total // max(1, a.runs))
        for i in range(a.runs):
            wamids = [f"wamid.{n}" for n in range(1 + i * per_run, 1 + (i + 1) * per_run)]
            r = await self.webhooks(f"hooks {i + 1}", wamids)
            out["webhooks"].append(r)
            print(webhook_line(r), flush=True)


def hook_problem(r: dict[str, Any]) -> str | None:
    if r["read_notifications"] == r["events"]["statuses"] and r["inbound_posted"] == r["events"]["inbound"]:
        return None
    return (
        f"{r['read_notifications']} Read for {r['events']['statuses']} statuses,"
        f" {r['inbound_posted']} inbound posted for {r['events']['inbound']}"
    )


SPEC = Spec(
    name="whatsapp",
    noun="WhatsApp",
    script=HERE / "whatsapp.py",
    workdir_prefix="wabench-",
    app=APP,
    config=CONFIG_TEMPLATE,
    fields={
        "app": APP,
        "phone_number_id": PHONE_NUMBER_ID,
        "token": WA_TOKEN,
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
    },
    masks={WA_TOKEN: "[token]", APP_SECRET: "[secret]"},
    standin=lambda a: {
        "phone_number_id": PHONE_NUMBER_ID,
        "wa_token": WA_TOKEN,
        "webhook_url": a.webhook_url,
        "app_secret": APP_SECRET,
        "batch": a.hook_batch,
    },
    stack=Stack,
    target=TARGET,
    hook_problem=hook_problem,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20000, help="WhatsApp messages per e2e run (20000)")
    ap.add_argument("--batch-size", type=int, default=1000, help="waids per v1 request (1000)")
    ap.add_argument("--connections", type=int, default=4, help="keep-alive connections for the e2e row (4)")
    # A fresh `tidings serve` is slower for its first tens of thousands of messages (about 1,600 msg/s
    # against 2,150 after, main-process CPU per message 550 µs against 360): the figures are for a
    # gateway that has been running, and the warm-up row shows the cold start.
    ap.add_argument("--warmup", type=int, default=20000, help="messages before measuring (20000)")
    ap.add_argument("--runs", type=int, default=1, help="measured runs of each row (1)")
    ap.add_argument("--hook-batch", type=int, default=100, help="wamids per stand-in status webhook (100)")
    ap.add_argument("--webhook-statuses", type=int, default=20000, help="read statuses per webhook run")
    ap.add_argument("--statuses-per-post", type=int, default=50, help="statuses per webhook body (50)")
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
    for name in ("messages", "batch_size", "connections", "runs", "statuses_per_post", "webhook_connections"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    return a


def main(argv: list[str] | None = None) -> int:
    return bench_main(SPEC, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
