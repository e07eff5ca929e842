"""What the HTTP API answers, as msgspec Structs: the handlers encode their answers with these, and
`tidings.api.openapi` describes the answers from the same classes, so the description cannot drift from
the bytes sent.

Fields that an answer leaves out when they do not apply default to `None` under `omit_defaults`, so they
are absent from the JSON rather than `null`.
"""

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from tidings.schema import whatsapp_api

# --- errors -------------------------------------------------------------------------------------------


class V1RefusalBody(msgspec.Struct):
    code: str
    description: str
    transid: str


class V1Refusal(msgspec.Struct):
    """A refused v1 request (HTTP 200, 413 for an oversized body): one object, not an array."""

    response: V1RefusalBody


class ApiErrorBody(msgspec.Struct, omit_defaults=True):
    """Every error outside the v1 envelope: the SMS, WhatsApp, v2, consent, devices and admin APIs, and
    the 404/405/413 of unknown routes. `message` is what the SDKs show; `description` the detail;
    `problems` (admin API) one line per refused key."""

    code: str
    message: str
    description: str | None = None
    problems: list[str] | None = None


class ErrorInfo(msgspec.Struct):
    code: str
    message: str


# --- sending ------------------------------------------------------------------------------------------


class V1AcceptedItem(msgspec.Struct, omit_defaults=True):
    code: str
    transid: str
    description: str
    correlationid: str | None = None


class V1Accepted(msgspec.Struct):
    """An accepted v1 request: one element per destination address, in request order."""

    response: list[V1AcceptedItem]


class BatchItem(msgspec.Struct):
    messageId: str
    to: str
    correlationId: str


class SmsAccepted(msgspec.Struct, omit_defaults=True):
    """202 of the SMS API: `messageId` and `correlationId` for one address; `messages` for a list."""

    acceptedTime: str
    messageId: str | None = None
    correlationId: str | None = None
    messages: list[BatchItem] | None = None


class WhatsAppAccepted(msgspec.Struct):
    acceptedTime: str
    messageId: str
    correlationId: str


class V2Accepted(msgspec.Struct, omit_defaults=True):
    """201 of v2: the first message's fields, and `messages` when the request had several addresses."""

    requestTimestamp: str
    messageId: str
    correlationId: str
    status: str
    messages: list[BatchItem] | None = None


# --- reading messages ---------------------------------------------------------------------------------


class StatusEntry(msgspec.Struct):
    status: str
    code: str
    description: str
    timeStamp: str


class NotificationView(msgspec.Struct):
    eventId: str
    url: str
    state: str
    attempts: int
    httpStatus: int | None
    lastError: str | None
    createdAt: str
    updatedAt: str


class MessageView(msgspec.Struct):
    """`GET /v1/messages/{transid}`: the message as stored (its content after templates and links)."""

    transid: str
    channel: str
    destination: str
    destinationType: str
    content: dict[str, Any]
    messageCount: int
    correlationid: str
    callbackData: str
    notifyurl: str
    priority: str
    expiry: str | None
    status: str
    code: str
    description: str
    createdAt: str
    updatedAt: str
    attempts: int
    clicks: int
    history: list[StatusEntry]
    notifications: list[NotificationView]


class SmsView(msgspec.Struct, omit_defaults=True):
    """`GET /v1/sms/messages/{messageId}`."""

    acceptedTime: str
    statusTime: str
    messageId: str
    correlationId: str
    to: str
    contentType: str
    content: str | None
    status: str
    from_: str = msgspec.field(default="", name="from")
    dltTemplateId: str | None = None
    error: ErrorInfo | None = None


class V2View(msgspec.Struct, omit_defaults=True):
    """`GET /v2/messages/{messageId}`: the contract's fields, then the status history (oldest first)."""

    messageId: str
    channel: str
    to: str
    status: str
    statusTime: str
    requestTimestamp: str
    correlationId: str
    history: list[StatusEntry]
    from_: str = msgspec.field(default="", name="from")
    error: ErrorInfo | None = None


class ContactPhoneView(msgspec.Struct):
    type: str | UnsetType | None = UNSET
    number: str | UnsetType | None = UNSET
    whatsAppId: str | UnsetType | None = UNSET


class ContactAddressView(msgspec.Struct):
    type: str | UnsetType | None = UNSET
    street: str | UnsetType | None = UNSET
    city: str | UnsetType | None = UNSET
    state: str | UnsetType | None = UNSET
    zip: str | UnsetType | None = UNSET
    country: str | UnsetType | None = UNSET
    countryCode: str | UnsetType | None = UNSET


class ContactItemView(msgspec.Struct):
    """An email or URL of a contact."""

    type: str | UnsetType | None = UNSET
    address: str | UnsetType | None = UNSET


class ContactView(msgspec.Struct):
    formattedName: str | UnsetType | None = UNSET
    namePrefix: str | UnsetType | None = UNSET
    firstName: str | UnsetType | None = UNSET
    middleName: str | UnsetType | None = UNSET
    lastName: str | UnsetType | None = UNSET
    nameSuffix: str | UnsetType | None = UNSET
    birthday: str | UnsetType | None = UNSET
    company: str | UnsetType | None = UNSET
    department: str | UnsetType | None = UNSET
    title: str | UnsetType | None = UNSET
    phones: list[ContactPhoneView] | UnsetType | None = UNSET
    addresses: list[ContactAddressView] | UnsetType | None = UNSET
    emails: list[ContactItemView] | UnsetType | None = UNSET
    urls: list[ContactItemView] | UnsetType | None = UNSET


class QuickReplyView(msgspec.Struct):
    buttonText: str | UnsetType | None = UNSET
    payload: str | UnsetType | None = UNSET


class MediaHeaderView(msgspec.Struct):
    contentType: str | UnsetType | None = UNSET
    url: str | UnsetType | None = UNSET
    filename: str | UnsetType | None = UNSET
    fileName: str | UnsetType | None = UNSET
    text: str | UnsetType | None = UNSET
    mimeType: str | UnsetType | None = UNSET


_Substitutions = dict[str, whatsapp_api.Scalar | None] | list[dict[str, whatsapp_api.Scalar | None]]


class WhatsAppView(msgspec.Struct):
    """`GET /v1/whatsapp/messages/{messageId}`: the request's fields as it sent them (those of
    `whatsapp_api.Body`, explicit nulls kept), or for a message sent with v1 the same fields derived
    from its `wa` object, plus the status fields. A field the request left out is absent (UNSET), not
    null, here and in the nested views."""

    messageId: str
    acceptedTime: str
    status: str
    statusTime: str
    from_: str | int | UnsetType | None = msgspec.field(default=UNSET, name="from")
    to: str | int | UnsetType | None = UNSET
    contentType: str | UnsetType | None = UNSET
    content: str | UnsetType | None = UNSET
    previewUrl: bool | UnsetType | None = UNSET
    url: str | UnsetType | None = UNSET
    mimeType: str | UnsetType | None = UNSET
    caption: str | UnsetType | None = UNSET
    fileName: str | UnsetType | None = UNSET
    latitude: float | str | UnsetType | None = UNSET
    longitude: float | str | UnsetType | None = UNSET
    name: str | UnsetType | None = UNSET
    address: str | UnsetType | None = UNSET
    contacts: list[ContactView] | UnsetType | None = UNSET
    templateId: str | UnsetType | None = UNSET
    quickReplies: list[QuickReplyView] | UnsetType | None = UNSET
    mediaHeader: MediaHeaderView | UnsetType | None = UNSET
    substitutions: _Substitutions | UnsetType | None = UNSET
    correlationId: str | UnsetType | None = UNSET
    callbackUrl: str | UnsetType | None = UNSET
    callbackData: str | UnsetType | None = UNSET
    error: ErrorInfo | UnsetType = UNSET


# --- consent, devices, users --------------------------------------------------------------------------


class ConsentRecordView(msgspec.Struct):
    groupId: str
    address: str
    channel: str
    consent: bool
    reason: str
    expires: str | None
    updatedAt: str


class DeviceView(msgspec.Struct, omit_defaults=True):
    """A registered device: `token`, or `endpoint` for web push (never the subscription's keys)."""

    deviceId: str
    appid: str
    userid: str
    customerid: str
    platform: str
    provider: str
    createdAt: str
    updatedAt: str
    token: str | None = None
    endpoint: str | None = None


class DeviceList(msgspec.Struct):
    devices: list[DeviceView]


class UserToken(msgspec.Struct):
    token: str
    userid: str
    appid: str
    expiresIn: int


# --- admin, health ------------------------------------------------------------------------------------


class GoneAddressView(msgspec.Struct):
    service: str
    channel: str
    address: str
    code: str
    description: str
    since: str


class GoneAddressList(msgspec.Struct):
    goneAddresses: list[GoneAddressView]


class Health(msgspec.Struct):
    status: str


class NotReady(msgspec.Struct):
    """503 of `/readyz`: each part that did not answer, and why."""

    status: str
    code: str
    message: str
    description: str
    failed: dict[str, str]
