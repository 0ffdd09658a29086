"""Sesame's settings: one frozen object, read from ``SESAME_*`` variables and ``.env``."""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BeforeValidator,
    ByteSize,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from sesame.errors import ConfigError, InvalidInput
from sesame.lifetimes import parse_lifetime

MIN_KEY_BYTES = 32
KEY_FILE = "secret.key"
DEFAULT_WECHAT_HELP = (
    "发送关键词即可获取临时下载链接。\nSend a keyword to get a temporary download link."
)
MAX_WECHAT_TEXT = 2000  # WeChat drops text replies over 2048 bytes
_WECHAT_TOKEN = re.compile(r"[A-Za-z0-9]{3,32}")
_RATE = re.compile(r"\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day)s?", re.IGNORECASE)


def _lifetime(value: Any) -> int:
    try:
        return parse_lifetime(value)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


Lifetime = Annotated[int, BeforeValidator(_lifetime)]


class Settings(BaseSettings):
    """Everything an operator can set. Build it once at an entry point and pass it down."""

    model_config = SettingsConfigDict(
        env_prefix="SESAME_",
        env_file=".env",
        env_ignore_empty=True,
        frozen=True,
        extra="ignore",
    )

    secret_keys: Annotated[tuple[SecretStr, ...], NoDecode, BeforeValidator(_comma_list)] = ()
    files_dir: Path = Path("files")
    data_dir: Path = Path(".sesame")
    store_url: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    admin_password: SecretStr | None = None
    # Where the dashboard listens. The Procfile's shell reads these two (Streamlit binds before
    # any Python of ours runs); they are declared here to be checked and documented with the rest.
    admin_host: str = "127.0.0.1"
    admin_port: int = Field(default=8501, ge=1, le=65535)
    default_lifetime: Lifetime = 600
    max_lifetime: Lifetime = 7 * 86400
    resume_grace: Lifetime = 3600
    retention: Lifetime = 30 * 86400
    max_upload_size: ByteSize = Field(default=ByteSize(512 * 1024**2), le=1 << 50)
    wechat_token: SecretStr | None = None
    wechat_app_id: str | None = None
    wechat_aes_key: SecretStr | None = None
    wechat_help: str = DEFAULT_WECHAT_HELP
    wechat_timezone: str = "Asia/Shanghai"
    api_auth_failures: str = "10/minute"
    # Bandwidth protection: every one is off until set.
    max_concurrent_downloads: int = Field(default=0, ge=0, le=1_000_000)
    rate_limit: str | None = None
    daily_egress: ByteSize | None = Field(default=None, le=1 << 60)
    default_link_rate: ByteSize | None = Field(default=None, le=1 << 40)
    offload: Literal["off", "nginx"] = "off"
    # A download's place, renewed a few times a lease while its gateway lives: a gateway that
    # dies gives its downloads back this long after its last renewal.
    download_lease: Lifetime = 30
    # Offload: where nginx reports how each download it sent went (a loopback UDP syslog
    # address, as in deploy/nginx.conf); empty: downloads count when handed to nginx.
    offload_report: str | None = None
    memory_file_size: ByteSize = Field(default=ByteSize(64 * 1024), le=1 << 30)
    # Failing dependencies: how long a store call may wait for Redis or an SQLite write lock.
    store_timeout: float = Field(default=2.0, gt=0, le=60)
    # What one client connection may cost (gateway.connections).
    header_timeout: float = Field(default=15.0, gt=0, le=3600)
    keep_alive_timeout: int = Field(default=5, ge=1, le=3600)
    max_header_size: ByteSize = Field(default=ByteSize(32 * 1024), ge=1024, le=1 << 24)
    max_connections: int = Field(default=1000, ge=1, le=1_000_000)

    @field_validator("secret_keys")
    @classmethod
    def _keys_long_enough(cls, keys: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for number, key in enumerate(keys, start=1):
            if len(key.get_secret_value().encode()) < MIN_KEY_BYTES:
                raise ValueError(
                    f"key number {number} is shorter than {MIN_KEY_BYTES} bytes; "
                    "make one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
                )
        return keys

    @field_validator("max_lifetime")
    @classmethod
    def _not_below_default(cls, seconds: int, info: ValidationInfo) -> int:
        # Otherwise a link made with the default lifetime would have a record that
        # outlives its token: the token is capped at max_lifetime when it is verified.
        default = info.data.get("default_lifetime")
        if default is not None and default > seconds:
            raise ValueError("is shorter than SESAME_DEFAULT_LIFETIME")
        return seconds

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return url.rstrip("/")

    @field_validator("wechat_token")
    @classmethod
    def _wechat_token(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and not _WECHAT_TOKEN.fullmatch(token.get_secret_value()):
            raise ValueError("must be 3 to 32 letters and digits, as in the WeChat console")
        return token

    @field_validator("wechat_aes_key")
    @classmethod
    def _wechat_aes_key(cls, key: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if key is None:
            return None
        try:
            raw = base64.b64decode(key.get_secret_value() + "=", validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(key.get_secret_value()) != 43 or len(raw) != 32:
            raise ValueError("must be the 43-character EncodingAESKey from the WeChat console")
        if not info.data.get("wechat_app_id"):
            raise ValueError("safe mode needs SESAME_WECHAT_APP_ID as well")
        return key

    @field_validator("wechat_help")
    @classmethod
    def _help(cls, text: str) -> str:
        if not text.strip() or len(text.encode()) > MAX_WECHAT_TEXT:
            raise ValueError(f"must be some text, at most {MAX_WECHAT_TEXT} bytes (WeChat's limit)")
        return text

    @field_validator("wechat_timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{name!r} is not a time zone name like Asia/Shanghai") from None
        return name

    @field_validator("api_auth_failures", "rate_limit")
    @classmethod
    def _rate(cls, rate: str | None) -> str | None:
        if rate is None:
            return None
        if not _RATE.fullmatch(rate.strip()):
            raise ValueError("must be a rate like 10/minute, 20/hour or 5 per 10 seconds")
        return rate.strip()

    @property
    def zone(self) -> ZoneInfo:
        """The time zone WeChat replies state times in."""
        return ZoneInfo(self.wechat_timezone)

    @property
    def resolved_store_url(self) -> str:
        """The store URL, defaulting to an SQLite file inside the data folder."""
        return self.store_url or f"sqlite:///{self.data_dir / 'sesame.db'}"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning a validation failure into a ConfigError a person can read."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"SESAME_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"Invalid settings: {problems}") from None


def signing_keys(settings: Settings) -> list[bytes]:
    """The keys to sign with, oldest first. Without configured keys, one is generated once
    into ``data_dir/secret.key`` (mode 0600) and shared by every process that reads it."""
    if settings.secret_keys:
        return [key.get_secret_value().encode() for key in settings.secret_keys]
    return [_generated_key(settings.data_dir / KEY_FILE)]


def _generated_key(path: Path) -> bytes:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        # Write aside, then link into place: link() fails if the name exists, so when two
        # processes start together exactly one key wins and nobody reads a half-written file.
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_bytes().strip()
    if len(key) < MIN_KEY_BYTES:
        # A half-written file from a concurrent start, or a damaged one.
        raise ConfigError(f"{path} holds no usable key; delete it to generate a new one.")
    return key
