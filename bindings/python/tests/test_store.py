"""crow.Store and crow.ingest (bindings/python/src/store.rs)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import crow

DAY = 86_400_000
T0 = 1_733_000_000_000  # 2024-11-30


def events(n: int = 6) -> list[dict]:
    out = []
    for i in range(n):
        out.append(
            {
                "type": "page",
                "messageId": f"p-{i}",
                "anonymousId": f"anon-{i % 2}",
                "timestamp": dt.datetime.fromtimestamp((T0 + i * DAY) / 1000, dt.timezone.utc).isoformat(),
                "context": {"page": {"url": f"https://shop.example/p/{i}", "path": f"/p/{i}"}},
            }
        )
        out.append(
            {
                "type": "track",
                "event": "Feedback Sent",
                "messageId": f"f-{i}",
                "anonymousId": f"anon-{i % 2}",
                "timestamp": dt.datetime.fromtimestamp((T0 + i * DAY + 1000) / 1000, dt.timezone.utc).isoformat(),
                "properties": {
                    "feedback": ("Love it, great quality!" if i % 2 else "Terrible, it broke. Mail me at jo@example.com"),
                },
            }
        )
    return out


@pytest.fixture()
def store(tmp_path: Path) -> crow.Store:
    s = crow.Store(tmp_path / "data")
    s.create_org("Acme")
    return s


def test_ingest_then_read(store: crow.Store) -> None:
    out = store.ingest(events())
    assert out["inserted"] == 12 and out["duplicates"] == 0 and out["rejected"] == []
    assert out["jobs_run"] and out["jobs_run"] > 0
    again = store.ingest(events())
    assert again["duplicates"] == 12 and again["inserted"] == 0
    rows = store.interactions()
    assert isinstance(rows, crow.Records) and isinstance(rows, list) and len(rows) == 12
    assert rows[0]["timestamp"] >= rows[-1]["timestamp"]  # newest first
    tracks = store.interactions(type="track", name="Feedback Sent")
    assert len(tracks) == 6 and {r["type"] for r in tracks} == {"track"}
    # PII was scrubbed before storage.
    assert all("jo@example.com" not in str(r) for r in tracks)
    assert any("[email]" in r["properties"]["feedback"] for r in tracks)
    # The workflows ran: sessions and text analysis.
    assert len(store.sessions()) >= 2
    analyzed = [r for r in tracks if r.get("analysis")]
    assert analyzed, tracks[0]
    # Filters on time: ints (ms) and datetimes.
    since = dt.datetime.fromtimestamp((T0 + 3 * DAY) / 1000, dt.timezone.utc)
    assert len(store.interactions(since=T0 + 3 * DAY)) == 6
    assert len(store.interactions(since=since)) == 6
    assert len(store.interactions(since=since.replace(tzinfo=None))) == 6  # naive = UTC
    assert len(store.interactions(until=T0 + DAY)) == 2
    assert len(store.interactions(limit=5)) == 5
    assert store.frame_events() == [] and store.mentions() == []


def test_paging_reads_everything(store: crow.Store) -> None:
    many = [
        {"type": "track", "event": "Click", "messageId": f"c-{i}", "anonymousId": "a", "timestamp": T0 + i}
        for i in range(1203)
    ]
    assert store.ingest(many, run_workflows=False)["inserted"] == 1203
    assert len(store.interactions()) == 1203
    assert len(store.interactions(limit=1001)) == 1001


def test_to_pandas(store: crow.Store) -> None:
    pd = pytest.importorskip("pandas")
    store.ingest(events())
    df = store.interactions().to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == 12
    assert str(df["timestamp"].dtype).startswith("datetime64") and str(df["timestamp"].dt.tz) == "UTC"
    assert {"id", "type", "properties"} <= set(df.columns)
    assert len(store.sessions().to_pandas()) >= 2


def test_rejected_events_are_reported(store: crow.Store) -> None:
    out = store.ingest([{"type": "track", "messageId": "x"}, {"type": "page", "messageId": "ok", "anonymousId": "a"}])
    assert out["inserted"] == 1
    assert [r["index"] for r in out["rejected"]] == [0]
    assert out["rejected"][0]["reason"]
    with pytest.raises(crow.ValidationError, match=r"events\[0\]"):
        store.ingest(["not a dict"])  # type: ignore[list-item]


def test_orgs_and_org_selection(tmp_path: Path) -> None:
    s = crow.Store(tmp_path)
    assert s.orgs() == []
    with pytest.raises(crow.ValidationError, match="no org yet"):
        s.interactions()
    a = s.create_org("A")
    b = s.create_org("B")
    assert set(a) == {"org_id", "write_key", "api_key"}
    assert [o["name"] for o in s.orgs()] == ["A", "B"]
    with pytest.raises(crow.ValidationError, match="2 orgs"):
        s.interactions()
    s.ingest([{"type": "page", "messageId": "1", "anonymousId": "x"}], b["org_id"])
    assert len(s.interactions(b["org_id"])) == 1
    assert s.interactions(a["org_id"]) == []
    with pytest.raises(crow.ValidationError, match="no org"):
        s.interactions("org_nope")
    with pytest.raises(crow.ValidationError, match="type"):
        s.interactions(b["org_id"], type="click")
    with pytest.raises(crow.ValidationError, match="kind"):
        s.frame_events(b["org_id"], kind="explosion")
    assert s.path == tmp_path and s.text_tier == "lexicon"
    assert "Store(" in repr(s)


def test_module_level_ingest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    crow.Store(tmp_path).create_org("Solo")
    monkeypatch.setenv("CROW_DATA", str(tmp_path))
    out = crow.ingest([{"type": "page", "messageId": "1", "anonymousId": "x"}])
    assert out["inserted"] == 1
    assert len(crow.Store(tmp_path).interactions()) == 1


def test_model_tier_for_ingest(tmp_path: Path, nlp_models: Path) -> None:
    s = crow.Store(tmp_path, models=nlp_models)
    assert s.text_tier == "model"
    s.create_org("M")
    s.ingest(events(2))
    analyzed = [r for r in s.interactions(type="track") if r.get("analysis")]
    assert analyzed and analyzed[0]["analysis"]["sentiment"]["tier"] == "model"
