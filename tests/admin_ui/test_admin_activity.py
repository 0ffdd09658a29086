"""The Activity page: the download log with filters, totals and charts per day and file."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from streamlit.testing.v1 import AppTest

from admin_ui import bandwidth, signin, tables
from sesame.bandwidth import Usage
from sesame.models import DownloadEvent, Link, Outcome
from sesame.service import Service
from sesame.settings import load_settings
from tests.support import ZONE, take

DAY = 86400
UA = "Mozilla/5.0 (iPhone) MicroMessenger/8.0"
IP = "203.0.113.7"


@pytest.fixture
def seeded(service: Service) -> dict[str, str]:
    """Requests over three days: two files, completed, aborted and refused downloads."""
    now = time.time()
    photos = service.share("芝麻 开门.txt", recipient="Alice").link.id
    welcome = service.share("welcome.txt", recipient="Bob").link.id
    for event in [
        DownloadEvent(photos, now - 2 * DAY, IP, UA, 200, 1000, Outcome.COMPLETED, counted=True),
        DownloadEvent(photos, now - 60, IP, UA, 200, 300, Outcome.ABORTED),
        DownloadEvent(photos, now - 30, IP, UA, 200, 1000, Outcome.COMPLETED, counted=True),
        DownloadEvent(
            welcome, now - 20, "198.51.100.2", "curl/7.88", 200, 18, Outcome.COMPLETED, counted=True
        ),
        DownloadEvent(welcome, now - 10, "198.51.100.2", "curl/7.88", 410, 0, Outcome.REFUSED),
        DownloadEvent(
            welcome, now - 40 * DAY, "192.0.2.1", "Wget/1.21", 200, 18, Outcome.COMPLETED, True
        ),
    ]:
        service.store.add_event(event)
    return {"photos": photos, "welcome": welcome}


def activity(at: AppTest) -> AppTest:
    return at.switch_page("activity.py").run()


def log(at: AppTest) -> list[dict[str, object]]:
    return at.dataframe[0].value.to_dict("records")  # type: ignore[no-any-return]


def totals(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def test_log_of_the_last_30_days(signed_in: AppTest, seeded: dict[str, str]) -> None:
    """Each request of the period, newest first, with its link's file and recipient."""
    activity(signed_in)
    rows = log(signed_in)
    assert [row["outcome"] for row in rows] == [
        "refused",
        "completed",
        "completed",
        "aborted",
        "completed",
    ]
    newest = rows[0]
    assert newest["file"] == "welcome.txt" and newest["recipient"] == "Bob"
    assert newest["client IP"] == "198.51.100.2" and newest["user agent"] == "curl/7.88"
    assert newest["status"] == 410 and newest["bytes"] == 0
    assert newest["link"] == seeded["welcome"]
    assert totals(signed_in) == {
        "Downloads": "3",
        "Data sent": "2.3 KiB",
        "Aborted": "1",
        "Previews": "0",
        "Clients": "2",
    }


def test_period_file_outcome_and_search_filters(signed_in: AppTest, seeded: dict[str, str]) -> None:
    """Period, file, outcome and a free-text search narrow the log and the totals."""
    activity(signed_in)
    signed_in.segmented_control(key="activity_period").set_value("all").run()
    assert len(log(signed_in)) == 6
    signed_in.segmented_control(key="activity_period").set_value("1d").run()
    assert len(log(signed_in)) == 4
    signed_in.multiselect(key="activity_file").set_value(["芝麻 开门.txt"]).run()
    assert {row["recipient"] for row in log(signed_in)} == {"Alice"}
    signed_in.multiselect(key="activity_outcome").set_value(["completed"]).run()
    assert len(log(signed_in)) == 1
    signed_in.multiselect(key="activity_file").set_value([]).run()
    signed_in.text_input(key="activity_search").input("CURL").run()
    assert [row["user agent"] for row in log(signed_in)] == ["curl/7.88"]


def test_charts_per_day_and_per_file(signed_in: AppTest, seeded: dict[str, str]) -> None:
    """Downloads and data sent are charted per day and per file."""
    activity(signed_in)
    downloads, data = signed_in.tabs
    assert [tab.label for tab in signed_in.tabs] == ["Downloads", "Data served"]
    for tab in (downloads, data):
        assert len(tab.get("vega_lite_chart")) == 2


def test_per_day_counts_completed_downloads_by_file() -> None:
    """Per-day series: completed downloads (or MiB of any request) per file, and quiet days
    in between are zeros."""
    day = 1_700_006_400  # 2023-11-15 00:00 UTC
    events = [
        DownloadEvent("a", day + 10, None, None, 200, 1024 * 1024, Outcome.COMPLETED, True),
        DownloadEvent("a", day + 20, None, None, 200, 512 * 1024, Outcome.ABORTED),
        DownloadEvent("b", day + 2 * DAY, None, None, 200, 0, Outcome.COMPLETED, True),
    ]
    links = {"a": Link("a", "a.txt", 0, 1), "b": Link("b", "b.txt", 0, 1)}
    frame = tables.events(events, links, UTC)
    downloads = tables.per_day(frame, "downloads")
    assert downloads.to_dict("index") == {
        "2023-11-15": {"a.txt": 1, "b.txt": 0},
        "2023-11-16": {"a.txt": 0, "b.txt": 0},
        "2023-11-17": {"a.txt": 0, "b.txt": 1},
    }
    assert tables.per_file(frame, "MiB")["MiB"].to_dict() == {"a.txt": 1.5, "b.txt": 0.0}
    period = tables.per_day(frame, "MiB", "2023-11-14", "2023-11-18")
    assert list(period.index) == [f"2023-11-{d}" for d in range(14, 19)]
    assert period.loc["2023-11-15", "a.txt"] == 1.5 and period.loc["2023-11-18"].sum() == 0


def test_no_downloads_yet(signed_in: AppTest) -> None:
    """Before anyone opens a link, the page says so."""
    activity(signed_in)
    assert "Nobody has opened a link yet" in signed_in.info[0].value


def test_zone_is_the_browsers(signed_in: AppTest, seeded: dict[str, str]) -> None:
    """Times in the log are in the browser's time zone."""
    assert signed_in.context["timezone"] == ZONE
    activity(signed_in)
    first = log(signed_in)[-1]["time"]
    assert isinstance(first, str)
    parsed = datetime.strptime(first, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo(ZONE))
    assert abs(parsed.timestamp() - (time.time() - 2 * DAY)) < 120


def test_counted_aborted_and_previews_are_told_apart(signed_in: AppTest, service: Service) -> None:
    """Only counted downloads are Downloads; resumptions are not, previews stand apart."""
    now = time.time()
    link = service.share("welcome.txt").link.id
    for event in [
        DownloadEvent(link, now - 50, "192.0.2.9", "Slackbot 1.0", 200, 0, Outcome.PREVIEW),
        DownloadEvent(link, now - 40, "192.0.2.8", "curl/8", 200, 9, Outcome.ABORTED),
        DownloadEvent(link, now - 30, "192.0.2.8", "curl/8", 206, 9, Outcome.COMPLETED),
        DownloadEvent(link, now - 20, "192.0.2.7", "curl/8", 200, 18, Outcome.COMPLETED, True),
    ]:
        service.store.add_event(event)
    activity(signed_in)
    shown = totals(signed_in)
    assert (shown["Downloads"], shown["Aborted"], shown["Previews"]) == ("1", "1", "1")
    assert [row["counted"] for row in log(signed_in)] == [True, False, False, False]
    signed_in.switch_page("links.py").run()
    row = signed_in.dataframe[0].value.iloc[0]
    assert (row["aborted"], row["previews"]) == (1, 1)


def downloading(service: Service, nbytes: int) -> None:
    """One download in flight, with ``nbytes`` reserved on today's budget."""
    link = service.share("welcome.txt").link
    take(service, link, nbytes, settled=False)


def test_bandwidth_without_limits(signed_in: AppTest, service: Service) -> None:
    """Without a budget or a cap the section says so, with today's bytes and a 30-day chart."""
    downloading(service, 3 * 1024**2)
    activity(signed_in)
    text = " ".join(md.value for md in signed_in.markdown)
    assert "**Today** 3.0 MiB served · no daily budget" in text
    assert "**Downloading now** 1 · no cap" in text
    chart = signed_in.get("vega_lite_chart")
    assert chart, "the 30-day chart is drawn"


def test_bandwidth_against_the_budget_and_the_cap(
    monkeypatch: pytest.MonkeyPatch, app: AppTest
) -> None:
    """With SESAME_DAILY_EGRESS and SESAME_MAX_CONCURRENT_DOWNLOADS the section shows
    progress bars of today's bytes and the downloads in flight against them."""
    monkeypatch.setenv("SESAME_DAILY_EGRESS", "8MiB")
    monkeypatch.setenv("SESAME_MAX_CONCURRENT_DOWNLOADS", "4")
    service = Service.from_settings(load_settings())
    try:
        downloading(service, 2 * 1024**2)
        app.session_state[signin.SIGNED_IN] = True
        activity(app.run())
        bars = {bar.text: bar.value for bar in app.get("progress")}
    finally:
        service.store.close()
    today = next(text for text in bars if text.startswith("Today"))
    assert today.startswith("Today 2.0 MiB of 8.0 MiB · resets 00:00 UTC")
    assert bars[today] == 25
    assert bars["Downloading now 1 of 4"] == 25


def test_bytes_per_day_for_the_chart() -> None:
    """The chart's table has 30 days, oldest first, in MiB."""
    usage = Usage(
        today=1024**2,
        budget=None,
        downloads=0,
        max_downloads=None,
        per_day=[(date(2027, 1, d), d * 1024**2) for d in range(1, 31)],
        resets_at=datetime(2027, 1, 31, tzinfo=UTC),
    )
    table = bandwidth.per_day(usage)
    assert list(table["day"])[:2] == ["2027-01-01", "2027-01-02"]
    assert list(table["MiB"])[-1] == 30


def test_the_filtered_log_as_csv(signed_in: AppTest, seeded: dict[str, str]) -> None:
    """The page offers the rows its filters select as a CSV file (key activity_csv), made
    by the same export as `sesame log export`."""
    activity(signed_in)
    signed_in.text_input(key="activity_search").input("curl").run()
    (button,) = [b for b in signed_in.download_button if b.key == "activity_csv"]
    assert button.label == "Download as CSV"
    service = Service.from_settings(load_settings())
    from sesame.activity import LogFilter

    rows = "".join(service.export_log(LogFilter(text="curl"), "csv")).splitlines()
    assert rows[0].startswith("time,link,file") and len(rows) == 1 + 2
