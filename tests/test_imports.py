"""The rules of the house about who imports whom, read from the source with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import REPO

# package -> top-level modules it must never import
FORBIDDEN = {
    "sesame": {"fastapi", "starlette", "uvicorn", "streamlit", "gateway", "admin_ui"},
    "gateway": {"admin_ui"},
    "admin_ui": {"gateway"},
}


def imported_modules(source: str, package: str) -> set[str]:
    """Every module a file of ``package`` imports, made absolute; imports inside functions
    and ``importlib.import_module("literal")`` count too."""
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join([*base, node.module or ""]).rstrip("."))
            else:
                found.add(node.module or "")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and getattr(node.func, "id", getattr(node.func, "attr", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(str(node.args[0].value))
    return found


def sources(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def imports_of(path: Path) -> set[str]:
    package = ".".join(path.relative_to(REPO).parts[:-1])
    return imported_modules(path.read_text(encoding="utf-8"), package)


def test_the_packages_are_there() -> None:
    """The checks below have files to read (a typo in a path would make them pass vacuously)."""
    assert sources("sesame") and sources("gateway")


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_rules(package: str) -> None:
    """sesame imports neither face; gateway and admin_ui do not import each other."""
    breaches = [
        f"{path.relative_to(REPO)} imports {module}"
        for path in sources(package)
        for module in sorted(imports_of(path))
        if module.split(".")[0] in FORBIDDEN[package]
    ]
    assert breaches == []


def test_only_links_touches_itsdangerous() -> None:
    """Within sesame, only sesame/links.py imports itsdangerous."""
    users = [
        str(path.relative_to(REPO))
        for path in sources("sesame")
        if any(m.split(".")[0] == "itsdangerous" for m in imports_of(path))
    ]
    assert users == ["sesame/links.py"]


def test_the_reader_sees_every_import_form() -> None:
    """imported_modules finds plain, from, relative, nested and import_module imports."""
    source = (
        "import fastapi.responses\n"
        "from streamlit import x\n"
        "from ..gateway import app\n"
        "from ..models import Link\n"
        "def f():\n"
        "    import admin_ui.pages\n"
        "    importlib.import_module('uvicorn')\n"
    )
    assert imported_modules(source, "sesame.store") == {
        "fastapi.responses",
        "streamlit",
        "sesame.gateway",
        "sesame.models",
        "admin_ui.pages",
        "uvicorn",
    }
    assert "gateway" in imported_modules("from ..gateway import app", "sesame")
