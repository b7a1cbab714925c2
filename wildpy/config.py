"""Configuration: bundled defaults, an optional TOML file merged over them, then environment.

The result is a validated, typed `Config`. Any problem (unknown key, wrong type, bad value) raises
`ConfigError` whose message is one line naming the key, which `wildpy serve` prints before exiting.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENV_PREFIX = "WILDPY_"


class ConfigError(Exception):
    """A configuration problem, described in one line that names the key."""


class _Section(BaseModel):
    # camelCase keys in TOML (WildDuck's spelling), snake_case attributes in Python
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ApiConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    access_token: str = Field("", alias="accessToken")
    max_body_size: int = Field(32 * 1024 * 1024, alias="maxBodySize", ge=1024)
    debug: bool = False
    token_ttl: int = Field(1209600, alias="tokenTTL", ge=60)
    token_lifetime: int = Field(15552000, alias="tokenLifetime", ge=60)
    roles: str = ""


class DbsConfig(_Section):
    mongo: str = ""
    database: str = Field("wildpy", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    redis: str = ""

    @field_validator("mongo")
    @classmethod
    def _mongo_uri(cls, value: str) -> str:
        if value and not value.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("must be empty or a mongodb:// URI")
        return value

    @field_validator("redis")
    @classmethod
    def _redis_uri(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be empty or a redis:// URI")
        return value


class StorageConfig(_Section):
    data_dir: str = Field("./wildpy-data", alias="dataDir", min_length=1)


class ReceiveConfig(_Section):
    """A listener that accepts mail for local users ([smtp] for the MX role, [lmtp])."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(2525, ge=0, le=65535)
    #: the name in the greeting and the Received headers; empty: the machine's host name
    name: str = ""
    max_size: int = Field(25 * 1024 * 1024, alias="maxSize", ge=1024)
    max_recipients: int = Field(100, alias="maxRecipients", ge=1, le=10000)
    max_connections_per_ip: int = Field(20, alias="maxConnectionsPerIp", ge=1)
    idle_timeout: float = Field(300.0, alias="idleTimeout", gt=0)


class LmtpConfig(ReceiveConfig):
    port: int = Field(2424, ge=0, le=65535)


class TlsConfig(_Section):
    certificate: str = ""
    key: str = ""


class JournalConfig(_Section):
    poll_interval: float = Field(0.25, alias="pollInterval", gt=0, le=60)
    poll_interval_with_redis: float = Field(5.0, alias="pollIntervalWithRedis", gt=0, le=300)


class HostConfig(_Section):
    shutdown_timeout: float = Field(5.0, alias="shutdownTimeout", ge=0, le=300)


class JanitorConfig(_Section):
    enabled: bool = True
    interval: float = Field(600.0, ge=1)


class LimitsConfig(_Section):
    """Limits shared by every door (REST now; IMAP, POP3 and SMTP logins later)."""

    auth_ip_failures: int = Field(100, alias="authIpFailures", ge=0)
    auth_ip_window: int = Field(300, alias="authIpWindow", ge=1)
    auth_global_failures: int = Field(1000, alias="authGlobalFailures", ge=0)
    auth_global_window: int = Field(60, alias="authGlobalWindow", ge=1)


class StoreConfig(_Section):
    """The message store (wildpy.store.settings.StoreSettings): sizes in bytes, times in seconds."""

    max_size: int = Field(25 * 1024 * 1024, alias="maxSize", ge=1024)
    min_attachment: int = Field(16 * 1024, alias="minAttachment", ge=1024)
    inline_body_limit: int = Field(1024 * 1024, alias="inlineBodyLimit", ge=1024)
    archive_time: int = Field(30 * 86400, alias="archiveTime", ge=0)
    tombstone_time: int = Field(30 * 86400, alias="tombstoneTime", ge=0)
    thread_time: int = Field(180 * 86400, alias="threadTime", ge=0)
    thread_parse: int = Field(256 * 1024, alias="threadParse", ge=0)
    max_attempts: int = Field(20, alias="maxAttempts", ge=1)
    insert_group: int = Field(4, alias="insertGroup", ge=1)
    insert_group_bytes: int = Field(4 * 1024 * 1024, alias="insertGroupBytes", ge=1)
    retention_batch: int = Field(500, alias="retentionBatch", ge=1)
    retention_rounds: int = Field(20, alias="retentionRounds", ge=1)
    uid_set_batch: int = Field(200, alias="uidSetBatch", ge=1)
    uid_set_concurrency: int = Field(8, alias="uidSetConcurrency", ge=1)
    restore_batch: int = Field(100, alias="restoreBatch", ge=1)
    thread_count_concurrency: int = Field(8, alias="threadCountConcurrency", ge=1)


class LogConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"


class Config(_Section):
    email_domain: str = Field("", alias="emailDomain")
    api: ApiConfig = ApiConfig()
    dbs: DbsConfig = DbsConfig()
    storage: StorageConfig = StorageConfig()
    tls: TlsConfig = TlsConfig()
    smtp: ReceiveConfig = ReceiveConfig()
    lmtp: LmtpConfig = LmtpConfig()
    journal: JournalConfig = JournalConfig()
    host: HostConfig = HostConfig()
    janitor: JanitorConfig = JanitorConfig()
    limits: LimitsConfig = LimitsConfig()
    store: StoreConfig = StoreConfig()
    log: LogConfig = LogConfig()

    @property
    def data_dir(self) -> Path:
        return Path(self.storage.data_dir).expanduser().resolve()

    def with_overrides(self, overrides: Mapping[str, Any]) -> Config:
        """A copy with nested overrides merged in (tests use this)."""
        return _validate(_merge(self.model_dump(by_alias=True), overrides))


def default_document() -> dict[str, Any]:
    """The bundled config/default.toml, parsed."""
    text = resources.files("wildpy.defaults").joinpath("default.toml").read_text("utf-8")
    return tomllib.loads(text)


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Defaults, then the file at `path` (if any), then WILDPY_* environment variables."""
    document = default_document()
    if path is not None:
        try:
            with open(path, "rb") as handle:
                document = _merge(document, tomllib.load(handle))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        # the defaults are valid, so a problem found here is the file's: name it
        _validate(document, source=f"config file {path}")
    document = _apply_environment(document, os.environ if environ is None else environ)
    return _validate(document)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _apply_environment(document: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    result = dict(document)
    for name, raw in environ.items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX) :].split("__")
        if path == [""] or any(not part for part in path):
            continue
        result = _set_env_value(result, path, raw, name)
    return result


def _set_env_value(
    document: dict[str, Any], path: list[str], raw: str, variable: str
) -> dict[str, Any]:
    if path[0].upper().startswith("TEST_"):
        return document  # WILDPY_TEST_* belongs to the test suite, not to the server
    node: dict[str, Any] = document
    for depth, part in enumerate(path):
        key = _match_key(node, part)
        if key is None:
            dotted = ".".join(path[: depth + 1]).lower()
            raise ConfigError(f"{variable}: unknown configuration key {dotted}")
        if depth == len(path) - 1:
            node[key] = _coerce(raw, node[key], variable)
        else:
            if not isinstance(node[key], dict):
                raise ConfigError(f"{variable}: {key} is not a section")
            node[key] = dict(node[key])
            node = node[key]
    return document


def _match_key(node: Mapping[str, Any], part: str) -> str | None:
    wanted = part.lower()
    return next((key for key in node if key.lower() == wanted), None)


def _coerce(raw: str, current: Any, variable: str) -> Any:
    # environment values are strings: read them as the type the default has
    if isinstance(current, bool):
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{variable}: expected true or false, got {raw!r}")
    if isinstance(current, int | float):
        try:
            return int(raw)
        except ValueError:
            pass
        try:
            # a fractional value where the default is whole (seconds): the key's own type decides
            return float(raw)
        except ValueError:
            raise ConfigError(f"{variable}: expected a number, got {raw!r}") from None
    return raw


def _validate(document: Mapping[str, Any], source: str = "config") -> Config:
    try:
        return Config.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        if first["type"] == "extra_forbidden":
            raise ConfigError(f"{source}: unknown configuration key {key}") from None
        raise ConfigError(f"{source}: {key}: {first['msg']}") from None
