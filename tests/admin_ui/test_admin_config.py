"""The dashboard's process and house rules: Procfile, Streamlit config, imports, widget keys."""

from __future__ import annotations

import ast
import math
import os
import subprocess
import tomllib

import pytest

from sesame.settings import Settings
from tests.support import REPO

MODULES = sorted((REPO / "admin_ui").glob("*.py"))
WIDGETS = {
    "button",
    "checkbox",
    "date_input",
    "download_button",
    "file_uploader",
    "form_submit_button",
    "multiselect",
    "number_input",
    "pills",
    "radio",
    "segmented_control",
    "selectbox",
    "slider",
    "text_area",
    "text_input",
    "toggle",
}


def procfile() -> dict[str, str]:
    lines = (REPO / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def test_procfile_runs_the_gateway_and_the_dashboard() -> None:
    """Two processes: the gateway on $PORT, Streamlit on its own address, loopback by default."""
    processes = procfile()
    assert sorted(processes) == ["admin", "web"]
    assert "gateway.app:create_app" in processes["web"] and "${PORT:-8000}" in processes["web"]
    admin = processes["admin"]
    assert admin.startswith("streamlit run admin_ui/app.py ")
    assert "--server.address ${SESAME_ADMIN_HOST:-127.0.0.1}" in admin
    assert "--server.port ${SESAME_ADMIN_PORT:-8501}" in admin
    assert "PORT:" not in admin.replace("ADMIN_PORT:", "")  # honcho's $PORT is the gateway's


def test_streamlit_config_is_for_production() -> None:
    """Headless, no usage statistics, no error details in the browser, and an upload cap no
    smaller than the default SESAME_MAX_UPLOAD_SIZE."""
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["headless"] is True
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["showErrorDetails"] == "none"
    default = int(Settings.model_fields["max_upload_size"].default)
    assert config["server"]["maxUploadSize"] >= math.ceil(default / 1024**2)


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.name)
def test_dashboard_imports_nothing_from_the_gateway(module: os.PathLike[str]) -> None:
    """admin_ui depends on sesame only; the gateway is another process."""
    tree = ast.parse(open(module, encoding="utf-8").read())
    names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names]  # fmt: skip
    names += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in names if name.split(".")[0] == "gateway"]


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.name)
def test_every_widget_has_a_key(module: os.PathLike[str]) -> None:
    """Tests (and people reading the code) find every widget by its key."""
    tree = ast.parse(open(module, encoding="utf-8").read())
    keyless = [
        f"line {node.lineno}: {node.func.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in WIDGETS
        and not any(keyword.arg == "key" for keyword in node.keywords)
    ]
    assert keyless == []


def test_banner_says_where_each_process_listens() -> None:
    """``make run`` prints the gateway's and the dashboard's addresses before starting."""
    env = {"PATH": os.environ["PATH"], "PORT": "8123", "SESAME_ADMIN_PORT": "8124"}
    out = subprocess.run(
        [REPO / "scripts" / "banner"], env=env, capture_output=True, text=True, check=True,
        cwd=REPO / "admin_ui",  # no .env here
    ).stdout  # fmt: skip
    assert "http://127.0.0.1:8123" in out and "http://127.0.0.1:8124" in out
