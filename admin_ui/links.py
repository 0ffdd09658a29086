"""The Links page: every link with its state and downloads; open one again, or revoke it."""

from __future__ import annotations

from collections import Counter

import streamlit as st

from admin_ui import display, resources, tables
from sesame.models import Link, LinkStatus, SharedLink
from sesame.service import Service

PAGE = 1000  # links shown at once


def render(service: Service) -> None:
    """The whole page: filters, the table, and one chosen link."""
    st.set_page_config(layout="wide")
    st.title("Links", anchor=False)
    display.notices()
    now, tz = service.clock(), display.zone()
    counts = service.link_counts()
    if not sum(counts.values()):
        st.info("No links yet. Make one on the Share page.")
        return
    status_col, file_col = st.columns([3, 2], vertical_alignment="bottom")
    statuses = status_col.pills(
        "Status",
        list(LinkStatus),
        selection_mode="multi",
        wrap=True,
        format_func=lambda status: f"{tables.ICONS[status]} {status.value} · {counts[status]}",
        key="links_status",
    )
    files = file_col.multiselect(
        "File", service.link_files(), placeholder="All files", key="links_file"
    )
    shown = service.links_page(statuses, files, PAGE + 1)
    if len(shown) > PAGE:
        st.caption(f"The newest {PAGE} links of this choice. Filter to see the others.")
        shown = shown[:PAGE]
    counted = service.outcome_counts([item.link.id for item in shown])
    outcomes = {link_id: Counter(counts) for link_id, counts in counted.items()}
    table = tables.links(shown, now, tz, outcomes)  # type: ignore[arg-type]
    st.dataframe(
        tables.colored(table),
        hide_index=True,
        key="links_table",
        column_config={
            "downloads": st.column_config.TextColumn(
                "downloads", help="complete downloads / the link's limit"
            ),
            "aborted": st.column_config.NumberColumn(
                "aborted", help="downloads left unfinished (given back)"
            ),
            "previews": st.column_config.NumberColumn(
                "previews", help="bots, prefetches and in-app browsers that took nothing"
            ),
        },
    )
    if shown:
        _chosen(service, shown, now)


def _chosen(service: Service, shown: list[SharedLink], now: float) -> None:
    st.subheader("Open or revoke", anchor=False)
    by_id = {item.link.id: item for item in shown}
    link_id: str = st.selectbox(
        "Link", list(by_id), format_func=lambda i: _label(by_id[i]), key="links_chosen"
    )
    item = by_id[link_id]
    st.code(item.url, language=None, wrap_lines=True)
    status = item.link.status(now)
    if status is not LinkStatus.ACTIVE:
        st.caption(f"This link is {status.value}: the gateway already refuses it.")
    else:
        display.confirmed(
            "links_revoke",
            link_id,
            "Revoke…",
            _question(item.link),
            "Yes, revoke",
            lambda: _revoke(service, link_id),
        )


def _question(link: Link) -> str:
    whom = f" for {link.recipient}" if link.recipient else ""
    return (
        f"Revoke the link to “{link.file}”{whom}? From now on, whoever opens it is refused."
        " This cannot be undone."
    )


def _revoke(service: Service, link_id: str) -> str:
    link = service.revoke(link_id)
    return f"Revoked the link to “{link.file}”. It no longer opens."


def _label(item: SharedLink) -> str:
    link = item.link
    whom = f" → {link.recipient}" if link.recipient else ""
    # No status here: it is shown below, and the browser can keep showing a stale label.
    return f"{link.file}{whom} · {link.id}"


if __name__ == "__main__":
    render(resources.service())
