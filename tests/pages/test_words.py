"""Times and paths on the pages in the words people use."""

from datetime import UTC, datetime, timedelta

from service.ui.views import ago_filter, day_filter, filename_filter, folder_filter


def test_times_ago():
    now = datetime.now(UTC)
    assert ago_filter((now - timedelta(seconds=5)).isoformat()) == "just now"
    assert ago_filter((now - timedelta(minutes=3, seconds=5)).isoformat()) == "3 minutes ago"
    assert ago_filter((now - timedelta(minutes=1, seconds=5)).isoformat()) == "1 minute ago"
    assert ago_filter((now - timedelta(hours=2, minutes=1)).timestamp()) == "2 hours ago"
    assert ago_filter((now - timedelta(hours=30)).isoformat()) == "yesterday"
    assert ago_filter((now - timedelta(days=4, hours=1)).isoformat()) == "4 days ago"
    assert ago_filter("2024-05-03T10:00:00+00:00") == "on 3 May 2024"
    assert ago_filter(None) == "" and ago_filter("not a time") == "not a time"


def test_days_and_paths():
    assert day_filter(datetime(2024, 5, 3, 12, tzinfo=UTC).timestamp()) == "3 May 2024"
    assert day_filter(None) == ""
    assert filename_filter("/cams/door/2024/a.jpg") == "a.jpg"
    assert folder_filter("/cams/door/2024/a.jpg") == "/cams/door/2024"
