"""The Activity page: bandwidth against its limits, the download log with filters, and what was
served per day and per file."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from admin_ui import bandwidth, display, resources, tables
from sesame.models import Outcome, human_size
from sesame.service import Service

PERIODS = {"1d": ("24 hours", 86400), "7d": ("7 days", 7 * 86400), "30d": ("30 days", 30 * 86400)}
ALL = "all"


def render(service: Service) -> None:
    """The whole page: filters, totals, charts and the log."""
    st.set_page_config(layout="wide")
    st.title("Activity", anchor=False)
    tz, now = display.zone(), service.clock()
    links = {item.link.id: item.link for item in service.links(include_inactive=True)}
    log = tables.events(service.events(), links, tz)
    bandwidth.render(service)
    if log.empty:
        st.info("Nobody has opened a link yet. Downloads show up here as they happen.")
        return
    since = _period(now)
    shown = _filtered(log, since)
    _totals(shown)
    days = (display.day(since, tz) if since else None, display.day(now, tz))
    downloads, data = st.tabs(["Downloads", "Data served"], key="activity_charts")
    with downloads:
        _charts(shown, "downloads", "Downloads", days)
    with data:
        _charts(shown, "MiB", "MiB sent", days)
    st.subheader("Log", anchor=False)
    st.dataframe(
        shown[tables.EVENT_COLUMNS],
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


def _filtered(log: pd.DataFrame, since: float | None) -> pd.DataFrame:
    files_col, outcomes_col, text_col = st.columns(3)
    files = files_col.multiselect(
        "File", sorted(log["file"].unique()), placeholder="All files", key="activity_file"
    )
    outcomes = outcomes_col.multiselect(
        "Outcome", [str(o) for o in Outcome], placeholder="All outcomes", key="activity_outcome"
    )
    text = text_col.text_input(
        "Search", placeholder="recipient, link, IP or user agent", key="activity_search"
    )
    return tables.matching(log, since, files, outcomes, text)


TOTALS = {  # metric: what it counts
    "Downloads": "Complete downloads that took one from a link's limit.",
    "Aborted": "Downloads the client left unfinished; they were given back.",
    "Previews": "Link-preview bots, scanners, prefetches and in-app browsers: "
    "they saw a card and took nothing.",
    "Data sent": "Bytes sent by every request.",
    "Clients": "Distinct client addresses.",
}


def _totals(shown: pd.DataFrame) -> None:
    values = {
        "Downloads": int(shown["counted"].sum()),
        "Aborted": int((shown["outcome"] == str(Outcome.ABORTED)).sum()),
        "Previews": int((shown["outcome"] == str(Outcome.PREVIEW)).sum()),
        "Data sent": human_size(int(shown["bytes"].sum())),
        "Clients": shown.loc[shown["client IP"] != "", "client IP"].nunique(),
    }
    with st.container(horizontal=True, key="activity_totals"):  # wraps on a phone
        for label, about in TOTALS.items():
            st.metric(label, values[label], border=True, width=150, help=about)


def _charts(
    shown: pd.DataFrame, measure: tables.Measure, label: str, days: tuple[str | None, str]
) -> None:
    if shown.empty:
        st.caption("Nothing in this selection.")
        return
    st.caption(f"{label} per day, by file")
    per_day = tables.per_day(shown, measure, *days)
    st.bar_chart(per_day, x_label="", y_label="", height=260)
    st.caption(f"{label} per file")
    st.bar_chart(tables.per_file(shown, measure), horizontal=True, x_label="", y_label="")


if __name__ == "__main__":
    render(resources.service())
