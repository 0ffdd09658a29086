"""nginx's reports of the downloads it sent (offload mode with SESAME_OFFLOAD_REPORT).

deploy/nginx.conf logs each offloaded download to the gateway as a syslog datagram on a
loopback UDP port: the download's lease id (the X-Sesame-Download header the gateway gave
nginx), ``$request_completion`` (``OK`` when nginx wrote the whole body) and
``$body_bytes_sent``. The gateway settles the download as in direct mode: kept if nginx sent
it all, given back if not. Any gateway process may hear any report (the port is shared with
SO_REUSEPORT): a lease is settled from its record in the store.
"""

from __future__ import annotations

import asyncio
import logging
import re

from sesame.downloads import Downloads

log = logging.getLogger("sesame.gateway")
# "<190>Dec  2 12:00:00 sesame: LEASE OK 12345" (nginx's syslog line, nohostname)
_REPORT = re.compile(rb"sesame: ([A-Za-z0-9_-]{8,64}) (OK|-|) ?(\d{1,19})\s*$")


def parse(datagram: bytes) -> tuple[str, bool, int] | None:
    """The lease id, whether nginx completed the body, and the bytes it sent; None for
    anything else."""
    match = _REPORT.search(datagram)
    if match is None:
        return None
    lease, completion, sent = match.groups()
    return lease.decode(), completion == b"OK", int(sent)


class Reports(asyncio.DatagramProtocol):
    """Settles each download nginx reports, off the event loop."""

    def __init__(self, downloads: Downloads) -> None:
        self.downloads = downloads

    def datagram_received(self, data: bytes, addr: object) -> None:
        report = parse(data)
        if report is None:
            log.warning("ignored a datagram that is not an nginx download report")
            return
        lease, completed, sent = report
        loop = asyncio.get_running_loop()
        settled = loop.run_in_executor(None, self.downloads.report, lease, sent, completed)
        settled.add_done_callback(_failed)


def _failed(settled: asyncio.Future[bool]) -> None:
    if not settled.cancelled() and settled.exception() is not None:
        # Its lease lapses then, and the download is given back (see OFFLOADED_LEASE).
        log.error("could not settle a download nginx reported", exc_info=settled.exception())


async def listen(address: str, downloads: Downloads) -> asyncio.DatagramTransport:
    """Listen for reports on ``address`` (``host:port``)."""
    host, _, port = address.rpartition(":")
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: Reports(downloads), local_addr=(host.strip("[]"), int(port)), reuse_port=True
    )
    return transport
