"""The tables and series the Links and Activity pages show, as pandas DataFrames."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, tzinfo
from typing import Literal

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from admin_ui import display
from admin_ui.display import day, moment, span
from admin_ui.language import N_, _
from sesame.activity import DayFile, LogRow
from sesame.models import DownloadEvent, Link, LinkStatus, Outcome, SharedLink

MIB = 1024 * 1024
Measure = Literal["downloads", "MiB"]
ICONS = {
    LinkStatus.ACTIVE: ":material/check_circle:",
    LinkStatus.USED_UP: ":material/download_done:",
    LinkStatus.EXPIRED: ":material/schedule:",
    LinkStatus.REVOKED: ":material/block:",
}
COLORS = {  # text colour of the status cell
    LinkStatus.ACTIVE: "#15803d",
    LinkStatus.USED_UP: "#b45309",
    LinkStatus.EXPIRED: "#6b7280",
    LinkStatus.REVOKED: "#b91c1c",
}
LINK_COLUMNS = [
    "status",
    "file",
    "recipient",
    "created",
    "expires",
    "time left",
    "downloads",
    "aborted",
    "previews",
    "note",
    "id",
]
# What fits, in pixels per column: 1280 px wide with the sidebar open (the table has about
# 810 px; the row selector takes 35, the border a few), and a phone held upright (about 350).
WIDE_LINK_COLUMNS = {
    "status": 75,
    "file": 160,
    "recipient": 90,
    "time left": 135,
    "downloads": 80,
    "aborted": 60,
    "previews": 65,
    "note": 95,
}
NARROW_LINK_COLUMNS = {"status": 64, "file": 130, "time left": 110}
LABELS = {  # column: its heading, translated where it is shown
    "status": N_("status"),
    "file": N_("file"),
    "recipient": N_("recipient"),
    "created": N_("created"),
    "expires": N_("expires"),
    "time left": N_("time left"),
    "downloads": N_("downloads"),
    "aborted": N_("aborted"),
    "previews": N_("previews"),
    "note": N_("note"),
    "id": N_("id"),
    "time": N_("time"),
    "link": N_("link"),
    "client IP": N_("client IP"),
    "user agent": N_("user agent"),
    "bytes": N_("bytes"),
    "outcome": N_("outcome"),
    "counted": N_("counted"),
}
HELP = {
    "downloads": N_("complete downloads / the link's limit"),
    "aborted": N_("downloads left unfinished (given back)"),
    "previews": N_("bots, prefetches and in-app browsers that took nothing"),
    "counted": N_("took one download from the link's limit"),
}
# One table for each width; CSS shows the one that fits (Streamlit cannot see the width).
RESPONSIVE = """<style>
.st-key-{key}_narrow {{ display: none }}
@media (max-width: 640px) {{
  .st-key-{key}_wide {{ display: none }}
  .st-key-{key}_narrow {{ display: block }}
}}
</style>"""
EVENT_COLUMNS = [
    "time",
    "file",
    "recipient",
    "link",
    "client IP",
    "user agent",
    "status",
    "bytes",
    "outcome",
    "counted",
]


def outcome_counts(log: Iterable[DownloadEvent]) -> dict[str, Counter[Outcome]]:
    """For each link id, how many of its requests ended in each outcome."""
    counts: dict[str, Counter[Outcome]] = defaultdict(Counter)
    for event in log:
        counts[event.link_id][event.outcome] += 1
    return counts


def links(
    shared: Iterable[SharedLink],
    now: float,
    tz: tzinfo,
    outcomes: Mapping[str, Counter[Outcome]] | None = None,
) -> pd.DataFrame:
    """One row per link, in the given order, with its status at ``now`` and, from
    ``outcomes``, its aborted downloads and the previews (bots, prefetches) it answered."""
    outcomes = outcomes or {}
    rows = []
    for item in shared:
        link = item.link
        status = link.status(now)
        rows.append(
            {
                "status": display.status(status),
                "file": link.file,
                "recipient": link.recipient or "",
                "created": moment(link.created_at, tz),
                "expires": moment(link.expires_at, tz),
                "time left": span(link.expires_at - now, display.here())
                if status is LinkStatus.ACTIVE
                else "",
                "downloads": f"{link.downloads} / {link.max_downloads or '∞'}",
                "aborted": outcomes.get(link.id, Counter())[Outcome.ABORTED],
                "previews": outcomes.get(link.id, Counter())[Outcome.PREVIEW],
                "note": link.note or "",
                "id": link.id,
            }
        )
    return pd.DataFrame(rows, columns=LINK_COLUMNS)


def columns(names: Iterable[str], widths: Mapping[str, int] | None = None) -> dict[str, object]:
    """The ``column_config`` of a table: each column's heading (and help) translated, and
    its width in pixels where ``widths`` has one."""
    widths = widths or {}
    return {
        name: st.column_config.Column(
            _(LABELS[name]),
            help=_(HELP[name]) if name in HELP else None,
            width=widths.get(name),
        )
        for name in names
    }


def links_table(table: pd.DataFrame, key: str) -> int | None:
    """Shows ``table`` (from ``links()``) with the columns that fit the screen; the row the
    owner tapped (its position), or None."""
    st.html(RESPONSIVE.format(key=key))
    chosen = None
    for width, shown in (("wide", WIDE_LINK_COLUMNS), ("narrow", NARROW_LINK_COLUMNS)):
        with st.container(key=f"{key}_{width}"):
            event = st.dataframe(
                colored(table),
                hide_index=True,
                column_order=list(shown),
                column_config=columns(shown, shown),  # type: ignore[arg-type]
                on_select="rerun",
                selection_mode="single-row",
                key=f"{key}_{width}_rows",
            )
        rows = event.selection.rows
        if chosen is None and rows:
            chosen = int(rows[0])
    return chosen


def colored(table: pd.DataFrame) -> Styler:
    """``table`` (from ``links()``) with each status in its colour."""
    colors = {display.status(status): color for status, color in COLORS.items()}
    return table.style.map(lambda value: f"color: {colors.get(value, 'inherit')}", ["status"])


def events(log: Iterable[DownloadEvent], links: Mapping[str, Link], tz: tzinfo) -> pd.DataFrame:
    """The download log, one row per request, with each link's file and recipient."""
    rows = []
    for event in log:
        link = links.get(event.link_id)
        local = datetime.fromtimestamp(event.at, tz)
        rows.append(
            {
                "at": event.at,
                "day": day(event.at, tz),
                "time": f"{local:%Y-%m-%d %H:%M:%S}",
                "file": link.file if link else "(unknown link)",
                "recipient": (link.recipient if link else None) or "",
                "link": event.link_id,
                "client IP": event.client_ip or "",
                "user agent": event.user_agent or "",
                "status": event.status,
                "bytes": event.bytes_sent,
                "outcome": str(event.outcome),
                "counted": event.counted,
            }
        )
    return pd.DataFrame(rows, columns=["at", "day", *EVENT_COLUMNS])


def matching(
    log: pd.DataFrame,
    since: float | None = None,
    files: Collection[str] = (),
    outcomes: Collection[str] = (),
    text: str = "",
) -> pd.DataFrame:
    """The rows of ``log`` after ``since``, for ``files`` and ``outcomes`` (empty: any),
    that contain ``text`` in their recipient, link, client IP or user agent."""
    keep = pd.Series(True, index=log.index)
    if since is not None:
        keep &= log["at"] >= since
    if files:
        keep &= log["file"].isin(list(files))
    if outcomes:
        keep &= log["outcome"].isin(list(outcomes))
    if text.strip():
        needle = text.strip().casefold()
        fields = log[["recipient", "link", "client IP", "user agent"]].astype(str)
        found = fields.apply(lambda column: column.str.casefold().str.contains(needle, regex=False))
        keep &= found.any(axis=1)
    return log[keep]


def per_day(
    log: pd.DataFrame, measure: Measure, first: str | None = None, last: str | None = None
) -> pd.DataFrame:
    """Counted downloads (or MiB sent by any request) per local day, a column per file.
    Every day from ``first`` to ``last`` (``YYYY-MM-DD``; default: the log's first and last
    day) is there, quiet ones as 0."""
    table = _pivot(log, "day", measure)
    if table.empty:
        return table
    days = pd.date_range(first or min(table.index), last or max(table.index), freq="D")
    return table.reindex(days.strftime("%Y-%m-%d"), fill_value=0).rename_axis("day")


def per_file(log: pd.DataFrame, measure: Measure) -> pd.DataFrame:
    """Counted downloads (or MiB sent by any request) per file."""
    values = _values(log, measure)
    return values.groupby(log["file"]).sum().to_frame(measure).rename_axis("file")


def _pivot(log: pd.DataFrame, index: str, measure: Measure) -> pd.DataFrame:
    values = _values(log, measure)
    frame = pd.DataFrame({index: log[index], "file": log["file"], measure: values})
    return frame.pivot_table(
        index=index, columns="file", values=measure, aggfunc="sum", fill_value=0
    )


def _values(log: pd.DataFrame, measure: Measure) -> pd.Series:
    if measure == "downloads":
        return log["counted"].astype(int)
    return log["bytes"] / MIB


def log_rows(rows: Iterable[LogRow], tz: tzinfo) -> pd.DataFrame:
    """A page of the log (from the store), one row per request, as ``events()`` lays it out."""
    records = []
    for row in rows:
        event = row.event
        records.append(
            {
                "at": event.at,
                "time": f"{datetime.fromtimestamp(event.at, tz):%Y-%m-%d %H:%M:%S}",
                "file": row.file,
                "recipient": row.recipient or "",
                "link": event.link_id,
                "client IP": event.client_ip or "",
                "user agent": event.user_agent or "",
                "status": event.status,
                "bytes": event.bytes_sent,
                "outcome": str(event.outcome),
                "counted": event.counted,
            }
        )
    return pd.DataFrame(records, columns=["at", *EVENT_COLUMNS])


def series_per_day(
    series: Iterable[DayFile], measure: Measure, first: str | None = None, last: str | None = None
) -> pd.DataFrame:
    """``per_day()`` from the store's series: a row per day from ``first`` to ``last``
    (default: the series' own), a column per file, quiet days as 0."""
    table = _series_pivot(series, measure)
    if table.empty:
        return table
    days = pd.date_range(first or min(table.index), last or max(table.index), freq="D")
    return table.reindex(days.strftime("%Y-%m-%d"), fill_value=0).rename_axis("day")


def series_per_file(series: Iterable[DayFile], measure: Measure) -> pd.DataFrame:
    """``per_file()`` from the store's series."""
    table = _series_pivot(series, measure)
    return table.sum().to_frame(measure).rename_axis("file")


def _series_pivot(series: Iterable[DayFile], measure: Measure) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            (
                item.day,
                item.file,
                item.downloads if measure == "downloads" else item.bytes_sent / MIB,
            )
            for item in series
        ],
        columns=["day", "file", measure],
    )
    return frame.pivot_table(
        index="day", columns="file", values=measure, aggfunc="sum", fill_value=0
    )
