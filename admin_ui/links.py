"""The Links page: every link with its state and downloads; open one again, or revoke it."""

from __future__ import annotations

from collections import Counter

import streamlit as st

from admin_ui import display, linkcard, resources, tables
from admin_ui.language import _
from sesame.models import Link, LinkStatus, SharedLink
from sesame.service import LINKS_SHOWN, Service

PAGE = LINKS_SHOWN  # links shown at once


def render(service: Service) -> None:
    """The whole page: filters, the table, and one chosen link."""
    st.title(_("Links"), anchor=False)
    display.notices()
    now, tz = service.clock(), display.zone()
    counts = service.link_counts()
    if not sum(counts.values()):
        st.info(_("No links yet. Make one on the Share page."))
        return
    status_col, file_col = st.columns([3, 2], vertical_alignment="bottom")
    statuses = status_col.pills(
        _("Status"),
        list(LinkStatus),
        selection_mode="multi",
        wrap=True,
        format_func=lambda status: (
            f"{tables.ICONS[status]} {display.status(status)} · {counts[status]}"
        ),
        key="links_status",
    )
    files = file_col.multiselect(
        _("File"), service.link_files(), placeholder=_("All files"), key="links_file"
    )
    shown = service.links_page(statuses, files, PAGE + 1)
    if len(shown) > PAGE:
        st.caption(
            _("The newest {count} links of this choice. Filter to see the others.").format(
                count=PAGE
            )
        )
        shown = shown[:PAGE]
    counted = service.outcome_counts([item.link.id for item in shown])
    outcomes = {link_id: Counter(counts) for link_id, counts in counted.items()}
    table = tables.links(shown, now, tz, outcomes)  # type: ignore[arg-type]
    chosen = tables.links_table(table, "links_table")
    if chosen is not None:
        _chosen(service, shown[chosen], now)
    else:
        st.caption(_("Tap a row to copy its link, show its QR code or revoke it."))


def _chosen(service: Service, item: SharedLink, now: float) -> None:
    linkcard.render(item, None, now, "links")
    if item.link.status(now) is not LinkStatus.ACTIVE:
        return
    display.confirmed(
        "links_revoke",
        item.link.id,
        _("Revoke…"),
        _question(item.link),
        _("Yes, revoke"),
        lambda: _revoke(service, item.link.id),
    )


def _question(link: Link) -> str:
    if link.recipient:
        question = _(
            "Revoke the link to “{file}” for {recipient}? From now on, whoever opens it is"
            " refused. This cannot be undone."
        )
    else:
        question = _(
            "Revoke the link to “{file}”? From now on, whoever opens it is refused."
            " This cannot be undone."
        )
    return question.format(file=link.file, recipient=link.recipient)


def _revoke(service: Service, link_id: str) -> str:
    link = service.revoke(link_id)
    return _("Revoked the link to “{file}”. It no longer opens.").format(file=link.file)


if __name__ == "__main__":
    render(resources.service())
