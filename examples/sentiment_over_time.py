"""Sentiment over time, from a CROW data directory, through the Python bindings.

    make demo                                   # fills ./crow-data/demo (`crow demo`)
    pip install ./bindings/python matplotlib    # matplotlib is optional
    python examples/sentiment_over_time.py --data crow-data/demo --out sentiment.png

Reads the analyzed texts of the org's interactions (feedback, reviews, search queries: their
`analysis.sentiment`) and of its social mentions with `crow.Store`, averages the sentiment score
per hour or day, prints the table and, when matplotlib is installed, plots it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections import defaultdict
from typing import Any, Dict, Iterable, List, Optional, Tuple

import crow

Row = Tuple[str, float, int]  # bucket, mean score, texts


def sentiments(records: Iterable[Dict[str, Any]], time_key: str, source: str) -> Iterable[Tuple[int, float, str]]:
    """(ms, score, source) of each record whose text was analyzed."""
    for r in records:
        s = (r.get("analysis") or {}).get("sentiment")
        if s is not None and r.get(time_key) is not None:
            yield int(r[time_key]), float(s["score"]), source


def per_bucket(points: List[Tuple[int, float, str]], bucket: str) -> Dict[str, List[Row]]:
    """Mean score and count per bucket, per source."""
    if bucket == "auto":
        span = max(p[0] for p in points) - min(p[0] for p in points)
        bucket = "hour" if span < 3 * 86_400_000 else "day"
    fmt = "%Y-%m-%d %H:00" if bucket == "hour" else "%Y-%m-%d"
    sums: Dict[Tuple[str, str], List[float]] = defaultdict(list)
    for ms, score, source in points:
        key = dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime(fmt)
        sums[(source, key)].append(score)
    out: Dict[str, List[Row]] = defaultdict(list)
    for (source, key), scores in sorted(sums.items()):
        out[source].append((key, sum(scores) / len(scores), len(scores)))
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="crow-data/demo", help="the data directory (default: crow-data/demo)")
    ap.add_argument("--org", help="the org id (default: the newest org of the directory)")
    ap.add_argument("--bucket", choices=["auto", "hour", "day"], default="auto")
    ap.add_argument("--out", default="sentiment_over_time.png", help="where to save the plot")
    args = ap.parse_args(argv)

    store = crow.Store(args.data)
    orgs = store.orgs()
    if not orgs:
        print(f"{args.data} holds no org: run `make demo` first", file=sys.stderr)
        return 1
    org = args.org or orgs[-1]["id"]
    name = next((o["name"] for o in orgs if o["id"] == org), org)
    points = list(sentiments(store.interactions(org), "timestamp", "website"))
    points += sentiments(store.mentions(org), "posted_at", "social")
    if not points:
        print(f"no analyzed texts in {args.data} (org {org})", file=sys.stderr)
        return 1
    series = per_bucket(points, args.bucket)

    for source, rows in series.items():
        print(f"{source}: {sum(n for _, _, n in rows)} texts")
        for key, mean, n in rows:
            bar = "+" * round(max(mean, 0) * 20) or "-" * round(-min(mean, 0) * 20)
            print(f"  {key}  {mean:+.2f}  n={n:<4} {bar}")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(install matplotlib for a plot)")
        return 0
    fig, ax = plt.subplots(figsize=(9, 4))
    for source, rows in series.items():
        # bucket keys back to times, so both sources share one time axis
        ax.plot([dt.datetime.fromisoformat(k) for k, _, _ in rows], [m for _, m, _ in rows], marker="o", label=source)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_ylabel("mean sentiment (-1 … 1)")
    ax.set_title(f"Customer sentiment over time — {name}")
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"plot saved to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
