"""The app blocks for Meta's channels (`[apps.whatsapp]`, `[apps.messenger]`), CONTRACT.md "Apps".
Secrets (`access_token`, `app_secret`, `verify_token`) are write-only: never returned, never logged."""

import msgspec


class WhatsAppSettings(msgspec.Struct, forbid_unknown_fields=True):
    phone_number_id: str
    access_token: str  # a system-user token with whatsapp_business_messaging
    app_secret: str  # verifies X-Hub-Signature-256 on webhooks
    verify_token: str  # the webhook subscription handshake
    waba_id: str = ""
    namespace: str = ""  # the template namespace; a request naming another is 7722
    base_url: str = "https://graph.facebook.com"
    api_version: str = "v21.0"
    ca_file: str = ""  # an extra CA bundle for base_url (tests use their own CA)
    # Refuse a free-form message (7710, no Graph call) to a user with no inbound message kept in the last
    # 24 hours. Off for a number whose users' messages reach another system, not Tidings' webhooks: its
    # record would refuse every one of them (Meta's own refusal, 131047, still gives 7710).
    enforce_window: bool = True


class MessengerSettings(msgspec.Struct, forbid_unknown_fields=True):
    page_id: str
    access_token: str  # the page access token
    app_secret: str
    verify_token: str
    base_url: str = "https://graph.facebook.com"
    api_version: str = "v21.0"
    ca_file: str = ""  # an extra CA bundle for base_url (tests use their own CA)
    # Refuse a RESPONSE or UPDATE message or a sender action (7313, no Graph call) to a PSID with nothing
    # kept from it in the last 24 hours; a MESSAGE_TAG message is exempt. Off for a page whose users'
    # messages reach another system, not Tidings' webhooks (Meta's own refusal, 10/2018278, still gives 7313).
    enforce_window: bool = True
