"""Settings from SESAME_* variables and .env, and the generated signing key."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pydantic
import pytest

from sesame.errors import ConfigError
from sesame.settings import KEY_FILE, Settings, load_settings, signing_keys
from tests.support import KEY, REPO

OTHER_KEY = "another-test-key-abcdefghijklmnopqrstuvwxyz0123"


def test_defaults() -> None:
    """With nothing set, Sesame runs on ./files, ./.sesame and a local public URL."""
    settings = load_settings()
    assert settings.secret_keys == ()
    assert settings.files_dir == Path("files")
    assert settings.data_dir == Path(".sesame")
    assert settings.public_url == "http://127.0.0.1:8000"
    assert settings.admin_password is None
    assert (settings.default_lifetime, settings.max_lifetime) == (600, 7 * 86400)
    assert settings.max_upload_size == 512 * 1024**2
    assert settings.resolved_store_url == "sqlite:///.sesame/sesame.db"


def test_reads_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every SESAME_* variable is read and parsed into its type."""
    monkeypatch.setenv("SESAME_FILES_DIR", str(tmp_path / "f"))
    monkeypatch.setenv("SESAME_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("SESAME_STORE_URL", "sqlite:///elsewhere.db")
    monkeypatch.setenv("SESAME_PUBLIC_URL", "https://files.example.com/")
    monkeypatch.setenv("SESAME_ADMIN_PASSWORD", "open sesame")
    monkeypatch.setenv("SESAME_DEFAULT_LIFETIME", "1h30m")
    monkeypatch.setenv("SESAME_MAX_LIFETIME", "2d")
    monkeypatch.setenv("SESAME_MAX_UPLOAD_SIZE", "2KiB")
    settings = load_settings()
    assert settings.files_dir == tmp_path / "f"
    assert settings.data_dir == tmp_path / "d"
    assert settings.resolved_store_url == "sqlite:///elsewhere.db"
    assert settings.public_url == "https://files.example.com"
    assert settings.admin_password is not None
    assert settings.admin_password.get_secret_value() == "open sesame"
    assert (settings.default_lifetime, settings.max_lifetime) == (5400, 2 * 86400)
    assert settings.max_upload_size == 2048


def test_comma_separated_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """SESAME_SECRET_KEYS is split on commas, blanks dropped, order kept (oldest first)."""
    monkeypatch.setenv("SESAME_SECRET_KEYS", f" {KEY} ,, {OTHER_KEY},")
    settings = load_settings()
    assert signing_keys(settings) == [KEY.encode(), OTHER_KEY.encode()]


def test_keys_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """The keys do not appear in the settings' repr."""
    monkeypatch.setenv("SESAME_SECRET_KEYS", KEY)
    assert KEY not in repr(load_settings())


def test_dotenv_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A .env in the current folder is read; a real variable overrides it."""
    (tmp_path / ".env").write_text(
        "SESAME_PUBLIC_URL=https://from-dotenv.example\nSESAME_DEFAULT_LIFETIME=5m\n"
    )
    monkeypatch.setenv("SESAME_DEFAULT_LIFETIME", "2m")
    settings = load_settings()
    assert settings.public_url == "https://from-dotenv.example"
    assert settings.default_lifetime == 120


def test_empty_variable_means_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty variable (as .env.example leaves them) counts as unset."""
    monkeypatch.setenv("SESAME_SECRET_KEYS", "")
    monkeypatch.setenv("SESAME_STORE_URL", "")
    settings = load_settings()
    assert settings.secret_keys == ()
    assert settings.store_url is None


@pytest.mark.parametrize("keys", ["too-short", f"{KEY},too-short", "x" * 31])
def test_short_key_refused(monkeypatch: pytest.MonkeyPatch, keys: str) -> None:
    """A key under 32 bytes is a ConfigError that names the variable and hides the key."""
    monkeypatch.setenv("SESAME_SECRET_KEYS", keys)
    with pytest.raises(ConfigError, match="SESAME_SECRET_KEYS.*32 bytes") as info:
        load_settings()
    assert "too-short" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SESAME_DEFAULT_LIFETIME", "soon"),
        ("SESAME_MAX_LIFETIME", "0"),
        ("SESAME_PUBLIC_URL", "ftp://example.com"),
        ("SESAME_MAX_UPLOAD_SIZE", "big"),
    ],
)
def test_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """A value that cannot be used is a ConfigError naming the variable."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()


def test_default_lifetime_longer_than_max_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A default lifetime over the maximum would make links whose record outlives the token."""
    monkeypatch.setenv("SESAME_DEFAULT_LIFETIME", "30d")
    monkeypatch.setenv("SESAME_MAX_LIFETIME", "7d")
    with pytest.raises(ConfigError, match="SESAME_MAX_LIFETIME"):
        load_settings()


def test_settings_are_frozen() -> None:
    """Settings cannot be changed after they are built."""
    settings = load_settings()
    with pytest.raises(pydantic.ValidationError):
        settings.public_url = "https://elsewhere.example"  # type: ignore[misc]


def test_key_generated_once_with_mode_0600(tmp_path: Path) -> None:
    """Without keys, one is generated into data_dir/secret.key (0600) and then reused."""
    settings = load_settings(data_dir=tmp_path / "state")
    first = signing_keys(settings)
    path = tmp_path / "state" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 1 and len(first[0]) >= 32
    assert signing_keys(load_settings(data_dir=tmp_path / "state")) == first
    assert [p.name for p in path.parent.iterdir()] == [KEY_FILE]


def test_configured_keys_generate_nothing(tmp_path: Path) -> None:
    """With SESAME_SECRET_KEYS set, no key file is written."""
    signing_keys(load_settings(secret_keys=KEY, data_dir=tmp_path / "state"))
    assert not (tmp_path / "state" / KEY_FILE).exists()


def test_damaged_key_file_refused(tmp_path: Path) -> None:
    """A key file without a usable key is a ConfigError that says what to do."""
    (tmp_path / KEY_FILE).write_text("short\n")
    with pytest.raises(ConfigError, match="delete it"):
        signing_keys(load_settings(data_dir=tmp_path))


def _key_after_barrier(
    data_dir: Path, barrier: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue[bytes]
) -> None:
    barrier.wait()
    out.put(signing_keys(Settings(data_dir=data_dir))[0])


@pytest.mark.parametrize("attempt", range(5))
def test_processes_starting_together_share_one_key(tmp_path: Path, attempt: int) -> None:
    """Four processes that generate the key at the same moment all end up with the same key."""
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    workers = [
        ctx.Process(target=_key_after_barrier, args=(tmp_path / "state", barrier, out))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    keys = {out.get(timeout=20) for _ in workers}
    for worker in workers:
        worker.join(timeout=20)
        assert worker.exitcode == 0
    assert keys == {(tmp_path / "state" / KEY_FILE).read_bytes().strip()}
    assert [p.name for p in (tmp_path / "state").iterdir()] == [KEY_FILE]


@pytest.mark.parametrize("document", ["README.md", ".env.example"])
@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_documented(document: str, field: str) -> None:
    """README.md and .env.example mention every setting as SESAME_<NAME>."""
    assert f"SESAME_{field.upper()}" in (REPO / document).read_text(encoding="utf-8")
