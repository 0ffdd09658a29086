"""The Share page: pick or upload a file, choose a lifetime and a limit, get the link."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from streamlit.testing.v1 import AppTest

from admin_ui import signin
from sesame.models import Link
from sesame.service import Service
from tests.support import FILES, ZONE, errors, texts


def make_link(at: AppTest) -> AppTest:
    return at.button(key="share_submit").click().run()


def newest(service: Service) -> Link:
    return service.links(include_inactive=True)[0].link


def test_files_are_listed_with_size_time_and_hash(signed_in: AppTest) -> None:
    """Every catalog file is offered; the chosen one shows its size, time and SHA-256."""
    picker = signed_in.selectbox(key="share_file")
    assert sorted(picker.options) == sorted(
        f"{name} · {len(body)} B" for name, body in FILES.items()
    )
    picker.set_value("芝麻 开门.txt").run()
    about = signed_in.main.caption[0].value
    assert hashlib.sha256(FILES["芝麻 开门.txt"]).hexdigest() in about
    assert f"{len(FILES['芝麻 开门.txt'])} B" in about and "modified 20" in about


def test_ten_minutes_is_the_default_lifetime(signed_in: AppTest) -> None:
    """Without a choice, the lifetime preset is 10 minutes."""
    assert signed_in.segmented_control(key="share_lifetime").value == "10m"


@pytest.mark.parametrize(
    ("preset", "seconds"), [("10m", 600), ("1h", 3600), ("1d", 86400), ("7d", 7 * 86400)]
)
def test_each_lifetime_preset_makes_a_link(
    signed_in: AppTest, service: Service, preset: str, seconds: int
) -> None:
    """One click after choosing a preset makes a link of that lifetime, shown with its URL,
    QR code, downloads of the code and the share text."""
    signed_in.segmented_control(key="share_lifetime").set_value(preset).run()
    make_link(signed_in)
    link = newest(service)
    assert link.lifetime == seconds
    url = service.link(link.id).url
    assert signed_in.code[0].value == url
    assert len(signed_in.image) == 1
    assert [b.label for b in signed_in.download_button] == ["QR code (PNG)", "QR code (SVG)"]
    assert not errors(signed_in) and not signed_in.exception


def test_custom_lifetime(signed_in: AppTest, service: Service) -> None:
    """A custom lifetime is written the way the CLI takes it."""
    signed_in.segmented_control(key="share_lifetime").set_value("custom").run()
    signed_in.text_input(key="share_custom_lifetime").input("1h30m").run()
    make_link(signed_in)
    assert newest(service).lifetime == 5400


@pytest.mark.parametrize(
    ("lifetime", "message"),
    [("forever", "is not a lifetime"), ("8d", "longest lifetime"), ("", "is not a lifetime")],
)
def test_bad_custom_lifetime_is_explained_and_loses_nothing(
    signed_in: AppTest, service: Service, lifetime: str, message: str
) -> None:
    """A lifetime that is not one, or too long, is a sentence; no link, and what the
    owner typed stays."""
    signed_in.text_input(key="share_to").input("Alice")
    signed_in.segmented_control(key="share_lifetime").set_value("custom").run()
    signed_in.text_input(key="share_custom_lifetime").input(lifetime).run()
    make_link(signed_in)
    assert message in errors(signed_in)[0]
    assert service.links(include_inactive=True) == []
    assert signed_in.text_input(key="share_to").value == "Alice"
    assert signed_in.text_input(key="share_custom_lifetime").value == lifetime


@pytest.mark.parametrize(("choice", "limit"), [("none", None), ("once", 1), ("custom", 5)])
def test_download_limit(signed_in: AppTest, service: Service, choice: str, limit: int) -> None:
    """No limit, one-time, or a number of downloads."""
    signed_in.segmented_control(key="share_limit").set_value(choice).run()
    if choice == "custom":
        signed_in.number_input(key="share_limit_count").set_value(5).run()
    make_link(signed_in)
    assert newest(service).max_downloads == limit


def test_recipient_and_note_are_kept(signed_in: AppTest, service: Service) -> None:
    """The optional recipient and note go into the link's record."""
    signed_in.text_input(key="share_to").input("王小明")
    signed_in.text_input(key="share_note").input("the March photos")
    make_link(signed_in)
    link = newest(service)
    assert (link.recipient, link.note) == ("王小明", "the March photos")
    assert "**For** 王小明" in texts(signed_in.markdown)


def test_result_in_local_time_with_share_text(signed_in: AppTest, service: Service) -> None:
    """The expiry shows in the browser's time zone; the share text has, in Chinese and in
    English, the link, the expiry and the file's SHA-256."""
    signed_in.selectbox(key="share_file").set_value("芝麻 开门.txt")
    signed_in.segmented_control(key="share_limit").set_value("once")
    make_link(signed_in)
    link = newest(service)
    url = service.link(link.id).url
    text = signed_in.code[1].value
    sha = hashlib.sha256(FILES["芝麻 开门.txt"]).hexdigest()
    assert text.count(url) == 2 and text.count(sha) == 2
    assert "「芝麻 开门.txt」" in text and "有效期 10 分钟" in text and "仅限下载 1 次" in text
    assert "Valid for 10 minutes" in text and "one download only" in text
    assert text.count("(UTC+8)") == 2
    local = datetime.fromtimestamp(link.expires_at, ZoneInfo(ZONE))
    assert f"**Expires** {local:%Y-%m-%d %H:%M} (UTC+8)" in texts(signed_in.markdown)
    assert any(c.startswith(("in 9 minutes", "in 10 minutes")) for c in texts(signed_in.caption))


def test_without_files_there_is_nothing_to_share(
    signed_in: AppTest, dashboard_settings: Path
) -> None:
    """An empty catalog says how to add a file, and the button is off."""
    for path in dashboard_settings.iterdir():
        path.unlink()
    signed_in.run()
    assert "No files yet" in signed_in.info[0].value
    assert signed_in.button(key="share_submit").disabled


def upload(at: AppTest, name: str, body: bytes) -> AppTest:
    return at.file_uploader(key="upload_file").set_value((name, body, "text/plain")).run()


def test_upload_adds_and_selects_the_file(signed_in: AppTest, dashboard_settings: Path) -> None:
    """An uploaded file lands in the files folder and is the one chosen to share."""
    upload(signed_in, "report 2025.pdf", b"%PDF-1.7 ...")
    assert (dashboard_settings / "report 2025.pdf").read_bytes() == b"%PDF-1.7 ..."
    assert signed_in.selectbox(key="share_file").value == "report 2025.pdf"
    assert "Added “report 2025.pdf”" in texts(signed_in.success)[0]


def test_oversized_upload_is_refused(
    app: AppTest, monkeypatch: pytest.MonkeyPatch, dashboard_settings: Path
) -> None:
    """A file over SESAME_MAX_UPLOAD_SIZE is refused by the server with a sentence, and
    nothing of it is written."""
    monkeypatch.setenv("SESAME_MAX_UPLOAD_SIZE", "1KiB")
    app.session_state["signed_in"] = True
    upload(app.run(), "big.bin", b"x" * 1025)
    assert "larger than the limit of 1024 bytes" in errors(app)[0]
    assert sorted(p.name for p in dashboard_settings.iterdir()) == sorted(FILES)
    assert "up to 1.0 KiB" in app.file_uploader(key="upload_file").label


@pytest.mark.parametrize(
    ("given", "saved"),
    [
        ("../../x", "x"),
        ("/etc/passwd", "passwd"),
        ("..\\..\\win.ini", "win.ini"),
        (".hidden", "hidden"),
        ("bell\x07and\ttab.txt", "bell_and_tab.txt"),
    ],
)
def test_upload_names_are_made_safe(
    signed_in: AppTest, dashboard_settings: Path, tmp_path: Path, given: str, saved: str
) -> None:
    """A name that climbs out, is absolute, hidden or holds control characters is saved
    under a safe name inside the files folder, and the owner is told."""
    upload(signed_in, given, b"body")
    assert (dashboard_settings / saved).read_bytes() == b"body"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "files"]
    assert signed_in.selectbox(key="share_file").value == saved
    assert f"Added “{saved}” (4 B, from “{given}”)" in texts(signed_in.success)[0]


@pytest.mark.parametrize("given", ["..", "...", " . "])
def test_upload_with_no_usable_name_is_refused(signed_in: AppTest, given: str) -> None:
    """A name that is nothing once made safe is refused with a sentence."""
    upload(signed_in, given, b"body")
    assert "is not a usable file name" in errors(signed_in)[0]


def existing(at: AppTest, dashboard_settings: Path) -> AppTest:
    upload(at, "welcome.txt", b"a new welcome\n")
    assert (dashboard_settings / "welcome.txt").read_bytes() == FILES["welcome.txt"]
    assert "already exists" in texts(at.warning)[0]
    return at


def test_upload_of_an_existing_name_asks_first(
    signed_in: AppTest, dashboard_settings: Path
) -> None:
    """An existing file is never overwritten silently: the owner is asked."""
    existing(signed_in, dashboard_settings)
    assert [b.label for b in signed_in.button if b.key.startswith("upload_")] == [
        "Replace it",
        "Save as “welcome (2).txt”",
        "Cancel",
    ]


def test_upload_conflict_replace(signed_in: AppTest, dashboard_settings: Path) -> None:
    """ "Replace it" overwrites the file with the upload."""
    existing(signed_in, dashboard_settings)
    signed_in.button(key="upload_replace").click().run()
    assert (dashboard_settings / "welcome.txt").read_bytes() == b"a new welcome\n"
    assert not signed_in.warning


def test_upload_conflict_keep_both(signed_in: AppTest, dashboard_settings: Path) -> None:
    """ "Save as" keeps the old file and adds the upload under a free name."""
    existing(signed_in, dashboard_settings)
    signed_in.button(key="upload_keep_both").click().run()
    assert (dashboard_settings / "welcome.txt").read_bytes() == FILES["welcome.txt"]
    assert (dashboard_settings / "welcome (2).txt").read_bytes() == b"a new welcome\n"
    assert signed_in.selectbox(key="share_file").value == "welcome (2).txt"


def test_upload_conflict_cancel(signed_in: AppTest, dashboard_settings: Path) -> None:
    """ "Cancel" changes nothing."""
    existing(signed_in, dashboard_settings)
    signed_in.button(key="upload_cancel").click().run()
    assert sorted(p.name for p in dashboard_settings.iterdir()) == sorted(FILES)
    assert not signed_in.warning


def test_speed_cap(signed_in: AppTest, service: Service) -> None:
    """The speed cap field goes into the link's record and shows with the result; a
    nonsense speed is explained."""
    signed_in.text_input(key="share_rate").input("500KiB")
    make_link(signed_in)
    assert newest(service).rate == 512_000
    assert "**Speed cap** 500.0 KiB/s" in texts(signed_in.markdown)
    signed_in.text_input(key="share_rate").input("fast")
    make_link(signed_in)
    assert any("not a speed" in error for error in errors(signed_in))


def test_speed_cap_defaults_to_the_setting(
    monkeypatch: pytest.MonkeyPatch, app: AppTest, service: Service
) -> None:
    """SESAME_DEFAULT_LINK_RATE fills the field; emptying it makes an uncapped link."""
    monkeypatch.setenv("SESAME_DEFAULT_LINK_RATE", "1MiB")
    app.session_state[signin.SIGNED_IN] = True
    app.run()
    assert app.text_input(key="share_rate").value == "1.0 MiB"
    make_link(app)
    assert newest(service).rate == 1024**2
    app.text_input(key="share_rate").input("")
    make_link(app)
    # Both links may share a second, so look at both rather than at the newest.
    assert sorted(str(item.link.rate) for item in service.links()) == ["1048576", "None"]
