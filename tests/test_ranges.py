"""The one Range parse (sesame.ranges): what a request gets of a file, judged with its size."""

from __future__ import annotations

import pytest

from sesame.ranges import MAX_ITEMS, MAX_SPANS, Plan, plan, whole

SIZE = 1000
ETAG = '"3e8-1-2"'
DATE = "Tue, 14 Nov 2023 22:13:20 GMT"


@pytest.mark.parametrize(
    ("header", "status", "spans"),
    [
        (None, 200, ((0, SIZE),)),
        ("bytes=0-", 206, ((0, SIZE),)),
        ("bytes=0-0", 206, ((0, 1),)),
        ("bytes=5-", 206, ((5, SIZE),)),
        ("bytes=-10", 206, ((990, SIZE),)),
        ("bytes=-999999999", 206, ((0, SIZE),)),
        ("bytes=990-999999", 206, ((990, SIZE),)),
        ("bytes=5-,0-4", 206, ((0, SIZE),)),
        ("bytes=1-,0-0", 206, ((0, SIZE),)),
        (f"bytes={SIZE - 1}-,0-", 206, ((0, SIZE),)),
        ("bytes=0-9, 20-29", 206, ((0, 10), (20, 30))),
        ("bytes=20-29,0-9,5-24", 206, ((0, 30),)),
        ("bytes=0-9,10-19", 206, ((0, 20),)),
        ("BYTES = 0-9", 206, ((0, 10),)),
        ("bytes=0-9,,", 206, ((0, 10),)),
        (",".join(["bytes=1-1"] + ["1-1"] * 100), 206, ((1, 2),)),
        ("items=0-9", 200, ((0, SIZE),)),
        ("", 200, ((0, SIZE),)),
        ("bytes=abc", 416, ()),
        ("bytes=9-5", 416, ()),
        ("bytes=-", 416, ()),
        ("bytes=5", 416, ()),
        ("bytes=²-5", 416, ()),
        ("bytes=0-٣", 416, ()),
        ("bytes=-0", 416, ()),
        (f"bytes={SIZE}-", 416, ()),
        ("bytes=", 416, ()),
        ("bytes=1-2-3", 416, ()),
        ("bytes=" + "9" * 5000 + "-", 416, ()),
        ("bytes=0-" + "9" * 20, 416, ()),
        (",".join(["bytes=1-1"] * (MAX_ITEMS + 1)), 416, ()),
    ],
)
def test_a_header_becomes_the_spans_that_will_be_sent(
    header: str | None, status: int, spans: tuple[tuple[int, int], ...]
) -> None:
    """Each Range header is judged once into a status and merged, sorted, clipped spans."""
    answer = plan(SIZE, header)
    assert (answer.status, answer.spans) == (status, spans)
    assert answer.nbytes == sum(end - start for start, end in spans)


def test_more_spans_than_allowed_get_the_whole_file() -> None:
    """Past MAX_SPANS separate spans the answer is the whole file (200), as nginx's
    max_ranges does."""
    header = "bytes=" + ",".join(f"{i * 10}-{i * 10}" for i in range(MAX_SPANS + 1))
    assert plan(SIZE, header) == whole(SIZE)
    allowed = "bytes=" + ",".join(f"{i * 10}-{i * 10}" for i in range(MAX_SPANS))
    assert len(plan(SIZE, allowed).spans) == MAX_SPANS


@pytest.mark.parametrize(
    ("if_range", "status"),
    [(ETAG, 206), (DATE, 206), ('"x"', 200), ("W/" + ETAG, 200), ("", 200), (None, 206)],
)
def test_if_range_sends_the_part_only_for_the_same_version(
    if_range: str | None, status: int
) -> None:
    """If-Range must be the file's ETag or date exactly: otherwise the whole file."""
    answer = plan(SIZE, "bytes=5-", if_range, (ETAG, DATE))
    assert answer.status == status
    assert answer.nbytes == (SIZE - 5 if status == 206 else SIZE)


@pytest.mark.parametrize(
    ("answer", "whole_file", "reaches_end"),
    [
        (whole(SIZE), True, True),
        (plan(SIZE, "bytes=0-"), True, True),
        (plan(SIZE, "bytes=0-0"), False, False),
        (plan(SIZE, "bytes=500-"), False, True),
        (plan(SIZE, "bytes=-1"), False, True),
        (plan(SIZE, "bytes=0-9,990-"), False, True),
        (plan(SIZE, "bytes=abc"), False, False),
        (whole(0), True, True),
    ],
)
def test_what_an_answer_holds(answer: Plan, whole_file: bool, reaches_end: bool) -> None:
    """``whole``: every byte in one request; ``reaches_end``: the file's last byte (what
    finishes, and so counts, a download)."""
    assert (answer.whole, answer.reaches_end) == (whole_file, reaches_end)


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("bytes=0-0", 206),
        ("bytes=5-", 206),
        ("bytes=-10", 206),
        ("bytes =0-0", 200),
        ("Bytes=0-0", 200),
        ("bytes=0-0,2-3", 200),
        ("bytes=0-0,", 200),
        (",".join(["bytes=0-0"] * 17), 200),
        ("bytes=0-1000000,0-1000000,0-1000000", 200),
        (f"bytes={SIZE}-", 416),
    ],
)
def test_single_is_only_what_another_server_reads_alike(header: str, status: int) -> None:
    """``single`` (nginx sends the body and reads Range again, max_ranges 1): one range
    spelled exactly bytes=A-B is a part; anything else is the whole file, counted."""
    assert plan(SIZE, header, single=True).status == status
