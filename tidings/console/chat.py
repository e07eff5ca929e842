"""Chat-like views of the app channels' messages for the console's message page: WhatsApp, Messenger
and RCS. `tidings/console/previews.py` registers each beside the JSON view.

Each view reads the stored content into the channel's own Structs (`msgspec.convert`), so a content of
another shape (stored by an older version, or hand-edited) raises msgspec's ValidationError, a
ValueError, and the page shows the JSON view; so does a type the view does not know. It draws the
message as the recipient's phone shows a business's message: a bubble, chips for buttons, quick replies
and suggestions, a list's sections and rows, cards side by side.

Media are never loaded. The console's CSP allows only its own files, and an <img> of a sender's URL would
tell that host who reads the console and when; each medium is a labelled placeholder with its URL as
text. A URL is a link only when it is an absolute http(s) URL (never javascript: or data:), opened in a
new tab with no referrer and no follow. Everything taken from the content passes through `e()`.
"""

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from tidings.console.html import e
from tidings.schema.messenger import Attachment, Button, GenericElement, MessengerContent, Receipt
from tidings.schema.rcs import RcsCard, RcsMessage, RcsSuggestion
from tidings.schema.whatsapp import (
    Contact,
    Interactive,
    Media,
    TemplateMessage,
    TemplateParameter,
    WhatsAppContent,
)
from tidings.specs.messenger import MessengerMessage
from tidings.urls import is_http_url

_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)]}"
_LINK_ATTRS = 'rel="noopener noreferrer nofollow" target="_blank"'

# -- pieces every view uses ----------------------------------------------------------------------------


def link(url: str, text: str = "") -> str:
    """`url` as a link when it is http(s), else as text; `text` is shown instead of the URL if given."""
    shown = e(text or url)
    if is_http_url(url):
        return f'<a href="{e(url)}" {_LINK_ATTRS}>{shown}</a>'
    return f'<span class="url">{shown}</span>'


def linked(text: str) -> str:
    """`text` escaped, its http(s) URLs made links (as the apps make them clickable)."""
    out, at = [], 0
    for m in _URL_IN_TEXT.finditer(text):
        url = m.group().rstrip(_TRAILING)
        out.append(e(text[at : m.start()]))
        out.append(link(url))
        at = m.start() + len(url)
    out.append(e(text[at:]))
    return "".join(out)


def _first_url(text: str) -> str:
    m = _URL_IN_TEXT.search(text)
    return m.group().rstrip(_TRAILING) if m else ""


def chat(kind: str, label: str, head: str, body: str) -> str:
    return (
        f'<figure class="chat {kind}" aria-label="{e(label)}">'
        f'<figcaption class="chat-head">{head}</figcaption>{body}</figure>'
    )


def bubble(inner: str) -> str:
    return f'<div class="bubble">{inner}</div>'


def para(text: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<p{attr}>{linked(text)}</p>" if text else ""


def chips(label: str, items: list[str]) -> str:
    if not items:
        return ""
    return f'<ul class="chips" aria-label="{e(label)}">{"".join(f"<li>{i}</li>" for i in items)}</ul>'


def chip(title: str, detail: str = "", glyph: str = "") -> str:
    mark = f'<span aria-hidden="true">{glyph}</span> ' if glyph else ""
    return f"{mark}{e(title)}" + (f"<small>{detail}</small>" if detail else "")


def placeholder(kind: str, where: str, *facts: str) -> str:
    """A medium the console does not load: its kind, what is known of it, and where it is."""
    known = "".join(f"<br>{f}" for f in facts if f)
    return (
        f'<div class="media" role="group" aria-label="{e(kind)} (not loaded)"><strong>{e(kind)}</strong>'
        f' <span class="hint">not loaded in the console</span>{known}{f"<br>{where}" if where else ""}</div>'
    )


def heading(text: str) -> str:
    return f"<h3>{e(text)}</h3>" if text else ""


def _amount(value: float, currency: str = "") -> str:
    number = f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"
    return f"{number} {currency}".strip()


def _head(app: str, address: str, what: str) -> str:
    return f"<strong>{e(app or 'app')}</strong> to {e(address)} · {e(what)}"


# -- WhatsApp ----------------------------------------------------------------------------------------

_WA_MEDIA = {
    "image": "Image",
    "audio": "Audio",
    "video": "Video",
    "document": "Document",
    "sticker": "Sticker",
}
_WA_BUTTON = {"url": "URL button", "quick_reply": "Quick reply button", "copy_code": "Copy code button"}


def whatsapp_chat(content: Mapping[str, Any], address: str) -> str:
    wa = msgspec.convert(content["wa"], WhatsAppContent)
    what, body = _wa_body(wa)
    head = _head(str(content.get("appid") or ""), address, f"WhatsApp {what}")
    return chat("whatsapp", f"WhatsApp message to {address}", head, body)


def _wa_body(wa: WhatsAppContent) -> tuple[str, str]:
    if wa.type == "text" and wa.text is not None:
        shown = para(wa.text.body)
        if wa.text.preview_url:
            url = _first_url(wa.text.body)
            shown += (
                placeholder("Link preview", link(url))
                if url
                else '<p class="hint">Link preview asked for; the text has no http(s) URL.</p>'
            )
        return "Text", bubble(shown)
    if wa.type in _WA_MEDIA and wa.media is not None:
        kind = _WA_MEDIA[wa.type]
        return kind, bubble(_wa_media(kind, wa.media) + para(wa.media.caption or ""))
    if wa.type == "location" and wa.location is not None:
        loc = wa.location
        where = f"{loc.latitude:.6f}, {loc.longitude:.6f}"
        return "Location", bubble(placeholder("Location", e(where), e(loc.name), e(loc.address)))
    if wa.type == "contacts" and wa.contacts is not None:
        return "Contacts", "".join(bubble(_wa_contact(c)) for c in wa.contacts)
    if wa.type == "interactive" and wa.interactive is not None:
        what = "Reply buttons" if wa.interactive.type == "button" else "List"
        return what, _wa_interactive(wa.interactive)
    if wa.type == "reaction" and wa.reaction is not None:
        r = wa.reaction
        said = (
            f'Reacts <span class="emoji">{e(r.emoji)}</span> to message <code>{e(r.message_id)}</code>'
            if r.emoji
            else f"Removes its reaction to message <code>{e(r.message_id)}</code>"
        )
        return "Reaction", f'<p class="bubble reaction">{said}</p>'
    if wa.type == "template" and wa.template is not None:
        return "Template", bubble(_wa_template(wa.template))
    raise ValueError(f"no view of a WhatsApp {wa.type!r} message")


def _wa_media(kind: str, m: Media) -> str:
    where = link(m.link) if m.link else f"media id <code>{e(m.id)}</code>"
    return placeholder(kind, where, e(m.filename), e(m.mime_type))


def _wa_contact(c: Contact) -> str:
    facts: list[tuple[str, str]] = [("Phone", e(p.phone)) for p in c.phones if p.phone]
    facts += [("Email", e(m.email)) for m in c.emails if m.email]
    facts += [("Web", link(u.url)) for u in c.urls if u.url]
    for a in c.addresses:
        parts = (a.street, a.city, a.state, a.zip, a.country or a.country_code)
        facts.append(("Address", e(", ".join(p for p in parts if p))))
    if c.org is not None:
        facts.append(("Organisation", e(", ".join(p for p in (c.org.company, c.org.title) if p))))
    if c.birthday:
        facts.append(("Birthday", e(c.birthday)))
    rows = "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in facts)
    return f'<div class="card">{heading(c.name.formatted_name)}<dl>{rows}</dl></div>'


def _wa_interactive(i: Interactive) -> str:
    top = ""
    if i.header is not None and i.header.media is not None:
        top = _wa_media(i.header.type.capitalize(), i.header.media)
    elif i.header is not None:
        top = para(i.header.text or "", "head")
    shown = top + para(i.body) + para(i.footer or "", "foot")
    if i.type == "button":
        return bubble(shown) + chips("Reply buttons", [chip(b.title) for b in i.buttons])
    sections = "".join(
        f'<div role="group" aria-label="{e(s.title or "Rows")}">{heading(s.title or "")}<ul class="rows">'
        + "".join(
            f"<li><strong>{e(r.title)}</strong>{para(r.description or '', 'hint')}</li>" for r in s.rows
        )
        + "</ul></div>"
        for s in i.sections
    )
    opened = f'<div class="card wa-list" role="group" aria-label="The list, opened">{sections}</div>'
    return bubble(shown) + chips("List button", [chip(i.button or "", glyph="☰")]) + opened


def _wa_template(t: TemplateMessage) -> str:
    lines, buttons = [], []
    for c in t.components:
        if c.type == "button":
            label = f"{_WA_BUTTON.get(c.sub_type or '', 'Button')} {c.index if c.index is not None else ''}"
            buttons.append(chip(label.strip(), ", ".join(_wa_parameter(p) for p in c.parameters)))
            continue
        values = "".join(
            f"<li><code>{{{{{k}}}}}</code> {_wa_parameter(p)}</li>" for k, p in enumerate(c.parameters, 1)
        )
        lines.append(f'<p class="head">{e(c.type.capitalize())}</p><ol class="params">{values}</ol>')
    namespace = f", namespace {e(t.namespace)}" if t.namespace else ""
    return (
        f'<div class="card">{heading(f"Template {t.name}")}'
        f'<p class="hint">Language {e(t.language)}{namespace}. The recipient sees the text Meta approved '
        "for this template, filled with these values.</p>"
        f"{''.join(lines)}{chips('Template buttons', buttons)}</div>"
    )


def _wa_parameter(p: TemplateParameter) -> str:
    if p.media is not None:
        return _wa_media(p.type.capitalize(), p.media)
    return e(p.text)


# -- Messenger ---------------------------------------------------------------------------------------

_FB_MEDIA = {"image": "Image", "audio": "Audio", "video": "Video", "file": "File"}
_FB_ACTIONS = {
    "typing_on": '<span class="typing" aria-hidden="true">•••</span> Typing indicator on',
    "typing_off": "Typing indicator off",
    "mark_seen": "Marks the conversation seen",
}


def messenger_chat(content: Mapping[str, Any], address: str) -> str:
    message = msgspec.convert(dict(content), MessengerMessage)
    fb = message.fb
    what, body = _fb_body(fb)
    flags = [fb.messaging_type, fb.tag or "", fb.notification_type or ""] if not fb.sender_action else []
    head = _head(message.appid, address, " · ".join(w for w in (f"Messenger {what}", *flags) if w))
    replies = [
        chip(r.title or "", "with an icon, not loaded" if r.image_url else "", "▣" if r.image_url else "")
        if r.content_type == "text"
        else chip("Send location", glyph="◎")
        for r in fb.quick_replies or []
    ]
    return chat("messenger", f"Messenger message to {address}", head, body + chips("Quick replies", replies))


def _fb_body(fb: MessengerContent) -> tuple[str, str]:
    if fb.sender_action:
        said = _FB_ACTIONS.get(fb.sender_action)
        if said is None:
            raise ValueError(f"no view of the sender action {fb.sender_action!r}")
        return "sender action", f'<p class="bubble action">{said}</p>'
    if fb.text is not None:
        return "Text", bubble(para(fb.text))
    a = fb.attachment
    if a is None:
        raise ValueError("a Messenger message with neither text nor attachment")
    if a.type in _FB_MEDIA:
        where = link(a.url) if a.url else f"attachment id <code>{e(a.attachment_id)}</code>"
        reuse = "reusable" if a.is_reusable else ""
        return _FB_MEDIA[a.type], bubble(placeholder(_FB_MEDIA[a.type], where, reuse))
    if a.template_type == "generic" and a.elements:
        cards = "".join(f"<li>{_fb_element(x)}</li>" for x in a.elements)
        label = f"Generic template, {len(a.elements)} element{'s' * (len(a.elements) > 1)}"
        return "Generic template", f'<ul class="cards" aria-label="{e(label)}">{cards}</ul>'
    if a.template_type == "button" and a.buttons:
        shown = bubble(para(a.text or "") or '<p class="hint">(no text)</p>')
        return "Button template", shown + chips("Buttons", [_fb_button(b) for b in a.buttons])
    if a.template_type == "receipt" and a.receipt is not None:
        return "Receipt template", bubble(_fb_receipt(a.receipt))
    if a.airline is not None:
        return "Airline template", bubble(_fb_airline(a))
    raise ValueError(f"no view of a Messenger {a.type!r} attachment")


def _fb_button(b: Button) -> str:
    if b.type == "web_url":
        return chip(b.title, link(b.url or ""), "↗")
    if b.type == "phone_number":
        return chip(b.title, f"calls {e(b.payload)}", "☎")
    return chip(b.title)


def _fb_element(x: GenericElement) -> str:
    image = placeholder("Image", link(x.image_url)) if x.image_url else ""
    opens = f'<p class="hint">Opens {link(x.item_url)}</p>' if x.item_url else ""
    buttons = chips("Buttons", [_fb_button(b) for b in x.buttons or []])
    return f'<div class="card">{image}{heading(x.title)}{para(x.subtitle or "")}{opens}{buttons}</div>'


def _fb_receipt(r: Receipt) -> str:
    rows: list[tuple[str, str]] = [
        ("Recipient", e(r.recipient_name)),
        ("Order", e(r.order_number)),
        ("Payment", e(r.payment_method)),
    ]
    if r.timestamp:
        rows.append(("Time", e(r.timestamp)))
    if r.address is not None:
        a = r.address
        parts = (a.street_1, a.street_2, a.city, a.postal_code, a.state, a.country)
        rows.append(("Ship to", e(", ".join(p for p in parts if p))))
    for x in r.elements:
        count = f"{x.quantity} \u00d7 " if x.quantity is not None else ""
        name = x.title + (f" ({x.subtitle})" if x.subtitle else "")
        rows.append((name, e(count + _amount(x.price, x.currency or r.currency))))
    for adj in r.adjustments or []:
        off = adj.amount or 0  # a discount: Meta shows it taken off
        sign = "-" if off >= 0 else "+"
        rows.append((adj.name or "Adjustment", e(sign + _amount(abs(off), r.currency))))
    s = r.summary
    for name, value in (("Subtotal", s.subtotal), ("Shipping", s.shipping_cost), ("Tax", s.total_tax)):
        if value is not None:
            rows.append((name, e(_amount(value, r.currency))))
    rows.append(("Total", f"<strong>{e(_amount(s.total_cost, r.currency))}</strong>"))
    lines = "".join(f'<tr><th scope="row">{e(k)}</th><td>{v}</td></tr>' for k, v in rows)
    order = f'<p class="hint">Order page: {link(r.order_url)}</p>' if r.order_url else ""
    return (
        f'<div class="card">{heading("Order confirmation")}'
        f'<table class="receipt"><tbody>{lines}</tbody></table>{order}</div>'
    )


def _fb_airline(a: Attachment) -> str:
    intro = (a.airline or {}).get("intro_message")
    return (
        f"{heading(f'Airline template {a.template_type}')}"
        '<p class="hint">Deprecated by Meta: Tidings fails it by notification, as Webex Connect does.</p>'
        f"{para(intro if isinstance(intro, str) else '')}"
    )


# -- RCS ---------------------------------------------------------------------------------------------

_RCS_WHAT = {"text": "Text", "media": "Media", "standalone": "Rich card", "carousel": "Carousel"}


def rcs_chat(content: Mapping[str, Any], address: str) -> str:
    message = msgspec.convert(dict(content), RcsMessage)
    rcs = message.rcs
    if rcs.type == "text":
        body = bubble(para(rcs.text))
    elif rcs.type == "media" and rcs.media is not None:
        thumb = f"thumbnail {link(rcs.media.thumbnailUrl)}" if rcs.media.thumbnailUrl else ""
        body = bubble(placeholder("Media", link(rcs.media.url), thumb))
    elif rcs.type == "standalone" and rcs.card is not None:
        side = " horizontal" if rcs.orientation == "HORIZONTAL" else ""
        body = _rcs_card(rcs.card, side)
    elif rcs.type == "carousel" and rcs.cards:
        width = " small" if rcs.cardWidth == "SMALL" else ""
        cards = "".join(f"<li>{_rcs_card(c)}</li>" for c in rcs.cards)
        body = f'<ul class="cards{width}" aria-label="Carousel of {len(rcs.cards)} cards">{cards}</ul>'
    else:
        raise ValueError(f"no view of an RCS {rcs.type!r} message")
    body += chips("Suggestions", [_rcs_suggestion(s) for s in rcs.suggestions])
    if message.sms is not None:
        body += (
            f'<p class="hint">When the number cannot get RCS: an SMS from {e(message.sms.senderid)}, '
            f"“{e(message.sms.text or '')}”.</p>"
        )
    head = _head(message.appid, address, f"RCS {_RCS_WHAT.get(rcs.type, rcs.type)}")
    return chat("rcs", f"RCS message to {address}", head, body)


def _rcs_card(c: RcsCard, extra: str = "") -> str:
    media = ""
    if c.media is not None:
        thumb = f"thumbnail {link(c.media.thumbnailUrl)}" if c.media.thumbnailUrl else ""
        height = f"height {c.media.height}" if c.media.height else ""
        media = placeholder("Media", link(c.media.url), e(height), thumb)
    text = f"<div>{heading(c.title)}{para(c.description)}</div>"
    suggestions = chips("Card suggestions", [_rcs_suggestion(s) for s in c.suggestions])
    return f'<div class="card rich{extra}">{media}{text}{suggestions}</div>'


def _rcs_suggestion(s: RcsSuggestion) -> str:
    if s.type == "openUrl":
        return chip(s.displayText, link(s.url), "↗")
    if s.type == "dialPhone":
        return chip(s.displayText, f"calls {e(s.phone)}", "☎")
    if s.type == "shareLocation":
        return chip(s.displayText, "shares the user's location", "◎")
    if s.type == "viewLocation":
        at = f"{s.latitude}, {s.longitude}" if s.latitude is not None else ""
        place = ", ".join(p for p in (s.label, s.address, at) if p)
        return chip(s.displayText, f"shows {e(place)}", "◎")
    if s.type == "calendarEvent":
        return chip(s.displayText, e(f"{s.meetingTitle}, {s.startTime} to {s.endTime}"), "▦")
    return chip(s.displayText)
