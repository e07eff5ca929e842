"""The v1 `channels.push` object (pushMessage, seed 003), as the connector receives it.

`PushContent` and the Structs under it are the checked, normalised form: every "string that holds a
number or a boolean" the documents allow (`"time_to_live":"3600"`, `"silentpush":"true"`) is already a
number or a bool here, so a provider maps fields without parsing anything again.

`decode_push` decodes the object once into loose "wire" Structs (the `_Wire*` classes: numbers and
booleans may be strings, `windows.text` an array or one string, `platform_types` also under the seed's
misspelling `platorm_types`, `actiontext` also as `actionText`) and checks it. Every refusal names the
field: 7003 (`MandatoryMissing`) when a mandatory field is missing or empty, 7004 (`InvalidParameter`)
for a wrong type or value. Unknown fields, and unknown platform blocks beside android/ios/web/windows,
are ignored, as the real API ignores them. An optional number, flag or URL given as "" counts as absent.

Choices where the documents leave room:
- At least one of android, ios, web or windows is required (the seed names the first three; a Windows
  toast is a platform block too). `interactive` alone is not enough: it adds buttons to a block.
- web: title, text and platform_types are required; actiontext (documented as mandatory but "applicable
  to Safari only") is required only when platform_types includes safari. Browsers are chrome, firefox,
  safari, edge and opera: the browsers that take Web Push (the destination keys name the first three).
- time_to_live: whole seconds, at most 2419200 (28 days, FCM's documented ceiling) for android, at most
  51840000 (the seed's figure for web) for ios, web and windows, whose services document no lower one.
- notificationaction: `OPENAPP` (the seed's note) is read as OPEN_APP. A block without `action` is 7003
  naming `.action`; a missing value for any action but OPEN_APP is 7003 naming `.value`. The value is not
  checked as a URL: the seed's own OPEN_URL sample is "www.google.com".
- interactive: a SINGLE_* category takes exactly one action at pos 1 and a DOUBLE_* category exactly two,
  at pos 1 and 2: each button the category shows needs its action, so fewer is 7004 naming `.actions`.
  A missing value for OPENURL, DEEPLINK, OPENWEBVIEW or SHARE is 7003 naming `actions[i].value`.
- URLs that a device or browser opens or fetches (web.url, ios.extras.url and attachmenturl,
  android.extras.iconurl and customtags.imageurl) must be absolute http(s) URLs.
- ios.extras.collapse_key is at most 64 bytes (APNs refuses a longer apns-collapse-id); badge is a whole
  number from 0 to 2147483647.
- The 4 KB cap applies to the `channels.push` object as sent, in its compact JSON encoding (whitespace
  between tokens removed, strings as written): over 4096 bytes is 7004 naming `channels.push`.
"""

from typing import Any

import msgspec

from tidings.errors import InvalidParameter, MandatoryMissing
from tidings.schema.common import decode_error_detail
from tidings.urls import is_http_url


class NotificationAction(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    action: str  # OPEN_URL | OPEN_WEBVIEW | OPEN_HTML | DEEPLINK | OPEN_APP
    value: str | None = None  # required except for OPEN_APP


class AndroidExtras(msgspec.Struct, omit_defaults=True):
    collapse_key: str | None = None
    time_to_live: int | None = None  # seconds
    sound: str | None = None
    delay_while_idle: bool | None = None  # deprecated; accepted and ignored
    customtags: dict[str, Any] | None = None  # `imageurl` is reserved: the notification's image
    notificationaction: NotificationAction | None = None
    iconurl: str | None = None
    notificationChannelId: str | None = None


class AndroidPush(msgspec.Struct, omit_defaults=True):
    text: str
    title: str | None = None
    extras: AndroidExtras | None = None


class IosExtras(msgspec.Struct, omit_defaults=True):
    badge: int | None = None
    sound: str | None = None
    time_to_live: int | None = None  # seconds
    silentpush: bool = False
    url: str | None = None
    html: str | None = None
    customtags: dict[str, Any] | None = None
    notificationaction: NotificationAction | None = None
    collapse_key: str | None = None
    attachmenturl: str | None = None


class IosPush(msgspec.Struct, omit_defaults=True):
    text: str
    title: str | None = None
    extras: IosExtras | None = None


class WebExtras(msgspec.Struct, omit_defaults=True):
    collapse_key: str | None = None
    time_to_live: int | None = None  # seconds
    customtags: dict[str, Any] | None = None


class WebPushMessage(msgspec.Struct, omit_defaults=True):
    title: str
    text: str
    url: str | None = None
    actiontext: str | None = None
    platform_types: list[str] = msgspec.field(default_factory=list)  # chrome, firefox, safari, …
    extras: WebExtras | None = None


class WindowsExtras(msgspec.Struct, omit_defaults=True):
    time_to_live: int | None = None
    customtags: dict[str, Any] | None = None
    notificationaction: NotificationAction | None = None


class WindowsPush(msgspec.Struct, omit_defaults=True):
    text: list[str]  # the toast's lines (the seed sends an array; a single string becomes one line)
    extras: WindowsExtras | None = None


class InteractiveAction(msgspec.Struct, omit_defaults=True):
    pos: int  # 1 or 2
    action: str  # DISMISS | OPENURL | OPEN_APP | DEEPLINK | OPENWEBVIEW | SHARE
    identifier: str | None = None
    value: str | None = None


class Interactive(msgspec.Struct, omit_defaults=True):
    category: str  # SINGLE_* / DOUBLE_* (seed 003's list)
    device_types: list[str]  # android, ios, windows
    actions: list[InteractiveAction]
    pushref: str | None = None


class PushContent(msgspec.Struct, omit_defaults=True):
    android: AndroidPush | None = None
    ios: IosPush | None = None
    web: WebPushMessage | None = None
    windows: WindowsPush | None = None
    interactive: Interactive | None = None
    pushref: str | None = None


PAYLOAD_MAX_BYTES = 4096
ANDROID_TTL_MAX = 2_419_200  # FCM keeps a message at most 28 days
TTL_MAX = 51_840_000  # the seed's ceiling (web); APNs and WNS document none
BADGE_MAX = 2**31 - 1  # Android keeps a badge count in a 32-bit int; APNs documents no ceiling
APNS_COLLAPSE_ID_MAX_BYTES = 64

NOTIFICATION_ACTIONS = ("OPEN_URL", "OPEN_WEBVIEW", "OPEN_HTML", "DEEPLINK", "OPEN_APP")
_ACTION_ALIASES = {"OPENAPP": "OPEN_APP"}
BUTTON_ACTIONS = ("DISMISS", "OPENURL", "OPEN_APP", "DEEPLINK", "OPENWEBVIEW", "SHARE")
_BUTTON_NEEDS_VALUE = frozenset({"OPENURL", "DEEPLINK", "OPENWEBVIEW", "SHARE"})
CATEGORIES = frozenset(
    {
        "SINGLE_DISMISS",
        "SINGLE_OPEN",
        "SINGLE_SUBSCRIBE",
        "SINGLE_UNSUBSCRIBE",
        "SINGLE_SHARE",
        "SINGLE_DEEPLINK",
        "SINGLE_REPLY",
        "DOUBLE_YES_NO",
        "DOUBLE_ACCEPT_CANCEL",
        "DOUBLE_SHARE_CANCEL",
        "DOUBLE_SHOPNOW_CANCEL",
        "DOUBLE_LATER_NOW",
        "DOUBLE_PLAY_NOW_PLAY_LATER",
        "DOUBLE_OK_LEARN_MORE",
        "DOUBLE_SUBSCRIBE_UNSUBSCRIBE",
        "DOUBLE_BUY_NOW_BUY_LATER",
        "DOUBLE_LIKE_SHARE",
    }
)
DEVICE_TYPES = ("android", "ios", "windows")
BROWSERS = ("chrome", "firefox", "safari", "edge", "opera")
_DIGITS_MAX = 12  # more digits than any ceiling here: refused before int() parses them

# The wire form: every field optional (a missing mandatory one is 7003, not a type error), numbers and
# flags as the documents send them.
Count = int | str
Flag = bool | str


class _WireAction(msgspec.Struct):
    action: str | None = None
    value: str | None = None


class _WireAndroidExtras(msgspec.Struct):
    collapse_key: str | None = None
    time_to_live: Count | None = None
    sound: str | None = None
    delay_while_idle: Flag | None = None
    customtags: dict[str, Any] | None = None
    notificationaction: _WireAction | None = None
    iconurl: str | None = None
    notificationChannelId: str | None = None


class _WireAndroid(msgspec.Struct):
    text: str | None = None
    title: str | None = None
    extras: _WireAndroidExtras | None = None


class _WireIosExtras(msgspec.Struct):
    badge: Count | None = None
    sound: str | None = None
    time_to_live: Count | None = None
    silentpush: Flag | None = None
    url: str | None = None
    html: str | None = None
    customtags: dict[str, Any] | None = None
    notificationaction: _WireAction | None = None
    collapse_key: str | None = None
    attachmenturl: str | None = None


class _WireIos(msgspec.Struct):
    text: str | None = None
    title: str | None = None
    extras: _WireIosExtras | None = None


class _WireWebExtras(msgspec.Struct):
    collapse_key: str | None = None
    time_to_live: Count | None = None
    customtags: dict[str, Any] | None = None


class _WireWeb(msgspec.Struct):
    title: str | None = None
    text: str | None = None
    url: str | None = None
    actiontext: str | None = None
    actionText: str | None = None  # the seed's parameter list spells it so
    platform_types: list[str] | None = None
    platorm_types: list[str] | None = None  # the seed's sample spells it so
    extras: _WireWebExtras | None = None


class _WireWindowsExtras(msgspec.Struct):
    time_to_live: Count | None = None
    customtags: dict[str, Any] | None = None
    notificationaction: _WireAction | None = None


class _WireWindows(msgspec.Struct):
    text: list[str] | str | None = None
    extras: _WireWindowsExtras | None = None


class _WireButton(msgspec.Struct):
    pos: Count | None = None
    action: str | None = None
    identifier: str | None = None
    value: str | None = None


class _WireInteractive(msgspec.Struct):
    category: str | None = None
    device_types: list[str] | None = None
    actions: list[_WireButton] | None = None
    pushref: str | None = None


class _WirePush(msgspec.Struct):
    android: _WireAndroid | None = None
    ios: _WireIos | None = None
    web: _WireWeb | None = None
    windows: _WireWindows | None = None
    interactive: _WireInteractive | None = None
    pushref: str | None = None


_decoder = msgspec.json.Decoder(_WirePush)


def decode_push(raw: bytes, field: str) -> PushContent:
    """Check a `channels.push` object and return it normalised; raise the ApiError naming the field
    (7003 for a mandatory field missing, 7004 for a bad value)."""
    try:
        wire = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        # Every wire field takes null (as absent); the type the caller must send is the other one.
        raise InvalidParameter(decode_error_detail(exc, field).replace(" | null`", "`")) from None
    except msgspec.DecodeError:  # pragma: no cover - the envelope's decode already parsed this JSON
        raise InvalidParameter(f"{field} is not JSON") from None
    _check_size(raw, field)
    if wire.android is None and wire.ios is None and wire.web is None and wire.windows is None:
        raise MandatoryMissing(f"{field}.android|ios|web")
    return PushContent(
        android=None if wire.android is None else _android(wire.android, f"{field}.android"),
        ios=None if wire.ios is None else _ios(wire.ios, f"{field}.ios"),
        web=None if wire.web is None else _web(wire.web, f"{field}.web"),
        windows=None if wire.windows is None else _windows(wire.windows, f"{field}.windows"),
        interactive=None
        if wire.interactive is None
        else _interactive(wire.interactive, f"{field}.interactive"),
        pushref=wire.pushref,
    )


def _check_size(raw: bytes, field: str) -> None:
    # Whitespace only ever makes the text longer, so most objects need no re-encoding.
    if len(raw) <= PAYLOAD_MAX_BYTES:
        return
    size = len(msgspec.json.format(raw, indent=-1))
    if size > PAYLOAD_MAX_BYTES:
        raise InvalidParameter(
            f"{field} is {size} bytes; a push payload is at most {PAYLOAD_MAX_BYTES} bytes"
        )


def _android(a: _WireAndroid, where: str) -> AndroidPush:
    text = _needed(a.text, f"{where}.text")
    x = a.extras
    if x is None:
        return AndroidPush(text=text, title=a.title)
    at = f"{where}.extras"
    extras = AndroidExtras(
        collapse_key=x.collapse_key,
        time_to_live=_count(x.time_to_live, ANDROID_TTL_MAX, f"{at}.time_to_live"),
        sound=x.sound,
        delay_while_idle=_flag(x.delay_while_idle, f"{at}.delay_while_idle"),
        customtags=_image_tag(x.customtags, f"{at}.customtags"),
        notificationaction=_action(x.notificationaction, f"{at}.notificationaction"),
        iconurl=_url(x.iconurl, f"{at}.iconurl"),
        notificationChannelId=x.notificationChannelId,
    )
    return AndroidPush(text=text, title=a.title, extras=extras)


def _ios(i: _WireIos, where: str) -> IosPush:
    text = _needed(i.text, f"{where}.text")
    x = i.extras
    if x is None:
        return IosPush(text=text, title=i.title)
    at = f"{where}.extras"
    if x.collapse_key is not None and len(x.collapse_key.encode()) > APNS_COLLAPSE_ID_MAX_BYTES:
        raise InvalidParameter(f"{at}.collapse_key is longer than {APNS_COLLAPSE_ID_MAX_BYTES} bytes")
    extras = IosExtras(
        badge=_count(x.badge, BADGE_MAX, f"{at}.badge"),
        sound=x.sound,
        time_to_live=_count(x.time_to_live, TTL_MAX, f"{at}.time_to_live"),
        silentpush=_flag(x.silentpush, f"{at}.silentpush") or False,
        url=_url(x.url, f"{at}.url"),
        html=x.html,
        customtags=x.customtags,
        notificationaction=_action(x.notificationaction, f"{at}.notificationaction"),
        collapse_key=x.collapse_key,
        attachmenturl=_url(x.attachmenturl, f"{at}.attachmenturl"),
    )
    return IosPush(text=text, title=i.title, extras=extras)


def _web(w: _WireWeb, where: str) -> WebPushMessage:
    title = _needed(w.title, f"{where}.title")
    text = _needed(w.text, f"{where}.text")
    browsers = _browsers(w, where)
    actiontext = w.actiontext if w.actiontext is not None else w.actionText
    if "safari" in browsers and not actiontext:
        raise MandatoryMissing(f"{where}.actiontext (Safari needs the button's text)")
    x = w.extras
    extras = None
    if x is not None:
        ttl = _count(x.time_to_live, TTL_MAX, f"{where}.extras.time_to_live")
        extras = WebExtras(collapse_key=x.collapse_key, time_to_live=ttl, customtags=x.customtags)
    return WebPushMessage(
        title=title,
        text=text,
        url=_url(w.url, f"{where}.url"),
        actiontext=actiontext,
        platform_types=browsers,
        extras=extras,
    )


def _browsers(w: _WireWeb, where: str) -> list[str]:
    key, given = ("platform_types", w.platform_types)
    if given is None:
        key, given = ("platorm_types", w.platorm_types)
    if not given:
        raise MandatoryMissing(f"{where}.platform_types")
    for k, name in enumerate(given):
        if name not in BROWSERS:
            raise InvalidParameter(f"{where}.{key}[{k}] {name!r} is not one of {', '.join(BROWSERS)}")
    return list(dict.fromkeys(given))  # a browser named twice is sent once


def _windows(w: _WireWindows, where: str) -> WindowsPush:
    lines = [w.text] if isinstance(w.text, str) else w.text
    if not lines or not any(lines):
        raise MandatoryMissing(f"{where}.text")
    x = w.extras
    extras = None
    if x is not None:
        extras = WindowsExtras(
            time_to_live=_count(x.time_to_live, TTL_MAX, f"{where}.extras.time_to_live"),
            customtags=x.customtags,
            notificationaction=_action(x.notificationaction, f"{where}.extras.notificationaction"),
        )
    return WindowsPush(text=lines, extras=extras)


def _interactive(i: _WireInteractive, where: str) -> Interactive:
    category = _needed(i.category, f"{where}.category")
    if category not in CATEGORIES:
        raise InvalidParameter(
            f"{where}.category {category!r} is not one of the SINGLE_*/DOUBLE_* categories"
        )
    if not i.device_types:
        raise MandatoryMissing(f"{where}.device_types")
    for k, device in enumerate(i.device_types):
        if device not in DEVICE_TYPES:
            raise InvalidParameter(
                f"{where}.device_types[{k}] {device!r} is not one of {', '.join(DEVICE_TYPES)}"
            )
    if not i.actions:
        raise MandatoryMissing(f"{where}.actions")
    buttons = [_button(b, f"{where}.actions[{k}]") for k, b in enumerate(i.actions)]
    seen: set[int] = set()
    for k, b in enumerate(buttons):
        if b.pos in seen:
            raise InvalidParameter(f"{where}.actions[{k}].pos {b.pos} is given twice")
        seen.add(b.pos)
    wanted = 1 if category.startswith("SINGLE_") else 2
    if len(buttons) != wanted:
        many = "one action" if wanted == 1 else "two actions"
        raise InvalidParameter(f"{where}.actions: {category} takes exactly {many}, {len(buttons)} given")
    if wanted == 1 and buttons[0].pos != 1:
        raise InvalidParameter(f"{where}.actions[0].pos must be 1: {category} has one button")
    return Interactive(
        category=category,
        device_types=list(dict.fromkeys(i.device_types)),
        actions=buttons,
        pushref=i.pushref,
    )


def _button(b: _WireButton, where: str) -> InteractiveAction:
    if b.pos is None or b.pos == "":
        raise MandatoryMissing(f"{where}.pos")
    if b.pos not in (1, 2, "1", "2"):
        raise InvalidParameter(f"{where}.pos must be 1 or 2")
    action = _needed(b.action, f"{where}.action")
    if action not in BUTTON_ACTIONS:
        raise InvalidParameter(f"{where}.action {action!r} is not one of {', '.join(BUTTON_ACTIONS)}")
    if action in _BUTTON_NEEDS_VALUE and not b.value:
        raise MandatoryMissing(f"{where}.value ({action} needs one)")
    return InteractiveAction(pos=int(b.pos), action=action, identifier=b.identifier, value=b.value)


def _action(a: _WireAction | None, where: str) -> NotificationAction | None:
    if a is None:
        return None
    given = _needed(a.action, f"{where}.action")
    action = _ACTION_ALIASES.get(given, given)
    if action not in NOTIFICATION_ACTIONS:
        raise InvalidParameter(f"{where}.action {given!r} is not one of {', '.join(NOTIFICATION_ACTIONS)}")
    if action != "OPEN_APP" and not a.value:
        raise MandatoryMissing(f"{where}.value ({action} needs one)")
    return NotificationAction(action=action, value=a.value)


def _needed(value: str | None, where: str) -> str:
    if not value:
        raise MandatoryMissing(where)
    return value


def _count(value: Count | None, ceiling: int, where: str) -> int | None:
    """A whole number from 0 to `ceiling`, given as a JSON integer or a string of digits."""
    if isinstance(value, str):
        digits = value.strip()
        if not digits:
            return None
        if not (digits.isascii() and digits.isdigit() and len(digits) <= _DIGITS_MAX):
            raise InvalidParameter(f"{where} must be a whole number from 0 to {ceiling}")
        value = int(digits)
    if value is not None and not 0 <= value <= ceiling:
        raise InvalidParameter(f"{where} must be a whole number from 0 to {ceiling}")
    return value


def _flag(value: Flag | None, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    word = value.strip().lower()
    if word in ("true", "false"):
        return word == "true"
    if not word:
        return None
    raise InvalidParameter(f"{where} must be true or false")


def _url(value: str | None, where: str) -> str | None:
    if not value:
        return None
    if not is_http_url(value):
        raise InvalidParameter(f"{where} must be an absolute http(s) URL")
    return value


def _image_tag(tags: dict[str, Any] | None, where: str) -> dict[str, Any] | None:
    # `imageurl` is reserved on Android: the image the notification shows.
    if tags is not None and "imageurl" in tags:
        image = tags["imageurl"]
        if not isinstance(image, str) or not is_http_url(image):
            raise InvalidParameter(f"{where}.imageurl must be an absolute http(s) URL")
    return tags
