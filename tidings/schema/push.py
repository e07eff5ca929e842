"""The v1 `channels.push` object (pushMessage, seed 003), as the connector receives it.

`PushContent` and the Structs under it are the checked, normalised form: every "string that holds a
number or a boolean" the documents allow (`"time_to_live":"3600"`, `"silentpush":"true"`) is already a
number or a bool here, so a provider maps fields without parsing anything again.
"""

from typing import Any

import msgspec


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


_decoder = msgspec.json.Decoder(PushContent)


def decode_push(raw: bytes, field: str) -> PushContent:
    """Check a `channels.push` object and return it normalised; raise the ApiError naming the field
    (7003 for a mandatory field missing, 7004 for a bad value)."""
    from tidings.errors import InvalidParameter
    from tidings.schema.common import decode_error_detail

    try:
        return _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise InvalidParameter(decode_error_detail(exc, field)) from None
