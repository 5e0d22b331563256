"""Protecting a year of a network's cells: reporting's snapshot, without servers.

A snapshot works out the hidden rows of every table (3 periods x every subset of the
dimensions) until no line changes. The baseline, measured in the same run, is one pass
summing the same cells into one table, which is what serving them unprotected would cost.
"""

import random
import time
from collections import Counter

from services.reporting.aggregates import DIMENSIONS, Row
from services.reporting.disclosure import PERIOD, Selection, Snapshot
from shared.events import Function, Harm

HOSPITALS = [f"H{n:02d}" for n in range(19)]
DEPARTMENTS = [f"Department-{n}" for n in range(15)]


def cells(cases_per_hospital_month: int, rng: random.Random) -> list[Row]:
    """A year of 19 hospitals: each case lands in a random function, department and harm."""
    counted: Counter[tuple[str, str, str, str, str]] = Counter()
    for month in range(1, 13):
        for hospital in HOSPITALS:
            for _ in range(cases_per_hospital_month):
                counted[
                    (
                        f"2026-{month:02d}",
                        hospital,
                        rng.choice(list(Function)).value,
                        rng.choice(DEPARTMENTS),
                        rng.choice(list(Harm)).value,
                    )
                ] += 1
    return [
        Row(month, dict(zip(DIMENSIONS, values, strict=True)), {"cases_opened": n})
        for (month, *values), n in counted.items()
    ]


def report(sizes: tuple[int, ...] = (10, 40)) -> list[str]:
    """One `disclosure:` line per network size."""
    lines = []
    for per_month in sizes:
        rows = cells(per_month, random.Random(per_month))
        started = time.perf_counter()
        by_month_and_harm: Counter[tuple[str, str]] = Counter()
        for row in rows:
            by_month_and_harm[(row.month, row.dimensions["harm"])] += row.counts["cases_opened"]
        baseline = time.perf_counter() - started
        started = time.perf_counter()
        Snapshot(rows, DIMENSIONS, 11).answer(Selection("month", (PERIOD, "harm")))
        seconds = time.perf_counter() - started
        lines.append(
            f"disclosure: a year of 19 hospitals x {per_month} cases a month ({len(rows):,} "
            f"cells): snapshot {seconds:.2f} s (= {seconds / baseline:,.0f} x one pass summing "
            f"the cells, {baseline * 1000:.1f} ms)"
        )
    return lines


if __name__ == "__main__":
    print("\n".join(report()))
