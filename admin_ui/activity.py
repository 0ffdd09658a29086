"""The Activity page: bandwidth against its limits, the download log with filters, and what was
served per day and per file."""

from __future__ import annotations

from datetime import datetime, tzinfo

import streamlit as st

from admin_ui import bandwidth, display, resources, tables
from sesame.activity import DayFile, LogFilter, Totals
from sesame.models import Outcome, human_size
from sesame.service import Service

PERIODS = {"1d": ("24 hours", 86400), "7d": ("7 days", 7 * 86400), "30d": ("30 days", 30 * 86400)}
ALL = "all"


PAGE = 1000  # log rows shown at once


def render(service: Service) -> None:
    """The whole page: filters, totals, charts and the log, each asked of the store."""
    st.set_page_config(layout="wide")
    st.title("Activity", anchor=False)
    tz, now = display.zone(), service.clock()
    bandwidth.render(service)
    if not service.log_page(LogFilter(), 1):
        st.info("Nobody has opened a link yet. Downloads show up here as they happen.")
        return
    since = _period(now)
    query = _filter(service, since)
    _totals(service.log_totals(query))
    series = service.log_series(query, _offset(now, tz))
    days = (display.day(since, tz) if since else None, display.day(now, tz))
    downloads, data = st.tabs(["Downloads", "Data served"], key="activity_charts")
    with downloads:
        _charts(series, "downloads", "Downloads", days)
    with data:
        _charts(series, "MiB", "MiB sent", days)
    st.subheader("Log", anchor=False)
    rows = service.log_page(query, PAGE + 1)
    if len(rows) > PAGE:
        st.caption(f"The newest {PAGE} rows. Narrow the filters to see older ones.")
    st.download_button(
        "Download as CSV",
        lambda: "".join(service.export_log(query, "csv")),  # made only when clicked
        file_name="sesame-log.csv",
        mime="text/csv",
        icon=":material/download:",
        key="activity_csv",
    )
    st.dataframe(
        tables.log_rows(rows[:PAGE], tz)[tables.EVENT_COLUMNS],
        hide_index=True,
        key="activity_log",
        column_config={
            "bytes": st.column_config.NumberColumn("bytes", format="%d"),
            "status": st.column_config.NumberColumn("status", format="%d"),
            "counted": st.column_config.CheckboxColumn(
                "counted", help="took one download from the link's limit"
            ),
        },
    )


def _offset(now: float, tz: tzinfo) -> int:
    """The browser's offset from UTC now, in seconds: the days of the charts."""
    offset = datetime.fromtimestamp(now, tz).utcoffset()
    return int(offset.total_seconds()) if offset else 0


def _period(now: float) -> float | None:
    period = st.segmented_control(
        "Period",
        [*PERIODS, ALL],
        default="30d",
        required=True,
        format_func=lambda key: PERIODS[key][0] if key in PERIODS else "All time",
        key="activity_period",
    )
    return now - PERIODS[period][1] if period in PERIODS else None


def _filter(service: Service, since: float | None) -> LogFilter:
    files_col, outcomes_col, text_col = st.columns(3)
    files = files_col.multiselect(
        "File", service.link_files(), placeholder="All files", key="activity_file"
    )
    outcomes = outcomes_col.multiselect(
        "Outcome", [str(o) for o in Outcome], placeholder="All outcomes", key="activity_outcome"
    )
    text = text_col.text_input(
        "Search", placeholder="recipient, link, IP or user agent", key="activity_search"
    )
    return LogFilter(since=since, files=files, outcomes=outcomes, text=text)


TOTALS = {  # metric: what it counts
    "Downloads": "Complete downloads that took one from a link's limit.",
    "Aborted": "Downloads the client left unfinished; they were given back.",
    "Previews": "Link-preview bots, scanners, prefetches and in-app browsers: "
    "they saw a card and took nothing.",
    "Data sent": "Bytes sent by every request.",
    "Clients": "Distinct client addresses.",
}


def _totals(totals: Totals) -> None:
    values = {
        "Downloads": totals.downloads,
        "Aborted": totals.aborted,
        "Previews": totals.previews,
        "Data sent": human_size(totals.bytes_sent),
        "Clients": totals.clients,
    }
    with st.container(horizontal=True, key="activity_totals"):  # wraps on a phone
        for label, about in TOTALS.items():
            st.metric(label, values[label], border=True, width=150, help=about)


def _charts(
    series: list[DayFile], measure: tables.Measure, label: str, days: tuple[str | None, str]
) -> None:
    if not series:
        st.caption("Nothing in this selection.")
        return
    st.caption(f"{label} per day, by file")
    per_day = tables.series_per_day(series, measure, *days)
    st.bar_chart(per_day, x_label="", y_label="", height=260)
    st.caption(f"{label} per file")
    per_file = tables.series_per_file(series, measure)
    st.bar_chart(per_file, horizontal=True, x_label="", y_label="")


if __name__ == "__main__":
    render(resources.service())
