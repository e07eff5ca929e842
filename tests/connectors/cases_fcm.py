"""FCM's cases for the connector runner: the push connector sends to an FCM registration token (given
directly as `android_pushid`/`ios_pushid`, or a registered device for web) through the app's
`[apps.fcm]` block, to the FCM stand-in of tests/standins/fcm.py: Google's token endpoint (the
JWT-bearer grant, verified with the service account's key) and `messages:send`.

The golden form: each request in the order the stand-in got it: the token grant (its form, the signed
assertion by name: `<assertion 1>`) and each send (its path, every header with run-time values by name,
and the JSON body). `send(message)` writes a send of `message`. Scripted tokens (`stale`, `flood`, …,
see the stand-in's SCRIPTED) answer as FCM does for them.
"""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import msgspec

from tests.connectors.push_provider import DEVICE_ID, device, key_lines, push, push_provider
from tests.connectors.runner import Accepted, Failure, OutboundCase, named
from tests.standins.fcm import FcmStandIn
from tidings.channels.base import FailureKind, Outbound
from tidings.channels.push.settings import FcmSettings
from tidings.schema.push import PushContent
from tidings.specs import push_codes as codes
from tidings.store.base import Device

F = FailureKind
PROJECT = "demo-project"


@dataclass
class FcmWire:
    standin: FcmStandIn
    settings: FcmSettings
    registered: list[Device]
    block: str = "fcm"

    def devices(self) -> list[Device]:
        return self.registered

    def script(self, reply: Any) -> None:
        assert reply is None, "an FCM case picks its answer by the token it sends to"

    def assertions(self) -> list[str]:
        return [str(r.body.get("assertion", "")) for r in self.standin.received if r.path == "/token"]

    def placeholders(self) -> dict[str, str]:
        names = {"<fcm>": self.standin.base_url}
        names |= {f"<assertion {n}>": a for n, a in enumerate(self.assertions(), 1)}
        return names | {f"<token {n}>": token for n, token in enumerate(self.standin.issued, 1)}

    def secrets(self) -> list[str]:
        return [*key_lines(self.standin.private_key_pem()), *self.standin.issued, *self.assertions()]

    def golden(self) -> list[dict[str, Any]]:
        names = self.placeholders()
        golden: list[dict[str, Any]] = []
        for seen in self.standin.received:
            headers = {k: named(seen.headers[k], names) for k in MEANINGFUL if k in seen.headers}
            if seen.path == "/token":
                form = {k: named(str(v), names) for k, v in seen.body.items()}
                grant = _claims(str(seen.body.get("assertion", "")), names)
                golden.append({"path": seen.path, "headers": headers, "form": form, "assertion": grant})
            else:
                golden.append({"path": seen.path, "headers": headers, "body": seen.body})
        return golden


# The headers a golden shows: the rest (user agent, lengths) carry the client library's version or
# vary with the port's digits.
MEANINGFUL = ("content-type", "authorization")


def _claims(assertion: str, names: dict[str, str]) -> dict[str, Any]:
    """The grant's JWT as Google reads it (the stand-in verified its signature, kid and claims)."""
    claims = jwt.decode(assertion, options={"verify_signature": False})
    header = jwt.get_unverified_header(assertion)
    return {
        "alg": header["alg"],
        "iss": claims["iss"],
        "scope": claims["scope"],
        "aud": named(claims["aud"], names),
        "lifetime_s": claims["exp"] - claims["iat"],
    }


@contextlib.asynccontextmanager
async def serve(workdir: Path, register: tuple[str, str] | None = None) -> AsyncIterator[FcmWire]:
    """The stand-in and the app's block aimed at it; `register`: (platform, token) of a device to
    register as DEVICE_ID."""
    async with FcmStandIn(project_id=PROJECT) as standin:
        standin.write_key_file(workdir / "fcm.json")
        settings = FcmSettings(project_id=PROJECT, service_account_file="fcm.json", base_url=standin.base_url)
        registered = [device(register[0], "fcm", register[1])] if register else []
        yield FcmWire(standin, settings, registered)


# -- messages and golden requests ------------------------------------------------------------------------


def content(**fields: Any) -> PushContent:
    return msgspec.convert(fields, PushContent)


def message(token: str, platform: str = "android", **fields: Any) -> Outbound:
    if not fields:
        fields = {"android": {"text": "hello"}}
    return push(token, f"{platform}_pushid", content(**fields))


GRANT = {
    "path": "/token",
    "headers": {"content-type": "application/x-www-form-urlencoded"},
    "form": {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "<assertion 1>"},
    "assertion": {
        "alg": "RS256",
        "iss": f"tidings-test@{PROJECT}.iam.gserviceaccount.com",
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "aud": "<fcm>/token",
        "lifetime_s": 3600,
    },
}
SEND_HEADERS = {"content-type": "application/json", "authorization": "Bearer <token 1>"}


def send(body: dict[str, Any]) -> dict[str, Any]:
    """The golden send of `body` as FCM's `message`."""
    return {
        "path": f"/v1/projects/{PROJECT}/messages:send",
        "headers": SEND_HEADERS,
        "body": {"message": body},
    }


def hello(token: str) -> dict[str, Any]:
    """The golden `message` of `message(token)`."""
    return {"token": token, "notification": {"body": "hello"}, "android": {"priority": "NORMAL"}}


def accepted(n: int = 1) -> Accepted:
    return Accepted(f"push:projects/{PROJECT}/messages/{n}")


def answered(label: str, token: str, error: Failure) -> OutboundCase:
    """FCM answers the token as the stand-in's SCRIPTED table says."""
    return OutboundCase(label, message(token), requests=[GRANT, send(hello(token))], expect=error)


INTERACTIVE = {
    "category": "DOUBLE_YES_NO",
    "device_types": ["android", "ios"],
    "pushref": "ref-9",
    "actions": [
        {"pos": 1, "action": "DISMISS"},
        {"pos": 2, "action": "OPENURL", "value": "https://x.example/y"},
    ],
}
ACTIONS_JSON = '[{"pos":1,"action":"DISMISS"},{"pos":2,"action":"OPENURL","value":"https://x.example/y"}]'

# -- outbound -------------------------------------------------------------------------------------------

# From tests/test_push_fcm.py (CASES): the `message` FCM receives for each kind of push object. The v1
# priority does not reach the push connector (Outbound has none), so every case here is priority 2
# (android NORMAL, apns-priority 5, Urgency normal); tests/test_push_fcm.py covers 1 and 3 on `payload`.
MAPPING = [
    OutboundCase(
        "android-every-field",
        message(
            "dev-a1",
            android={
                "title": "Hi",
                "text": "hello",
                "extras": {
                    "collapse_key": "news",
                    "time_to_live": 3600,
                    "sound": "chime",
                    "notificationChannelId": "offers",
                    "iconurl": "https://x.example/icon.png",
                    "customtags": {
                        "imageurl": "https://x.example/big.png",
                        "n": 5,
                        "flag": True,
                        "obj": {"a": [1, "b"]},
                        "from": "me",
                        "google.thing": "g",
                        "plain": "text",
                    },
                    "notificationaction": {"action": "DEEPLINK", "value": "app://offers/1"},
                },
            },
            interactive=INTERACTIVE,
        ),
        requests=[
            GRANT,
            send(
                {
                    "token": "dev-a1",
                    "notification": {"title": "Hi", "body": "hello", "image": "https://x.example/big.png"},
                    "android": {
                        "priority": "NORMAL",
                        "collapse_key": "news",
                        "ttl": "3600s",
                        "notification": {
                            "sound": "chime",
                            "channel_id": "offers",
                            "click_action": "DEEPLINK",
                        },
                    },
                    "data": {
                        "imageurl": "https://x.example/big.png",
                        "n": "5",
                        "flag": "true",
                        "obj": '{"a":[1,"b"]}',
                        "customtag_from": "me",
                        "customtag_google.thing": "g",
                        "plain": "text",
                        "notificationaction_action": "DEEPLINK",
                        "notificationaction_value": "app://offers/1",
                        "interactive_category": "DOUBLE_YES_NO",
                        "interactive_actions": ACTIONS_JSON,
                        "pushref": "ref-9",
                    },
                }
            ),
        ],
        expect=accepted(),
    ),
    OutboundCase(
        "android-text-only", message("dev-a2"), requests=[GRANT, send(hello("dev-a2"))], expect=accepted()
    ),
    OutboundCase(
        "android-open-app-and-an-icon-interactive-for-ios-only-top-level-pushref",
        message(
            "dev-a3",
            android={
                "text": "t",
                "extras": {
                    "iconurl": "https://x.example/i.png",
                    "notificationaction": {"action": "OPEN_APP"},
                },
            },
            interactive={**INTERACTIVE, "device_types": ["ios"]},
            pushref="top-ref",
        ),
        requests=[
            GRANT,
            send(
                {
                    "token": "dev-a3",
                    "notification": {"body": "t", "image": "https://x.example/i.png"},
                    "android": {"priority": "NORMAL"},
                    "data": {"notificationaction_action": "OPEN_APP", "pushref": "top-ref"},
                }
            ),
        ],
        expect=accepted(),
    ),
    OutboundCase(
        "ios-through-fcm-alert-badge-sound-collapse-interactive-category",
        message(
            "dev-i1",
            "ios",
            ios={
                "title": "T",
                "text": "body",
                "extras": {
                    "badge": 3,
                    "sound": "default",
                    "collapse_key": "c1",
                    "url": "https://x.example/u",
                    "customtags": {"k": 1},
                },
            },
            interactive=INTERACTIVE,
        ),
        requests=[
            GRANT,
            send(
                {
                    "token": "dev-i1",
                    "apns": {
                        "headers": {
                            "apns-priority": "10",
                            "apns-push-type": "alert",
                            "apns-collapse-id": "c1",
                        },
                        "payload": {
                            "aps": {
                                "alert": {"title": "T", "body": "body"},
                                "sound": "default",
                                "badge": 3,
                                "category": "DOUBLE_YES_NO",
                            }
                        },
                    },
                    "data": {
                        "k": "1",
                        "interactive_category": "DOUBLE_YES_NO",
                        "interactive_actions": ACTIONS_JSON,
                        "pushref": "ref-9",
                        "url": "https://x.example/u",
                    },
                }
            ),
        ],
        expect=accepted(),
    ),
    OutboundCase(
        "ios-silent-push-data-only-content-available",
        message(
            "dev-i2",
            "ios",
            ios={"text": "quiet", "extras": {"silentpush": True, "sound": "x", "customtags": {"sync": "1"}}},
        ),
        requests=[
            GRANT,
            send(
                {
                    "token": "dev-i2",
                    "apns": {
                        "headers": {"apns-priority": "5", "apns-push-type": "background"},
                        "payload": {"aps": {"content-available": 1}},
                    },
                    "data": {"sync": "1"},
                }
            ),
        ],
        expect=accepted(),
    ),
    OutboundCase(
        "ios-with-an-attachment",
        message("dev-i3", "ios", ios={"text": "pic", "extras": {"attachmenturl": "https://x.example/p.jpg"}}),
        requests=[
            GRANT,
            send(
                {
                    "token": "dev-i3",
                    "apns": {
                        "headers": {"apns-priority": "10", "apns-push-type": "alert"},
                        "payload": {"aps": {"alert": {"body": "pic"}, "mutable-content": 1}},
                        "fcm_options": {"image": "https://x.example/p.jpg"},
                    },
                }
            ),
        ],
        expect=accepted(),
    ),
    # Web push reaches FCM only through a registered device (the connector takes no web token directly).
    OutboundCase(
        "web-through-fcm",
        push(
            DEVICE_ID,
            "chrome_pushid",
            content(
                web={
                    "title": "W",
                    "text": "web body",
                    "url": "https://x.example/open",
                    "actiontext": "Open",
                    "extras": {"collapse_key": "topic_1", "time_to_live": 60, "customtags": {"a": "b"}},
                }
            ),
        ),
        requests=[
            GRANT,
            send(
                {
                    "token": "dev-w1",
                    "webpush": {
                        "headers": {"Urgency": "normal", "TTL": "60", "Topic": "topic_1"},
                        "notification": {"title": "W", "body": "web body"},
                        "fcm_options": {"link": "https://x.example/open"},
                    },
                    "data": {"a": "b", "actiontext": "Open"},
                }
            ),
        ],
        expect=accepted(),
        config={"register": ("web", "dev-w1")},
        state=[DEVICE_ID],
    ),
    OutboundCase(
        "web-a-collapse-key-that-cannot-be-a-topic",
        push(
            DEVICE_ID,
            "chrome_pushid",
            content(web={"title": "W", "text": "b", "extras": {"collapse_key": "not a topic"}}),
        ),
        requests=[
            GRANT,
            send(
                {
                    "token": "dev-w2",
                    "webpush": {
                        "headers": {"Urgency": "normal"},
                        "notification": {"title": "W", "body": "b"},
                    },
                }
            ),
        ],
        expect=accepted(),
        config={"register": ("web", "dev-w2")},
    ),
    OutboundCase(
        "over-4096-bytes-unsent",
        message("dev-big", android={"text": "x", "extras": {"customtags": {"blob": "y" * 4100}}}),
        expect=Failure(F.INVALID, codes.PAYLOAD_TOO_LARGE),
    ),
    OutboundCase(
        "no-block-for-the-platform-unsent",
        message("dev-i9", "ios", android={"text": "android only"}),
        expect=Failure(F.INVALID, codes.INVALID_PAYLOAD),
    ),
]

# From tests/test_push_fcm.py (CASES): FCM's answers as the catalogue's kinds, codes and waits.
ANSWERS = [
    # A token given directly that FCM says is unregistered: GONE, so the dispatcher remembers it.
    answered("dead-token-UNREGISTERED", "stale", Failure(F.GONE, codes.TOKEN_UNREGISTERED)),
    OutboundCase(
        "dead-registered-device-is-removed",
        push(DEVICE_ID, "android_pushid", content(android={"text": "hello"})),
        requests=[GRANT, send(hello("stale"))],
        expect=Failure(F.REJECTED, codes.TOKEN_UNREGISTERED),
        config={"register": ("android", "stale")},
        state=[],
    ),
    answered("QUOTA_EXCEEDED-with-retry-after", "flood", Failure(F.THROTTLED, codes.QUOTA_EXCEEDED, 7.0)),
    answered(
        "QUOTA_EXCEEDED-without-retry-after",
        "flood-no-wait",
        Failure(F.THROTTLED, codes.QUOTA_EXCEEDED, 60.0),
    ),
    answered("UNAVAILABLE", "boom", Failure(F.THROTTLED, codes.SERVICE_UNAVAILABLE, 3.0)),
    answered("INTERNAL", "internal", Failure(F.CONNECTION, codes.SERVICE_UNAVAILABLE)),
    answered("INVALID_ARGUMENT", "bad", Failure(F.INVALID, codes.INVALID_PAYLOAD)),
    answered("INVALID_ARGUMENT-for-the-token", "malformed", Failure(F.GONE, codes.INVALID_TOKEN)),
    answered("SENDER_ID_MISMATCH", "other", Failure(F.INVALID, codes.TOKEN_NOT_FOR_APP)),
    answered("THIRD_PARTY_AUTH_ERROR", "apns-auth", Failure(F.CONFIG, codes.AUTH_ERROR)),
]

OUTBOUND = [*MAPPING, *ANSWERS]
PROVIDER = push_provider("fcm", serve, OUTBOUND)
