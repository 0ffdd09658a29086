"""The ``sesame`` command speaks 中文 or English, as SESAME_LANG or the terminal's locale asks:
its help, click's own words, its messages and its errors."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import click
import pytest
from babel.messages.pofile import read_po
from click.testing import CliRunner, Result

from sesame import clitext, i18n
from sesame.cli import cli
from sesame.service import Service
from tests.support import BIN, sesame_env


def sesame(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed ``sesame`` program, in a process of its own, with only ``env`` set of the
    language variables."""
    environ = sesame_env(files_dir=str(tmp_path), data_dir=str(tmp_path / "data"))
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        environ.pop(name, None)
    environ.update(env)
    command = [str(BIN / "sesame"), *args]
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        (
            {"SESAME_LANG": "zh_CN"},
            ["用法:", "选项:", "命令:", "显示本帮助并退出。", "列出可以分享的文件。"],
        ),
        ({"LANG": "zh_CN.UTF-8"}, ["用法:", "显示本帮助并退出。"]),
        ({"LANG": "C"}, ["Usage:", "Options:", "Show this message and exit.", "List the files"]),
        ({"SESAME_LANG": "en", "LANG": "zh_CN.UTF-8"}, ["Usage:", "Commands:"]),
        ({}, ["Usage:", "Show this message and exit."]),
    ],
)
def test_help_follows_the_language(tmp_path: Path, env: dict[str, str], words: list[str]) -> None:
    """`sesame --help`, a real process, is in the language SESAME_LANG, then LANG, names."""
    result = sesame(tmp_path, "--help", **env)
    assert result.returncode == 0, result.stderr
    for word in words:
        assert word in result.stdout


def test_a_usage_error_in_chinese(tmp_path: Path) -> None:
    """click's own errors follow too: an unknown command, in Chinese, exit code 2."""
    result = sesame(tmp_path, "nonsense", SESAME_LANG="zh_CN")
    assert result.returncode == 2
    assert "错误:没有 'nonsense' 这个命令。" in result.stderr
    assert "运行 'sesame --help' 查看帮助。" in result.stderr


def test_an_error_sentence_in_chinese(tmp_path: Path) -> None:
    """A Sesame error is written in the reader's language at the point of display."""
    result = sesame(tmp_path, "link", "missing.txt", SESAME_LANG="zh_CN")
    assert result.returncode == 3
    assert result.stderr == "sesame: 'missing.txt' 不是可以分享的文件(文件不存在)。\n"
    assert "Traceback" not in result.stderr


def run(service: Service, *args: str, lang: str = "zh_CN") -> Result:
    return CliRunner(env={"SESAME_LANG": lang}).invoke(
        cli, list(args), obj={"factory": lambda: service}
    )


def test_every_help_is_translated(service: Service) -> None:
    """Every command's and option's help is shown in Chinese, none left in English."""
    commands: list[tuple[str, ...]] = []

    def walk(group: click.Group, path: tuple[str, ...]) -> None:
        for name, command in group.commands.items():
            commands.append((*path, name))
            if isinstance(command, click.Group):
                walk(command, (*path, name))

    walk(cli, ())
    for path in [(), *commands]:
        result = run(service, *path, "--help")
        assert result.exit_code == 0, result.output
        english = [
            line
            for line in result.stdout.splitlines()
            if re.search(r"[a-z]{4,} [a-z]{3,} [a-z]{3,}", line)
        ]
        assert not english, (path, english)


def test_messages_in_chinese(service: Service) -> None:
    """What a command prints, in Chinese: the link's summary, an empty list, a revocation."""
    made = run(service, "link", "hello.txt", "--ttl", "90s", "--max-downloads", "2", "--no-qr")
    assert made.exit_code == 0, made.output
    summary = made.stdout.splitlines()[1]
    assert summary.startswith("hello.txt · ") and "UTC 过期(1m30s 后)" in summary
    assert summary.endswith("可下载 2 次")
    link_id = service.links()[0].link.id
    assert "有效" in run(service, "links").stdout
    assert run(service, "revoke", link_id).stdout == f"已撤销 {link_id}(hello.txt)。\n"
    assert run(service, "links").stdout == "没有有效的链接(全部链接见 --all)。\n"


def test_an_unknown_id_in_chinese(service: Service) -> None:
    """An error that carries its data is written anew in Chinese, with its exit code."""
    result = run(service, "revoke", "nope")
    assert result.exit_code == 4
    assert result.stderr == "sesame: 没有 ID 为 'nope' 的链接。\n"


def test_a_free_text_error_keeps_its_detail(service: Service) -> None:
    """An error whose sentence is not in the catalog gets a Chinese lead, its English detail
    kept, and no lead in English."""
    chinese = run(service, "link", "hello.txt", "--ttl", "soon")
    english = run(service, "link", "hello.txt", "--ttl", "soon", lang="en")
    assert (chinese.exit_code, english.exit_code) == (2, 2)
    assert chinese.stderr.startswith("sesame: 输入有误:")
    assert chinese.stderr.removeprefix("sesame: 输入有误:") == english.stderr.removeprefix(
        "sesame: "
    )


def test_the_placeholders_match() -> None:
    """Every translation keeps its message's {placeholders} and none more."""
    path = i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "sesame.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale="zh_CN")
    names = re.compile(r"\{(\w*)[^}]*\}")
    for message in catalog:
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        wanted = set().union(*(set(names.findall(i)) for i in ids))
        for string in strings:
            assert set(names.findall(string)) <= wanted, (message.id, string)
            if len(ids) == 1:
                assert set(names.findall(string)) == wanted, (message.id, string)


def test_click_plurals_are_translated() -> None:
    """click's words that depend on a number have their Chinese, for one and for many."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SESAME_LANG", "zh_CN")
        assert all(re.search(r"[\u4e00-\u9fff]", text) for text in clitext.click_plurals(3))


def test_the_language_from_dotenv(tmp_path: Path) -> None:
    """SESAME_LANG in .env counts, as settings there do; the environment's wins over it."""
    (tmp_path / ".env").write_text("SESAME_LANG=zh_CN\n")
    assert "用法:" in sesame(tmp_path, "--help", LANG="C").stdout
    assert "Usage:" in sesame(tmp_path, "--help", SESAME_LANG="en").stdout


@pytest.mark.parametrize(("lang", "says"), [("zh_CN", "sesame,版本 "), ("en", "sesame, version ")])
def test_the_version(service: Service, lang: str, says: str) -> None:
    """--version says the version in the reader's language."""
    result = run(service, "--version", lang=lang)
    assert result.exit_code == 0 and result.stdout.startswith(says)
