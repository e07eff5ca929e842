"""APNs's cases for the connector runner: the push connector sends to an iOS device token (given
directly as `ios_pushid` when it is hex, or a registered device for the stand-in's scripted words that
are not) through the app's `[apps.apns]` block, to the APNs stand-in of tests/standins/apns.py (HTTP/2
only, TLS with ALPN h2), which verifies the ES256 provider token, the headers and the payload.

The golden form: each request as the stand-in got it: the device token in its path, the `apns-*`
headers, the authorization (the provider token by name: `<provider token 1>`) and the JSON payload.
`request(token, body)` writes one with a default alert's headers. Tokens starting with a scripted word
(`dead`, `stale`, `bad`, `topic`, `huge`, `busy`, `flood`, `down`, `oops`, and those of MORE_ANSWERS)
answer as APNs does for them.

Not here (tests/test_push_apns.py keeps them): apns-expiration from time_to_live or the message's
expiry needs the provider's clock fixed (the connector builds its provider on the real one), and the
v1 priority does not reach the connector (Outbound has none), so every case is priority 2.
"""

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.connectors.push_provider import DEVICE_ID, TRANSID, device, key_lines, push, push_provider
from tests.connectors.runner import Accepted, Failure, OutboundCase, named
from tests.standins.apns import TOPIC, Answer, ApnsStandIn, device_token
from tidings.channels.base import FailureKind, Outbound
from tidings.channels.push.settings import ApnsSettings
from tidings.schema.push import (
    Interactive,
    InteractiveAction,
    IosExtras,
    IosPush,
    NotificationAction,
    PushContent,
)
from tidings.specs import push_codes as codes
from tidings.store.base import Device

F = FailureKind
MORE_ANSWERS = {
    "e0": Answer(400, "BadExpirationDate"),
    "e1": Answer(400, "BadTopic"),
    "e2": Answer(403, "Forbidden"),
    "e3": Answer(404, "BadPath"),
}
# Our transid is no UUID, so the apns-id is the provider's stable UUID5 of it.
APNS_ID = str(uuid.uuid5(uuid.UUID("0b7e2c1a-5d34-4f0e-9a61-3c52d8e4f7a9"), TRANSID))
TOKEN = device_token(1)


@dataclass
class ApnsWire:
    standin: ApnsStandIn
    settings: ApnsSettings
    registered: list[Device]
    block: str = "apns"

    def devices(self) -> list[Device]:
        return self.registered

    def script(self, reply: Any) -> None:
        assert reply is None, "an APNs case picks its answer by the token it sends to"

    def placeholders(self) -> dict[str, str]:
        return {f"<provider token {n}>": t for n, t in enumerate(self.standin.provider_tokens, 1)}

    def secrets(self) -> list[str]:
        return [*key_lines(self.standin.key_pem().decode()), *self.standin.provider_tokens]

    def golden(self) -> list[dict[str, Any]]:
        names = self.placeholders()
        return [
            {
                "path": f"/3/device/{seen.token}",
                "headers": {
                    k: named(v, names)
                    for k, v in seen.headers.items()
                    if k.startswith("apns-") or k == "authorization"
                },
                "body": seen.body,
            }
            for seen in self.standin.received
        ]


@contextlib.asynccontextmanager
async def serve(workdir: Path, register: str | None = None) -> AsyncIterator[ApnsWire]:
    """The stand-in and the app's block aimed at it; `register`: a token to register as DEVICE_ID."""
    async with ApnsStandIn() as standin:
        standin.answers.update(MORE_ANSWERS)
        settings = standin.write_credentials(workdir)
        registered = [device("ios", "apns", register)] if register else []
        yield ApnsWire(standin, settings, registered)
        assert standin.protocol_errors == []


# -- messages and golden requests ------------------------------------------------------------------------


def ios(text: str = "This is a push notification", title: str | None = "Hello", **extras: Any) -> PushContent:
    return PushContent(ios=IosPush(text=text, title=title, extras=IosExtras(**extras) if extras else None))


def message(content: PushContent, token: str = TOKEN) -> Outbound:
    return push(token, "ios_pushid", content)


def registered(content: PushContent) -> Outbound:
    return push(DEVICE_ID, "ios_pushid", content)


ALERT = {"aps": {"alert": {"title": "Hello", "body": "This is a push notification"}}}


def request(body: dict[str, Any] | None = None, token: str = TOKEN, **headers: str) -> dict[str, Any]:
    """The golden request of an alert (`body`, default ALERT) to `token`, with `headers` added or changed."""
    base = {
        "authorization": "bearer <provider token 1>",
        "apns-topic": TOPIC,
        "apns-push-type": "alert",
        "apns-priority": "10",
        "apns-id": APNS_ID,
    }
    return {"path": f"/3/device/{token}", "headers": base | headers, "body": ALERT if body is None else body}


ACCEPTED = Accepted(f"push:{APNS_ID}")


def word(prefix: str) -> str:
    """A hex token starting with a scripted word: the connector takes it as an APNs token directly."""
    return prefix + "0" * (64 - len(prefix))


def answered(label: str, token: str, error: Failure) -> OutboundCase:
    """APNs answers a registered device whose token starts with a scripted word (most are not hex)."""
    return OutboundCase(
        label, registered(ios()), requests=[request(token=token)], expect=error, config={"register": token}
    )


def refused(label: str, content: PushContent, error: Failure, token: str = TOKEN) -> OutboundCase:
    return OutboundCase(label, message(content, token), expect=error)


INTERACTIVE = Interactive(
    category="DOUBLE_YES_NO",
    device_types=["ios", "android"],
    actions=[
        InteractiveAction(pos=2, action="DISMISS", identifier="no"),
        InteractiveAction(pos=1, action="OPENURL", identifier="yes", value="https://example.com/yes"),
    ],
    pushref="campaign-7",
)
TAGS = {"key1": "object1", "key2": {"object2": "val"}, "key3": ["object3", "object4"]}

# -- outbound -------------------------------------------------------------------------------------------

# From tests/test_push_apns.py (CASES): the headers and payload APNs receives.
MAPPING = [
    OutboundCase("alert-title-and-text", message(ios()), requests=[request()], expect=ACCEPTED),
    OutboundCase(
        "alert-every-extra-but-time-to-live",
        message(
            ios(
                badge=3,
                sound="default",
                collapse_key="promo",
                url="https://example.com/a",
                customtags=TAGS,
                notificationaction=NotificationAction(action="DEEPLINK", value="app://settings"),
                attachmenturl="https://example.com/cat.jpg",
            )
        ),
        requests=[
            request(
                {
                    "aps": {
                        "alert": {"title": "Hello", "body": "This is a push notification"},
                        "badge": 3,
                        "sound": "default",
                        "mutable-content": 1,
                    },
                    **TAGS,
                    "notificationaction": {"action": "DEEPLINK", "value": "app://settings"},
                    "url": "https://example.com/a",
                    "attachmenturl": "https://example.com/cat.jpg",
                },
                **{"apns-collapse-id": "promo"},
            )
        ],
        expect=ACCEPTED,
    ),
    OutboundCase(
        "silent-push-background-priority-5-text-as-custom-keys",
        message(ios(silentpush=True, badge=1, customtags={"k": 1})),
        requests=[
            request(
                {
                    "aps": {"content-available": 1},
                    "k": 1,
                    "text": "This is a push notification",
                    "title": "Hello",
                },
                **{"apns-push-type": "background", "apns-priority": "5"},
            )
        ],
        expect=ACCEPTED,
    ),
    OutboundCase(
        "time-to-live-0-deliver-once-html-no-title",
        message(ios(title=None, time_to_live=0, html="<b>hi</b>")),
        requests=[
            request(
                {"aps": {"alert": {"body": "This is a push notification"}}, "html": "<b>hi</b>"},
                **{"apns-expiration": "0"},
            )
        ],
        expect=ACCEPTED,
    ),
    OutboundCase(
        "interactive-for-ios-category-actions-by-pos-pushref",
        message(PushContent(ios=ios().ios, interactive=INTERACTIVE)),
        requests=[
            request(
                {
                    "aps": {**ALERT["aps"], "category": "DOUBLE_YES_NO"},
                    "pushref": "campaign-7",
                    "actions": [
                        {
                            "pos": 1,
                            "action": "OPENURL",
                            "identifier": "yes",
                            "value": "https://example.com/yes",
                        },
                        {"pos": 2, "action": "DISMISS", "identifier": "no"},
                    ],
                }
            )
        ],
        expect=ACCEPTED,
    ),
    OutboundCase(
        "interactive-for-android-only-nothing-of-it-but-the-pushref",
        message(
            PushContent(
                ios=ios().ios,
                interactive=Interactive(
                    category="DOUBLE_YES_NO",
                    device_types=["android"],
                    actions=INTERACTIVE.actions,
                    pushref="campaign-7",
                ),
                pushref="p1",
            )
        ),
        requests=[request({**ALERT, "pushref": "p1"})],
        expect=ACCEPTED,
    ),
    OutboundCase(
        "a-registered-device",
        registered(ios()),
        requests=[request()],
        expect=ACCEPTED,
        config={"register": TOKEN},
    ),
    # Refused before any request.
    refused("customtags-aps-unsent", ios(customtags={"aps": {}}), Failure(F.INVALID, codes.INVALID_PAYLOAD)),
    refused(
        "customtags-clashing-with-url-unsent",
        ios(url="https://a.example", customtags={"url": "x"}),
        Failure(F.INVALID, codes.INVALID_PAYLOAD),
    ),
    refused(
        "collapse-key-over-64-bytes-unsent",
        ios(collapse_key="é" * 33),
        Failure(F.INVALID, codes.INVALID_PAYLOAD),
    ),
    refused(
        "payload-over-4096-bytes-unsent", ios(text="x" * 4100), Failure(F.INVALID, codes.PAYLOAD_TOO_LARGE)
    ),
    refused("no-ios-block-unsent", PushContent(pushref="x"), Failure(F.INVALID, codes.INVALID_PAYLOAD)),
    OutboundCase(
        "registered-token-that-is-no-hex-unsent",
        registered(ios()),
        expect=Failure(F.REJECTED, codes.INVALID_TOKEN),
        config={"register": "ab/cd"},
        state=[],  # a token that can never work: the device is removed
    ),
]

# From tests/test_push_apns.py (CASES): APNs' answers as the catalogue's kinds, codes and waits.
ANSWERS = [
    # A token given directly that APNs says is unregistered: GONE, so the dispatcher remembers it.
    OutboundCase(
        "dead-token-410-Unregistered",
        message(ios(), word("dead")),
        requests=[request(token=word("dead"))],
        expect=Failure(F.GONE, codes.TOKEN_UNREGISTERED),
    ),
    OutboundCase(
        "dead-registered-device-is-removed",
        registered(ios()),
        requests=[request(token=word("dead"))],
        expect=Failure(F.REJECTED, codes.TOKEN_UNREGISTERED),
        config={"register": word("dead")},
        state=[],
    ),
    OutboundCase(
        "400-BadDeviceToken",
        message(ios(), word("bad")),
        requests=[request(token=word("bad"))],
        expect=Failure(F.GONE, codes.INVALID_TOKEN),
    ),
    answered("410-ExpiredToken", "stale", Failure(F.REJECTED, codes.TOKEN_UNREGISTERED)),
    answered("400-BadDeviceToken-not-hex", "zz", Failure(F.REJECTED, codes.INVALID_TOKEN)),
    answered("400-DeviceTokenNotForTopic", "topic", Failure(F.REJECTED, codes.TOKEN_NOT_FOR_APP)),
    OutboundCase(
        "400-BadExpirationDate",
        message(ios(), word("e0")),
        requests=[request(token=word("e0"))],
        expect=Failure(F.INVALID, codes.INVALID_PAYLOAD),
    ),
    OutboundCase(
        "400-BadTopic",
        message(ios(), word("e1")),
        requests=[request(token=word("e1"))],
        expect=Failure(F.CONFIG, codes.AUTH_ERROR),
    ),
    OutboundCase(
        "403-Forbidden",
        message(ios(), word("e2")),
        requests=[request(token=word("e2"))],
        expect=Failure(F.CONFIG, codes.AUTH_ERROR),
    ),
    OutboundCase(
        "404-BadPath",
        message(ios(), word("e3")),
        requests=[request(token=word("e3"))],
        expect=Failure(F.CONFIG, codes.PLATFORM_FAILURE),
    ),
    answered("413", "huge", Failure(F.INVALID, codes.PAYLOAD_TOO_LARGE)),
    answered("429", "busy", Failure(F.THROTTLED, codes.QUOTA_EXCEEDED)),
    answered("429-with-retry-after", "flood", Failure(F.THROTTLED, codes.QUOTA_EXCEEDED, 7.0)),
    answered("503", "down", Failure(F.UNAVAILABLE, codes.SERVICE_UNAVAILABLE)),
    answered("500", "oops", Failure(F.UNAVAILABLE, codes.SERVICE_UNAVAILABLE)),
]

OUTBOUND = [*MAPPING, *ANSWERS]
PROVIDER = push_provider("apns", serve, OUTBOUND)
