"""A hospital's supporters: each one as a record, and all of them as columns.

Matching judges a case against the whole roster of the case's hospital. Judging supporters
one at a time in Python costs milliseconds per thousand; the same facts held as NumPy
columns are judged at once, and a supporter's change updates their row in place. Pure: no
I/O; the time is a parameter.
"""

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import numpy.typing as npt

from shared.events import Absence, Function, SupporterContact, Weekday

WEEKDAYS = tuple(Weekday)
"""In the order of `date.weekday()`."""
FUNCTIONS = tuple(Function)
NEVER_TRAINED = np.iinfo(np.int64).max
"""The training day of a supporter not (yet) trained: after any day."""

NO_TEAM = -1
"""A row's number for no team."""
NO_ROW = -2
"""The number of a word no row has, or of no word: it matches no row."""

Mask = npt.NDArray[np.bool_]
Numbers = npt.NDArray[np.float64]
Whole = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Supporter:
    contact: SupporterContact
    hospital_id: str
    pseudonym: str
    function: Function
    department: str
    max_open_cases: int
    open_cases: int = 0
    active: bool = True
    team: str | None = None
    languages: frozenset[str] = frozenset()
    trained_on: date | None = None
    available_days: frozenset[Weekday] = frozenset()
    absences: tuple[Absence, ...] = ()
    seniority_years: int | None = None
    birth_year: int | None = None
    last_assigned_at: datetime | None = None
    carried: tuple[datetime, ...] = ()
    """When the supporter accepted each of their latest cases."""
    pseudonyms: Mapping[str, str] = field(default_factory=dict, hash=False)
    """By pseudonym key id: under each key in use (`pseudonym` is today's)."""

    @property
    def supporter_id(self) -> str:
        return self.contact.supporter_id

    def pseudonym_under(self, key_id: str | None) -> str | None:
        """To compare with a case opened with that key; None when the supporter was loaded
        without it (after it was dropped, or before a rotation was loaded)."""
        if key_id is None or not self.pseudonyms:
            return self.pseudonym
        return self.pseudonyms.get(key_id)

    def carried_since(self, since: datetime) -> int:
        return sum(at >= since for at in self.carried)


@functools.cache
def folded(department: str) -> str:
    return department.strip().casefold()


class RosterColumns:
    """The supporters of a roster, one row each, their facts as columns.

    `carried_kept`: how many of each supporter's latest acceptances a row keeps; the load
    counts no more than that many in its window, so the rest cannot change a judgement.
    """

    def __init__(self, supporters: Iterable[Supporter], carried_kept: int) -> None:
        self.supporters = list(supporters)
        self.carried_kept = carried_kept
        self.index = {s.supporter_id: i for i, s in enumerate(self.supporters)}
        self.languages = sorted({lang for s in self.supporters for lang in s.languages})
        self._language_column = {lang: n for n, lang in enumerate(self.languages)}
        size = len(self.supporters)
        self.active = np.zeros(size, np.bool_)
        self._words: dict[str, int] = {}
        """Hospitals, teams and departments (folded) as numbers: compared at C speed."""
        self.hospital = np.zeros(size, np.int64)
        self.trained = np.zeros(size, np.int64)
        self.days = np.zeros(size, np.int64)
        self.function = np.zeros(size, np.int64)
        self.team = np.zeros(size, np.int64)
        self.department = np.zeros(size, np.int64)
        self.speaks = np.zeros((size, len(self.languages)), np.bool_)
        self.open_cases = np.zeros(size, np.int64)
        self.max_open_cases = np.ones(size, np.int64)
        self.seniority = np.zeros(size, np.float64)
        self.birth_year = np.zeros(size, np.float64)
        self.last_assigned = np.zeros(size, np.float64)
        self.carried = np.full((size, carried_kept), np.nan)
        self.id_order = np.argsort(np.argsort(np.array(list(self.index), dtype=object)))
        self._pseudonyms: dict[str | None, list[str | None]] = {}
        self._without_key: dict[str | None, Mask] = {}
        self._absent: dict[date, Mask] = {}
        for row, supporter in enumerate(self.supporters):
            self._fill(row, supporter)

    def __len__(self) -> int:
        return len(self.supporters)

    def put(self, supporter: Supporter) -> bool:
        """Update a supporter's row in place; False when they have no row yet, or speak a
        language no row has (the caller builds the columns again)."""
        row = self.index.get(supporter.supporter_id)
        if row is None or not supporter.languages <= self._language_column.keys():
            return False
        before = self.supporters[row]
        self.supporters[row] = supporter
        self._fill(row, supporter)
        if before.absences or supporter.absences:
            self._absent.clear()
        for key_id, pseudonyms in self._pseudonyms.items():
            pseudonyms[row] = supporter.pseudonym_under(key_id)
            self._without_key[key_id][row] = pseudonyms[row] is None
        return True

    def _fill(self, row: int, s: Supporter) -> None:
        self.active[row] = s.active
        self.hospital[row] = self._word(s.hospital_id)
        self.trained[row] = s.trained_on.toordinal() if s.trained_on else NEVER_TRAINED
        self.days[row] = sum(1 << WEEKDAYS.index(Weekday(d)) for d in s.available_days)
        self.function[row] = FUNCTIONS.index(Function(s.function))
        self.team[row] = NO_TEAM if s.team is None else self._word(s.team)
        self.department[row] = self._word(folded(s.department))
        self.speaks[row] = False
        self.speaks[row, [self._language_column[lang] for lang in s.languages]] = True
        self.open_cases[row] = s.open_cases
        self.max_open_cases[row] = s.max_open_cases
        self.seniority[row] = np.nan if s.seniority_years is None else s.seniority_years
        self.birth_year[row] = np.nan if s.birth_year is None else s.birth_year
        last = s.last_assigned_at
        self.last_assigned[row] = -np.inf if last is None else last.timestamp()
        latest = sorted(at.timestamp() for at in s.carried)[-self.carried_kept :]
        self.carried[row] = np.nan
        self.carried[row, : len(latest)] = latest

    def _word(self, text: str) -> int:
        return self._words.setdefault(text, len(self._words))

    def number_of(self, text: str | None) -> int:
        """The number a hospital, team or folded department has in the columns; one that no
        row has (or None) matches no row."""
        return NO_ROW if text is None else self._words.get(text, NO_ROW)

    def absent_on(self, day: date) -> Mask:
        """Whose absences include the day."""
        if day not in self._absent:
            absent = np.zeros(len(self), np.bool_)
            for row, s in enumerate(self.supporters):
                absent[row] = any(a.first_day <= day <= a.last_day for a in s.absences)
            self._absent = {day: absent}
        return self._absent[day]

    def pseudonyms_under(self, key_id: str | None) -> tuple[Sequence[str | None], Mask]:
        """Each row's pseudonym under that key, and whose was loaded without it."""
        if key_id not in self._pseudonyms:
            pseudonyms = [s.pseudonym_under(key_id) for s in self.supporters]
            self._pseudonyms[key_id] = pseudonyms
            self._without_key[key_id] = np.array([p is None for p in pseudonyms], np.bool_)
        return self._pseudonyms[key_id], self._without_key[key_id]

    def rows_of(self, supporter_ids: Iterable[str]) -> Mask:
        rows = np.zeros(len(self), np.bool_)
        rows[[self.index[i] for i in supporter_ids if i in self.index]] = True
        return rows

    def counts_of(self, by_supporter: Mapping[str, int]) -> Whole:
        counts = np.zeros(len(self), np.int64)
        for supporter_id, count in by_supporter.items():
            if (row := self.index.get(supporter_id)) is not None:
                counts[row] = count
        return counts

    def speaking_any(self, languages: Iterable[str]) -> Mask:
        known = self._language_column
        columns = [known[lang] for lang in languages if lang in known]
        return np.asarray(self.speaks[:, columns].any(axis=1), np.bool_)


def as_columns(roster: RosterColumns | Iterable[Supporter], carried_kept: int) -> RosterColumns:
    return roster if isinstance(roster, RosterColumns) else RosterColumns(roster, carried_kept)
