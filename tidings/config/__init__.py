"""The configuration file (TOML), split by reason to change: `schema` (the tables and their defaults),
`loading` (reading a file, every problem named with its key and line), `rules` (the catalogue's rules,
shared with the admin API) and `problems`. Provider kinds declare their own tables and checks
(`tidings.channels.KINDS`). The names below are the ones the rest of Tidings imports.
"""

from tidings.channels.sandbox import SandboxConfig
from tidings.channels.smpp import SmscConfig
from tidings.config.loading import check_table, database_problem, load_config, parse_config
from tidings.config.problems import ConfigError, KeyPath, Problems, dotted
from tidings.config.rules import (
    CAP_WINDOWS,
    CATEGORIES,
    GROUP_KINDS,
    app_blocks,
    check_catalogue,
    decode_secret,
)
from tidings.config.schema import (
    DEFAULT_DATABASE,
    AppConfig,
    Config,
    GroupConfig,
    NotifyConfig,
    RedisConfig,
    ServerConfig,
    ServiceConfig,
    SmartlinkConfig,
    StoreConfig,
    TemplateConfig,
)
from tidings.urls import is_http_url

__all__ = [
    "CAP_WINDOWS",
    "CATEGORIES",
    "DEFAULT_DATABASE",
    "GROUP_KINDS",
    "AppConfig",
    "Config",
    "ConfigError",
    "GroupConfig",
    "KeyPath",
    "NotifyConfig",
    "Problems",
    "RedisConfig",
    "SandboxConfig",
    "ServerConfig",
    "ServiceConfig",
    "SmartlinkConfig",
    "SmscConfig",
    "StoreConfig",
    "TemplateConfig",
    "app_blocks",
    "check_catalogue",
    "check_table",
    "database_problem",
    "decode_secret",
    "dotted",
    "is_http_url",
    "load_config",
    "parse_config",
]
