"""The config file's schema: one msgspec Struct per table, with its defaults.

A provider kind's table is declared by its package (`tidings.channels.<kind>`) and only named here.
"""

import msgspec

from tidings.channels.email.settings import EmailConfig, SmtpConfig
from tidings.channels.meta.settings import MessengerSettings, WhatsAppSettings
from tidings.channels.push.settings import ApnsSettings, FcmSettings, WebPushSettings, WnsSettings
from tidings.channels.rcs.settings import RcsSettings
from tidings.channels.sandbox import SandboxConfig
from tidings.channels.smpp import SmscConfig

DEFAULT_DATABASE = "sqlite:///tidings.db"


class ServerConfig(msgspec.Struct, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8080
    database: str = DEFAULT_DATABASE
    public_url: str = ""
    max_body_bytes: int = 1_048_576
    admin_token: str = ""


class NotifyConfig(msgspec.Struct, forbid_unknown_fields=True):
    timeout_s: float = 10.0
    retries: int = 3
    retry_interval_s: float = 60.0
    concurrency: int = 512


class RedisConfig(msgspec.Struct, forbid_unknown_fields=True):
    url: str = ""  # redis://HOST[:PORT][/DB]; empty: no Redis (one process, or per-process limits)
    prefix: str = "tidings:"  # of every key and channel, so several deployments can share one Redis


class StoreConfig(msgspec.Struct, forbid_unknown_fields=True):
    """`[store]`: how long messages are kept (docs/operations.md#retention)."""

    retain_days: int = 0  # 0: every message is kept for ever; else at least MIN_RETAIN_DAYS
    purge_interval_s: float = 3600.0  # how often a serving process runs a purge pass


class ServiceConfig(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    key: str
    name: str = ""
    secret: str = ""
    active: bool = True
    notify_url: str = ""
    tps: int = 1000
    senderids: list[str] = msgspec.field(default_factory=list)
    # Email From addresses this service may use: addresses, or "@domain" for any address of a domain.
    email_from: list[str] = msgspec.field(default_factory=list)
    inbound_url: str = ""
    numbers: list[str] = msgspec.field(default_factory=list)


class TemplateComponentConfig(msgspec.Struct, forbid_unknown_fields=True):
    """`[[templates.components]]` of a WhatsApp template: which request parameters fill one component
    of the template approved at Meta, in the order of its `{{1}}`, `{{2}}`, …"""

    type: str  # header | body | button
    parameters: list[str] = msgspec.field(default_factory=list)  # names in message.parameters
    format: str = "text"  # header: text | image | video | document (one media parameter)
    sub_type: str = ""  # button: url | quick_reply | copy_code
    index: int = -1  # button: its position (from 0) in the approved template


# A WhatsApp template component's header formats and button sub-types (tidings.templates builds them;
# the config's checks name them): here, beside TemplateConfig, so the checks need not import the builder.
HEADER_FORMATS = ("text", "image", "video", "document")
BUTTON_SUB_TYPES = ("url", "quick_reply", "copy_code")


class TemplateConfig(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    service: str  # the owning service's name (or id)
    text: str = ""  # required but for WhatsApp, whose words are the approved template's at Meta
    channel: str = "sms"
    # WhatsApp only. Without components the body takes the text's placeholders in order.
    name: str = ""  # the template's name at Meta (default: id)
    language: str = ""  # e.g. en_US (default: en_US)
    namespace: str = ""  # when given, the app's [apps.whatsapp] namespace must be the same (else 7722)
    components: list[TemplateComponentConfig] = msgspec.field(default_factory=list)


class SmartlinkConfig(msgspec.Struct, forbid_unknown_fields=True):
    linkid: int
    service: str  # the owning service's name (or id)
    url: str  # the default target
    ios_url: str = ""  # chosen by User-Agent
    android_url: str = ""
    expired_url: str = ""  # after the link's validity (else the default target)


class GroupConfig(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    service: str  # the owning service's name (or id)
    kind: str = "opt-in"  # opt-in: consent needed; opt-out: everyone unless opted out
    caps: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)  # category -> window -> count


class AppConfig(msgspec.Struct, forbid_unknown_fields=True):
    """`[[apps]]`: an app asset, its owning service and one block per provider it reaches."""

    id: str  # the requests' `appid`
    service: str  # the owning service's name (or id)
    client_secret: str = ""  # Base64; signs user tokens. Write-only in the admin API
    fcm: FcmSettings | None = None
    apns: ApnsSettings | None = None
    webpush: WebPushSettings | None = None
    wns: WnsSettings | None = None
    whatsapp: WhatsAppSettings | None = None
    messenger: MessengerSettings | None = None
    rcs: RcsSettings | None = None
    # Not a TOML key: the folder relative key files are read from, set from the file's location when it
    # is loaded ("" for an app added through the admin API: the process's working directory).
    base_dir: str = ""


class Config(msgspec.Struct, forbid_unknown_fields=True):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    notify: NotifyConfig = msgspec.field(default_factory=NotifyConfig)
    sandbox: SandboxConfig = msgspec.field(default_factory=SandboxConfig)
    redis: RedisConfig = msgspec.field(default_factory=RedisConfig)
    store: StoreConfig = msgspec.field(default_factory=StoreConfig)
    services: list[ServiceConfig] = msgspec.field(default_factory=list)
    smsc: list[SmscConfig] = msgspec.field(default_factory=list)
    smtp: list[SmtpConfig] = msgspec.field(default_factory=list)
    email: EmailConfig = msgspec.field(default_factory=EmailConfig)
    templates: list[TemplateConfig] = msgspec.field(default_factory=list)
    smartlinks: list[SmartlinkConfig] = msgspec.field(default_factory=list)
    groups: list[GroupConfig] = msgspec.field(default_factory=list)  # [[contact_policy.groups]]
    apps: list[AppConfig] = msgspec.field(default_factory=list)
    routes: dict[str, str] = msgspec.field(default_factory=dict)
    source: str | None = None  # the file it came from; not a TOML key
