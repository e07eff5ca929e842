"""What the HTTP API answers, as msgspec Structs: the handlers encode their answers with these, and
`tidings.api.openapi` describes the answers from the same classes, so the description cannot drift from
the bytes sent.

Fields that an answer leaves out when they do not apply default to `None` under `omit_defaults`, so they
are absent from the JSON rather than `null`.
"""

from typing import Any

import msgspec

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


class ContactPhoneView(msgspec.Struct, omit_defaults=True):
    type: str | None = None
    number: str | None = None
    whatsAppId: str | None = None


class ContactAddressView(msgspec.Struct, omit_defaults=True):
    street: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    countryCode: str | None = None
    type: str | None = None


class ContactItemView(msgspec.Struct, omit_defaults=True):
    type: str | None = None
    address: str | None = None


class ContactView(msgspec.Struct, omit_defaults=True):
    formattedName: str | None = None
    namePrefix: str | None = None
    firstName: str | None = None
    middleName: str | None = None
    lastName: str | None = None
    nameSuffix: str | None = None
    birthday: str | None = None
    company: str | None = None
    department: str | None = None
    title: str | None = None
    phones: list[ContactPhoneView] = []
    addresses: list[ContactAddressView] = []
    emails: list[ContactItemView] = []
    urls: list[ContactItemView] = []


class QuickReplyView(msgspec.Struct):
    buttonText: str
    payload: str


class MediaHeaderView(msgspec.Struct, omit_defaults=True):
    contentType: str
    text: str | None = None
    url: str | None = None
    mimeType: str | None = None
    caption: str | None = None
    fileName: str | None = None


class WhatsAppView(msgspec.Struct, omit_defaults=True):
    """`GET /v1/whatsapp/messages/{messageId}`: the REST fields re-derived from the stored `wa` object
    (what was sent, substitutions filled in); which of them are present depends on `contentType`."""

    messageId: str
    acceptedTime: str
    statusTime: str
    to: str
    correlationId: str
    contentType: str
    status: str
    from_: str = msgspec.field(default="", name="from")
    content: str | None = None
    previewUrl: bool | None = None
    url: str | None = None
    mimeType: str | None = None
    caption: str | None = None
    fileName: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None
    contacts: list[ContactView] | None = None
    quickReplies: list[QuickReplyView] | None = None
    mediaHeader: MediaHeaderView | None = None
    callbackData: str | None = None
    callbackUrl: str | None = None
    error: ErrorInfo | None = None


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
