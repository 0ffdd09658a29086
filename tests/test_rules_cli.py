"""Keyword rules and API keys as the owner manages them: the Service and the ``sesame`` CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sesame.cli import cli
from sesame.errors import ApiKeyInvalid, FileMissing, InvalidInput, RuleExists, RuleNotFound
from sesame.service import Service
from sesame.settings import Settings
from tests.support import BODY, FILE, T0, FakeClock, make_service, make_settings, take

pytestmark = pytest.mark.frozen_at(T0)

OPENID = "oWx1p5ABCDEFGHIJKLMNOPQRSTUV"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """FILE in tmp_path; conftest builds the service on these."""
    return make_settings(tmp_path)


def run(service: Service, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), obj={"factory": lambda: service})


def test_a_fresh_install_has_no_rules(service: Service) -> None:
    """Nothing answers any keyword until the owner adds a rule."""
    assert json.loads(run(service, "rule", "list", "--json").output) == []
    assert service.link_for_keyword("芝麻开门", OPENID) is None
    assert service.keyword_reply("芝麻开门", OPENID) is None


def test_rule_add_then_list(service: Service) -> None:
    """`sesame rule add` keeps the rule with its options; `rule list --json` shows it."""
    added = run(service, "rule", "add", "芝麻开门", FILE, "--ttl", "10m", "--max-downloads", "2")
    assert added.exit_code == 0, added.output
    assert "芝麻开门" in added.output and FILE in added.output
    [listed] = json.loads(run(service, "rule", "list", "--json").output)
    assert listed | {"created_at": None} == {
        "keyword": "芝麻开门",
        "file": FILE,
        "lifetime": 600,
        "max_downloads": 2,
        "cooldown": 600,
        "template": None,
        "landing": False,
        "created_at": None,
    }


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["rule", "add", "k", "missing.exe"], 3, "not a file you can share"),
        (["rule", "add", "k", FILE, "--ttl", "30d"], 2, "longest lifetime"),
        (["rule", "add", "k", FILE, "--template", "{url} {who}"], 2, "unknown placeholder {who}"),
        (["rule", "add", "k", FILE, "--template", "{url!r}"], 2, "unknown placeholder"),
        (["rule", "add", "k", FILE, "--template", "{url.__class__}"], 2, "unknown placeholder"),
        (["rule", "add", "k", FILE, "--template", "no link here"], 2, "must contain {url}"),
        (["rule", "add", "k", FILE, "--template", "{url"], 2, "unmatched"),
        (["rule", "add", "!!", FILE], 2, "keyword needs"),
        (["rule", "add", "k", FILE, "--cooldown", "soon"], 2, "not a lifetime"),
        (["rule", "remove", "nothing"], 4, "no rule"),
        (["apikey", "revoke", "nothing"], 4, "no API key"),
        (["apikey", "create", " "], 2, "needs a name"),
    ],
)
def test_bad_rules_and_keys_are_refused_with_a_sentence(
    service: Service, args: list[str], code: int, words: str
) -> None:
    """Each mistake exits non-zero with one readable line on stderr, and stores nothing."""
    result = run(service, *args)
    assert result.exit_code == code, result.output
    assert words in result.stderr and result.stderr.startswith("sesame: ")
    assert service.rules() == []


def test_a_keyword_has_one_rule_unless_replaced(service: Service) -> None:
    """A second rule for the same keyword (in any spelling) needs --replace."""
    service.add_rule("芝麻开门", FILE)
    with pytest.raises(RuleExists):
        service.add_rule(" 芝麻 开门！", FILE)
    result = run(service, "rule", "add", "芝麻开门", FILE, "--ttl", "1h", "--replace")
    assert result.exit_code == 0
    assert [(rule.keyword, rule.lifetime) for rule in service.rules()] == [("芝麻开门", 3600)]


def test_rule_remove(service: Service) -> None:
    """`sesame rule remove` stops the keyword; links already sent keep working."""
    service.add_rule("芝麻开门", FILE)
    sent = service.link_for_keyword("芝麻开门", OPENID)
    assert sent is not None
    assert run(service, "rule", "remove", "芝麻开门").exit_code == 0
    assert service.link_for_keyword("芝麻开门", OPENID) is None
    assert service.link(sent.link.id).link.revoked_at is None
    with pytest.raises(RuleNotFound):
        service.remove_rule("芝麻开门")


@pytest.mark.parametrize(
    "sent", ["芝麻开门", " 芝麻开门 ", "芝麻 开门！", "芝麻开门。", "ＯＰＥＮ"]
)
def test_keywords_match_however_they_are_typed(service: Service, sent: str) -> None:
    """Spaces, full-width forms, case and punctuation around the keyword do not matter."""
    service.add_rule("芝麻开门", FILE)
    service.add_rule("open", FILE)
    assert service.link_for_keyword(sent, OPENID) is not None


def test_a_keyword_link_is_issued_to_the_sender(service: Service) -> None:
    """The link has the rule's file, lifetime, limit and landing page, for the OpenID."""
    service.add_rule("芝麻开门", FILE, lifetime="10m", max_downloads=1, landing=True)
    shared = service.link_for_keyword("芝麻开门", OPENID)
    assert shared is not None
    link = shared.link
    assert (link.file, link.recipient, link.max_downloads, link.landing) == (
        FILE,
        OPENID,
        1,
        True,
    )
    assert (link.created_at, link.expires_at) == (T0, T0 + 600)
    assert link.note == "keyword 芝麻开门"


def test_the_cooldown_gives_the_same_link_back(service: Service, clock: FakeClock) -> None:
    """Within the cool-down one sender gets one link; after it, a new one; others their own."""
    service.add_rule("芝麻开门", FILE, lifetime="10m", cooldown="5m")
    first = service.link_for_keyword("芝麻开门", OPENID)
    clock.now = T0 + 299
    assert service.link_for_keyword("芝麻开门", OPENID) == first
    assert service.link_for_keyword("芝麻开门", "another-openid") != first
    clock.now = T0 + 300
    later = service.link_for_keyword("芝麻开门", OPENID)
    assert later is not None and first is not None and later.link.id != first.link.id
    assert len(service.links()) == 3


def test_no_cooldown_means_a_new_link_every_time(service: Service) -> None:
    """--cooldown 0 issues a link per message."""
    assert run(service, "rule", "add", "k", FILE, "--cooldown", "0").exit_code == 0
    first = service.link_for_keyword("k", OPENID)
    assert service.link_for_keyword("k", OPENID) != first


def test_the_default_reply_has_link_expiry_and_hash(service: Service) -> None:
    """The default reply holds the URL, the expiry in China's time, the minutes and SHA-256."""
    service.add_rule("芝麻开门", FILE, lifetime="10m")
    reply = service.keyword_reply("芝麻开门", OPENID)
    shared = service.link_for_keyword("芝麻开门", OPENID)
    assert reply is not None and shared is not None
    assert shared.url in reply
    assert "2027-01-15 16:10 (UTC+8)" in reply  # T0 + 10 minutes in Asia/Shanghai
    assert "10 分钟内有效" in reply and "10 min" in reply
    assert hashlib.sha256(BODY).hexdigest() in reply


def test_a_template_is_filled_and_keeps_literal_braces(service: Service, clock: FakeClock) -> None:
    """A custom template gets every placeholder; {{ }} stays a brace; minutes count down."""
    template = "{{{file}}} {size} {minutes}m {expires} {url}"
    service.add_rule("k", FILE, lifetime="1h", template=template)
    shared = service.link_for_keyword("k", OPENID)
    clock.now = T0 + 30 * 60 + 1
    reply = service.keyword_reply("k", OPENID)
    assert shared is not None
    assert reply == f"{{{FILE}}} 16.0 KiB 30m 2027-01-15 17:00 (UTC+8) {shared.url}"


def test_a_used_up_link_in_the_cooldown_says_when_to_ask_again(
    service: Service, clock: FakeClock
) -> None:
    """If the sender's link is used up, the reply says so and when a new one can be had."""
    service.add_rule("芝麻开门", FILE, lifetime="10m", max_downloads=1, cooldown="1h")
    shared = service.link_for_keyword("芝麻开门", OPENID)
    assert shared is not None
    take(service, shared.link, len(BODY))
    reply = service.keyword_reply("芝麻开门", OPENID)
    assert reply is not None and shared.url not in reply
    assert "下载次数已用完" in reply and "used up" in reply
    assert "2027-01-15 17:00 (UTC+8)" in reply  # T0 + 1 hour: when to ask again


def test_times_follow_the_configured_zone(tmp_path: Path, clock: FakeClock) -> None:
    """SESAME_WECHAT_TIMEZONE changes how reply times are written."""
    service = make_service(tmp_path, clock, wechat_timezone="Asia/Kolkata")
    service.add_rule("k", FILE, lifetime="10m")
    assert "2027-01-15 13:40 (UTC+5:30)" in (service.keyword_reply("k", OPENID) or "")
    service.store.close()


def test_apikey_create_shows_the_key_once_and_keeps_only_its_hash(
    service: Service, tmp_path: Path
) -> None:
    """The key is printed once; the store and later listings have only digest and prefix."""
    result = run(service, "apikey", "create", "build bot", "--json")
    assert result.exit_code == 0
    created = json.loads(result.output)
    secret = created["key"]
    assert secret.startswith("ssk_") and len(secret) > 40
    assert service.authenticate(secret).id == created["id"]
    listed = run(service, "apikey", "list", "--json")
    assert secret not in listed.output and created["prefix"] in listed.output
    stored = b"".join(path.read_bytes() for path in (tmp_path / "state").glob("sesame.db*"))
    assert secret.encode() not in stored
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in stored


def test_apikey_create_plain_prints_the_key_alone_on_stdout(service: Service) -> None:
    """Without --json the key is stdout's only line, ready for $(sesame apikey create x)."""
    result = run(service, "apikey", "create", "script")
    assert result.exit_code == 0
    assert result.stdout.strip().startswith("ssk_") and "\n" not in result.stdout.strip()
    assert "only this once" in result.stderr


def test_a_keys_use_is_noted_once_a_minute(tmp_path: Path) -> None:
    """`sesame apikey list` shows a key's last use to the minute: a script calling the API
    many times a second writes that note once a minute, not once a call."""
    clock = FakeClock(T0)
    service = make_service(tmp_path, clock)
    created = service.create_api_key("bot")
    service.authenticate(created.secret)
    clock.advance(59)
    service.authenticate(created.secret)
    assert [key.last_used_at for key in service.api_keys()] == [T0]
    clock.advance(1)
    service.authenticate(created.secret)
    assert [key.last_used_at for key in service.api_keys()] == [T0 + 60]
    clock.advance(-3600)  # the clock set back an hour: what it said is not kept as the truth
    service.authenticate(created.secret)
    assert [key.last_used_at for key in service.api_keys()] == [T0 + 60 - 3600]
    service.store.close()


def test_a_revoked_key_is_refused(service: Service) -> None:
    """After `sesame apikey revoke ID` the key no longer authenticates."""
    created = service.create_api_key("bot")
    assert run(service, "apikey", "revoke", created.api_key.id).exit_code == 0
    with pytest.raises(ApiKeyInvalid):
        service.authenticate(created.secret)
    [listed] = service.api_keys()
    assert listed.revoked_at == T0


@pytest.mark.parametrize("secret", ["", "ssk_", "ssk_nope", "Bearer x", "ssk_" + "é" * 10])
def test_unknown_keys_are_refused(service: Service, secret: str) -> None:
    """Anything but a created, unrevoked key raises ApiKeyInvalid."""
    service.create_api_key("bot")
    with pytest.raises(ApiKeyInvalid):
        service.authenticate(secret)


def test_link_landing_flag(service: Service) -> None:
    """`sesame link --landing` makes a link with a landing page."""
    result = run(service, "link", FILE, "--landing", "--json")
    assert result.exit_code == 0
    assert json.loads(result.output)["landing"] is True
    assert json.loads(run(service, "link", FILE, "--json").output)["landing"] is False


def test_a_rule_whose_file_is_gone_is_reported(service: Service) -> None:
    """If the rule's file was removed since, asking raises FileMissing, not a broken link."""
    service.add_rule("k", FILE)
    (service.settings.files_dir / FILE).unlink()
    with pytest.raises(FileMissing):
        service.keyword_reply("k", OPENID)
    assert service.links() == []


def test_long_rule_values_are_refused(service: Service) -> None:
    """Over-long keywords and templates are refused before anything is stored."""
    with pytest.raises(InvalidInput):
        service.add_rule("k" * 101, FILE)
    with pytest.raises(InvalidInput):
        service.add_rule("k", FILE, template="{url}" + "字" * 500)
