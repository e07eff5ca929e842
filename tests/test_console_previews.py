"""The console's chat previews of WhatsApp, Messenger and RCS messages, over HTTP against a real
`tidings serve`: one message of each type sent to a sandbox app through the v1 API (WhatsApp's
documented samples, the seed's Messenger samples, a template from the registry), the WhatsApp REST API
and the v2 API (RCS), then its console page read signed in: the bubble's text, the chips, a list's rows,
the cards, media as placeholders with their URLs; text from the content escaped, no javascript: link and
no <img> anywhere. Stored contents the API would refuse (javascript: URLs, other shapes) are drawn
straight through `preview()`: still no link, or the JSON view. Then the pages in headless Chromium: the
tabs by keyboard, a phone-sized screen, and screenshots (copied to docs/console/preview-*.png with
TIDINGS_UPDATE_SCREENSHOTS=1, as tests/test_console_browser.py does)."""

import copy
import html
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from tests.conftest import KEY_A, assert_no_secrets
from tests.support.console import sign_in
from tests.support.receiver import Receiver
from tests.support.server import TidingsServer
from tests.test_console import console_config
from tests.test_console_browser import WAIT_MS, Shots, browser  # noqa: F401 - a fixture of this module too
from tests.test_console_browser import sign_in as browser_sign_in
from tests.test_messenger_request import SEED_REQUESTS
from tests.test_rcs_e2e import CONTENTS as RCS_CONTENTS
from tests.test_whatsapp_request import (
    SAMPLE_AUDIO,
    SAMPLE_DOCUMENT,
    SAMPLE_IMAGE,
    SAMPLE_STICKER,
    SAMPLE_VIDEO,
    a_list,
    contact,
    location,
    media,
    sample_reply,
    section,
)
from tests.test_whatsapp_templates import ORDER, TEMPLATES, template_send
from tidings.console.previews import preview

APP = "preview-app"
TO = "447700900123"
PSID = "2345678901234567"
HOSTILE = '<script>alert("x")</script>'
LINK = 'rel="noopener noreferrer nofollow" target="_blank"'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[TidingsServer]:
    apps = f'\n[[apps]]\nid = "{APP}"\nservice = "alpha"\n'
    s = TidingsServer(
        tmp_path_factory.mktemp("previews"), console_config(receiver) + TEMPLATES + apps
    ).start()
    yield s
    code = s.stop()
    s.close()
    assert code == 0, s.output()
    assert_no_secrets(s)


@pytest.fixture(scope="module")
def console(server: TidingsServer) -> Iterator[httpx.Client]:
    with sign_in(server.url, KEY_A) as client:
        yield client


# -- sending -------------------------------------------------------------------------------------------


def v1(server: TidingsServer, body: dict[str, Any]) -> str:
    answer = server.send({**body, "appid": APP}, KEY_A).json()["response"]
    assert isinstance(answer, list) and answer[0]["code"] == "1001", answer
    return str(answer[0]["transid"])


def wa(server: TidingsServer, obj: dict[str, Any]) -> str:
    channels = {"OTT-Messaging": {"wa": obj}}
    return v1(server, {"deliverychannel": "whatsapp", "channels": channels, "destination": [{"waid": [TO]}]})


def fb(server: TidingsServer, request: dict[str, Any]) -> str:
    return v1(server, {**request, "destination": [{"psid": [PSID]}]})


def rcs(server: TidingsServer, content: dict[str, Any], **extra: Any) -> str:
    body = {"channel": "rcs", "from": APP, "to": [{"msisdn": [f"+{TO}"]}], "content": content, **extra}
    answer = server.client.post("/v2/messages", json=body, headers={"key": KEY_A})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["messageId"])


def shown(console: httpx.Client, transid: str) -> str:
    """The message page's preview section, once the whole page is checked for what must never be in it."""
    answer = console.get(f"/console/messages/{transid}")
    assert answer.status_code == 200, answer.text
    page = answer.text
    assert "<script>" not in page and "<img" not in page
    assert not re.search(r"href=[\"']?\s*javascript", page, re.IGNORECASE)
    start = page.index('<h2 id="h-preview">')
    part = page[start : page.index('<section aria-labelledby="h-notes">', start)]
    assert '<figure class="chat ' in part, part  # the chat view, not the JSON fallback
    assert '>Chat</button><button type="button" role="tab"' in part and ">JSON</button>" in part
    return part


def words(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def links(fragment: str) -> list[str]:
    """Every link's address; each must open apart, with no referrer and no follow."""
    found = re.findall(r"<a ([^>]*)>", fragment)
    assert all(f"{LINK}" in a and re.match(r'href="https?://', a) for a in found), found
    return [html.unescape(re.search(r'href="([^"]*)"', a).group(1)) for a in found]  # type: ignore[union-attr]


def placeholder(kind: str) -> str:
    return f'<div class="media" role="group" aria-label="{kind} (not loaded)"><strong>{kind}</strong>'


# -- WhatsApp ------------------------------------------------------------------------------------------

JPEG = "https://example.com/banner.jpeg"
WA_CASES: dict[str, tuple[dict[str, Any], list[str], list[str]]] = {
    # name: (the wa object, HTML fragments the preview holds, the links in it)
    "text with preview_url": (
        {
            "type": "text",
            "preview_url": "true",
            "text": {"body": f"{HOSTILE} javascript:alert(1) track https://example.com/t?a=1&b=2."},
        },
        [
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; javascript:alert(1) track ",
            f'<a href="https://example.com/t?a=1&amp;b=2" {LINK}>https://example.com/t?a=1&amp;b=2</a>.</p>',
            placeholder("Link preview"),
        ],
        ["https://example.com/t?a=1&b=2"] * 2,
    ),
    "image": (
        SAMPLE_IMAGE,
        [placeholder("Image"), "image/jpeg", "<p>A picture</p>", "WhatsApp Image</figcaption>"],
        ["https://example.com/a.jpeg"],
    ),
    "audio": (
        SAMPLE_AUDIO,
        [placeholder("Audio"), "audio/aac"],
        ["http://techslides.com/demos/samples/sample.aac"],
    ),
    "video": (SAMPLE_VIDEO, [placeholder("Video"), "VIDEO/MP4"], ["https://example.com/a.mp4"]),
    "document": (
        SAMPLE_DOCUMENT,
        [placeholder("Document"), "<br>Document test<br>application/pdf"],
        ["http://www.africau.edu/images/default/sample.pdf"],
    ),
    "sticker": (SAMPLE_STICKER, [placeholder("Sticker")], ["https://example.com/e5eb7336.webp"]),
    "image by media id": (
        media("image", id="1037543291543636", caption="Uploaded"),
        [placeholder("Image"), "media id <code>1037543291543636</code>", "<p>Uploaded</p>"],
        [],
    ),
    "location": (
        location(name="Head office", address="1 Main St <b>"),
        [placeholder("Location"), "<br>Head office<br>1 Main St &lt;b&gt;<br>51.500000, -0.120000</div>"],
        [],
    ),
    "contacts": (
        contact(
            phones=[{"phone": "+447700900999", "type": "CELL"}],
            emails=[{"email": "ada@example.com"}],
            urls=[{"url": "https://example.com/ada"}, {"url": "javascript:alert(1)"}],
            org={"company": "Analytical Engines", "title": "Countess"},
            birthday="1815-12-10",
        ),
        [
            '<div class="card"><h3>Ada Lovelace</h3><dl><dt>Phone</dt><dd>+447700900999</dd>',
            "<dt>Email</dt><dd>ada@example.com</dd>",
            '<dt>Web</dt><dd><span class="url">javascript:alert(1)</span></dd>',
            "<dt>Organisation</dt><dd>Analytical Engines, Countess</dd><dt>Birthday</dt><dd>1815-12-10</dd>",
        ],
        ["https://example.com/ada"],
    ),
    "reply buttons with an image header": (
        sample_reply({"type": "image", "image": {"url": JPEG}}),
        [
            placeholder("Image"),
            '<p>Body text mssage</p><p class="foot">Footer text message</p></div>',
            '<ul class="chips" aria-label="Reply buttons"><li>First Button</li><li>Secound Button</li>'
            "<li>Third Button</li></ul>",
            "WhatsApp Reply buttons</figcaption>",
        ],
        [JPEG],
    ),
    "list": (
        a_list(section(2, "Tomorrow"), section(1, "Saturday", first=2), button="Pick a slot"),
        [
            '<ul class="chips" aria-label="List button"><li><span aria-hidden="true">☰</span> Pick a slot'
            "</li>",
            '<div role="group" aria-label="Tomorrow"><h3>Tomorrow</h3><ul class="rows"><li><strong>Row 0'
            "</strong></li><li><strong>Row 1</strong></li></ul></div>",
            "<h3>Saturday</h3>",
            "WhatsApp List</figcaption>",
        ],
        [],
    ),
    "reaction": (
        {"type": "reaction", "reaction": {"message_id": "wamid.HBgLNDQ3", "emoji": "\U0001f44d"}},
        ['Reacts <span class="emoji">\U0001f44d</span> to message <code>wamid.HBgLNDQ3</code>'],
        [],
    ),
}


@pytest.mark.parametrize("name", list(WA_CASES))
def test_whatsapp_previews(server: TidingsServer, console: httpx.Client, name: str) -> None:
    obj, fragments, expected_links = WA_CASES[name]
    part = shown(console, wa(server, obj))
    for fragment in fragments:
        assert fragment in part, (fragment, part)
    assert links(part) == expected_links
    assert f"<strong>{APP}</strong> to +{TO}" in part


def test_a_whatsapp_template_shows_its_name_language_and_values(
    server: TidingsServer, console: httpx.Client
) -> None:
    transid = v1(server, template_send(TO, {"template": "order_update", "parameters": ORDER}, APP))
    part = shown(console, transid)
    assert "<h3>Template order_update_v2</h3>" in part and "Language en_GB, namespace c8ae5f90_" in part
    assert (
        '<p class="head">Header</p><ol class="params"><li><code>{{1}}</code> ' + placeholder("Image") in part
    )
    assert '<p class="head">Body</p><ol class="params"><li><code>{{1}}</code> Ada</li>' in part
    assert "<li><code>{{2}}</code> 4711</li>" in part
    assert "<li>URL button 0<small>4711?ref=wa</small></li>" in part
    assert "<li>Quick reply button 1<small>STOP-4711</small></li>" in part
    assert links(part) == [ORDER["banner"]["link"]]  # type: ignore[index]


def test_the_whatsapp_rest_apis_quick_replies_are_chips(server: TidingsServer, console: httpx.Client) -> None:
    body = {
        "from": APP,
        "to": f"+{TO}",
        "contentType": "text",
        "content": f"Still want it? {HOSTILE}",
        "quickReplies": [{"buttonText": "Yes", "payload": "y"}, {"buttonText": "No <b>", "payload": "n"}],
    }
    answer = server.client.post("/v1/whatsapp/messages", json=body, headers={"key": KEY_A})
    assert answer.status_code == 202, answer.text
    part = shown(console, answer.json()["messageId"])
    assert "<p>Still want it? &lt;script&gt;" in part
    assert '<ul class="chips" aria-label="Reply buttons"><li>Yes</li><li>No &lt;b&gt;</li></ul>' in part


# -- Messenger -----------------------------------------------------------------------------------------

SHIRT = "http://petersapparel.parseapp.com/img/item100-thumb.png"
FB_CASES: dict[str, list[str]] = {
    "text, tag and quick replies": [
        "Messenger Text · MESSAGE_TAG · ACCOUNT_UPDATE · NO_PUSH</figcaption>",
        '<div class="bubble"><p>Welcome to Webex Connect</p></div>',
        '<ul class="chips" aria-label="Quick replies"><li>Red</li><li>Green</li></ul>',
    ],
    "image": [placeholder("Image"), f'<a href="https://example.com/image.png" {LINK}>'],
    "audio": [placeholder("Audio")],
    "video": [placeholder("Video")],
    "file": [placeholder("File")],
    "generic template": [
        '<ul class="cards" aria-label="Generic template, 2 elements"><li><div class="card">'
        + placeholder("Image"),
        f'<a href="{SHIRT}" {LINK}>{SHIRT}</a></div><h3>Classic White T-Shirt</h3>'
        "<p>Soft white cotton t-shirt is back in style</p>",
        '<li><span aria-hidden="true">↗</span> View Item<small><a href="https://petersapparel.parseapp.com/'
        "view_item?item_id=100",
        "<li>Bookmark Item</li>",
        "<h3>Giordano 60058 Black/Orange Analog Watch - For Men</h3>",
    ],
    "button template": [
        '<p class="hint">(no text)</p>',  # the seed's own sample sends "text": ""
        '<ul class="chips" aria-label="Buttons"><li><span aria-hidden="true">↗</span> Show location',
        "<li>Start Chatting</li>",
        '<li><span aria-hidden="true">☎</span> Call Representative<small>calls +9177xxxxxxxx</small></li>',
    ],
    "receipt template": [
        "<h3>Order confirmation</h3>",
        '<tr><th scope="row">Recipient</th><td>Stephane Crozatier</td></tr>',
        '<tr><th scope="row">Ship to</th><td>1 Hacker Way, Menlo Park, 94025, CA, US</td></tr>',
        '<tr><th scope="row">Classic White T-Shirt (100% Soft and Luxurious Cotton)</th>'
        "<td>2 \u00d7 50 USD</td></tr>",
        '<tr><th scope="row">New Customer Discount</th><td>-20 USD</td></tr>',
        '<tr><th scope="row">Shipping</th><td>4.95 USD</td></tr>',
        '<tr><th scope="row">Total</th><td><strong>56.14 USD</strong></td></tr>',
        'Order page: <a href="http://petersapparel.parseapp.com/order?order_id=123456"',
    ],
    "airline itinerary (deprecated)": ["<h3>Airline template airline_itinerary</h3>", "Deprecated by Meta"],
    "airline check-in (deprecated)": ["<h3>Airline template airline_checkin</h3>"],
    "airline boarding pass (deprecated)": ["<h3>Airline template airline_boardingpass</h3>"],
    "airline flight update (deprecated)": ["<h3>Airline template airline_update</h3>"],
    "sender action": [
        "Messenger sender action</figcaption>",
        '<p class="bubble action"><span class="typing" aria-hidden="true">•••</span> Typing indicator on</p>',
    ],
    "ten quick replies": ["<li>Magenta</li><li>Voilate</li></ul>"],
    "quick replies with images": [
        '<li><span aria-hidden="true">▣</span> Red<small>with an icon, not loaded</small></li>'
    ],
}


def test_every_seed_messenger_sample_has_a_case() -> None:
    assert set(FB_CASES) == set(SEED_REQUESTS)


@pytest.mark.parametrize("name", list(FB_CASES))
def test_messenger_previews(server: TidingsServer, console: httpx.Client, name: str) -> None:
    part = shown(console, fb(server, SEED_REQUESTS[name]))
    for fragment in FB_CASES[name]:
        assert fragment in part, (fragment, part)
    assert f"<strong>{APP}</strong> to {PSID}" in part
    links(part)


def test_messenger_text_is_escaped(server: TidingsServer, console: httpx.Client) -> None:
    request = {"deliverychannel": "fb", "channels": {"OTT-Messaging": {"fb": {"text": f"{HOSTILE} &amp;"}}}}
    part = shown(console, fb(server, request))
    assert "<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp;amp;</p>" in part


# -- RCS -----------------------------------------------------------------------------------------------

SUGGESTIONS = [
    {"type": "reply", "displayText": "Yes <b>", "postbackData": "yes"},
    {"type": "openUrl", "displayText": "Site", "url": "https://example.com/?q=<b>"},
    {"type": "dialPhone", "displayText": "Call", "phone": "+447700900999"},
    {"type": "viewLocation", "displayText": "Map", "latitude": 51.5, "longitude": -0.12, "label": "Shop"},
    {"type": "shareLocation", "displayText": "Where am I"},
    {
        "type": "calendarEvent",
        "displayText": "Save the date",
        "startTime": "2026-12-01T10:00:00Z",
        "endTime": "2026-12-01T11:00:00Z",
        "meetingTitle": "Fitting",
    },
]
BOOTS = {
    "title": f"Boots {HOSTILE}",
    "description": "Size 42",
    "media": {"url": "https://example.com/b.png", "height": "SHORT"},
    "suggestions": [{"type": "reply", "displayText": "Buy", "postbackData": "buy-boots"}],
}
CAROUSEL = {
    "type": "carousel",
    "richCard": {"cardWidth": "SMALL", "cards": [BOOTS, {"title": "Hat", "description": "One size"}]},
    "suggestions": SUGGESTIONS,
}


def test_rcs_previews(server: TidingsServer, console: httpx.Client) -> None:
    part = shown(console, rcs(server, RCS_CONTENTS["text"], substitutions={"name": "Ann"}))
    assert '<div class="bubble"><p>Hello Ann</p></div>' in part and "RCS Text</figcaption>" in part
    assert (
        '<ul class="chips" aria-label="Suggestions"><li>Yes</li><li><span aria-hidden="true">↗</span> Site'
        in part
    )
    assert links(part) == ["https://example.com"]

    part = shown(console, rcs(server, RCS_CONTENTS["media"]))
    assert placeholder("Media") in part and links(part) == ["https://example.com/v.mp4"]

    part = shown(console, rcs(server, RCS_CONTENTS["standalone"]))
    assert '<div class="card rich">' + placeholder("Media") in part and "<h3>Boots</h3><p>Size 42</p>" in part
    assert "<br>height SHORT<br>" in part

    fallback = {"smsFallback": True, "smsSenderId": "CONNCT", "text": "Boots or a hat?"}
    part = shown(console, rcs(server, CAROUSEL, options=fallback))
    assert '<ul class="cards small" aria-label="Carousel of 2 cards"><li><div class="card rich">' in part
    assert "<h3>Boots &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</h3>" in part
    assert '<ul class="chips" aria-label="Card suggestions"><li>Buy</li></ul>' in part
    assert "<h3>Hat</h3><p>One size</p>" in part
    chips = words(part[part.index('aria-label="Suggestions"') :])
    for said in (
        "Yes <b>",
        "Site https://example.com/?q=<b>",
        "Call calls +447700900999",
        "Map shows Shop, 51.5, -0.12",
        "Where am I shares the user's location",
        "Save the date Fitting, 2026-12-01T10:00:00Z to 2026-12-01T11:00:00Z",
        "When the number cannot get RCS: an SMS from CONNCT, “Boots or a hat?”.",
    ):
        assert said in chips, (said, chips)
    assert links(part) == ["https://example.com/b.png", "https://example.com/?q=<b>"]


# -- contents the API would refuse, drawn straight -----------------------------------------------------

JS = "javascript:alert(document.cookie)"


def _js_contents() -> dict[str, dict[str, Any]]:
    """A stored content of each channel with a javascript: URL wherever a URL goes (written by hand into
    a database, or by a version with other checks)."""
    wa_image = {"type": "image", "media": {"link": JS, "caption": "c"}}
    wa_buttons = {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": "b",
            "header": {"type": "image", "media": {"link": JS}},
            "buttons": [{"id": "1", "title": "t"}],
        },
    }
    element = {
        "title": "t",
        "image_url": JS,
        "item_url": JS,
        "buttons": [{"type": "web_url", "title": "w", "url": JS}],
    }
    receipt = copy.deepcopy(SEED_REQUESTS["receipt template"]["channels"]["OTT-Messaging"]["fb"])
    receipt["attachment"] = {
        "type": "template",
        "template_type": "receipt",
        "receipt": {**receipt["attachment"]["payload"], "order_url": JS},
    }
    del receipt["attachment"]["receipt"]["template_type"]
    card = {
        "title": "t",
        "media": {"url": JS, "thumbnailUrl": JS},
        "suggestions": [{"type": "openUrl", "displayText": "o", "url": JS}],
    }
    return {
        "whatsapp image": {"appid": "a", "wa": wa_image},
        "whatsapp header": {"appid": "a", "wa": wa_buttons},
        "whatsapp text": {"appid": "a", "wa": {"type": "text", "text": {"body": JS, "preview_url": True}}},
        "fb generic": {
            "appid": "a",
            "fb": {"attachment": {"type": "template", "template_type": "generic", "elements": [element]}},
        },
        "fb media": {"appid": "a", "fb": {"attachment": {"type": "image", "url": JS}}},
        "fb receipt": {"appid": "a", "fb": receipt},
        "rcs media": {"appid": "a", "rcs": {"type": "media", "media": {"url": JS, "thumbnailUrl": JS}}},
        "rcs carousel": {"appid": "a", "rcs": {"type": "carousel", "cards": [card, card]}},
    }


CHANNEL = {"whatsapp": "whatsapp", "fb": "fb", "rcs": "rcs"}


class _Balance(HTMLParser):
    """Every element the preview opens it closes, in order (a broken preview breaks the page after it)."""

    VOID: ClassVar[set[str]] = {"br", "input", "img", "meta", "link", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, (tag, self.open)
        self.open.pop()


def test_javascript_urls_are_never_links() -> None:
    for name, content in _js_contents().items():
        drawn = preview(name.split()[0], content, "x")
        assert '<figure class="chat ' in drawn, name  # drawn, not the JSON fallback
        assert not re.search(r'href="(?!https?://)', drawn), (name, drawn)
        assert html.escape(JS) in drawn, name
        checker = _Balance()
        checker.feed(drawn)
        assert checker.open == [], name


def _paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, inner in items:
        yield from _paths(inner, (*at, key))


def _replaced(content: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    out = copy.deepcopy(content)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    return out


def test_a_content_of_another_shape_falls_back_to_json() -> None:
    """Every value of every stored content of the tests above, in turn, replaced by one of another type:
    each preview either draws it or gives the JSON view, raising nothing `preview()` does not catch."""
    contents: list[tuple[str, dict[str, Any]]] = [(n.split()[0], c) for n, c in _js_contents().items()]
    contents += [("fb", {"appid": "a", "fb": {"sender_action": "typing_on"}})]
    contents += [("rcs", {"appid": "a", "rcs": {"type": "text", "text": "t", "suggestions": SUGGESTIONS}})]
    strange = [None, 7, -1.5, "x", True, [], {}, [{}], {"type": "?"}]
    drawn = fallbacks = 0
    for channel, content in contents:
        for path in _paths(content):
            for value in strange:
                out = preview(channel, _replaced(content, path, value), "+447700900123")
                if out.startswith('<pre class="json">'):
                    fallbacks += 1
                else:
                    drawn += 1
                    checker = _Balance()
                    checker.feed(out)
                    assert checker.open == [], (channel, path, value)
    assert fallbacks > 100 and drawn > 100, (fallbacks, drawn)
    assert preview("whatsapp", {"appid": "a"}, "x").startswith('<pre class="json">')  # no wa at all
    assert preview("rcs", {"rcs": {"type": "hologram"}}, "x").startswith('<pre class="json">')


# -- in Chromium ---------------------------------------------------------------------------------------

SLOTS = a_list(
    {"title": "Tomorrow", "rows": [
        {"id": "am", "title": "Morning", "description": "8:00 to 12:00"},
        {"id": "pm", "title": "Afternoon", "description": "12:00 to 18:00"},
    ]},
    {"title": "Saturday", "rows": [{"id": "sat", "title": "All day", "description": "9:00 to 17:00"}]},
    button="Pick a slot",
    header={"type": "text", "text": "Delivery"},
    footer={"text": "Reply STOP to opt out"},
)  # fmt: skip
SLOTS["list"]["body"] = {"text": "Your parcel is on its way. When shall we deliver it?"}


def test_previews_in_chromium(browser: Any, server: TidingsServer, tmp_path: Path) -> None:  # noqa: F811
    shots = Shots(tmp_path)
    sent = {
        "whatsapp": wa(server, SLOTS),
        "messenger": fb(server, SEED_REQUESTS["generic template"]),
        "rcs": rcs(server, {**CAROUSEL, "richCard": {"cardWidth": "MEDIUM", "cards": [
            {**BOOTS, "title": "Boots"},
            {"title": "Hat", "description": "One size", "media": {"url": "https://example.com/h.png"},
             "suggestions": [{"type": "openUrl", "displayText": "Details", "url": "https://example.com/hat"}]},
        ]}, "suggestions": SUGGESTIONS[:3]}),
    }  # fmt: skip
    context = browser.new_context(viewport={"width": 640, "height": 800})  # the picture: little but the chat
    page = browser_sign_in(context, server, KEY_A)
    for name, transid in sent.items():
        page.goto(f"{server.url}/console/messages/{transid}")
        area = page.locator("section[aria-labelledby='h-preview']")
        chat = area.locator("figure.chat")
        chat.wait_for(timeout=WAIT_MS)
        assert chat.is_visible() and area.locator("pre.json").is_hidden()
        # The JSON tab by keyboard, and back.
        area.get_by_role("tab", name="Chat").focus()
        page.keyboard.press("ArrowRight")
        assert area.get_by_role("tab", name="JSON").get_attribute("aria-selected") == "true"
        assert area.locator("pre.json").is_visible() and chat.is_hidden()
        page.keyboard.press("ArrowLeft")
        assert chat.is_visible()
        page.evaluate("document.activeElement.blur()")  # no focus ring in the picture
        path = tmp_path / f"preview-{name}.png"
        area.screenshot(path=str(path))
        assert path.stat().st_size > 1000
        shots.taken.append(path)
    text = page.locator("figure.chat").inner_text()
    assert "Hat" in text and "Save the date" not in text and "Call" in text
    # The WhatsApp list on a phone: the page does not scroll sideways; the rows are there.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    small = browser_sign_in(phone, server, KEY_A)
    small.goto(f"{server.url}/console/messages/{sent['whatsapp']}")
    assert "Afternoon" in small.locator("figure.chat").inner_text()
    assert small.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.close()
    context.close()
    shots.publish()
