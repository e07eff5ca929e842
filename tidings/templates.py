"""Message templates: text with `{{name}}` placeholders, owned by a service, for one channel.

v1 names one in `message{template, parameters}`; the SMS API with `contentType: template`, its id in
`content` and its values in `substitutions`. Every placeholder must get a value: a template sent with a
hole in it is worse than a refused request.

A WhatsApp template is one approved at Meta: its words live there, and a send names it and gives the
values of its numbered placeholders, component by component. Its entry says which request parameter
fills which place (`WhatsAppLayout`); `whatsapp_message` builds the Cloud API's template object from it.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tidings.config.schema import TemplateConfig
from tidings.errors import InvalidParameter, MandatoryMissing
from tidings.schema.whatsapp import (
    TemplateComponent,
    TemplateMessage,
    TemplateParameter,
    template_media,
)

DEFAULT_LANGUAGE = "en_US"
# What a button's parameter is called in the Cloud API, by the button's sub_type.
BUTTON_PARAMETER = {"url": "text", "quick_reply": "payload", "copy_code": "coupon_code"}

# `{{name}}` or `$(name)`: both spellings appear in the documents' samples.
PLACEHOLDER = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}|\$\(\s*([^()\s]+)\s*\)")


@dataclass(frozen=True, slots=True)
class LayoutPart:
    """One component of a WhatsApp template and the request parameters that fill it, in order."""

    type: str  # header | body | button
    parameters: tuple[str, ...]
    format: str = "text"  # header: text | image | video | document
    sub_type: str = ""  # button: url | quick_reply | copy_code
    index: int = -1  # button


@dataclass(frozen=True, slots=True)
class WhatsAppLayout:
    name: str = ""  # Meta's name for it; "" means the template's id
    language: str = DEFAULT_LANGUAGE
    namespace: str = ""
    parts: tuple[LayoutPart, ...] = ()  # none: the body takes the text's placeholders in order


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    service_id: str
    channel: str
    text: str
    whatsapp: WhatsAppLayout = field(default_factory=WhatsAppLayout)

    @classmethod
    def from_config(cls, t: TemplateConfig) -> "Template":
        parts = tuple(
            LayoutPart(c.type, tuple(c.parameters), c.format, c.sub_type, c.index) for c in t.components
        )
        layout = WhatsAppLayout(t.name, t.language or DEFAULT_LANGUAGE, t.namespace, parts)
        return cls(t.id, t.service, t.channel, t.text, layout)


class TemplateRegistry:
    def __init__(self, templates: Iterable[Template] = ()) -> None:
        self.replace(templates)

    def replace(self, templates: Iterable[Template]) -> None:
        # One assignment: a request reading the registry sees the old entries or the new, never a mix.
        self._by_key = {(t.service_id, t.channel, t.id): t for t in templates}

    def find(self, service_id: str, channel: str, template_id: str) -> Template | None:
        return self._by_key.get((service_id, channel, template_id))


def render(text: str, values: Mapping[str, object], field: str | None) -> str:
    """Fill every placeholder that has a value. One without a value is 7003 naming `<field>.<name>`;
    with `field` None it is left as written (free text, where braces may be meant literally)."""

    def fill(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        value = values.get(name)
        if value is None:
            if field is None:
                return m.group(0)
            raise MandatoryMissing(f"{field}.{name} (the template uses it)", field=f"{field}.{name}")
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return PLACEHOLDER.sub(fill, text)


def placeholders(text: str) -> tuple[str, ...]:
    """The names `text` uses, each once, in the order they first appear."""
    names = (m.group(1) or m.group(2) for m in PLACEHOLDER.finditer(text))
    return tuple(dict.fromkeys(names))


def whatsapp_message(template: Template, values: Mapping[str, object], field: str) -> TemplateMessage:
    """The Cloud API template `template` names, filled from `values` (the request's parameters, named
    by `field`): 7003 for a parameter its layout needs and the request lacks, 7004 for a bad value."""
    layout = template.whatsapp
    parts = layout.parts or (LayoutPart("body", placeholders(template.text)),)
    return TemplateMessage(
        name=layout.name or template.id,
        language=layout.language,
        components=[_component(part, values, field) for part in parts],
        namespace=layout.namespace or None,
    )


def _component(part: LayoutPart, values: Mapping[str, object], field: str) -> TemplateComponent:
    if part.type == "header" and part.format != "text":
        media = [
            template_media(_value(values, n, field), part.format, f"{field}.{n}") for n in part.parameters
        ]
        return TemplateComponent("header", [TemplateParameter(part.format, media=m) for m in media])
    kind = BUTTON_PARAMETER.get(part.sub_type, "text") if part.type == "button" else "text"
    made = [
        TemplateParameter(kind, text=_text(_value(values, n, field), f"{field}.{n}")) for n in part.parameters
    ]
    if part.type != "button":
        return TemplateComponent(part.type, made)
    return TemplateComponent("button", made, sub_type=part.sub_type, index=part.index)


def _value(values: Mapping[str, object], name: str, field: str) -> object:
    value = values.get(name)
    if value is None or value == "":
        raise MandatoryMissing(f"{field}.{name} (the template uses it)", field=f"{field}.{name}")
    return value


def _text(value: object, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise InvalidParameter(f"{where} must be a string or a number", field=where)
