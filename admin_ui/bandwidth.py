"""The Activity page's bandwidth section: today's bytes against the daily budget, downloads
in flight against the cap, and bytes served per day over the last 30 days."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from admin_ui import charts
from admin_ui.language import _
from sesame.bandwidth import Usage
from sesame.models import human_size
from sesame.service import Service


def render(service: Service) -> None:
    """The section, from ``Downloads.usage()``."""
    usage = service.downloads.usage()
    st.subheader(_("Bandwidth"), anchor=False)
    with st.container(border=True, key="bandwidth"):
        today, now = st.columns(2)
        with today, st.container(key="bandwidth_today"):
            _today(usage)
        with now, st.container(key="bandwidth_downloads"):
            _in_flight(usage)
        st.caption(_("Data served per day (UTC), last 30 days"))
        table = per_day(usage).set_index("day")
        st.altair_chart(charts.per_day(table, "MiB", height=200), width="stretch")


def _today(usage: Usage) -> None:
    served = human_size(usage.today)
    if usage.budget is None:
        st.markdown(
            _("**Today** {served} served · no daily budget (SESAME_DAILY_EGRESS)").format(
                served=served
            )
        )
        return
    st.progress(
        min(1.0, usage.today / usage.budget) if usage.budget else 1.0,
        text=_("Today {served} of {budget} · resets {time} UTC").format(
            served=served, budget=human_size(usage.budget), time=f"{usage.resets_at:%H:%M}"
        ),
    )


def _in_flight(usage: Usage) -> None:
    if usage.max_downloads is None:
        st.markdown(
            _("**Downloading now** {count} · no cap (SESAME_MAX_CONCURRENT_DOWNLOADS)").format(
                count=usage.downloads
            )
        )
        return
    st.progress(
        min(1.0, usage.downloads / usage.max_downloads),
        text=_("Downloading now {count} of {cap}").format(
            count=usage.downloads, cap=usage.max_downloads
        ),
    )


def per_day(usage: Usage) -> pd.DataFrame:
    """Bytes per day as a table for the chart: ``day`` (ISO date) and ``MiB``."""
    return pd.DataFrame(
        {
            "day": [day.isoformat() for day, _ in usage.per_day],
            "MiB": [served / 1024**2 for _day, served in usage.per_day],
        }
    )
