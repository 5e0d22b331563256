"""What an analyst may see of the cells: small cells hidden, and hidden for good.

A row of any answer is a sum of cells. Hiding the rows with fewer than k cases is not enough:
a hidden row is the total of its line (the row one dimension coarser, or the year holding
it) minus the rows shown beside it. So every answer is read from one family of tables, one
per period (year, month) and set of dimensions, protected together:

1. primary: a row with fewer than k cases is hidden (a row holding only re-graded cases'
   later events, with no case opened in it, too);
2. inherited: a row whose total in a coarser table is hidden is hidden, so a finer table
   never adds up to what a coarser one hides;
3. complementary: in every line (the rows that add up to one row of a coarser table) that
   hides a row, at least two rows are hidden and they hold at least k cases together, the
   smallest rows hidden first; a line with too few rows for that hides its total as well.

The rules are applied over all tables until none changes, so the pattern depends on the
cells alone: two queries grouped differently, or one scoped to a hospital and one to the
network, see one consistent pattern. A row over several periods (a range of months, a
quarter) is shown only when every period in it is shown: otherwise two ranges differing by
one period would give that period away.

Line-wise protection is what statistical offices' hypercube and modular methods build on;
it does not run a full linear-programming audit (tests/unit/test_disclosure.py runs one on
synthetic networks), and it protects a snapshot: comparing answers before and after new
events arrive is not covered.
"""

import itertools
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from services.reporting.aggregates import (
    COUNTS,
    FIRST_CONTACT_TARGET_DAYS,
    HISTOGRAMS,
    SERVED,
    Row,
    within_target,
)

Period = Literal["year", "quarter", "month"]
PERIODS: tuple[Period, ...] = ("year", "quarter", "month")
PROTECTED: tuple[Period, ...] = ("year", "month")
"""The periods protected as tables of their own, longest first; a quarter is a range of
months. (Quarters protected between the two made one small month hide whole quarters.)"""
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
            for period in PROTECTED
            for n in range(len(dimensions) + 1)
            for subset in itertools.combinations(dimensions, n)
        ]
        self.sizes = _all_sizes(rows, tuple(dimensions), tables)
        self._hidden = {
            table: {key for key, n in sizes.items() if n < self.k}
            for table, sizes in self.sizes.items()
        }
        # Each table's lines: the rows adding up to one row of a coarser table, a dimension
        # fewer or a period longer.
        self.lines: list[tuple[Table, Table, Key, list[Key]]] = []
        for table in tables:
            period, subset = table
            ups = [
                ((period, subset[:i] + subset[i + 1 :]), _without_dimension(i))
                for i in range(len(subset))
            ]
            if period != PROTECTED[0]:
                ups.append(
                    ((PROTECTED[PROTECTED.index(period) - 1], subset), _within_longer(period))
                )
            for coarser, up in ups:
                for total, line in _lines(self.sizes[table], up).items():
                    self.lines.append((table, coarser, total, line))
        self._settle()

    def _settle(self) -> None:
        """Apply the rules line by line until none changes, revisiting only the lines that
        hold a row just hidden, or add up to one."""
        touching: dict[tuple[Table, Key], list[int]] = {}
        for n, (table, coarser, total, line) in enumerate(self.lines):
            touching.setdefault((coarser, total), []).append(n)
            for key in line:
                touching.setdefault((table, key), []).append(n)
        waiting = deque(range(len(self.lines)))
        queued = [True] * len(self.lines)
        while waiting:
            n = waiting.popleft()
            queued[n] = False
            for hidden in self._protect(*self.lines[n]):
                for other in touching.get(hidden, ()):
                    if not queued[other]:
                        queued[other] = True
                        waiting.append(other)

    def hidden(self, period: Period, dimensions: tuple[str, ...]) -> set[Key]:
        """The rows of a table that are not shown."""
        return self._hidden[(period, dimensions)]

    def _protect(
        self, table: Table, coarser: Table, total: Key, line: list[Key]
    ) -> list[tuple[Table, Key]]:
        """Make what a line hides safe: all of it when its total is hidden; else at least two
        rows holding at least k cases, the smallest shown rows hidden first; else, when the
        line has too few rows for that, its total too. Returns the rows it hid."""
        hidden, sizes = self._hidden[table], self.sizes[table]
        shown = [key for key in line if key not in hidden]
        if total in self._hidden[coarser] or len(shown) == len(line):
            inherited = shown if total in self._hidden[coarser] else []
            hidden.update(inherited)
            return [(table, key) for key in inherited]
        count = len(line) - len(shown)
        cases = sum(sizes[key] for key in line if key in hidden)
        hid: list[tuple[Table, Key]] = []
        for key in sorted(shown, key=lambda k: (sizes[k], k)):
            if count >= 2 and cases >= self.k:
                break
            hidden.add(key)
            hid.append((table, key))
            count, cases = count + 1, cases + sizes[key]
        if count < 2 or cases < self.k:
            self._hidden[coarser].add(total)
            hid.append((coarser, total))
        return hid


def _all_sizes(
    rows: Sequence[Row], dimensions: tuple[str, ...], tables: Sequence[Table]
) -> dict[Table, dict[Key, int]]:
    """Cases per row of every table; every row with anything counted in it is there. Each
    table is summed from the finest one of its period, not from the cells again."""
    finest: dict[Period, Counter[Key]] = {period: Counter() for period in PROTECTED}
    labels = {m: {p: period_of(m, p) for p in PROTECTED} for m in {row.month for row in rows}}
    for row in rows:
        values = tuple(row.dimensions[d] for d in dimensions)
        cases = row.counts.get("cases_opened", 0)
        for period, label in labels[row.month].items():
            finest[period][(label, values)] += cases
    sizes: dict[Table, dict[Key, int]] = {}
    for period, subset in tables:
        keep = [dimensions.index(d) for d in subset]
        table: Counter[Key] = Counter()
        for (label, values), n in finest[period].items():
            table[(label, tuple(values[i] for i in keep))] += n
        sizes[(period, subset)] = dict(table)
    return sizes


def _within_longer(period: Period) -> Callable[[Key], Key]:
    """A row's place in the period one level longer than its own."""
    longer = PROTECTED[PROTECTED.index(period) - 1]
    return lambda key: (period_of(key[0], longer), key[1])


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


class Snapshot:
    """One read of the cells and their protection, to answer any number of queries from:
    every hospital's cells of whole years, since a row's protection depends on the
    hospitals and months beside it."""

    def __init__(
        self,
        rows: Sequence[Row],
        dimensions: Sequence[str],
        min_cell_size: int,
        first_contact_target_days: int = FIRST_CONTACT_TARGET_DAYS,
    ):
        self.rows = rows
        self.dimensions = tuple(dimensions)
        self.protection = Protection(rows, dimensions, min_cell_size)
        self.target_days = first_contact_target_days

    def answer(self, query: Selection) -> list[ServedRow]:
        """The rows of a query, each hidden or shown as the protected tables say."""
        protected = tuple(
            d
            for d in self.dimensions
            if d in query.group_by or (d == "hospital_id" and query.hospital_id)
        )
        grain: Period = "year" if query.period == "year" else "month"
        hidden = self.protection.hidden(grain, protected)
        sums: dict[tuple[str, ...], _Sum] = {}
        for row in self.rows:
            label = period_of(row.month, query.period)
            if (query.first and label < query.first) or (query.last and label > query.last):
                continue
            if query.hospital_id and row.dimensions["hospital_id"] != query.hospital_id:
                continue
            values = {PERIOD: label, **row.dimensions}
            target = sums.setdefault(tuple(values[d] for d in query.group_by), _Sum())
            target.counts.update(row.counts)
            protected_label = label if grain == "year" else row.month
            target.hidden |= (protected_label, tuple(values[d] for d in protected)) in hidden
        return [
            _served(dict(zip(query.group_by, key, strict=True)), sums[key], self.target_days)
            for key in sorted(sums)
        ]


FOLDED = "*"
"""What a hidden row says of the dimensions that describe people."""
SCAFFOLD = (PERIOD, "hospital_id")
"""What a hidden row still names: when and where, which describe nobody."""


def folded(rows: Sequence[ServedRow]) -> list[ServedRow]:
    """The rows as served: a hidden row's existence would say that someone of this function,
    department and harm was there, so the hidden rows of each period and hospital are one
    row whose other dimensions read `*`. What they hold stays hidden as before."""
    served = [row for row in rows if not row.suppressed]
    remainders: dict[tuple[str, ...], ServedRow] = {}
    for row in rows:
        if row.suppressed:
            named = {d: v if d in SCAFFOLD else FOLDED for d, v in row.dimensions.items()}
            remainders.setdefault(tuple(named.values()), replace(row, dimensions=named))
    return sorted([*served, *remainders.values()], key=lambda r: tuple(r.dimensions.values()))


def answer(
    rows: Sequence[Row],
    query: Selection,
    dimensions: Sequence[str],
    min_cell_size: int,
    first_contact_target_days: int = FIRST_CONTACT_TARGET_DAYS,
) -> list[ServedRow]:
    return Snapshot(rows, dimensions, min_cell_size, first_contact_target_days).answer(query)


def _served(dimensions: dict[str, str], total: _Sum, target_days: int) -> ServedRow:
    if total.hidden:
        shown: dict[str, int | None] = dict.fromkeys(SERVED)
    else:
        shown = {m: total.counts.get(m, 0) for m in COUNTS}
        for histogram in HISTOGRAMS:
            shown |= histogram.served(total.counts)
        shown |= within_target(total.counts, target_days)
    return ServedRow(dimensions, shown, suppressed=total.hidden)
