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

import heapq
import itertools
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, Self, TypeVar

import numpy as np
import numpy.typing as npt

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
    month) and subset of the dimensions, worked out together: a query grouped any way reads
    the same pattern.

    Each table's rows are numbered in the order of their keys, and every row of every table
    has a place in one list (`sizes`, `hidden`), so that the rules run on numbers: the
    tables are summed, and their lines found, by NumPy."""

    def __init__(self, rows: Sequence[Row], dimensions: Sequence[str], min_cell_size: int):
        self.k = min_cell_size
        self.tables = [
            (period, subset)
            for period in PROTECTED
            for n in range(len(dimensions) + 1)
            for subset in itertools.combinations(dimensions, n)
        ]
        self.cells = cells = _Cells(rows, tuple(dimensions), self.tables)
        offsets = np.cumsum([0, *(len(cells.codes[t]) for t in self.tables)])
        self.start = {table: int(offsets[n]) for n, table in enumerate(self.tables)}
        sizes = np.concatenate([cells.sizes[t] for t in self.tables])
        self.sizes: list[int] = sizes.tolist()
        self.hidden_rows = bytearray((sizes < self.k).tobytes())
        lines = [
            self._lines_of(table, coarser, cells.parents(table, coarser))
            for table in self.tables
            for coarser in _coarser(table)
        ]
        totals, members, lengths = (np.concatenate(part) for part in zip(*lines, strict=True))
        self.totals: list[int] = totals.tolist()
        self.members: list[int] = members.tolist()
        bounds = np.r_[0, np.cumsum(lengths)]
        self.bounds: list[int] = bounds.tolist()
        self._settle(totals, members, lengths, bounds[:-1])
        self._hidden_keys: dict[Table, set[Key]] = {}

    def _lines_of(
        self, table: Table, coarser: Table, parents: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The lines of the table under the coarser one, in the order of their first row:
        each one's total's place, their rows' places one line after the other (each in key
        order), and how many rows each has."""
        if not len(parents):
            return (np.zeros(0, np.int64),) * 3
        order = np.argsort(parents, kind="stable")
        grouped = parents[order]
        starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
        lengths = np.diff(np.r_[starts, len(order)])
        by_first_row = np.argsort(order[starts], kind="stable")
        place = np.empty_like(by_first_row)
        place[by_first_row] = np.arange(len(by_first_row))
        members = order[np.lexsort((order, np.repeat(place, lengths)))]
        totals = grouped[starts][by_first_row] + self.start[coarser]
        return totals, members + self.start[table], lengths[by_first_row]

    def _settle(
        self,
        totals: npt.NDArray[np.int64],
        members: npt.NDArray[np.int64],
        lengths: npt.NDArray[np.int64],
        starts: npt.NDArray[np.int64],
    ) -> None:
        """Apply the rules line by line, in the order of the lines; then revisit, first come
        first served, the lines that hold a row just hidden or add up to one, until none
        changes.

        Most lines need nothing at first (all shown, or all hidden with their total): the
        first pass visits, in order, only those that do and those a row hidden meanwhile
        touched, which hides exactly what visiting every line would."""
        if not len(totals):
            return
        touching = _Touching(totals, members, lengths, len(self.sizes))
        hidden = np.frombuffer(self.hidden_rows, np.uint8)
        hidden_members = np.add.reduceat(hidden[members].astype(np.int64), starts)
        needing = np.flatnonzero(hidden_members != hidden[totals] * lengths).tolist()
        self._revisit(self._first_pass(needing, touching), touching)

    def _first_pass(self, needing: list[int], touching: "_Touching") -> deque[int]:
        """The lines in `needing` in their order, with those after the one visited that it
        touches; returns the lines before it that it touched, to be visited again."""
        ahead = [False] * touching.lines
        for n in needing:
            ahead[n] = True
        heapq.heapify(needing)
        again: deque[int] = deque()
        queued = [False] * touching.lines
        while needing:
            n = heapq.heappop(needing)
            for other in touching.lines_of(self._protect(n)):
                if other > n:
                    if not ahead[other]:
                        ahead[other] = True
                        heapq.heappush(needing, other)
                elif not queued[other]:
                    queued[other] = True
                    again.append(other)
        return again

    def _revisit(self, again: deque[int], touching: "_Touching") -> None:
        queued = [False] * touching.lines
        for n in again:
            queued[n] = True
        while again:
            n = again.popleft()
            queued[n] = False
            for other in touching.lines_of(self._protect(n)):
                if not queued[other]:
                    queued[other] = True
                    again.append(other)

    def hidden(self, period: Period, dimensions: tuple[str, ...]) -> set[Key]:
        """The rows of a table that are not shown."""
        table = (period, dimensions)
        if table not in self._hidden_keys:
            start = self.start[table]
            places = np.frombuffer(self.hidden_rows, np.uint8)[start:]
            rows = np.flatnonzero(places[: len(self.cells.codes[table])])
            self._hidden_keys[table] = set(self.cells.keys(table, rows))
        return self._hidden_keys[table]

    def _protect(self, n: int) -> list[int]:
        """Make what a line hides safe: all of it when its total is hidden; else at least two
        rows holding at least k cases, the smallest shown rows hidden first; else, when the
        line has too few rows for that, its total too. Returns the rows it hid."""
        hidden, sizes, total = self.hidden_rows, self.sizes, self.totals[n]
        line = self.members[self.bounds[n] : self.bounds[n + 1]]
        shown = [row for row in line if not hidden[row]]
        if hidden[total] or len(shown) == len(line):
            inherited = shown if hidden[total] else []
            for row in inherited:
                hidden[row] = True
            return inherited
        count = len(line) - len(shown)
        cases = sum(sizes[row] for row in line if hidden[row])
        hid: list[int] = []
        for row in sorted(shown, key=lambda row: (sizes[row], row)):
            if count >= 2 and cases >= self.k:
                break
            hidden[row] = True
            hid.append(row)
            count, cases = count + 1, cases + sizes[row]
        if count < 2 or cases < self.k:
            hidden[total] = True
            hid.append(total)
        return hid


class _Touching:
    """Which lines each row is in, as a member or as their total."""

    def __init__(
        self,
        totals: npt.NDArray[np.int64],
        members: npt.NDArray[np.int64],
        lengths: npt.NDArray[np.int64],
        rows: int,
    ) -> None:
        self.lines = len(totals)
        places = np.concatenate([totals, members])
        lines = np.concatenate([np.arange(self.lines), np.repeat(np.arange(self.lines), lengths)])
        by_row = np.lexsort((lines, places))
        self.touched = lines[by_row]
        self.first: list[int] = np.searchsorted(places[by_row], np.arange(rows + 1)).tolist()

    def lines_of(self, rows: Iterable[int]) -> Iterator[int]:
        """The lines of each row, row after row, each row's in the order of the lines."""
        for row in rows:
            yield from self.touched[self.first[row] : self.first[row + 1]].tolist()


def _coarser(table: Table) -> list[Table]:
    """The tables a table's rows add up to: a dimension fewer, or a period longer."""
    period, subset = table
    ups = [(period, subset[:i] + subset[i + 1 :]) for i in range(len(subset))]
    if period != PROTECTED[0]:
        ups.append((PROTECTED[PROTECTED.index(period) - 1], subset))
    return ups


class _Cells:
    """The cells as numbers: each dimension's values, and each period's labels, numbered in
    their sorted order, so that a row's number in a table orders as its key does."""

    def __init__(
        self, rows: Sequence[Row], dimensions: tuple[str, ...], tables: Sequence[Table]
    ) -> None:
        self.dimensions = dimensions
        self.values = [sorted({row.dimensions[d] for row in rows}) for d in dimensions]
        numbered = [{v: n for n, v in enumerate(values)} for values in self.values]
        columns = [
            np.array([numbered[i][row.dimensions[d]] for row in rows], np.int64)
            for i, d in enumerate(dimensions)
        ]
        cases = np.array([row.counts.get("cases_opened", 0) for row in rows], np.int64)
        self.labels: dict[Period, list[str]] = {}
        labelled: dict[Period, npt.NDArray[np.int64]] = {}
        for period in PROTECTED:
            labels = [period_of(row.month, period) for row in rows]
            self.labels[period] = sorted(set(labels))
            number = {label: n for n, label in enumerate(self.labels[period])}
            labelled[period] = np.array([number[label] for label in labels], np.int64)
        self.cell_codes: dict[Table, npt.NDArray[np.int64]] = {}
        self.codes: dict[Table, npt.NDArray[np.int64]] = {}
        self.first: dict[Table, npt.NDArray[np.intp]] = {}
        self.sizes: dict[Table, npt.NDArray[np.int64]] = {}
        for table in tables:
            period, subset = table
            code = labelled[period].copy()
            for d in subset:
                i = dimensions.index(d)
                code = code * len(self.values[i]) + columns[i]
            self.cell_codes[table] = code
            self.codes[table], self.first[table], inverse = np.unique(
                code, return_index=True, return_inverse=True
            )
            weighed = np.bincount(inverse, weights=cases, minlength=len(self.codes[table]))
            self.sizes[table] = weighed.astype(np.int64)

    def keys(self, table: Table, rows: npt.NDArray[np.intp]) -> list[Key]:
        """These rows' keys."""
        period, subset = table
        rest = self.codes[table][rows]
        digits: list[list[str]] = [[] for _ in subset]
        for j in reversed(range(len(subset))):
            values = self.values[self.dimensions.index(subset[j])]
            digits[j] = [values[v] for v in (rest % len(values)).tolist()]
            rest //= len(values)
        labels = self.labels[period]
        return [
            (labels[label], tuple(digit[n] for digit in digits))
            for n, label in enumerate(rest.tolist())
        ]

    def parents(self, table: Table, coarser: Table) -> npt.NDArray[np.int64]:
        """Each row of `table`'s row in `coarser`."""
        parent_codes = self.cell_codes[coarser][self.first[table]]
        return np.searchsorted(self.codes[coarser], parent_codes).astype(np.int64)


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


@dataclass(frozen=True)
class ProtectedYear:
    """One year's cells with their protection. No line adds up rows of two years, so each
    year is protected on its own: the same pattern as protecting the years together, and a
    release or correction makes only its own year's protection to be worked out again."""

    rows: Sequence[Row]
    protection: Protection

    @classmethod
    def of(cls, rows: Sequence[Row], dimensions: Sequence[str], min_cell_size: int) -> Self:
        return cls(rows, Protection(rows, dimensions, min_cell_size))


class Monthly(Protocol):
    @property
    def month(self) -> str: ...


M = TypeVar("M", bound=Monthly)


def by_year(monthly: Iterable[M]) -> dict[str, list[M]]:
    """Cells or releases by the year of their month."""
    years: dict[str, list[M]] = {}
    for each in monthly:
        years.setdefault(each.month[:4], []).append(each)
    return years


class Snapshot:
    """Every hospital's cells of whole years with their protection, to answer any number of
    queries from: a row's protection depends on the hospitals and months beside it."""

    def __init__(
        self,
        years: Mapping[str, ProtectedYear],
        dimensions: Sequence[str],
        first_contact_target_days: int = FIRST_CONTACT_TARGET_DAYS,
    ):
        self.years = years
        self.dimensions = tuple(dimensions)
        self.target_days = first_contact_target_days

    def answer(self, query: Selection) -> list[ServedRow]:
        """The rows of a query, each hidden or shown as the protected tables say."""
        protected = tuple(
            d
            for d in self.dimensions
            if d in query.group_by or (d == "hospital_id" and query.hospital_id)
        )
        grain: Period = "year" if query.period == "year" else "month"
        sums: dict[tuple[str, ...], _Sum] = {}
        for protected_year in self.years.values():
            hidden = protected_year.protection.hidden(grain, protected)
            for row in protected_year.rows:
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


def protected(
    rows: Sequence[Row],
    dimensions: Sequence[str],
    min_cell_size: int,
    first_contact_target_days: int = FIRST_CONTACT_TARGET_DAYS,
) -> Snapshot:
    """A snapshot of these cells, each year protected."""
    years = {
        year: ProtectedYear.of(of_year, dimensions, min_cell_size)
        for year, of_year in sorted(by_year(rows).items())
    }
    return Snapshot(years, dimensions, first_contact_target_days)


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
    return protected(rows, dimensions, min_cell_size, first_contact_target_days).answer(query)


def _served(dimensions: dict[str, str], total: _Sum, target_days: int) -> ServedRow:
    if total.hidden:
        shown: dict[str, int | None] = dict.fromkeys(SERVED)
    else:
        shown = {m: total.counts.get(m, 0) for m in COUNTS}
        for histogram in HISTOGRAMS:
            shown |= histogram.served(total.counts)
        shown |= within_target(total.counts, target_days)
    return ServedRow(dimensions, shown, suppressed=total.hidden)
