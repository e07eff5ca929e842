"""WhatsApp's cases for the connector runner: the WhatsApp connector sends through an app's
`[apps.whatsapp]` block to the Graph stand-in of tests/standins/graph.py (HTTPS with its own CA, trusted
through the block's `ca_file`).

The golden form of a request is what the stand-in received: its path, its Authorization header (the
token by name: `<wa token>`) and its JSON body. The bodies per type are tests/test_whatsapp_request.py's
golden Cloud API bodies. A case's `reply` is (recipient, scripted answer) for the stand-in's `errors`;
the stand-in's own table already scripts Meta's documented refusals for the 1555013xxxx numbers.

`meta_provider` (used by cases_messenger.py too) opens, per case, a fresh stand-in, one app whose block
is aimed at it, and the channel's connector. A case's `config` changes that set-up: `block=False` (the
app has no block: the sandbox serves it), `token` (the block's access token), `ca_file` ("missing" for
no CA bundle, so the stand-in's certificate is not trusted; "bad" for a file that is not PEM).
"""

import contextlib
import json
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.connectors.runner import Accepted, Failure, OutboundCase, Provider, named
from tests.standins.graph import GraphStandIn, Scripted, error_body
from tests.test_whatsapp_request import ENVELOPE, GOLDEN, TO, W
from tidings.apps import App, AppRegistry
from tidings.channels.base import Connector, FailureKind, Outbound
from tidings.channels.meta.connector import MessengerConnector, WhatsAppConnector
from tidings.channels.meta.settings import MessengerSettings, WhatsAppSettings
from tidings.schema.whatsapp import decode_whatsapp
from tidings.specs import whatsapp_codes as codes
from tidings.specs.whatsapp import WhatsAppMessage

F = FailureKind
APP_ID = "app-meta-runner"
GONE_APP = "app-removed"
SERVICE_ID = "svc-meta"
TRANSID = "tid-1"
APP_SECRET = "meta-app-secret-not-real-4711"
VERIFY_TOKEN = "meta-verify-token-not-real-0815"
WRONG_TOKEN = "EAAwrong-token-not-real-2342"
VERSION = "v21.0"


@dataclass
class MetaStandIn:
    """The runner's `StandIn`: the Graph stand-in behind a real WhatsApp or Messenger connector."""

    graph: GraphStandIn
    connector: Connector
    token: str  # what the block sends

    @property
    def secrets(self) -> list[str]:
        return [self.graph.wa_token, self.graph.page_token, self.token, APP_SECRET, VERIFY_TOKEN]

    def names(self) -> dict[str, str]:
        return {
            "<wa token>": self.graph.wa_token,
            "<page token>": self.graph.page_token,
            "<wrong token>": WRONG_TOKEN,
        }

    async def ready(self) -> None:
        return None  # the connector opens its client on the first send

    def script(self, reply: tuple[str, Scripted] | None) -> None:
        if reply is not None:
            self.graph.errors[reply[0]] = reply[1]

    def requests(self) -> list[dict[str, Any]]:
        names = self.names()
        return [
            {"path": r.path, "auth": named(r.headers.get("authorization", ""), names), "body": r.body}
            for r in self.graph.received
        ]

    async def callback(self, callback: Any) -> Any:
        raise AssertionError("the connector takes no callbacks: Meta's webhooks come to the web app")


def _settings(block: str, graph: GraphStandIn, token: str, ca_file: str) -> Any:
    common = {"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, "base_url": graph.base_url}
    if block == "whatsapp":
        return WhatsAppSettings(
            phone_number_id=graph.phone_number_id, access_token=token, ca_file=ca_file, **common
        )
    return MessengerSettings(page_id=graph.page_id, access_token=token, ca_file=ca_file, **common)


def _ca_file(graph: GraphStandIn, workdir: Path, which: str) -> str:
    if which == "missing":
        return ""
    if which == "bad":
        (workdir / "bad.pem").write_text("not a certificate\n")
        return "bad.pem"
    ca = graph._ca
    assert ca is not None
    ca.cert_pem.write_to_path(str(workdir / "graph-ca.pem"))
    return "graph-ca.pem"  # relative: read from the app's base_dir, as a config file's would be


def meta_provider(name: str, block: str, outbound: Sequence[OutboundCase]) -> Provider:
    @contextlib.asynccontextmanager
    async def open_meta(
        block_given: bool = True, token: str = "", ca_file: str = "ours"
    ) -> AsyncIterator[MetaStandIn]:
        with tempfile.TemporaryDirectory(prefix=f"tidings-{name}-") as folder:
            workdir = Path(folder)
            async with GraphStandIn(tls=True) as graph:
                sent = token or (graph.wa_token if block == "whatsapp" else graph.page_token)
                blocks = {}
                if block_given:
                    settings = _settings(block, graph, sent, _ca_file(graph, workdir, ca_file))
                    blocks[block] = settings
                apps = AppRegistry([App(APP_ID, SERVICE_ID, base_dir=workdir, **blocks)])
                kind = WhatsAppConnector if block == "whatsapp" else MessengerConnector
                yield MetaStandIn(graph, kind(apps, 0), sent)

    def opener(**config: Any) -> Any:
        given = dict(config)
        if "block" in given:
            given["block_given"] = given.pop("block")
        return open_meta(**given)

    return Provider(name, opener, outbound, [])


# -- WhatsApp's cases --------------------------------------------------------------------------------

PATH = f"/{VERSION}/106540352242922/messages"


def wa(obj: dict[str, Any], address: str = "+" + TO, appid: str = APP_ID) -> Outbound:
    """The `Outbound` the dispatcher hands the connector for one v1 WhatsApp request."""
    content = WhatsAppMessage(appid=appid, wa=decode_whatsapp(json.dumps(obj).encode(), W))
    return Outbound(TRANSID, SERVICE_ID, "whatsapp", address, content, 1, None, "waid")


def sent(body: dict[str, Any], to: str = TO, token: str = "<wa token>") -> dict[str, Any]:
    return {"path": PATH, "auth": f"Bearer {token}", "body": {**ENVELOPE, "to": to, **body}}


HELLO: dict[str, Any] = {"type": "text", "text": {"body": "hello"}}
HELLO_BODY: dict[str, Any] = {"type": "text", "text": {"body": "hello", "preview_url": False}}


def refused(number: str, kind: FailureKind, code: str, retry_after: float | None = None) -> OutboundCase:
    """A send to one of the stand-in's scripted numbers: Meta's refusal, read through the catalogue."""
    return OutboundCase(
        f"meta refuses {number}",
        wa(HELLO, "+" + number),
        requests=[sent(HELLO_BODY, number)],
        expect=Failure(kind, code, retry_after),
    )


OUTBOUND: list[OutboundCase] = [
    *(
        OutboundCase(f"type {label}", wa(obj), requests=[sent(body)], expect=Accepted("wa:wamid.1"))
        for label, (obj, body) in GOLDEN.items()
    ),
    # Meta's documented errors (tests/standins/graph.py WA_SCRIPTED) onto Webex Connect's codes.
    refused("15550131047", F.REJECTED, codes.OUTSIDE_WINDOW),
    refused("15550131026", F.REJECTED, codes.UNDELIVERABLE),
    refused("15550130429", F.THROTTLED, codes.THROUGHPUT_LIMIT, 4.0),  # its Retry-After: 4
    refused("15550131056", F.THROTTLED, codes.PAIR_RATE_LIMITED, 60.0),  # no wait said: a minute
    refused("15550131000", F.CONNECTION, codes.GENERIC_ERROR),
    OutboundCase(
        "a refusal scripted here: 131051 unsupported type",
        wa(HELLO, "+447700900999"),
        reply=("447700900999", (400, error_body(131051, "Unsupported message type"))),
        requests=[sent(HELLO_BODY, "447700900999")],
        expect=Failure(F.INVALID, codes.meta_error(131051)[0]),
    ),
    OutboundCase(
        "a token meta refuses is a configuration failure",
        wa(HELLO),
        requests=[sent(HELLO_BODY, token="<wrong token>")],
        expect=Failure(F.CONFIG, codes.TOKEN_EXPIRED),
        config={"token": WRONG_TOKEN},
    ),
    OutboundCase(
        "an untrusted certificate: nothing reaches meta",
        wa(HELLO),
        expect=Failure(F.CONNECTION, codes.PLATFORM_FAILURE),
        config={"ca_file": "missing"},
    ),
    OutboundCase(
        "a ca_file that is not pem is a configuration failure",
        wa(HELLO),
        expect=Failure(F.CONFIG, None),
        config={"ca_file": "bad"},
    ),
    OutboundCase(
        "no whatsapp block: the sandbox delivers",
        wa(HELLO),
        expect=Accepted("wa:tid-1", fallback=("Delivered", "7500"), fallback_after_s=0.0),
        config={"block": False},
    ),
    OutboundCase(
        "no whatsapp block: the sandbox fails a number ending in a code",
        wa(HELLO, "+447700907710"),
        expect=Accepted("wa:tid-1", fallback=("Failed", codes.OUTSIDE_WINDOW)),
        config={"block": False},
    ),
    OutboundCase(
        "an app removed since the request",
        wa(HELLO, appid=GONE_APP),
        expect=Failure(F.CONFIG, None),
    ),
]

PROVIDER = meta_provider("whatsapp", "whatsapp", OUTBOUND)
