"""WNS's cases for the connector runner: the push connector sends to a Windows channel URI (given
directly as `windows_pushid`, or a registered device) through the app's `[apps.wns]` block, to the WNS
stand-in of tests/standins/wns.py (TLS, HTTP/1.1): its OAuth token endpoint, then the channel.

The golden form: the token requests first (each one's form; the client secret by name), then each
request to a channel as the stand-in got it: the HTTP version, the path, every header (run-time values
by name: `<host>`, `<token 1>`) and the body. `toast(...)` writes the one a default case sends. A case's
`reply` is (channel id, status, headers) for a channel to answer so, or ("token", status, body) for the
token endpoint to fail.
"""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.connectors.push_provider import DEVICE_ID, device, push, push_provider
from tests.connectors.runner import Accepted, Failure, OutboundCase, named
from tests.standins.wns import WnsStandIn
from tidings.channels.base import FailureKind, Outbound
from tidings.channels.push.settings import WnsSettings
from tidings.channels.push.wns import PAYLOAD_LIMIT
from tidings.schema.push import (
    Interactive,
    InteractiveAction,
    NotificationAction,
    PushContent,
    WindowsExtras,
    WindowsPush,
)
from tidings.specs import push_codes
from tidings.store.base import Device

F = FailureKind


@dataclass
class WnsWire:
    standin: WnsStandIn
    settings: WnsSettings
    registered: list[Device]
    block: str = "wns"

    def devices(self) -> list[Device]:
        return self.registered

    def script(self, reply: Any) -> None:
        if reply is None:
            return
        target, status, extra = reply
        if target == "token":
            self.standin.fail_tokens(status, extra)
        else:
            self.standin.script(target, status, extra)

    def placeholders(self) -> dict[str, str]:
        names = {
            "<wns>": self.standin.base_url,
            "<host>": f"127.0.0.1:{self.standin.port}",
            "<client secret>": self.standin.CLIENT_SECRET,
        }
        return names | {f"<token {n}>": token for n, token in enumerate(self.standin.issued, 1)}

    def secrets(self) -> list[str]:
        return [self.settings.client_secret, *self.standin.secrets]

    def golden(self) -> list[dict[str, Any]]:
        names = self.placeholders()
        tokens = [
            {"token_request": {k: named(v, names) for k, v in asked.form.items()}}
            for asked in self.standin.token_requests
        ]
        channels = [
            {
                "http": seen.http_version,
                "path": f"/w/{seen.channel}",
                "headers": {k: named(v, names) for k, v in seen.headers.items()},
                "body": seen.text,
            }
            for seen in self.standin.received
        ]
        return tokens + channels


@contextlib.asynccontextmanager
async def serve(workdir: Path, register: str | None = None, **settings: Any) -> AsyncIterator[WnsWire]:
    """The stand-in, and the app's block aimed at it with `settings` changed (client_secret, ca_file);
    `register`: a channel id to register as the device DEVICE_ID."""
    async with WnsStandIn(workdir) as standin:
        registered = [device("windows", "wns", standin.channel(register))] if register else []
        yield WnsWire(standin, standin.settings(**settings), registered)


# -- messages and golden requests ------------------------------------------------------------------------


def channel(channel_id: str = "dev1") -> str:
    """The stand-in's channel URI for `channel_id`, as a case writes it (`<wns>`: its origin)."""
    return f"<wns>/w/{channel_id}?token=AwYAAAB{channel_id}"


def message(content: PushContent, channel_id: str = "dev1", expiry: float | None = None) -> Outbound:
    return push(channel(channel_id), "windows_pushid", content, expiry)


def windows(text: list[str], **extras: Any) -> PushContent:
    return PushContent(windows=WindowsPush(text=text, extras=WindowsExtras(**extras) if extras else None))


TOKEN_REQUEST = {
    "token_request": {
        "grant_type": "client_credentials",
        "client_id": WnsStandIn.CLIENT_ID,
        "client_secret": "<client secret>",
        "scope": "notify.windows.com",
    }
}


def toast(body: str, channel_id: str = "dev1", **headers: str | None) -> dict[str, Any]:
    """The golden request to `channel_id` of a toast with `body`, with `headers` changed (None: absent)."""
    base: dict[str, str | None] = {
        "host": "<host>",
        "accept": "*/*",
        "accept-encoding": "gzip, deflate",
        "user-agent": "tidings",
        "authorization": "Bearer <token 1>",
        "x-wns-type": "wns/toast",
        "content-type": "text/xml",
        "x-wns-requestforstatus": "true",
        "content-length": str(len(body.encode())),
    }
    merged = {k: v for k, v in (base | headers).items() if v is not None}
    return {"http": "1.1", "path": f"/w/{channel_id}", "headers": merged, "body": body}


HELLO = windows(["Hello"])
HELLO_XML = (
    '<toast launch="{&quot;transid&quot;:&quot;tid-1&quot;}"><visual><binding template="ToastGeneric">'
    "<text>Hello</text></binding></visual></toast>"
)
ACCEPTED = Accepted("push:0000000000000001")  # the stand-in's first X-WNS-Msg-ID


def answered(
    label: str, channel_id: str, error: Failure, reply: tuple[str, int, dict[str, str]] | None = None
) -> OutboundCase:
    """The channel `channel_id` answers as the stand-in's NAMED table (or `reply`) says."""
    requests = [TOKEN_REQUEST, toast(HELLO_XML, channel_id)]
    return OutboundCase(label, message(HELLO, channel_id), reply, requests, error)


def refused(label: str, content: PushContent, address: str, error: Failure, **config: Any) -> OutboundCase:
    """Refused before any request, the token's included."""
    return OutboundCase(label, push(address, "windows_pushid", content), expect=error, config=config)


# -- outbound -------------------------------------------------------------------------------------------

# From tests/test_push_wns.py (test_wire): the toast or raw notification and its headers. The v1 priority
# does not reach the push connector (Outbound has none), so no X-WNS-Priority here; tests/test_push_wns.py
# checks the mapping of 1 and 3 on `payload`.
MAPPING = [
    OutboundCase(
        "two-lines-escaped",
        message(windows(["Sale & <50%> off", 'say "hi"'])),
        requests=[
            TOKEN_REQUEST,
            toast(
                '<toast launch="{&quot;transid&quot;:&quot;tid-1&quot;}"><visual>'
                '<binding template="ToastGeneric"><text>Sale &amp; &lt;50%&gt; off</text>'
                '<text>say "hi"</text></binding></visual></toast>'
            ),
        ],
        expect=ACCEPTED,
    ),
    OutboundCase(
        "lines-past-the-third-fold-into-it-action-customtags-pushref-in-launch-ttl",
        message(
            PushContent(
                pushref="r9",
                windows=WindowsPush(
                    text=["a", "b", "c", "d"],
                    extras=WindowsExtras(
                        time_to_live=600,
                        customtags={"k": "v", "n": {"x": [1, 2]}},
                        notificationaction=NotificationAction("DEEPLINK", "app://x?a=1&b=2"),
                    ),
                ),
            )
        ),
        requests=[
            TOKEN_REQUEST,
            toast(
                '<toast launch="{&quot;transid&quot;:&quot;tid-1&quot;,&quot;notificationaction&quot;:'
                "{&quot;action&quot;:&quot;DEEPLINK&quot;,&quot;value&quot;:&quot;app://x?a=1&amp;b=2&quot;},"
                "&quot;customtags&quot;:{&quot;k&quot;:&quot;v&quot;,&quot;n&quot;:{&quot;x&quot;:[1,2]}},"
                '&quot;pushref&quot;:&quot;r9&quot;}"><visual><binding template="ToastGeneric">'
                "<text>a</text><text>b</text><text>c\nd</text></binding></visual></toast>",
                **{"x-wns-ttl": "600"},
            ),
        ],
        expect=ACCEPTED,
    ),
    OutboundCase(
        "interactive-buttons-in-pos-order-labels-from-the-category",
        message(
            PushContent(
                windows=WindowsPush(text=["Q?"]),
                interactive=Interactive(
                    category="DOUBLE_YES_NO",
                    device_types=["ios", "windows"],
                    pushref="p1",
                    actions=[
                        InteractiveAction(pos=2, action="SHARE", identifier="NO", value="54333"),
                        InteractiveAction(pos=1, action="OPEN_APP", identifier="YES"),
                    ],
                ),
            )
        ),
        requests=[
            TOKEN_REQUEST,
            toast(
                '<toast launch="{&quot;transid&quot;:&quot;tid-1&quot;,&quot;pushref&quot;:&quot;p1&quot;}">'
                '<visual><binding template="ToastGeneric"><text>Q?</text></binding></visual><actions>'
                '<action content="Yes" arguments="{&quot;transid&quot;:&quot;tid-1&quot;,&quot;pushref&quot;:'
                "&quot;p1&quot;,&quot;pos&quot;:1,&quot;action&quot;:&quot;OPEN_APP&quot;,"
                '&quot;identifier&quot;:&quot;YES&quot;}" activationType="foreground" />'
                '<action content="No" arguments="{&quot;transid&quot;:&quot;tid-1&quot;,&quot;pushref&quot;:'
                "&quot;p1&quot;,&quot;pos&quot;:2,&quot;action&quot;:&quot;SHARE&quot;,&quot;identifier&quot;:"
                '&quot;NO&quot;,&quot;value&quot;:&quot;54333&quot;}" activationType="foreground" />'
                "</actions></toast>"
            ),
        ],
        expect=ACCEPTED,
    ),
    OutboundCase(
        "interactive-dismiss-and-open-url-buttons",
        message(
            PushContent(
                windows=WindowsPush(text=["Go"]),
                interactive=Interactive(
                    category="DOUBLE_OK_LEARN_MORE",
                    device_types=["windows"],
                    actions=[
                        InteractiveAction(pos=1, action="DISMISS"),
                        InteractiveAction(pos=2, action="OPENURL", value="https://ex.com/?a=1&b=2"),
                    ],
                ),
            )
        ),
        requests=[
            TOKEN_REQUEST,
            toast(
                '<toast launch="{&quot;transid&quot;:&quot;tid-1&quot;}"><visual>'
                '<binding template="ToastGeneric"><text>Go</text></binding></visual><actions>'
                '<action content="" arguments="dismiss" activationType="system" />'
                '<action content="Learn more" arguments="https://ex.com/?a=1&amp;b=2" '
                'activationType="protocol" /></actions></toast>'
            ),
        ],
        expect=ACCEPTED,
    ),
    OutboundCase(
        "reply-category-adds-a-text-box",
        message(
            PushContent(
                windows=WindowsPush(text=["Reply?"]),
                interactive=Interactive(
                    category="SINGLE_REPLY",
                    device_types=["windows"],
                    actions=[InteractiveAction(1, "OPEN_APP")],
                ),
            )
        ),
        requests=[
            TOKEN_REQUEST,
            toast(
                '<toast launch="{&quot;transid&quot;:&quot;tid-1&quot;}"><visual>'
                '<binding template="ToastGeneric"><text>Reply?</text></binding></visual><actions>'
                '<input id="reply" type="text" /><action content="Reply" arguments="{&quot;transid&quot;:'
                '&quot;tid-1&quot;,&quot;pos&quot;:1,&quot;action&quot;:&quot;OPEN_APP&quot;}" '
                'activationType="foreground" hint-inputId="reply" /></actions></toast>'
            ),
        ],
        expect=ACCEPTED,
    ),
    OutboundCase(
        "interactive-for-other-devices-only-no-buttons",
        message(
            PushContent(
                windows=WindowsPush(text=["Hello"]),
                interactive=Interactive(
                    category="SINGLE_OPEN",
                    device_types=["android"],
                    actions=[InteractiveAction(1, "OPEN_APP")],
                ),
            )
        ),
        requests=[TOKEN_REQUEST, toast(HELLO_XML)],
        expect=ACCEPTED,
    ),
    OutboundCase(
        "characters-xml-cannot-carry-are-dropped",
        message(windows(["a\x00b\x1fc\u00e9"])),
        requests=[
            TOKEN_REQUEST,
            toast(
                '<toast launch="{&quot;transid&quot;:&quot;tid-1&quot;}"><visual>'
                '<binding template="ToastGeneric"><text>abc\u00e9</text></binding></visual></toast>'
            ),
        ],
        expect=ACCEPTED,
    ),
    OutboundCase(
        "customtags-without-text-a-raw-data-notification",
        message(windows([], customtags={"sync": True})),
        requests=[
            TOKEN_REQUEST,
            toast(
                '{"transid":"tid-1","customtags":{"sync":true}}',
                **{"x-wns-type": "wns/raw", "content-type": "application/octet-stream"},
            ),
        ],
        expect=ACCEPTED,
    ),
    OutboundCase(
        "a-registered-device",
        push(DEVICE_ID, "windows_pushid", HELLO),
        requests=[TOKEN_REQUEST, toast(HELLO_XML, "reg1")],
        expect=ACCEPTED,
        config={"register": "reg1"},
        state=[DEVICE_ID],
    ),
]

# From tests/test_push_wns.py (test_wire): WNS's answers as the catalogue's kinds and codes.
ANSWERS = [
    # A channel given directly that WNS says is dead: GONE, so the dispatcher remembers the address.
    answered("dead-token-410-channel-expired", "expired", Failure(F.GONE, push_codes.TOKEN_UNREGISTERED)),
    answered("404-unknown-channel", "unknown", Failure(F.GONE, push_codes.INVALID_TOKEN)),
    # The same dead channel registered as a device: the device is removed; the deviceId is not an
    # address to remember, so the message is REJECTED with the code.
    OutboundCase(
        "dead-registered-device-is-removed",
        push(DEVICE_ID, "windows_pushid", HELLO),
        requests=[TOKEN_REQUEST, toast(HELLO_XML, "expired")],
        expect=Failure(F.REJECTED, push_codes.TOKEN_UNREGISTERED),
        config={"register": "expired"},
        state=[],
    ),
    answered("406-throttled", "flood", Failure(F.THROTTLED, push_codes.QUOTA_EXCEEDED, 30)),
    answered("200-channelthrottled", "busy", Failure(F.THROTTLED, push_codes.QUOTA_EXCEEDED, 12)),
    answered("200-dropped", "offline", Failure(F.REJECTED, push_codes.PLATFORM_FAILURE)),
    answered("413-too-large", "huge", Failure(F.INVALID, push_codes.PAYLOAD_TOO_LARGE)),
    answered("403-forbidden", "forbidden", Failure(F.CONFIG, push_codes.AUTH_ERROR)),
    answered("503", "boom", Failure(F.UNAVAILABLE, push_codes.SERVICE_UNAVAILABLE, 7)),
    answered("500", "oops", Failure(F.UNAVAILABLE, push_codes.SERVICE_UNAVAILABLE)),
    answered(
        "400-bad-request",
        "bad400",
        Failure(F.INVALID, push_codes.INVALID_PAYLOAD),
        ("bad400", 400, {"X-WNS-Error-Description": "Invalid header"}),
    ),
    # A redirect is not followed: the token goes only to a channel URI the rule allowed.
    answered(
        "307-redirect-is-not-followed",
        "moved",
        Failure(F.REJECTED, push_codes.PLATFORM_FAILURE),
        ("moved", 307, {"Location": "/w/dev1"}),
    ),
    # From tests/test_push_wns.py (test_token_endpoint_unavailable).
    OutboundCase(
        "token-endpoint-unavailable",
        message(HELLO),
        ("token", 503, {"error": "temporarily_unavailable"}),
        [{"token_request": TOKEN_REQUEST["token_request"]}],
        Failure(F.UNAVAILABLE, push_codes.SERVICE_UNAVAILABLE),
    ),
]

# From tests/test_push_wns.py (test_refused_without_a_connection, test_expired_message_is_not_sent,
# test_unreachable_and_untrusted): refused before any request, and a service we do not trust.
REFUSED = [
    refused(
        "http-channel",
        HELLO,
        "http://db5.notify.windows.com/?token=x",
        Failure(F.INVALID, push_codes.INVALID_TOKEN),
    ),
    refused(
        "foreign-host", HELLO, "https://evil.example.com/w/x", Failure(F.INVALID, push_codes.INVALID_TOKEN)
    ),
    refused(
        "lookalike-host",
        HELLO,
        "https://notify.windows.com.evil.io/x",
        Failure(F.INVALID, push_codes.INVALID_TOKEN),
    ),
    refused(
        "too-large",
        windows(["x" * PAYLOAD_LIMIT]),
        channel(),
        Failure(F.INVALID, push_codes.PAYLOAD_TOO_LARGE),
    ),
    refused("no-windows-block", PushContent(), channel(), Failure(F.INVALID, push_codes.INVALID_PAYLOAD)),
    refused("no-text-no-tags", windows(["", " "]), channel(), Failure(F.INVALID, push_codes.INVALID_PAYLOAD)),
    OutboundCase("expired", message(HELLO, expiry=1.0), expect=Failure(F.INVALID, push_codes.EXPIRED)),
    refused("untrusted-certificate", HELLO, channel(), Failure(F.CONNECTION), ca_file=""),
]

OUTBOUND = [*MAPPING, *ANSWERS, *REFUSED]
PROVIDER = push_provider("wns", serve, OUTBOUND)
