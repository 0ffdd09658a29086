"""Sesame's settings: one frozen object, read from ``SESAME_*`` variables and ``.env``."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Any

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
    default_lifetime: Lifetime = 600
    max_lifetime: Lifetime = 7 * 86400
    max_upload_size: ByteSize = Field(default=ByteSize(512 * 1024**2))

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
    path.parent.mkdir(parents=True, exist_ok=True)
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
