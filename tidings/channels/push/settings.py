"""The provider blocks of an app (`[apps.fcm]`, `[apps.apns]`, `[apps.webpush]`, `[apps.wns]`),
CONTRACT.md "Apps". Each provider module reads its own block; the config file and the admin API
decode them with these Structs."""

import msgspec


class FcmSettings(msgspec.Struct, forbid_unknown_fields=True):
    project_id: str
    service_account_file: str  # a Google service-account key file; its token_uri is used as is
    base_url: str = "https://fcm.googleapis.com"


class ApnsSettings(msgspec.Struct, forbid_unknown_fields=True):
    team_id: str
    key_id: str
    key_file: str  # the .p8 (PEM, P-256) token signing key
    topic: str  # the app's bundle id
    base_url: str = "https://api.push.apple.com"
    ca_file: str = ""  # an extra CA bundle for base_url (tests use their own CA)


class WebPushSettings(msgspec.Struct, forbid_unknown_fields=True):
    vapid_private_key_file: str  # PEM, P-256
    subject: str  # mailto: or https: contact, the VAPID `sub`
    allow_hosts: list[str] = msgspec.field(default_factory=list)  # besides the well-known push services
    ca_file: str = ""  # an extra CA bundle for the push services (tests use their own CA)


class WnsSettings(msgspec.Struct, forbid_unknown_fields=True):
    client_id: str  # the package SID, ms-app://…
    client_secret: str
    token_url: str = "https://login.live.com/accesstoken.srf"
    allow_hosts: list[str] = msgspec.field(default_factory=list)  # besides *.notify.windows.com
    ca_file: str = ""
