"""The v1 push request object (`channels.push`, seed 003), checked by `decode_push`.

One table: each case is a `channels.push` object and either the refusal it earns (the code and words of the
description that name the field) or the normalised `PushContent` a provider receives, as builtins. Every
sample of seed 003's push section is an accepted case; where a sample holds a placeholder that is no
valid value ("<integer value>", "Refer to Android extras"), the case says what stands in for it.

A representative part of the table is also sent through `POST /resources/v1/messaging`
(`deliverychannel: "push"` with the demo service's app), byte for byte as the push object, and the v1
answer checked: the refusal's code and field, or 1001 for an accepted message.
"""

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.support.server import TidingsServer
from tidings.errors import ApiError
from tidings.schema.push import decode_push


@dataclass(frozen=True)
class Refused:
    code: str
    words: str  # a substring of the description: the field it names


def missing(words: str) -> Refused:
    return Refused("7003", words)


def invalid(words: str) -> Refused:
    return Refused("7004", words)


Expected = Refused | dict[str, Any]

# --- seed 003's samples ------------------------------------------------------------------------------

TAGS = {"key1": "object1", "key2": {"object2": "val"}, "key3": ["object3", "object4"]}
OPEN_URL = {"action": "OPEN_URL", "value": "www.google.com"}

ANDROID_EXTRAS = {  # "push > android > Android extras"
    "collapse_key": "<Alpha numeric key>",
    "sound": "<default/custom sound>",
    "time_to_live": "3600",  # the seed writes "<integer value>"
    "customtags": TAGS,
    "notificationaction": OPEN_URL,
}
ANDROID_EXTRAS_OUT = {**ANDROID_EXTRAS, "time_to_live": 3600}

IOS_EXTRAS = {  # "push > ios > ios extras"
    "badge": "5",  # "<badge number>"
    "sound": "<default/custom sound>",
    "time_to_live": "3600",  # "<integer value>"
    "silentpush": "true",  # "[true|false]"
    "customtags": TAGS,
    "notificationaction": OPEN_URL,
}
IOS_EXTRAS_OUT = {**IOS_EXTRAS, "badge": 5, "time_to_live": 3600, "silentpush": True}

WEB_EXTRAS = {"collapse_key": "<Alpha numeric key>", "time_to_live": "51840000", "customtags": TAGS}
WEB_EXTRAS_OUT = {**WEB_EXTRAS, "time_to_live": 51840000}

SAMPLE_ANDROID: dict[str, Any] = {  # the "Android" sample; its extras are "Refer to Android extras"
    "android": {"text": "<Android message>", "title": "android message title", "extras": ANDROID_EXTRAS}
}
SAMPLE_IOS: dict[str, Any] = {  # the "iOS" sample; its extras are "Refer to ios extras"
    "ios": {"text": "<iOS message>", "title": "ios message title", "extras": IOS_EXTRAS}
}
SAMPLE_WEB: dict[str, Any] = {
    "web": {
        "platform_types": ["firefox", "chrome", "safari"],
        "title": "Offers",
        "text": "50% off on google apps",
        "actiontext": "view",
        "url": "https://play.google.com/myaps/50",
    }
}
SAMPLE_WEB_EXTRAS: dict[str, Any] = {  # "Web browser notification", with the seed's misspelt platorm_types
    "web": {
        "title": "<title text for web browser push message>",
        "text": "<push message text for Web browser>",
        "url": "https://example.com/offers",  # "<URL that opens when message is clicked>"
        "actiontext": "<Specifies the text of the button for safari browsers only>",
        "platorm_types": ["chrome", "safari", "firefox"],
        "extras": WEB_EXTRAS,  # its time_to_live is the "Max of 51840000" the comment gives
    }
}
SAMPLE_INTERACTIVE: dict[
    str, Any
] = {  # "push > interactive": every "Refer to … extras" is that section's sample
    "pushref": "<Provide a reference value if the results of the push interaction is required as a trigger>",
    "ios": {"text": "<iOS specific push message text>", "extras": IOS_EXTRAS},
    "android": {"text": "<Android specific message text>", "extras": ANDROID_EXTRAS},
    "web": {
        "title": "<title text for web browser push message>",
        "text": "<push message text for Web browser>",
        "url": "https://example.com/offers",  # "<URL that opens when message is clicked>"
        "actiontext": "<Specifies the text for button for safari browsers only>",
        "platorm_types": ["chrome", "safari"],  # "<specifies the browser to which the message is sent>"
        "extras": WEB_EXTRAS,
    },
    "interactive": {
        "device_types": ["ios", "android"],
        "category": "DOUBLE_ACCEPT_CANCEL",  # "<Each category has a specific context …>"
        "actions": [
            {"pos": 1, "action": "OPENURL", "value": "<Value depends on the action>"},
            {"pos": 2, "action": "DISMISS", "value": "<Value depends on the action>"},
        ],
    },
}
SAMPLE_IOS_PLAIN: dict[str, Any] = {"ios": {"text": "This is a push notification", "title": "Hello"}}
SAMPLE_ANDROID_PLAIN: dict[str, Any] = {"android": {"text": "This is a push notification", "title": "Hello"}}
SAMPLE_IMAGE: dict[str, Any] = {
    "android": {
        "text": "Android message",
        "extras": {
            "sound": "default",
            "customtags": {"imageurl": "http://www.fox.com/wp-content/uploads/2014/01/5.jpg"},
        },
    },
    "ios": {"text": "iOS Push message", "extras": {"sound": "default"}},
}
SAMPLE_DEEPLINKS: dict[str, Any] = {
    "ios": {
        "text": "Test Notification Action3",
        "extras": {"notificationaction": {"action": "DEEPLINK", "value": "PM19092429://command/settings"}},
    },
    "android": {
        "text": "Test Notification Action3",
        "extras": {"notificationaction": {"action": "DEEPLINK", "value": "PM19092429://command/topic"}},
    },
    "windows": {
        "text": ["windows push test", "windows push test1", "windows push test2"],
        "extras": {"notificationaction": {"action": "DEEPLINK", "value": "PM19092429://command/streams"}},
    },
}
SAMPLE_YES_NO: dict[str, Any] = {
    "android": {"extras": {"sound": "default"}, "text": "asdsad"},
    "pushref": "4321",
    "interactive": {
        "category": "DOUBLE_YES_NO",
        "device_types": ["ios", "android", "windows"],
        "actions": [
            {"identifier": "YES", "pos": 1, "action": "OPEN_APP"},
            {"identifier": "NO", "pos": 2, "action": "SHARE", "value": "54333"},
        ],
    },
    "ios": {"extras": {"sound": "default"}, "text": "Hello", "title": "This is a push notification"},
}


def web_out(block: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A sample's web block as normalised: platform_types under its right name, extras' numbers parsed."""
    out = {k: v for k, v in block.items() if k != "platorm_types"}
    out["platform_types"] = block.get("platform_types", block.get("platorm_types"))
    if "extras" in block:
        out["extras"] = WEB_EXTRAS_OUT
    return {**out, **changes}


# --- builders for the other cases --------------------------------------------------------------------


def android(**fields: Any) -> dict[str, Any]:
    return {"android": {"text": "hi", **fields}}


def android_extras(**extras: Any) -> dict[str, Any]:
    return android(extras=extras)


def ios_extras(**extras: Any) -> dict[str, Any]:
    return {"ios": {"text": "hi", "extras": extras}}


WEB = {"title": "Sale", "text": "50% off", "platform_types": ["chrome"]}


def web(**fields: Any) -> dict[str, Any]:
    block = {**WEB, **fields}
    return {"web": {k: v for k, v in block.items() if v is not None}}


def windows(**fields: Any) -> dict[str, Any]:
    return {"windows": {"text": ["hi"], **fields}}


YES = {"pos": 1, "action": "OPEN_APP"}
NO = {"pos": 2, "action": "DISMISS"}
BUTTONS = {"category": "DOUBLE_YES_NO", "device_types": ["android"], "actions": [YES, NO]}


def interactive(**fields: Any) -> dict[str, Any]:
    block = {**BUTTONS, **fields}
    return {"android": {"text": "hi"}, "interactive": {k: v for k, v in block.items() if v is not None}}


def interactive_out(**fields: Any) -> dict[str, Any]:
    return {"android": {"text": "hi"}, "interactive": {**BUTTONS, **fields}}


HI = {"android": {"text": "hi"}}


def sized(compact_bytes: int) -> bytes:
    """An android object whose compact JSON is `compact_bytes` long, sent indented (longer on the wire)."""
    shell = len(json.dumps({"android": {"text": ""}}, separators=(",", ":")))
    return json.dumps({"android": {"text": "x" * (compact_bytes - shell)}}, indent=4).encode()


P = "channels.push"

CASES: dict[str, tuple[dict[str, Any] | bytes | str, Expected]] = {
    # Seed 003's samples, accepted.
    "seed: android": (
        SAMPLE_ANDROID,
        {"android": {**SAMPLE_ANDROID["android"], "extras": ANDROID_EXTRAS_OUT}},
    ),
    "seed: ios": (SAMPLE_IOS, {"ios": {**SAMPLE_IOS["ios"], "extras": IOS_EXTRAS_OUT}}),
    "seed: web": (SAMPLE_WEB, SAMPLE_WEB),
    "seed: web with extras and platorm_types": (
        SAMPLE_WEB_EXTRAS,
        {"web": web_out(SAMPLE_WEB_EXTRAS["web"])},
    ),
    "seed: interactive with every block": (
        SAMPLE_INTERACTIVE,
        {
            **SAMPLE_INTERACTIVE,
            "ios": {**SAMPLE_INTERACTIVE["ios"], "extras": IOS_EXTRAS_OUT},
            "android": {**SAMPLE_INTERACTIVE["android"], "extras": ANDROID_EXTRAS_OUT},
            "web": web_out(SAMPLE_INTERACTIVE["web"]),
        },
    ),
    "seed: ios plain": (SAMPLE_IOS_PLAIN, SAMPLE_IOS_PLAIN),
    "seed: android plain": (SAMPLE_ANDROID_PLAIN, SAMPLE_ANDROID_PLAIN),
    "seed: image and sound": (SAMPLE_IMAGE, SAMPLE_IMAGE),
    "seed: deeplinks with windows": (SAMPLE_DEEPLINKS, SAMPLE_DEEPLINKS),
    "seed: DOUBLE_YES_NO": (SAMPLE_YES_NO, SAMPLE_YES_NO),
    # At least one platform block.
    "empty object": ({}, missing("channels.push.android|ios|web")),
    "interactive alone": (
        {"interactive": BUTTONS},
        missing("channels.push.android|ios|web"),
    ),
    "unknown block alone": ({"huawei": {"text": "hi"}}, missing("channels.push.android|ios|web")),
    "null android": ({"android": None}, missing("channels.push.android|ios|web")),
    "windows alone": (windows(), {"windows": {"text": ["hi"]}}),
    "unknown block ignored": ({**HI, "huawei": {"text": 5}}, HI),
    "unknown fields ignored": (
        {"android": {"text": "hi", "colour": "red", "extras": {"priority": "high"}}},
        {"android": {"text": "hi", "extras": {}}},
    ),
    "not an object": ("hello", invalid("channels.push: expected `object`")),
    "android not an object": ({"android": "hi"}, invalid("channels.push.android: expected `object`")),
    "pushref not a string": ({**HI, "pushref": 5}, invalid("channels.push.pushref")),
    # android
    "android without text": ({"android": {"title": "t"}}, missing("channels.push.android.text")),
    "android empty text": (android(text=""), missing("channels.push.android.text")),
    "android text a number": (android(text=5), invalid("channels.push.android.text: expected `str`")),
    "android title a number": (android(title=5), invalid("channels.push.android.title")),
    "android extras not an object": (android(extras=[]), invalid("channels.push.android.extras")),
    "android ttl as a number": (android_extras(time_to_live=60), android_extras(time_to_live=60)),
    "android ttl at FCM's ceiling": (
        android_extras(time_to_live="2419200"),
        android_extras(time_to_live=2419200),
    ),
    "android ttl over FCM's ceiling": (
        android_extras(time_to_live="2419201"),
        invalid("channels.push.android.extras.time_to_live must be a whole number from 0 to 2419200"),
    ),
    "android ttl not digits": (
        android_extras(time_to_live="1h"),
        invalid("channels.push.android.extras.time_to_live"),
    ),
    "android ttl negative": (
        android_extras(time_to_live=-1),
        invalid("channels.push.android.extras.time_to_live"),
    ),
    "android ttl negative string": (
        android_extras(time_to_live="-1"),
        invalid("channels.push.android.extras.time_to_live"),
    ),
    "android ttl fractional": (
        android_extras(time_to_live=1.5),
        invalid("channels.push.android.extras.time_to_live"),
    ),
    "android ttl a boolean": (
        android_extras(time_to_live=True),
        invalid("channels.push.android.extras.time_to_live"),
    ),
    "android ttl huge": (
        android_extras(time_to_live="9" * 40),
        invalid("channels.push.android.extras.time_to_live"),
    ),
    "android ttl empty is absent": (android_extras(time_to_live=""), android_extras()),
    "delay_while_idle true": (
        android_extras(delay_while_idle="true"),
        android_extras(delay_while_idle=True),
    ),
    "delay_while_idle bad": (
        android_extras(delay_while_idle="maybe"),
        invalid("channels.push.android.extras.delay_while_idle must be true or false"),
    ),
    "android customtags not an object": (
        android_extras(customtags="x"),
        invalid("channels.push.android.extras.customtags"),
    ),
    "android customtags an array": (
        android_extras(customtags=["x"]),
        invalid("channels.push.android.extras.customtags"),
    ),
    "android imageurl not a URL": (
        android_extras(customtags={"imageurl": "cat.jpg"}),
        invalid("channels.push.android.extras.customtags.imageurl"),
    ),
    "android imageurl a number": (
        android_extras(customtags={"imageurl": 5}),
        invalid("channels.push.android.extras.customtags.imageurl"),
    ),
    "android iconurl not http": (
        android_extras(iconurl="ftp://example.com/i.png"),
        invalid("channels.push.android.extras.iconurl"),
    ),
    "android channel id and icon": (
        android_extras(iconurl="https://example.com/i.png", notificationChannelId="offers"),
        android_extras(iconurl="https://example.com/i.png", notificationChannelId="offers"),
    ),
    # notificationaction (android, ios and windows read it the same way)
    "OPEN_APP needs no value": (
        android_extras(notificationaction={"action": "OPEN_APP"}),
        android_extras(notificationaction={"action": "OPEN_APP"}),
    ),
    "OPENAPP is OPEN_APP": (
        android_extras(notificationaction={"action": "OPENAPP"}),
        android_extras(notificationaction={"action": "OPEN_APP"}),
    ),
    "OPEN_HTML with html": (
        ios_extras(notificationaction={"action": "OPEN_HTML", "value": "<b>hi</b>"}),
        ios_extras(notificationaction={"action": "OPEN_HTML", "value": "<b>hi</b>"}),
    ),
    "OPEN_URL without value": (
        android_extras(notificationaction={"action": "OPEN_URL"}),
        missing("channels.push.android.extras.notificationaction.value"),
    ),
    "OPEN_WEBVIEW with empty value": (
        ios_extras(notificationaction={"action": "OPEN_WEBVIEW", "value": ""}),
        missing("channels.push.ios.extras.notificationaction.value"),
    ),
    "windows DEEPLINK without value": (
        windows(extras={"notificationaction": {"action": "DEEPLINK"}}),
        missing("channels.push.windows.extras.notificationaction.value"),
    ),
    "notificationaction without action": (
        android_extras(notificationaction={"value": "https://example.com"}),
        missing("channels.push.android.extras.notificationaction.action"),
    ),
    "unknown notificationaction": (
        ios_extras(notificationaction={"action": "OPEN", "value": "x"}),
        invalid("channels.push.ios.extras.notificationaction.action 'OPEN' is not one of"),
    ),
    "notificationaction lower case": (
        android_extras(notificationaction={"action": "open_url", "value": "x"}),
        invalid("channels.push.android.extras.notificationaction.action"),
    ),
    "notificationaction value a number": (
        android_extras(notificationaction={"action": "DEEPLINK", "value": 5}),
        invalid("channels.push.android.extras.notificationaction.value"),
    ),
    # ios
    "ios without text": ({"ios": {"extras": {}}}, missing("channels.push.ios.text")),
    "ios badge zero": (ios_extras(badge="0"), ios_extras(badge=0)),
    "ios badge not a number": (ios_extras(badge="five"), invalid("channels.push.ios.extras.badge")),
    "ios badge negative": (ios_extras(badge=-1), invalid("channels.push.ios.extras.badge")),
    "ios badge too big": (ios_extras(badge=2**31), invalid("channels.push.ios.extras.badge")),
    "ios silentpush boolean": (ios_extras(silentpush=True), ios_extras(silentpush=True)),
    "ios silentpush FALSE": (ios_extras(silentpush="FALSE"), ios_extras()),
    "ios silentpush bad": (
        ios_extras(silentpush="yes"),
        invalid("channels.push.ios.extras.silentpush must be true or false"),
    ),
    "ios silentpush a number": (ios_extras(silentpush=1), invalid("channels.push.ios.extras.silentpush")),
    "ios ttl over FCM's ceiling": (ios_extras(time_to_live=2419201), ios_extras(time_to_live=2419201)),
    "ios ttl over the seed's ceiling": (
        ios_extras(time_to_live="51840001"),
        invalid("channels.push.ios.extras.time_to_live must be a whole number from 0 to 51840000"),
    ),
    "ios url and attachment": (
        ios_extras(url="https://example.com/a", attachmenturl="https://example.com/a.png", html="<p>x</p>"),
        ios_extras(url="https://example.com/a", attachmenturl="https://example.com/a.png", html="<p>x</p>"),
    ),
    "ios url without scheme": (ios_extras(url="www.example.com"), invalid("channels.push.ios.extras.url")),
    "ios attachmenturl bad": (
        ios_extras(attachmenturl="http://"),
        invalid("channels.push.ios.extras.attachmenturl"),
    ),
    "ios customtags not an object": (
        ios_extras(customtags=5),
        invalid("channels.push.ios.extras.customtags"),
    ),
    "ios collapse_key at 64 bytes": (ios_extras(collapse_key="k" * 64), ios_extras(collapse_key="k" * 64)),
    "ios collapse_key over 64 bytes": (
        ios_extras(collapse_key="é" * 33),
        invalid("channels.push.ios.extras.collapse_key is longer than 64 bytes"),
    ),
    # web
    "web without title": (web(title=None), missing("channels.push.web.title")),
    "web without text": (web(text=None), missing("channels.push.web.text")),
    "web without platform_types": (web(platform_types=None), missing("channels.push.web.platform_types")),
    "web empty platform_types": (web(platform_types=[]), missing("channels.push.web.platform_types")),
    "web platform_types a string": (
        web(platform_types="chrome"),
        invalid("channels.push.web.platform_types: expected `array`"),
    ),
    "web unknown browser": (
        web(platform_types=["chrome", "netscape"]),
        invalid("channels.push.web.platform_types[1] 'netscape' is not one of"),
    ),
    "web unknown browser, misspelt key": (
        web(platform_types=None, platorm_types=["chrome", "lynx"]),
        invalid("channels.push.web.platorm_types[1]"),
    ),
    "web platform_types wins over platorm_types": (
        web(platform_types=["firefox"], platorm_types=["chrome"]),
        web(platform_types=["firefox"]),
    ),
    "web browser named twice": (
        web(platform_types=["edge", "opera", "edge"]),
        web(platform_types=["edge", "opera"]),
    ),
    "web safari without actiontext": (
        web(platform_types=["chrome", "safari"]),
        missing("channels.push.web.actiontext"),
    ),
    "web safari with actionText": (
        web(platform_types=["safari"], actionText="View"),
        web(platform_types=["safari"], actiontext="View"),
    ),
    "web chrome without actiontext": (web(), web()),
    "web url not http": (web(url="javascript:alert(1)"), invalid("channels.push.web.url")),
    "web url with a space": (web(url="https://example.com/a b"), invalid("channels.push.web.url")),
    "web ttl at the seed's ceiling": (
        web(extras={"time_to_live": 51840000}),
        web(extras={"time_to_live": 51840000}),
    ),
    "web ttl over the seed's ceiling": (
        web(extras={"time_to_live": "51840001"}),
        invalid("channels.push.web.extras.time_to_live"),
    ),
    "web customtags not an object": (
        web(extras={"customtags": "x"}),
        invalid("channels.push.web.extras.customtags"),
    ),
    # windows
    "windows text a string": ({"windows": {"text": "one line"}}, {"windows": {"text": ["one line"]}}),
    "windows without text": ({"windows": {}}, missing("channels.push.windows.text")),
    "windows empty text": ({"windows": {"text": ""}}, missing("channels.push.windows.text")),
    "windows empty lines": ({"windows": {"text": []}}, missing("channels.push.windows.text")),
    "windows line not a string": (windows(text=["a", 2]), invalid("channels.push.windows.text")),
    "windows ttl bad": (
        windows(extras={"time_to_live": "soon"}),
        invalid("channels.push.windows.extras.time_to_live"),
    ),
    # interactive
    "interactive without category": (
        interactive(category=None),
        missing("channels.push.interactive.category"),
    ),
    "interactive unknown category": (
        interactive(category="TRIPLE_YES_NO_MAYBE"),
        invalid("channels.push.interactive.category"),
    ),
    "interactive without device_types": (
        interactive(device_types=None),
        missing("channels.push.interactive.device_types"),
    ),
    "interactive empty device_types": (
        interactive(device_types=[]),
        missing("channels.push.interactive.device_types"),
    ),
    "interactive device_types a string": (
        interactive(device_types="ios"),
        invalid("channels.push.interactive.device_types"),
    ),
    "interactive unknown device type": (
        interactive(device_types=["ios", "web"]),
        invalid("channels.push.interactive.device_types[1] 'web'"),
    ),
    "interactive without actions": (interactive(actions=None), missing("channels.push.interactive.actions")),
    "interactive empty actions": (interactive(actions=[]), missing("channels.push.interactive.actions")),
    "interactive pos as a string": (
        interactive(actions=[{**YES, "pos": "1"}, NO]),
        interactive_out(actions=[YES, NO]),
    ),
    "interactive pos 3": (
        interactive(actions=[YES, {**NO, "pos": 3}]),
        invalid("channels.push.interactive.actions[1].pos must be 1 or 2"),
    ),
    "interactive pos 0": (
        interactive(actions=[{**YES, "pos": 0}, NO]),
        invalid("channels.push.interactive.actions[0].pos"),
    ),
    "interactive pos a boolean": (
        interactive(actions=[{**YES, "pos": True}, NO]),
        invalid("channels.push.interactive.actions[0].pos"),
    ),
    "interactive without pos": (
        interactive(actions=[YES, {"action": "DISMISS"}]),
        missing("channels.push.interactive.actions[1].pos"),
    ),
    "interactive pos twice": (
        interactive(actions=[YES, {**NO, "pos": 1}]),
        invalid("channels.push.interactive.actions[1].pos 1 is given twice"),
    ),
    "DOUBLE with one action": (
        interactive(actions=[YES]),
        invalid("channels.push.interactive.actions: DOUBLE_YES_NO takes exactly two actions, 1 given"),
    ),
    "SINGLE with two actions": (
        interactive(category="SINGLE_OPEN", actions=[YES, NO]),
        invalid("channels.push.interactive.actions: SINGLE_OPEN takes exactly one action"),
    ),
    "SINGLE at pos 2": (
        interactive(category="SINGLE_DISMISS", actions=[NO]),
        invalid("channels.push.interactive.actions[0].pos must be 1"),
    ),
    "SINGLE with one action": (
        interactive(category="SINGLE_SHARE", actions=[{"pos": 1, "action": "SHARE", "value": "hi"}]),
        interactive_out(category="SINGLE_SHARE", actions=[{"pos": 1, "action": "SHARE", "value": "hi"}]),
    ),
    "interactive without action": (
        interactive(actions=[YES, {"pos": 2}]),
        missing("channels.push.interactive.actions[1].action"),
    ),
    "interactive unknown action": (
        interactive(actions=[YES, {"pos": 2, "action": "OPEN_URL", "value": "x"}]),
        invalid("channels.push.interactive.actions[1].action 'OPEN_URL' is not one of"),
    ),
    "interactive OPENURL without value": (
        interactive(actions=[{"pos": 1, "action": "OPENURL"}, NO]),
        missing("channels.push.interactive.actions[0].value"),
    ),
    "interactive OPENWEBVIEW, DEEPLINK with values": (
        interactive(
            actions=[
                {"pos": 2, "action": "OPENWEBVIEW", "value": "https://example.com"},
                {"pos": 1, "action": "DEEPLINK", "value": "app://x"},
            ],
            pushref="r1",
        ),
        interactive_out(
            actions=[
                {"pos": 2, "action": "OPENWEBVIEW", "value": "https://example.com"},
                {"pos": 1, "action": "DEEPLINK", "value": "app://x"},
            ],
            pushref="r1",
        ),
    ),
    "interactive actions not objects": (
        interactive(actions=["OPEN_APP"]),
        invalid("channels.push.interactive.actions[0]: expected `object`"),
    ),
    # The 4 KB cap on the object as sent, in compact JSON.
    "4096 bytes compact, longer indented": (sized(4096), {"android": {"text": "x" * 4073}}),
    "4097 bytes compact": (
        sized(4097),
        invalid("channels.push is 4097 bytes; a push payload is at most 4096"),
    ),
    "over 4096 bytes across blocks": (
        {"android": {"text": "a" * 2100}, "ios": {"text": "i" * 2100}},
        invalid("a push payload is at most 4096 bytes"),
    ),
}


def push_object(push: dict[str, Any] | bytes | str) -> bytes:
    return push if isinstance(push, bytes) else json.dumps(push).encode()


@pytest.mark.parametrize(("push", "expected"), CASES.values(), ids=CASES.keys())
def test_push_request_object(push: dict[str, Any] | bytes | str, expected: Expected) -> None:
    raw = push_object(push)
    if isinstance(expected, Refused):
        with pytest.raises(ApiError) as refused:
            decode_push(raw, P)
        assert (refused.value.code, expected.words in refused.value.description) == (expected.code, True), (
            refused.value.description
        )
    else:
        assert msgspec.to_builtins(decode_push(raw, P)) == expected


KEY = "key-push-request-01"
APP = "app-demo"
CONFIG = f"""
[sandbox]
delay_ms = 20

[[services]]
id = "svc-demo"
name = "demo"
key = "{KEY}"

[[apps]]
id = "{APP}"
service = "demo"
client_secret = "{base64.b64encode(b"push-request-client-secret").decode()}"
"""

THROUGH_HTTP = [
    "seed: android",
    "seed: web with extras and platorm_types",
    "seed: interactive with every block",
    "seed: deeplinks with windows",
    "seed: DOUBLE_YES_NO",
    "unknown block ignored",
    "4096 bytes compact, longer indented",
    "empty object",
    "android without text",
    "android text a number",
    "android ttl over FCM's ceiling",
    "OPEN_URL without value",
    "ios silentpush bad",
    "web safari without actiontext",
    "web unknown browser",
    "windows without text",
    "interactive OPENURL without value",
    "interactive pos twice",
    "DOUBLE with one action",
    "4097 bytes compact",
]


@pytest.fixture(scope="module")
def push_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TidingsServer]:
    workdir: Path = tmp_path_factory.mktemp("push-request")
    server = TidingsServer(workdir, CONFIG).start()
    yield server
    code = server.stop()
    server.close()
    assert code == 0, server.output()
    assert "Traceback" not in server.output()  # every refusal is an answer, never a crash


@pytest.mark.parametrize("name", THROUGH_HTTP)
def test_push_request_through_v1(push_server: TidingsServer, name: str) -> None:
    push, expected = CASES[name]
    envelope = (
        b'{"deliverychannel":"push","appid":"%s","destination":[{"userid":["u1"]}],"channels":{"push":%s}}'
    )
    r = push_server.send(envelope % (APP.encode(), push_object(push)), KEY)
    assert r.status_code == 200
    response = r.json()["response"]
    if isinstance(expected, Refused):
        assert isinstance(response, dict), response
        assert (response["code"], expected.words in response["description"]) == (expected.code, True), (
            response
        )
    else:
        assert [m["code"] for m in response] == ["1001"], response
