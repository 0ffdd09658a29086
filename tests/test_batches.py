"""Downloads decided in batches (gateway.offloop.Batches) on a real SQLite file: many in one
transaction, each store call's own steps atomic within it, the limits exact, and answers
handed back only once the batch is committed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.offloop import Batches
from sesame.downloads import Download
from sesame.errors import LinkExhausted, StoreUnavailable
from sesame.models import Outcome
from sesame.service import Service
from tests.support import BODY, FILE, VISITOR, FakeClock, make_service, take, tmpfs


def _run_all(batches: Batches, jobs: list[Callable[[], Any]]) -> list[Any]:
    async def main() -> list[Any]:
        return await asyncio.gather(*(batches.run(job) for job in jobs), return_exceptions=True)

    return asyncio.run(main())


def _counting_batches(service: Service, undo: Callable[[Any], None] | None = None) -> Any:
    opened: list[int] = []
    real = service.store.open_batch

    def open_batch() -> bool:
        opened.append(1)
        return real()

    service.store.open_batch = open_batch  # type: ignore[method-assign]
    return Batches(service.store, undo), opened


def test_a_burst_is_decided_in_few_transactions_and_counts_exactly(tmp_path: Path) -> None:
    service = make_service(tmp_path, FakeClock())
    link = service.share(FILE, max_downloads=5).link
    batches, opened = _counting_batches(service)
    answers = _run_all(batches, [lambda: take(service, link, len(BODY))] * 40)
    assert sum(isinstance(a, Download) for a in answers) == 5
    assert sum(isinstance(a, LinkExhausted) for a in answers) == 35
    assert len(opened) < 40  # grouped: the jobs waiting at once share one transaction
    record = service.store.get_link(link.id)
    assert record is not None and record.downloads == 5
    assert len(service.events(link.id)) == 5


def test_a_failing_job_keeps_its_writes_and_spoils_no_other(tmp_path: Path) -> None:
    service = make_service(tmp_path, FakeClock())
    link = service.share(FILE).link
    downloads = service.downloads

    def refused() -> None:
        downloads.record(downloads.event(link.id, VISITOR, 410, 0, Outcome.REFUSED))
        raise LinkExhausted(link.id, 1)

    batches, _ = _counting_batches(service)
    first, second, third = _run_all(
        batches,
        [
            lambda: take(service, link, len(BODY)),
            refused,
            lambda: take(service, link, len(BODY)),
        ],
    )
    assert isinstance(first, Download) and isinstance(third, Download)
    assert isinstance(second, LinkExhausted)
    outcomes = sorted(e.outcome for e in service.events(link.id))
    assert outcomes == sorted([Outcome.COMPLETED, Outcome.COMPLETED, Outcome.REFUSED])


def test_a_batch_that_cannot_commit_fails_every_job_and_releases_its_answers(
    tmp_path: Path,
) -> None:
    """On a full disk the commit fails: no job's answer is handed back (each hears the
    store is unavailable), what they hold is released, and nothing of theirs was kept."""
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        service = make_service(tmp_path, FakeClock(), data_dir=mnt, store_timeout=0.2)
        link = service.share(FILE, max_downloads=100).link
        released: list[Any] = []
        batches, _ = _counting_batches(service, released.append)
        with (mnt / "filler").open("wb") as out, pytest.raises(OSError):
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        answers = _run_all(batches, [lambda: take(service, link, len(BODY))] * 20)
        assert all(isinstance(a, StoreUnavailable) for a in answers), answers
        assert released and all(isinstance(d, Download) for d in released)
        (mnt / "filler").unlink()
        record = service.store.get_link(link.id)
        assert record is not None and record.downloads == 0
        assert service.events(link.id) == []
        # Room again: the next batch commits.
        (answer,) = _run_all(batches, [lambda: take(service, link, len(BODY))])
        assert isinstance(answer, Download)
