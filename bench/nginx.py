"""A throwaway nginx: deploy/nginx.conf's server block (or a static one) in a temporary prefix.

Used by the benchmark and by the offload tests: ``nginx -p PREFIX -c nginx.conf`` in the
foreground, on loopback, with its pid, logs and temporary files inside ``PREFIX``.
"""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.cores import pin_to_server_cpu

REPO = Path(__file__).resolve().parent.parent
DEPLOY_CONF = REPO / "deploy" / "nginx.conf"

_MAIN = """daemon off;
{user}master_process on;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{server}
}}
"""


def offload_server(
    port: int, gateway_port: int, files_dir: Path, report_port: int | None = None
) -> str:
    """deploy/nginx.conf with its EDIT lines pointed at this machine's test setup (reports
    to the gateway on ``report_port``; none if not given)."""
    text = DEPLOY_CONF.read_text()
    report = f"syslog:server=127.0.0.1:{report_port}," if report_port else "off; #"
    replacements = {
        "listen 127.0.0.1:8080;": f"listen 127.0.0.1:{port};",
        "proxy_pass http://127.0.0.1:8000;": f"proxy_pass http://127.0.0.1:{gateway_port};",
        "alias /srv/sesame/files/;": f"alias {files_dir.resolve()}/;",
        "syslog:server=127.0.0.1:8514,": report,
    }
    for old, new in replacements.items():
        if old not in text:
            raise RuntimeError(f"deploy/nginx.conf no longer has {old!r}")
        text = text.replace(old, new)
    return text


def static_server(port: int, files_dir: Path) -> str:
    """nginx serving ``files_dir`` as it would serve any static file: the yardstick."""
    return (
        f"server {{ listen 127.0.0.1:{port}; sendfile on; tcp_nopush on;\n"
        f"    location / {{ root {files_dir.resolve()}; }} }}"
    )


@contextmanager
def running_nginx(
    nginx: str, prefix: Path, server: str, port: int, workers: int = 1
) -> Iterator[str]:
    """Run ``nginx`` with ``server`` until the block ends; yields http://127.0.0.1:``port``."""
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    # Run as root, nginx's workers would become "nobody" and could not read a private tmp dir.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    text = _MAIN.format(user=user, workers=workers, prefix=prefix, server=server)
    conf.write_text(text)
    log = (prefix / "stderr.log").open("wb")
    command = [nginx, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
    process = subprocess.Popen(command, stdout=log, stderr=log, preexec_fn=pin_to_server_cpu)
    try:
        _wait_listening(process, port, prefix)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_listening(process: subprocess.Popen[bytes], port: int, prefix: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            errors = (prefix / "stderr.log").read_text(errors="replace")
            raise RuntimeError(f"nginx exited with {process.returncode}:\n{errors}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)  # polling for start-up
    raise RuntimeError("nginx did not start listening")
