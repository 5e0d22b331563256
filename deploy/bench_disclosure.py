"""Protecting a year of a network's cells: reporting's snapshot, without servers.

A snapshot works out the hidden rows of every table (3 periods x every subset of the
dimensions) until no line changes. The baseline, measured in the same run, is one pass
summing the same cells into one table, which is what serving them unprotected would cost.
"""

import random
import time
from collections import Counter

from services.reporting.aggregates import DIMENSIONS, Row
from services.reporting.disclosure import (
    PERIOD,
    ProtectedYear,
    Selection,
    Snapshot,
    by_year,
    protected,
)
from shared.events import Function, Harm

DEPARTMENTS = [f"Department-{n}" for n in range(15)]


def cells(
    cases_per_hospital_month: int,
    rng: random.Random,
    hospitals: int = 19,
    years: tuple[int, ...] = (2026,),
) -> list[Row]:
    """Years of a network: each case lands in a random function, department and harm."""
    counted: Counter[tuple[str, str, str, str, str]] = Counter()
    months = [f"{year}-{month:02d}" for year in years for month in range(1, 13)]
    for month in months:
        for hospital in (f"H{n:02d}" for n in range(hospitals)):
            for _ in range(cases_per_hospital_month):
                counted[
                    (
                        month,
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
        protected(rows, DIMENSIONS, 11).answer(Selection("month", (PERIOD, "harm")))
        seconds = time.perf_counter() - started
        lines.append(
            f"disclosure: a year of 19 hospitals x {per_month} cases a month ({len(rows):,} "
            f"cells): snapshot {seconds:.2f} s (= {seconds / baseline:,.0f} x one pass summing "
            f"the cells, {baseline * 1000:.1f} ms)"
        )
    lines.append(network(10))
    return lines


def network(per_month: int, hospitals: int = 70, years: tuple[int, ...] = (2025, 2026)) -> str:
    """A national network's years, protected from scratch (as at a start), then again after
    a correction of one month of the latest year (only that year is protected again)."""
    rows = cells(per_month, random.Random(hospitals), hospitals, years)
    started = time.perf_counter()
    protected_years = {
        year: ProtectedYear.of(of_year, DIMENSIONS, 11) for year, of_year in by_year(rows).items()
    }
    cold = time.perf_counter() - started
    latest = str(years[-1])
    started = time.perf_counter()
    protected_years[latest] = ProtectedYear.of(by_year(rows)[latest], DIMENSIONS, 11)
    Snapshot(protected_years, DIMENSIONS).answer(Selection("month", (PERIOD, "harm")))
    corrected = time.perf_counter() - started
    return (
        f"disclosure: network of {hospitals} hospitals x {len(years)} years x {per_month} cases "
        f"a month ({len(rows):,} cells): snapshot {cold:.2f} s from scratch, {corrected:.2f} s "
        f"after a correction (its year protected again)"
    )


if __name__ == "__main__":
    print("\n".join(report()))
