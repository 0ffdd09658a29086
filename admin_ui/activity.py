"""The Activity page: bandwidth against its limits, the download log with filters, and what was
served per day and per file."""

from __future__ import annotations

from datetime import datetime, tzinfo

import streamlit as st

from admin_ui import bandwidth, charts, display, resources, tables
from admin_ui.language import N_, _
from sesame.activity import DayFile, LogFilter, Totals
from sesame.models import Outcome, human_size
from sesame.service import Service

PERIODS = {
    "1d": (N_("24 hours"), 86400),
    "7d": (N_("7 days"), 7 * 86400),
    "30d": (N_("30 days"), 30 * 86400),
}
ALL = "all"


PAGE = 1000  # log rows shown at once


def render(service: Service) -> None:
    """The whole page: filters, totals, charts and the log, each asked of the store."""
    st.title(_("Activity"), anchor=False)
    tz, now = display.zone(), service.clock()
    bandwidth.render(service)
    if not service.log_page(LogFilter(), 1):
        st.info(_("Nobody has opened a link yet. Downloads show up here as they happen."))
        return
    since = _period(now)
    query = _filter(service, since)
    _totals(service.log_totals(query))
    series = service.log_series(query, _offset(now, tz))
    days = (display.day(since, tz) if since else None, display.day(now, tz))
    downloads, data = st.tabs([_("Downloads"), _("Data served")], key="activity_charts")
    with downloads:
        _charts(series, "downloads", _("Downloads"), days)
    with data:
        _charts(series, "MiB", _("MiB sent"), days)
    st.subheader(_("Log"), anchor=False)
    rows = service.log_page(query, PAGE + 1)
    if len(rows) > PAGE:
        st.caption(
            _("The newest {count} rows. Narrow the filters to see older ones.").format(count=PAGE)
        )
    st.download_button(
        _("Download as CSV"),
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
            **tables.columns(tables.EVENT_COLUMNS),
            "bytes": st.column_config.NumberColumn(_("bytes"), format="%d"),
            "status": st.column_config.NumberColumn(_("status"), format="%d"),
            "counted": st.column_config.CheckboxColumn(
                _("counted"), help=_(tables.HELP["counted"])
            ),
        },
    )


def _offset(now: float, tz: tzinfo) -> int:
    """The browser's offset from UTC now, in seconds: the days of the charts."""
    offset = datetime.fromtimestamp(now, tz).utcoffset()
    return int(offset.total_seconds()) if offset else 0


def _period(now: float) -> float | None:
    period = st.segmented_control(
        _("Period"),
        [*PERIODS, ALL],
        default="30d",
        required=True,
        format_func=lambda key: _(PERIODS[key][0]) if key in PERIODS else _("All time"),
        key="activity_period",
    )
    return now - PERIODS[period][1] if period in PERIODS else None


def _filter(service: Service, since: float | None) -> LogFilter:
    files_col, outcomes_col, text_col = st.columns(3)
    files = files_col.multiselect(
        _("File"), service.link_files(), placeholder=_("All files"), key="activity_file"
    )
    outcomes = outcomes_col.multiselect(
        _("Outcome"),
        [str(o) for o in Outcome],
        placeholder=_("All outcomes"),
        key="activity_outcome",
    )
    text = text_col.text_input(
        _("Search"), placeholder=_("recipient, link, IP or user agent"), key="activity_search"
    )
    return LogFilter(since=since, files=files, outcomes=outcomes, text=text)


TOTALS = {  # metric: what it counts
    N_("Downloads"): N_("Complete downloads that took one from a link's limit."),
    N_("Aborted"): N_("Downloads the client left unfinished; they were given back."),
    N_("Previews"): N_(
        "Link-preview bots, scanners, prefetches and in-app browsers: "
        "they saw a card and took nothing."
    ),
    N_("Data sent"): N_("Bytes sent by every request."),
    N_("Clients"): N_("Distinct client addresses."),
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
            st.metric(_(label), values[label], border=True, width=170, help=_(about))


def _charts(
    series: list[DayFile], measure: tables.Measure, label: str, days: tuple[str | None, str]
) -> None:
    if not series:
        st.caption(_("Nothing in this selection."))
        return
    st.caption(_("{measure} per day, by file").format(measure=label))
    per_day = tables.series_per_day(series, measure, *days)
    st.altair_chart(charts.per_day(per_day, label), width="stretch")
    st.caption(_("{measure} per file").format(measure=label))
    per_file = tables.series_per_file(series, measure)
    st.bar_chart(per_file, horizontal=True, x_label="", y_label="")


if __name__ == "__main__":
    render(resources.service())
