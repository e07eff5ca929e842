"""The v1 WhatsApp request object (`channels["OTT-Messaging"].wa`), checked by `decode_whatsapp`, and the
Cloud API body `cloud_message` builds from it.

One table: each case is a `wa` object and either the refusal it earns (the code and words of the
description that name the field) or the normalised `WhatsAppContent`, as builtins. The seeds hold no
WhatsApp object beyond the `{object(whatsappMessage)}` placeholder, so the accepted samples are Webex
Connect's WhatsApp pages' own (text, the media types, reply buttons with each header kind), with their
placeholders ("<message-body>", "<your-media-url>", "<VIDEO/MP4>") given values a sender would use.

Then one golden Cloud API body per message type: what the connector will POST to
`/{version}/{phone_number_id}/messages`, compared whole.
"""

import json
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest

from tidings.errors import ApiError
from tidings.schema.whatsapp import cloud_message, decode_whatsapp
from tidings.specs.whatsapp_codes import (
    META_ERRORS,
    OUTSIDE_WINDOW,
    UNKNOWN_STATUS,
    WHATSAPP_FAILURES,
    is_configuration_error,
    meta_error,
)
from tidings.statuses import Status


@dataclass(frozen=True)
class Refused:
    code: str
    words: str  # a substring of the description: the field it names


def missing(words: str) -> Refused:
    return Refused("7003", words)


def invalid(words: str) -> Refused:
    return Refused("7004", words)


Expected = Refused | dict[str, Any]
W = "channels.OTT-Messaging.wa"

# --- Webex Connect's documented samples (developers.webexconnect.io/reference/whatsapp-*) --------------

SAMPLE_TEXT: dict[str, Any] = {
    "type": "text",
    "preview_url": "true",
    "text": {"body": "Your order has shipped"},
}
SAMPLE_TEXT_HASH: dict[str, Any] = {**SAMPLE_TEXT, "identity_key_hash": "Qk9HVVM="}
SAMPLE_IMAGE: dict[str, Any] = {
    "type": "image",
    "image": {"url": "https://example.com/a.jpeg", "mimeType": "image/jpeg", "caption": "A picture"},
}
SAMPLE_VIDEO: dict[str, Any] = {
    "type": "video",
    "video": {"url": "https://example.com/a.mp4", "mimeType": "VIDEO/MP4"},
}
SAMPLE_AUDIO: dict[str, Any] = {
    "type": "audio",
    "audio": {"url": "http://techslides.com/demos/samples/sample.aac", "mimeType": "audio/aac"},
}
SAMPLE_DOCUMENT: dict[str, Any] = {
    "type": "document",
    "document": {
        "url": "http://www.africau.edu/images/default/sample.pdf",
        "filename": "Document test",
        "mimeType": "application/pdf",
    },
}
SAMPLE_STICKER: dict[str, Any] = {
    "type": "sticker",
    "sticker": {"url": "https://example.com/e5eb7336.webp", "mimeType": "image/WEBP"},
}
BUTTONS = [
    {"type": "reply", "reply": {"id": "ButtonId1", "title": "First Button"}},
    {"type": "reply", "reply": {"id": "ButtonId2", "title": "Secound Button"}},
    {"type": "reply", "reply": {"id": "ButtonId3", "title": "Third Button"}},
]
BUTTONS_OUT = [b["reply"] for b in BUTTONS]


def sample_reply(header: dict[str, Any]) -> dict[str, Any]:
    """The "Reply buttons" sample with one of its header choices (text, document, video or image)."""
    return {
        "type": "reply",
        "reply": {
            "header": header,
            "body": {"text": "Body text mssage"},
            "footer": {"text": "Footer text message"},
            "action": {"buttons": BUTTONS},
        },
    }


def reply_out(header: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "header": header,
            "body": "Body text mssage",
            "footer": "Footer text message",
            "buttons": BUTTONS_OUT,
        },
    }


PROVIDER = {"name": "provider-name"}  # in the samples' media; ignored
PDF = "http://www.africau.edu/images/default/sample.pdf"
MP4 = "https://example.com/file_example_MP4_480_1_5MG.mp4"
JPEG = "https://example.com/0266554465.jpeg"

# --- builders for the rest of the table ------------------------------------------------------------


def text(body: Any = "hello", **more: Any) -> dict[str, Any]:
    return {"type": "text", "text": {"body": body, **more}}


def media(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, kind: fields}


def location(**fields: Any) -> dict[str, Any]:
    return {"type": "location", "location": {"latitude": 51.5, "longitude": -0.12, **fields}}


NAME = {"formatted_name": "Ada Lovelace", "first_name": "Ada"}


def contact(**fields: Any) -> dict[str, Any]:
    return {"type": "contacts", "contacts": [{"name": NAME, **fields}]}


def buttons(n: int) -> list[dict[str, Any]]:
    return [{"type": "reply", "reply": {"id": f"b{k}", "title": f"Button {k}"}} for k in range(n)]


def interactive(kind: str = "button", **fields: Any) -> dict[str, Any]:
    action = {"buttons": buttons(2)} if kind == "button" else {"button": "Pick", "sections": [section(2)]}
    return {
        "type": "interactive",
        "interactive": {"type": kind, "body": {"text": "Choose"}, "action": action, **fields},
    }


def section(rows: int, title: str | None = None, first: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": [{"id": f"r{k}", "title": f"Row {k}"} for k in range(first, first + rows)]}
    if title is not None:
        out["title"] = title
    return out


def a_list(*sections: dict[str, Any], button: str = "Pick", **fields: Any) -> dict[str, Any]:
    return {
        "type": "list",
        "list": {
            "body": {"text": "Choose"},
            "action": {"button": button, "sections": list(sections)},
            **fields,
        },
    }


def list_out(*sections: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": "Choose",
            "button": "Pick",
            "sections": list(sections),
            **fields,
        },
    }


CASES: dict[str, tuple[dict[str, Any] | bytes, Expected]] = {
    # Webex Connect's samples, accepted.
    "sample: text with preview_url beside type": (
        SAMPLE_TEXT,
        {"type": "text", "text": {"body": "Your order has shipped", "preview_url": True}},
    ),
    "sample: text with identity_key_hash": (
        SAMPLE_TEXT_HASH,
        {
            "type": "text",
            "text": {"body": "Your order has shipped", "preview_url": True},
            "identity_key_hash": "Qk9HVVM=",
        },
    ),
    "sample: image": (
        SAMPLE_IMAGE,
        {
            "type": "image",
            "media": {
                "link": "https://example.com/a.jpeg",
                "caption": "A picture",
                "mime_type": "image/jpeg",
            },
        },
    ),
    "sample: video (upper-case mimeType)": (
        SAMPLE_VIDEO,
        {"type": "video", "media": {"link": "https://example.com/a.mp4", "mime_type": "VIDEO/MP4"}},
    ),
    "sample: audio": (
        SAMPLE_AUDIO,
        {
            "type": "audio",
            "media": {"link": SAMPLE_AUDIO["audio"]["url"], "mime_type": "audio/aac"},
        },
    ),
    "sample: document": (
        SAMPLE_DOCUMENT,
        {
            "type": "document",
            "media": {"link": PDF, "filename": "Document test", "mime_type": "application/pdf"},
        },
    ),
    "sample: sticker": (
        SAMPLE_STICKER,
        {
            "type": "sticker",
            "media": {"link": "https://example.com/e5eb7336.webp", "mime_type": "image/WEBP"},
        },
    ),
    "sample: reply buttons, text header": (
        sample_reply({"type": "text", "text": "Reply button your text"}),
        reply_out({"type": "text", "text": "Reply button your text"}),
    ),
    "sample: reply buttons, document header": (
        sample_reply(
            {
                "type": "document",
                "document": {"url": PDF, "provider": PROVIDER, "filename": "some-file-name"},
            }
        ),
        reply_out({"type": "document", "media": {"link": PDF, "filename": "some-file-name"}}),
    ),
    "sample: reply buttons, video header": (
        sample_reply({"type": "video", "video": {"url": MP4, "provider": PROVIDER}}),
        reply_out({"type": "video", "media": {"link": MP4}}),
    ),
    "sample: reply buttons, image header": (
        sample_reply({"type": "image", "image": {"url": JPEG, "provider": PROVIDER}}),
        reply_out({"type": "image", "media": {"link": JPEG}}),
    ),
    # The envelope: type and its object.
    "not an object": (b"[]", invalid(W)),
    "type missing": ({"text": {"body": "x"}}, missing(f"{W}.type")),
    "type empty": ({"type": "", "text": {"body": "x"}}, missing(f"{W}.type")),
    "type unknown": ({"type": "carousel"}, invalid(f"{W}.type 'carousel'")),
    "type not a string": ({"type": 7}, invalid(f"{W}.type: expected `str`")),
    "template is message.template": ({"type": "template"}, invalid("message.template")),
    "hsm is message.template": ({"type": "hsm"}, invalid("message.template")),
    "type without its object": ({"type": "image"}, missing(f"{W}.image")),
    "unknown fields ignored": (
        {**text(), "recipient_type": "individual", "extra": {"a": 1}},
        {"type": "text", "text": {"body": "hello"}},
    ),
    # text
    "text: body missing": ({"type": "text", "text": {}}, missing(f"{W}.text.body")),
    "text: body empty": (text(""), missing(f"{W}.text.body")),
    "text: body not a string": (text(5), invalid(f"{W}.text.body: expected `str`")),
    "text: 4096 characters": (
        text("é" * 4096),
        {"type": "text", "text": {"body": "é" * 4096}},
    ),
    "text: 4097 characters is 7714": (text("a" * 4097), Refused("7714", f"{W}.text.body")),
    "text: preview_url inside text (Cloud API)": (
        text(preview_url=True),
        {"type": "text", "text": {"body": "hello", "preview_url": True}},
    ),
    "text: preview_url inside wins": (
        {**text(preview_url="false"), "preview_url": "true"},
        {"type": "text", "text": {"body": "hello"}},
    ),
    "text: preview_url not a flag": (
        {**text(), "preview_url": "yes"},
        invalid(f"{W}.preview_url must be true or false"),
    ),
    # media
    "media: Cloud API link without mimeType is 7003": (
        media("image", link="https://example.com/a.png"),
        missing(f"{W}.image.mimeType"),
    ),
    "media: id without mimeType": (
        media("image", id="1234567890"),
        {"type": "image", "media": {"id": "1234567890"}},
    ),
    "media: url missing": (media("video", mimeType="video/mp4"), missing(f"{W}.video.url")),
    "media: url and id": (
        media("image", url="https://example.com/a.png", id="1", mimeType="image/png"),
        invalid(f"{W}.image: give url or id"),
    ),
    "media: url not http": (
        media("image", url="ftp://example.com/a.png", mimeType="image/png"),
        invalid(f"{W}.image.url must be an absolute http(s) URL"),
    ),
    "media: mimeType missing": (
        media("document", url="https://example.com/a.pdf"),
        missing(f"{W}.document.mimeType"),
    ),
    "media: mimeType not a MIME type": (
        media("image", url="https://example.com/a.png", mimeType="png"),
        invalid(f"{W}.image.mimeType 'png'"),
    ),
    "media: mimeType of another kind": (
        media("audio", url="https://example.com/a.mp4", mimeType="video/mp4"),
        invalid(f"{W}.audio.mimeType 'video/mp4' does not fit a audio"),
    ),
    "media: sticker must be webp": (
        media("sticker", url="https://example.com/a.png", mimeType="image/png"),
        invalid(f"{W}.sticker.mimeType"),
    ),
    "media: caption on audio": (
        media("audio", url="https://example.com/a.aac", mimeType="audio/aac", caption="hi"),
        invalid(f"{W}.audio.caption"),
    ),
    "media: caption 1024 characters": (
        media("video", id="9", caption="c" * 1024),
        {"type": "video", "media": {"id": "9", "caption": "c" * 1024}},
    ),
    "media: caption 1025 characters": (
        media("video", id="9", caption="c" * 1025),
        invalid(f"{W}.video.caption is longer than 1024"),
    ),
    "media: filename on an image": (
        media("image", id="9", filename="a.png"),
        invalid(f"{W}.image.filename"),
    ),
    # location
    "location: numbers": (
        location(name="HQ", address="1 Main St"),
        {
            "type": "location",
            "location": {"latitude": 51.5, "longitude": -0.12, "name": "HQ", "address": "1 Main St"},
        },
    ),
    "location: strings": (
        {"type": "location", "location": {"latitude": "-33.86", "longitude": "151.2"}},
        {"type": "location", "location": {"latitude": -33.86, "longitude": 151.2}},
    ),
    "location: latitude missing": (
        {"type": "location", "location": {"longitude": 1}},
        missing(f"{W}.location.latitude"),
    ),
    "location: longitude empty": (
        {"type": "location", "location": {"latitude": 1, "longitude": ""}},
        missing(f"{W}.location.longitude"),
    ),
    "location: latitude out of range": (location(latitude=90.5), invalid(f"{W}.location.latitude")),
    "location: longitude not a number": (
        location(longitude="east"),
        invalid(f"{W}.location.longitude 'east' is not a number"),
    ),
    "location: nan": (location(latitude="nan"), invalid(f"{W}.location.latitude")),
    # contacts
    "contacts: full": (
        contact(
            phones=[{"phone": "+16505551234", "type": "WORK", "wa_id": "16505551234"}],
            emails=[{"email": "ada@example.com", "type": "HOME"}],
            urls=[{"url": "https://example.com", "type": "WORK"}],
            addresses=[{"city": "London", "country_code": "GB", "type": "HOME"}],
            org={"company": "Analytical Engines", "title": "Programmer"},
            birthday="1815-12-10",
        ),
        {
            "type": "contacts",
            "contacts": [
                {
                    "name": NAME,
                    "phones": [{"phone": "+16505551234", "type": "WORK", "wa_id": "16505551234"}],
                    "emails": [{"email": "ada@example.com", "type": "HOME"}],
                    "urls": [{"url": "https://example.com", "type": "WORK"}],
                    "addresses": [{"city": "London", "country_code": "GB", "type": "HOME"}],
                    "org": {"company": "Analytical Engines", "title": "Programmer"},
                    "birthday": "1815-12-10",
                }
            ],
        },
    ),
    "contacts: missing": ({"type": "contacts"}, missing(f"{W}.contacts")),
    "contacts: empty": ({"type": "contacts", "contacts": []}, missing(f"{W}.contacts")),
    "contacts: formatted_name missing": (
        {"type": "contacts", "contacts": [{"name": {"first_name": "Ada"}}]},
        missing(f"{W}.contacts[0].name.formatted_name"),
    ),
    "contacts: no name part": (
        {"type": "contacts", "contacts": [{"name": {"formatted_name": "Ada"}}]},
        missing(f"{W}.contacts[0].name.first_name|"),
    ),
    "contacts: birthday not a date": (
        contact(birthday="1815-13-10"),
        invalid(f"{W}.contacts[0].birthday"),
    ),
    "contacts: phones not a list": (
        contact(phones={"phone": "1"}),
        invalid(f"{W}.contacts[0].phones: expected `array`"),
    ),
    # interactive, Cloud API spelling
    "interactive: buttons": (
        interactive(footer={"text": "Thanks"}),
        {
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": "Choose",
                "footer": "Thanks",
                "buttons": [{"id": "b0", "title": "Button 0"}, {"id": "b1", "title": "Button 1"}],
            },
        },
    ),
    "interactive: list": (
        interactive("list", header={"type": "text", "text": "Menu"}),
        list_out(section(2), header={"type": "text", "text": "Menu"}),
    ),
    "interactive: type missing": (
        {"type": "interactive", "interactive": {"body": {"text": "x"}}},
        missing(f"{W}.interactive.type"),
    ),
    "interactive: cta_url refused": (
        {"type": "interactive", "interactive": {"type": "cta_url"}},
        invalid(f"{W}.interactive.type 'cta_url'"),
    ),
    "interactive: body missing": (
        {"type": "interactive", "interactive": {"type": "button", "action": {"buttons": buttons(1)}}},
        missing(f"{W}.interactive.body.text"),
    ),
    "interactive: body 1025 characters": (
        interactive(body={"text": "b" * 1025}),
        invalid(f"{W}.interactive.body.text is longer than 1024"),
    ),
    "interactive: footer 61 characters": (
        interactive(footer={"text": "f" * 61}),
        invalid(f"{W}.interactive.footer.text is longer than 60"),
    ),
    "interactive: header text 61 characters": (
        interactive(header={"type": "text", "text": "h" * 61}),
        invalid(f"{W}.interactive.header.text is longer than 60"),
    ),
    "interactive: header type missing": (
        interactive(header={"text": "h"}),
        missing(f"{W}.interactive.header.type"),
    ),
    "interactive: header image without its object": (
        interactive(header={"type": "image"}),
        missing(f"{W}.interactive.header.image"),
    ),
    "interactive: header image by id": (
        interactive(header={"type": "image", "image": {"id": "42"}}),
        {
            "type": "interactive",
            "interactive": {
                "type": "button",
                "header": {"type": "image", "media": {"id": "42"}},
                "body": "Choose",
                "buttons": [{"id": "b0", "title": "Button 0"}, {"id": "b1", "title": "Button 1"}],
            },
        },
    ),
    "interactive: list header is text only": (
        interactive("list", header={"type": "image", "image": {"id": "42"}}),
        invalid(f"{W}.interactive.header.type 'image' is not one of text"),
    ),
    # reply buttons
    "reply: buttons missing": (
        {"type": "reply", "reply": {"body": {"text": "x"}}},
        missing(f"{W}.reply.action.buttons"),
    ),
    "reply: three buttons": (
        {"type": "reply", "reply": {"body": {"text": "x"}, "action": {"buttons": buttons(3)}}},
        {
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": "x",
                "buttons": [b["reply"] for b in buttons(3)],
            },
        },
    ),
    "reply: four buttons": (
        {"type": "reply", "reply": {"body": {"text": "x"}, "action": {"buttons": buttons(4)}}},
        invalid(f"{W}.reply.action.buttons: at most 3 buttons, 4 given"),
    ),
    "reply: button type missing": (
        interactive(action={"buttons": [{"reply": {"id": "a", "title": "A"}}]}),
        missing(f"{W}.interactive.action.buttons[0].type"),
    ),
    "reply: button type not reply": (
        interactive(action={"buttons": [{"type": "url", "reply": {"id": "a", "title": "A"}}]}),
        invalid(f"{W}.interactive.action.buttons[0].type 'url' must be reply"),
    ),
    "reply: title missing": (
        interactive(action={"buttons": [{"type": "reply", "reply": {"id": "a"}}]}),
        missing(f"{W}.interactive.action.buttons[0].reply.title"),
    ),
    "reply: id missing": (
        interactive(action={"buttons": [{"type": "reply", "reply": {"title": "A"}}]}),
        missing(f"{W}.interactive.action.buttons[0].reply.id"),
    ),
    "reply: title 21 characters": (
        interactive(action={"buttons": [{"type": "reply", "reply": {"id": "a", "title": "t" * 21}}]}),
        invalid(f"{W}.interactive.action.buttons[0].reply.title is longer than 20"),
    ),
    "reply: id 257 characters": (
        interactive(action={"buttons": [{"type": "reply", "reply": {"id": "i" * 257, "title": "A"}}]}),
        invalid(f"{W}.interactive.action.buttons[0].reply.id is longer than 256"),
    ),
    "reply: same id twice": (
        interactive(
            action={
                "buttons": [
                    {"type": "reply", "reply": {"id": "a", "title": "A"}},
                    {"type": "reply", "reply": {"id": "a", "title": "B"}},
                ]
            }
        ),
        invalid(f"{W}.interactive.action.buttons[1].reply: ids and titles must be unique"),
    ),
    # lists
    "list: one section without title": (a_list(section(3)), list_out(section(3))),
    "list: ten rows over two titled sections": (
        a_list(section(4, "A"), section(6, "B", first=4)),
        list_out(section(4, "A"), section(6, "B", first=4)),
    ),
    "list: eleven rows": (
        a_list(section(5, "A"), section(6, "B", first=5)),
        invalid(f"{W}.list.action.sections: at most 10 rows in all, 11 given"),
    ),
    "list: eleven sections": (
        a_list(*(section(1, f"S{k}", first=k) for k in range(11))),
        invalid(f"{W}.list.action.sections: at most 10 sections, 11 given"),
    ),
    "list: sections missing": (
        {"type": "list", "list": {"body": {"text": "x"}, "action": {"button": "Pick"}}},
        missing(f"{W}.list.action.sections"),
    ),
    "list: button missing": (
        a_list(section(1), button=""),
        missing(f"{W}.list.action.button"),
    ),
    "list: button 21 characters": (
        a_list(section(1), button="b" * 21),
        invalid(f"{W}.list.action.button is longer than 20"),
    ),
    "list: section without rows": (
        a_list({"title": "A", "rows": []}),
        missing(f"{W}.list.action.sections[0].rows"),
    ),
    "list: several sections need titles": (
        a_list(section(1, "A"), section(1, first=1)),
        missing(f"{W}.list.action.sections[1].title"),
    ),
    "list: section title 25 characters": (
        a_list(section(1, "s" * 25)),
        invalid(f"{W}.list.action.sections[0].title is longer than 24"),
    ),
    "list: row title 25 characters": (
        a_list({"rows": [{"id": "r", "title": "t" * 25}]}),
        invalid(f"{W}.list.action.sections[0].rows[0].title is longer than 24"),
    ),
    "list: row id 201 characters": (
        a_list({"rows": [{"id": "i" * 201, "title": "t"}]}),
        invalid(f"{W}.list.action.sections[0].rows[0].id is longer than 200"),
    ),
    "list: row description 73 characters": (
        a_list({"rows": [{"id": "r", "title": "t", "description": "d" * 73}]}),
        invalid(f"{W}.list.action.sections[0].rows[0].description is longer than 72"),
    ),
    "list: row description kept": (
        a_list({"rows": [{"id": "r", "title": "t", "description": "d" * 72}]}),
        list_out({"rows": [{"id": "r", "title": "t", "description": "d" * 72}]}),
    ),
    "list: row id twice across sections": (
        a_list(section(1, "A"), section(1, "B")),
        invalid(f"{W}.list.action.sections[1].rows[0].id 'r0' is given twice"),
    ),
    "list: row title missing": (
        a_list({"rows": [{"id": "r"}]}),
        missing(f"{W}.list.action.sections[0].rows[0].title"),
    ),
    # reaction
    "reaction": (
        {"type": "reaction", "reaction": {"message_id": "wamid.HBgL", "emoji": "\U0001f600"}},
        {"type": "reaction", "reaction": {"message_id": "wamid.HBgL", "emoji": "\U0001f600"}},
    ),
    "reaction: empty emoji removes": (
        {"type": "reaction", "reaction": {"message_id": "wamid.HBgL", "emoji": ""}},
        {"type": "reaction", "reaction": {"message_id": "wamid.HBgL", "emoji": ""}},
    ),
    "reaction: message_id missing": (
        {"type": "reaction", "reaction": {"emoji": "x"}},
        missing(f"{W}.reaction.message_id"),
    ),
    "reaction: emoji missing": (
        {"type": "reaction", "reaction": {"message_id": "wamid.1"}},
        missing(f"{W}.reaction.emoji"),
    ),
}


@pytest.mark.parametrize(("wa", "expected"), CASES.values(), ids=CASES.keys())
def test_whatsapp_request_object(wa: dict[str, Any] | bytes, expected: Expected) -> None:
    raw = wa if isinstance(wa, bytes) else json.dumps(wa).encode()
    if isinstance(expected, Refused):
        with pytest.raises(ApiError) as refused:
            decode_whatsapp(raw, W)
        got = (refused.value.code, expected.words in refused.value.description)
        assert got == (expected.code, True), refused.value.description
    else:
        assert msgspec.to_builtins(decode_whatsapp(raw, W)) == expected


# --- golden Cloud API bodies ---------------------------------------------------------------------

TO = "447700900123"
ENVELOPE = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO}

GOLDEN: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "text": (
        SAMPLE_TEXT_HASH,
        {"type": "text", "text": {"body": "Your order has shipped", "preview_url": True}},
    ),
    "text without preview": (
        text("hi"),
        {"type": "text", "text": {"body": "hi", "preview_url": False}},
    ),
    "image": (
        SAMPLE_IMAGE,
        {"type": "image", "image": {"link": "https://example.com/a.jpeg", "caption": "A picture"}},
    ),
    "audio": (SAMPLE_AUDIO, {"type": "audio", "audio": {"link": SAMPLE_AUDIO["audio"]["url"]}}),
    "video by id": (
        media("video", id="1166846181421424", caption="Clip"),
        {"type": "video", "video": {"id": "1166846181421424", "caption": "Clip"}},
    ),
    "document": (
        SAMPLE_DOCUMENT,
        {"type": "document", "document": {"link": PDF, "filename": "Document test"}},
    ),
    "sticker": (
        SAMPLE_STICKER,
        {"type": "sticker", "sticker": {"link": "https://example.com/e5eb7336.webp"}},
    ),
    "location": (
        location(name="HQ", address="1 Main St"),
        {
            "type": "location",
            "location": {"latitude": 51.5, "longitude": -0.12, "name": "HQ", "address": "1 Main St"},
        },
    ),
    "contacts": (
        contact(phones=[{"phone": "+16505551234", "type": "CELL"}], birthday="1815-12-10"),
        {
            "type": "contacts",
            "contacts": [
                {
                    "name": NAME,
                    "phones": [{"phone": "+16505551234", "type": "CELL"}],
                    "birthday": "1815-12-10",
                }
            ],
        },
    ),
    "reply buttons with a document header": (
        sample_reply({"type": "document", "document": {"url": PDF, "filename": "f.pdf"}}),
        {
            "type": "interactive",
            "interactive": {
                "type": "button",
                "header": {"type": "document", "document": {"link": PDF, "filename": "f.pdf"}},
                "body": {"text": "Body text mssage"},
                "footer": {"text": "Footer text message"},
                "action": {"buttons": BUTTONS},
            },
        },
    ),
    "list": (
        a_list(
            {"title": "A", "rows": [{"id": "r0", "title": "Row 0", "description": "First"}]},
            section(1, "B", first=1),
            header={"type": "text", "text": "Menu"},
        ),
        {
            "type": "interactive",
            "interactive": {
                "type": "list",
                "header": {"type": "text", "text": "Menu"},
                "body": {"text": "Choose"},
                "action": {
                    "button": "Pick",
                    "sections": [
                        {"title": "A", "rows": [{"id": "r0", "title": "Row 0", "description": "First"}]},
                        {"title": "B", "rows": [{"id": "r1", "title": "Row 1"}]},
                    ],
                },
            },
        },
    ),
    "reaction": (
        {"type": "reaction", "reaction": {"message_id": "wamid.HBgL", "emoji": "\U0001f44d"}},
        {"type": "reaction", "reaction": {"message_id": "wamid.HBgL", "emoji": "\U0001f44d"}},
    ),
}


@pytest.mark.parametrize(("wa", "body"), GOLDEN.values(), ids=GOLDEN.keys())
def test_cloud_message(wa: dict[str, Any], body: dict[str, Any]) -> None:
    sent = cloud_message(decode_whatsapp(json.dumps(wa).encode(), W), TO)
    assert sent == {**ENVELOPE, **body}
    json.dumps(sent)  # the body is plain JSON as it stands


# --- the code tables ------------------------------------------------------------------------------


def test_meta_errors_land_on_documented_codes() -> None:
    for meta, (code, _, _) in META_ERRORS.items():
        assert code in WHATSAPP_FAILURES, meta
    assert meta_error(131047)[:2] == (OUTSIDE_WINDOW, False)
    assert [meta_error(c)[1] for c in (130429, 131056, 131000)] == [True, True, True]
    assert meta_error(250) == ("7840", False, meta_error(250)[2])
    assert meta_error(999999)[0] == UNKNOWN_STATUS
    assert is_configuration_error(190) and is_configuration_error(299)
    assert not is_configuration_error(131026)
    assert WHATSAPP_FAILURES["7705"].status is Status.EXPIRED
    assert {o.status for c, o in WHATSAPP_FAILURES.items() if c != "7705"} == {Status.FAILED}
