"""What an analyst may see of the cells: small cells hidden, and hidden for good.

A row of any answer is a sum of cells. Hiding the rows with fewer than k cases is not enough:
a hidden row is the total of its line (the row one dimension coarser, or the quarter or year
holding it) minus the rows shown beside it. So every answer is read from one family of
tables, one per period (year, quarter, month) and set of dimensions, protected together:

1. primary: a row with fewer than k cases is hidden (a row holding only re-graded cases'
   later events, with no case opened in it, too);
2. inherited: a row whose total in a coarser table is hidden is hidden, so a finer table
   never adds up to what a coarser one hides;
3. complementary: in every line (the rows that add up to one row of a coarser table) that
   hides a row, at least two rows are hidden and they hold at least k cases together, the
   smallest rows hidden first; a line with too few rows for that hides its total as well.

The rules are applied over all tables until none changes, so the pattern depends on the
cells alone: two queries grouped differently, or one scoped to a hospital and one to the
network, see one consistent pattern. A row over several periods (a range of months, of
quarters) is shown only when every period in it is shown: otherwise two ranges differing by
one period would give that period away.

Line-wise protection is what statistical offices' hypercube and modular methods build on;
it does not run a full linear-programming audit (tests/unit/test_disclosure.py runs one on
synthetic networks), and it protects a snapshot: comparing answers before and after new
events arrive is not covered.
"""

import itertools
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from services.reporting.aggregates import COUNTS, HISTOGRAMS, SERVED, Row

Period = Literal["year", "quarter", "month"]
PERIODS: tuple[Period, ...] = ("year", "quarter", "month")
PERIOD = "period"
"""The name of the time dimension in `group_by` and in rows."""

Key = tuple[str, tuple[str, ...]]
"""A table's row: its period and its dimensions' values."""
Table = tuple[Period, tuple[str, ...]]


def period_of(month: str, period: Period) -> str:
    """'2026-05' as a month, quarter ('2026-Q2') or year ('2026')."""
    year, number = month.split("-")
    match period:
        case "year":
            return year
        case "quarter":
            return f"{year}-Q{(int(number) - 1) // 3 + 1}"
    return month


def months_of(label: str) -> tuple[str, str]:
    """The first and last month of a month, quarter ('2026-Q2') or year ('2026')."""
    if len(label) == 4:
        return f"{label}-01", f"{label}-12"
    if label[5] == "Q":
        last = int(label[6]) * 3
        return f"{label[:4]}-{last - 2:02d}", f"{label[:4]}-{last:02d}"
    return label, label


def months_before(month: str | None, n: int) -> str | None:
    """The month n months before ('2026-03', 2 gives '2026-01')."""
    if month is None:
        return None
    index = int(month[:4]) * 12 + int(month[5:]) - 1 - n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


class Protection:
    """The hidden rows of every table of one set of cells, one table per period (year,
    quarter, month) and subset of the dimensions, worked out together: a query grouped any
    way reads the same pattern."""

    def __init__(self, rows: Sequence[Row], dimensions: Sequence[str], min_cell_size: int):
        self.k = min_cell_size
        tables = [
            (period, subset)
            for period in PERIODS
            for n in range(len(dimensions) + 1)
            for subset in itertools.combinations(dimensions, n)
        ]
        self.sizes = {table: _sizes(rows, *table) for table in tables}
        self._hidden = {
            table: {key for key, n in sizes.items() if n < self.k}
            for table, sizes in self.sizes.items()
        }
        # Each table's lines: the rows adding up to one row of a coarser table, a dimension
        # fewer or a period longer.
        lines: list[tuple[Table, Table, dict[Key, list[Key]]]] = []
        for table in tables:
            period, subset = table
            for i in range(len(subset)):
                coarser = (period, subset[:i] + subset[i + 1 :])
                lines.append((table, coarser, _lines(self.sizes[table], _without_dimension(i))))
            if period != "year":
                longer = PERIODS[PERIODS.index(period) - 1]
                lines.append((table, (longer, subset), _lines(self.sizes[table], _within(longer))))
        changed = True
        while changed:
            changed = False
            for table, coarser, by_total in lines:
                for total, line in by_total.items():
                    changed |= self._protect(line, table, total, coarser)

    def hidden(self, period: Period, dimensions: tuple[str, ...]) -> set[Key]:
        """The rows of a table that are not shown."""
        return self._hidden[(period, dimensions)]

    def _protect(self, line: list[Key], table: Table, total: Key, coarser: Table) -> bool:
        """Make what a line hides safe: all of it when its total is hidden; else at least two
        rows holding at least k cases, the smallest shown rows hidden first; else, when the
        line has too few rows for that, its total too."""
        hidden, sizes = self._hidden[table], self.sizes[table]
        if total in self._hidden[coarser]:
            shown = [key for key in line if key not in hidden]
            hidden.update(shown)
            return bool(shown)
        hiding = [key for key in line if key in hidden]
        if not hiding:
            return False
        count, cases = len(hiding), sum(sizes[key] for key in hiding)
        changed = False
        for key in sorted((k for k in line if k not in hidden), key=lambda k: (sizes[k], k)):
            if count >= 2 and cases >= self.k:
                break
            hidden.add(key)
            count, cases, changed = count + 1, cases + sizes[key], True
        if count < 2 or cases < self.k:
            self._hidden[coarser].add(total)
            changed = True
        return changed


def _sizes(rows: Sequence[Row], period: Period, dimensions: tuple[str, ...]) -> dict[Key, int]:
    """Cases per row of a table; every row with anything counted in it is there."""
    sizes: Counter[Key] = Counter()
    for row in rows:
        key = (period_of(row.month, period), tuple(row.dimensions[d] for d in dimensions))
        sizes[key] += row.counts.get("cases_opened", 0)
    return dict(sizes)


def _within(period: Period) -> Callable[[Key], Key]:
    """A row's place in the longer period holding it."""
    return lambda key: (period_of(key[0], period), key[1])


def _without_dimension(i: int) -> Callable[[Key], Key]:
    return lambda key: (key[0], key[1][:i] + key[1][i + 1 :])


def _lines(sizes: Mapping[Key, int], up: Callable[[Key], Key]) -> dict[Key, list[Key]]:
    lines: dict[Key, list[Key]] = {}
    for key in sorted(sizes):
        lines.setdefault(up(key), []).append(key)
    return lines


@dataclass(frozen=True)
class Selection:
    period: Period = "month"
    group_by: tuple[str, ...] = (PERIOD,)
    first: str | None = None
    """The first period (in the period's own notation), inclusive."""
    last: str | None = None
    hospital_id: str | None = None


@dataclass(frozen=True)
class ServedRow:
    dimensions: dict[str, str]
    counts: dict[str, int | None]
    suppressed: bool

    def as_json(self) -> dict[str, str | int | bool | None]:
        return {**self.dimensions, **self.counts, "suppressed": self.suppressed}


@dataclass
class _Sum:
    counts: Counter[str] = field(default_factory=Counter)
    hidden: bool = False


def answer(
    rows: Sequence[Row], query: Selection, dimensions: Sequence[str], min_cell_size: int
) -> list[ServedRow]:
    """The rows of a query, each hidden or shown as the protected tables say.

    `rows` are every hospital's cells of the whole years the query touches: the protection
    of a row depends on the hospitals and the months beside it.
    """
    protected = tuple(
        d for d in dimensions if d in query.group_by or (d == "hospital_id" and query.hospital_id)
    )
    hidden = Protection(rows, dimensions, min_cell_size).hidden(query.period, protected)
    sums: dict[tuple[str, ...], _Sum] = {}
    for row in rows:
        label = period_of(row.month, query.period)
        if (query.first and label < query.first) or (query.last and label > query.last):
            continue
        if query.hospital_id and row.dimensions["hospital_id"] != query.hospital_id:
            continue
        values = {PERIOD: label, **row.dimensions}
        target = sums.setdefault(tuple(values[d] for d in query.group_by), _Sum())
        target.counts.update(row.counts)
        target.hidden |= (label, tuple(values[d] for d in protected)) in hidden
    return [_served(dict(zip(query.group_by, key, strict=True)), sums[key]) for key in sorted(sums)]


def _served(dimensions: dict[str, str], total: _Sum) -> ServedRow:
    if total.hidden:
        shown: dict[str, int | None] = dict.fromkeys(SERVED)
    else:
        shown = {m: total.counts.get(m, 0) for m in COUNTS}
        for histogram in HISTOGRAMS:
            shown |= histogram.served(total.counts)
    return ServedRow(dimensions, shown, suppressed=total.hidden)
