"""Per-channel previews on the console's message page.

A preview turns a message's stored content (the channel's content Struct as JSON) into HTML. A channel
registers its own with `register_preview(channel, fn)`; one without gets the JSON view, so a new channel
shows up in the console with nothing to change here. SMS, push and email register theirs below, and
WhatsApp, Messenger (`fb`) and RCS a chat-like view (tidings/console/chat.py) with the JSON as a second
tab. A preview's output is inserted as is, so it must escape everything it takes from the content
(`e()`), and it may raise only what `preview()` catches when a content is not what it expects.
"""

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from tidings.channels.base import Outbound
from tidings.channels.email.mime import build
from tidings.console.chat import messenger_chat, rcs_chat, whatsapp_chat
from tidings.console.html import e
from tidings.schema.email import EmailContent
from tidings.smpp.encoding import DC_BINARY, Encoded, encode_text, gsm7_septets, split

Preview = Callable[[Mapping[str, Any], str], str]  # (content, address) -> HTML
_PREVIEWS: dict[str, Preview] = {}


def register_preview(channel: str, preview: Preview) -> None:
    _PREVIEWS[channel] = preview


def preview(channel: str, content: Mapping[str, Any], address: str) -> str:
    """The channel's preview, or the JSON view; a preview that cannot read this content (stored by an
    older version in another shape) falls back to the JSON view too."""
    fn = _PREVIEWS.get(channel)
    if fn is not None:
        try:
            return fn(content, address)
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
    return json_view(content)


def json_view(content: Mapping[str, Any]) -> str:
    return f'<pre class="json">{e(json.dumps(content, indent=2, ensure_ascii=False))}</pre>'


def tabs(name: str, panels: list[tuple[str, str]]) -> str:
    """Accessible tabs (the console's JS switches them; without JS every panel shows, one after another)."""
    buttons = "".join(
        f'<button type="button" role="tab" id="{name}-tab-{i}" aria-controls="{name}-panel-{i}" '
        f'aria-selected="{"true" if i == 0 else "false"}" tabindex="{0 if i == 0 else -1}">'
        f"{e(title)}</button>"
        for i, (title, _) in enumerate(panels)
    )
    bodies = "".join(
        f'<section role="tabpanel" id="{name}-panel-{i}" aria-labelledby="{name}-tab-{i}">{body}</section>'
        for i, (_, body) in enumerate(panels)
    )
    return f'<div class="tabs" data-tabs><div role="tablist" aria-label="Views">{buttons}</div>{bodies}</div>'


# -- SMS ---------------------------------------------------------------------------------------------


def sms_preview(content: Mapping[str, Any], address: str) -> str:
    kind = str(content.get("type", "1"))
    sender = content.get("senderid", "")
    if kind == "3":
        body = str(content.get("body") or "")
        payload = bytes.fromhex(body)
        parts = [p.hex() for p in _binary_parts(payload)]
        encoding = "binary (8-bit)"
        shown = [f"<code>{e(p)}</code>" for p in parts]
    else:
        text = str(content.get("text") or "")
        unicode = kind == "4"
        enc = encode_text(text, unicode=unicode)
        raw = split(enc)
        gsm = not unicode and gsm7_septets(text) is not None
        encoding = "GSM 7-bit" if gsm else "UCS-2 (Unicode)"
        texts = [p.decode("latin-1") if gsm else p.decode("utf-16-be", "replace") for p in raw]
        if gsm:  # the unpacked septets are GSM code points: show the text cut at the same places
            texts = _cut_text(text, [len(p) for p in raw])
        shown = [e(t) for t in texts]
    items = "".join(
        f"<li><span class='part-no'>Part {i}</span><p>{t}</p></li>" for i, t in enumerate(shown, 1)
    )
    flash = " (flash)" if kind == "2" else ""
    return (
        '<div class="preview sms">'
        f"<dl><dt>From</dt><dd>{e(sender)}</dd><dt>To</dt><dd>{e(address)}</dd>"
        f"<dt>Encoding</dt><dd>{e(encoding)}{flash}</dd><dt>Parts</dt><dd>{len(shown)}</dd></dl>"
        f'<ol class="sms-parts">{items}</ol></div>'
    )


def _binary_parts(payload: bytes) -> list[bytes]:
    return split(Encoded(DC_BINARY, payload))


def _cut_text(text: str, septet_counts: list[int]) -> list[str]:
    """`text` cut into parts of the given septet counts (an extension character takes two)."""
    out, i = [], 0
    for count in septet_counts:
        taken = 0
        start = i
        while i < len(text) and taken < count:
            taken += gsm7_septets(text[i]) or 1
            i += 1
        out.append(text[start:i])
    return out


# -- push --------------------------------------------------------------------------------------------


def push_preview(content: Mapping[str, Any], address: str) -> str:
    push = content.get("push") or {}
    cards = []
    for platform in ("android", "ios", "web", "windows"):
        p = push.get(platform)
        if not isinstance(p, Mapping):
            continue
        title = p.get("title") or ""
        text = p.get("text") or p.get("body") or ""
        cards.append(
            f'<figure class="phone" aria-label="{e(platform)} notification">'
            '<div class="phone-screen"><div class="notif"><span class="notif-app">'
            f"{e(content.get('appid', ''))} · {e(platform)}</span>"
            f"<strong>{e(title)}</strong><p>{e(text)}</p></div></div>"
            f"<figcaption>{e(platform)}</figcaption></figure>"
        )
    if not cards:
        return json_view(content)
    return f'<div class="preview push">{"".join(cards)}</div>{json_view(content)}'


# -- email -------------------------------------------------------------------------------------------


def email_preview(content: Mapping[str, Any], address: str) -> str:
    """HTML (a sandboxed iframe: no scripts, no same origin), text, headers and the raw source, as the
    SMTP connector builds it (its Date is now, its MIME boundary new each time)."""
    c = msgspec.convert(dict(content), EmailContent)
    raw = build(Outbound("preview", "", "email", address, c, 1), "", time.time()).decode("utf-8", "replace")
    head = raw.split("\r\n\r\n", 1)[0]
    headers = "".join(
        f"<tr><th scope='row'>{e(k)}</th><td>{e(v.strip())}</td></tr>"
        for k, _, v in (line.partition(":") for line in head.replace("\r\n ", " ").split("\r\n"))
    )
    panels = []
    if c.type == "html":
        frame = (
            f'<iframe class="email-html" sandbox="" title="The email as HTML" srcdoc="{e(c.html)}"></iframe>'
        )
        panels.append(("HTML", frame))
    panels += [
        ("Text", f'<pre class="email-text">{e(c.text)}</pre>'),
        ("Headers", f'<table class="headers"><tbody>{headers}</tbody></table>'),
        ("Raw source", f'<pre class="email-raw">{e(raw)}</pre>'),
    ]
    return f'<div class="preview email">{tabs("email", panels)}</div>'


# -- WhatsApp, Messenger, RCS -----------------------------------------------------------------------


def chat_preview(name: str, view: Preview) -> Preview:
    """`view`'s chat-like drawing, with the content's JSON as a second tab (nothing in it is hidden)."""

    def shown(content: Mapping[str, Any], address: str) -> str:
        panels = [("Chat", view(content, address)), ("JSON", json_view(content))]
        return f'<div class="preview {name}">{tabs(name, panels)}</div>'

    return shown


register_preview("sms", sms_preview)
register_preview("push", push_preview)
register_preview("email", email_preview)
register_preview("whatsapp", chat_preview("whatsapp", whatsapp_chat))
register_preview("fb", chat_preview("messenger", messenger_chat))
register_preview("rcs", chat_preview("rcs", rcs_chat))
