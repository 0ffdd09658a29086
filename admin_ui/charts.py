"""The Activity page's chart of each day: bars stacked by file, dates the axis has room for,
and a legend under the chart that lists every file, on a phone too."""

from __future__ import annotations

import altair as alt
import pandas as pd

from admin_ui.language import _


def per_day(table: pd.DataFrame, measure: str, height: int = 260) -> alt.Chart:
    """``table`` (a row per day ``YYYY-MM-DD``, a column per file) as stacked bars; one
    column alone is drawn without a legend."""
    long = table.reset_index().melt(id_vars="day", var_name="file", value_name="value")
    file, day = _("file"), _("day")
    return (
        alt.Chart(long.rename(columns={"file": file, "day": day, "value": measure}))
        .mark_bar()
        .encode(
            x=alt.X(
                f"{day}:T",
                title=None,
                # Ticks as the width allows, whole days only: 30 labels never crowd a phone.
                axis=alt.Axis(
                    format="%m-%d", labelAngle=0, labelOverlap=True, tickCount=6, tickMinStep=864e5
                ),
                timeUnit="yearmonthdate",
            ),
            y=alt.Y(f"{measure}:Q", title=None),
            color=alt.Color(
                f"{file}:N",
                legend=alt.Legend(orient="bottom", columns=1, labelLimit=0, title=None)
                if len(table.columns) > 1
                else None,
            ),
            tooltip=[alt.Tooltip(f"{day}:T", format="%Y-%m-%d"), f"{file}:N", f"{measure}:Q"],
        )
        .properties(height=height)
    )
