"""Suppression that holds: no hidden row is recovered from totals, from two differently
grouped queries, from two time ranges, or from a hospital's view beside the network's."""

import itertools
import random
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from services.reporting.aggregates import Row
from services.reporting.disclosure import (
    FOLDED,
    PERIOD,
    PERIODS,
    SCAFFOLD,
    Selection,
    ServedRow,
    answer,
    folded,
    months_before,
    months_of,
    period_of,
    protected,
)

K = 11
DIMENSIONS = ("hospital_id", "function", "harm")


def cell(month: str, hospital: str, function: str, harm: str, cases: int) -> Row:
    return Row(
        month,
        {"hospital_id": hospital, "function": function, "harm": harm},
        {"cases_opened": cases, "accepted": cases // 2, "supporter_minutes": 45 * cases},
    )


def ask(rows: Sequence[Row], **selection: object) -> dict[tuple[str, ...], ServedRow]:
    asked = Selection(**selection)  # type: ignore[arg-type]
    return {tuple(row.dimensions.values()): row for row in answer(rows, asked, DIMENSIONS, K)}


def cases(row: ServedRow) -> int | None:
    return row.counts["cases_opened"]


HARMS = {"none": 40, "mild": 30, "severe": 12, "death": 3}
ONE_HOSPITAL = [cell("2026-03", "H1", "nurse", harm, n) for harm, n in HARMS.items()]


def test_a_small_row_is_hidden_with_the_next_smallest_beside_it() -> None:
    by_harm = ask(ONE_HOSPITAL, group_by=("hospital_id", "harm"))
    assert by_harm[("H1", "death")].suppressed
    assert by_harm[("H1", "severe")].suppressed, "else the total minus the rest gives death"
    assert cases(by_harm[("H1", "mild")]) == 30
    assert cases(by_harm[("H1", "none")]) == 40
    assert by_harm[("H1", "death")].counts["supporter_minutes"] is None

    (total,) = ask(ONE_HOSPITAL, group_by=("hospital_id",)).values()
    assert cases(total) == 85
    # What differencing gives: the two hidden rows together, 15, not either of them.
    assert 85 - (cases(by_harm[("H1", "mild")]) or 0) - (cases(by_harm[("H1", "none")]) or 0) == 15


def test_a_finer_query_does_not_add_up_to_a_row_hidden_as_a_complement() -> None:
    finer = ask(ONE_HOSPITAL, group_by=("hospital_id", "harm", "function"))
    # Shown, the 12 severe nurses would give away the severe row, and with it death's 3.
    assert finer[("H1", "severe", "nurse")].suppressed
    assert finer[("H1", "death", "nurse")].suppressed


def test_a_year_minus_its_months_gives_no_month_away() -> None:
    months = {"2026-01": 3, "2026-02": 20, "2026-03": 25, "2026-04": 30}
    rows = [cell(m, "H1", "nurse", "mild", n) for m, n in months.items()]
    (year,) = ask(rows, period="year", group_by=(PERIOD,)).values()
    assert cases(year) == 78
    monthly = ask(rows, group_by=(PERIOD,))
    assert monthly[("2026-01",)].suppressed
    assert monthly[("2026-02",)].suppressed, "else the year minus the others gives January"
    assert cases(monthly[("2026-03",)]) == 25
    assert cases(monthly[("2026-04",)]) == 30


def test_a_range_is_shown_only_when_each_of_its_months_is() -> None:
    months = {"2026-01": 3, "2026-02": 20, "2026-03": 25, "2026-04": 30}
    rows = [cell(m, "H1", "nurse", "mild", n) for m, n in months.items()]
    (march_to_april,) = ask(rows, group_by=(), first="2026-03", last="2026-04").values()
    assert cases(march_to_april) == 55
    # Shown, it would be January and February together, and with March: both.
    (january_to_march,) = ask(rows, group_by=(), first="2026-01", last="2026-03").values()
    assert january_to_march.suppressed
    quarters = ask(rows, period="quarter", group_by=(PERIOD,))
    assert quarters[("2026-Q1",)].suppressed
    assert cases(quarters[("2026-Q2",)]) == 30


def test_a_hospitals_view_is_protected_like_the_networks() -> None:
    rows = [*ONE_HOSPITAL, cell("2026-03", "H2", "nurse", "death", 30)]
    network = ask(rows, group_by=("harm",))
    assert cases(network[("death",)]) == 33
    own = ask(rows, group_by=("harm",), hospital_id="H1")
    assert own[("death",)].suppressed
    assert own[("severe",)].suppressed


def test_percentiles_come_from_merged_buckets_and_hide_with_the_row() -> None:
    def hospital(name: str, **buckets: int) -> Row:
        dimensions = {"hospital_id": name, "function": "nurse", "harm": "mild"}
        counts = {f"hours_to_assignment_le_{b[1:]}": n for b, n in buckets.items()}
        return Row("2026-03", dimensions, {"cases_opened": sum(buckets.values()), **counts})

    rows = [hospital("H1", h1=7, h4=6), hospital("H2", h8=12), hospital("H3", h720=3)]
    by_hospital = ask(rows, group_by=("hospital_id",))
    assert by_hospital[("H1",)].counts["hours_to_assignment_p50"] == 1
    assert by_hospital[("H1",)].counts["hours_to_assignment_p90"] == 4
    assert by_hospital[("H2",)].suppressed
    assert by_hospital[("H3",)].suppressed
    assert by_hospital[("H3",)].counts["hours_to_assignment_p90"] is None
    (network,) = ask(rows, group_by=()).values()
    assert network.counts["hours_to_assignment_p50"] == 8
    assert network.counts["hours_to_assignment_p90"] == 720


def test_first_contacts_within_the_target_are_shown_against_accepted_cases() -> None:
    def hospital(name: str, accepted: int, **days: int) -> Row:
        dimensions = {"hospital_id": name, "function": "nurse", "harm": "mild"}
        counts = {f"days_to_first_contact_le_{d[1:]}": n for d, n in days.items()}
        return Row("2026-03", dimensions, {"cases_opened": 20, "accepted": accepted, **counts})

    rows = [hospital("H1", 16, d0=4, d2=5, d3=3, d5=2), hospital("H2", 20, d1=10, d14=8)]
    by_hospital = ask(rows, group_by=("hospital_id",))
    assert by_hospital[("H1",)].counts["first_contact_within_target"] == 12
    assert by_hospital[("H1",)].counts["first_contact_within_target_percent"] == 75
    assert by_hospital[("H2",)].counts["first_contact_within_target_percent"] == 50
    stricter = Selection(group_by=("hospital_id",))
    (h1, _) = answer(rows, stricter, DIMENSIONS, K, first_contact_target_days=1)
    assert h1.counts["first_contact_within_target"] == 4


def test_periods_are_named_and_spanned_as_analysts_write_them() -> None:
    assert [period_of("2026-05", p) for p in PERIODS] == ["2026", "2026-Q2", "2026-05"]
    assert months_of("2026-Q2") == ("2026-04", "2026-06")
    assert months_of("2026") == ("2026-01", "2026-12")
    assert months_before("2026-02", 11) == "2025-03"


# --- The adversary -----------------------------------------------------------------------


def network(seed: int) -> list[Row]:
    """Six months over a new year of three hospitals, most cells small, a few large."""
    rng = random.Random(seed)
    months = ["2025-11", "2025-12", "2026-01", "2026-02", "2026-03", "2026-04"]
    rows = []
    for month, hospital, function, harm in itertools.product(
        months, ("H1", "H2", "H3"), ("nurse", "physician"), ("none", "mild", "severe", "death")
    ):
        if n := rng.choice((0, 0, 0, 1, 2, 3, 4, 6, 9, 12, 15, 25)):
            rows.append(cell(month, hospital, function, harm, n))
    return rows


def every_selection(rows: Sequence[Row]) -> Iterator[Selection]:
    """Every question the API can be asked of these cells, by any token."""
    for period in PERIODS:
        labels = sorted({period_of(row.month, period) for row in rows})
        ranges = [(None, None), *itertools.combinations_with_replacement(labels, 2)]
        for size in range(len(DIMENSIONS) + 2):
            for group_by in itertools.combinations((PERIOD, *DIMENSIONS), size):
                for (first, last), hospital in itertools.product(ranges, (None, "H1", "H2")):
                    yield Selection(period, group_by, first, last, hospital)


def members(rows: Sequence[Row], asked: Selection, served: ServedRow) -> frozenset[int]:
    """Which cells a served row adds up: what an analyst knows from the question alone."""
    found = set()
    for i, row in enumerate(rows):
        label = period_of(row.month, asked.period)
        values = {PERIOD: label, **row.dimensions}
        if (
            (not asked.first or label >= asked.first)
            and (not asked.last or label <= asked.last)
            and (not asked.hospital_id or row.dimensions["hospital_id"] == asked.hospital_id)
            and all(values[d] == v for d, v in served.dimensions.items())
        ):
            found.add(i)
    return frozenset(found)


Sums = set[frozenset[int]]
"""Each a set of cells added up: a row as an analyst can tell what it holds."""


def recovered(shown: Sums, hidden: Sums, size: int) -> Sums:
    """The hidden sums that the shown sums determine: those in the span of the shown ones."""
    matrix = np.zeros((len(shown), size))
    for r, sum_of in enumerate(shown):
        matrix[r, list(sum_of)] = 1.0
    _, singular, basis = np.linalg.svd(matrix, full_matrices=False)
    span = basis[singular > 1e-9]
    found: Sums = set()
    for sum_of in hidden:
        vector = np.zeros(size)
        vector[list(sum_of)] = 1.0
        if np.linalg.norm(vector - span.T @ (span @ vector)) < 1e-6:
            found.add(sum_of)
    return found


def published(rows: Sequence[Row], min_cell_size: int) -> tuple[Sums, Sums]:
    """What every question shows, and the sums of fewer than K cases it hides."""
    shown: Sums = set()
    small: Sums = set()
    for asked in every_selection(rows):
        for served in answer(rows, asked, DIMENSIONS, min_cell_size):
            sum_of = members(rows, asked, served)
            if not served.suppressed:
                shown.add(sum_of)
            elif sum(rows[i].counts["cases_opened"] for i in sum_of) < K:
                small.add(sum_of)
    return shown, small


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_question_or_combination_of_questions_recovers_a_small_hidden_row(seed: int) -> None:
    rows = network(seed)
    shown, small = published(rows, K)
    assert len(shown) > 100, "a test of nothing otherwise"
    assert len(small) > 100
    assert not small & shown
    assert recovered(shown, small, len(rows)) == set()


def test_the_adversary_recovers_what_primary_suppression_alone_would_hide() -> None:
    """The same attack on answers that hide small rows only (each question protected on
    its own, as a naive server would) finds many: it is a real attack."""
    rows = network(seed=1)
    shown: Sums = set()
    small: Sums = set()
    for asked in every_selection(rows):
        for served in answer(rows, asked, DIMENSIONS, min_cell_size=1):
            sum_of = members(rows, asked, served)
            total = sum(rows[i].counts["cases_opened"] for i in sum_of)
            (shown if total >= K else small).add(sum_of)
    assert len(recovered(shown, small, len(rows))) > 10


def test_no_answer_names_a_combination_of_fewer_than_k_cases() -> None:
    """A hidden row says only when and where: which function and harm were there is folded
    away, so its presence gives nobody away."""
    rows = network(seed=1)
    snapshot = protected(rows, DIMENSIONS, K)
    folds = 0
    for asked in every_selection(rows):
        served = folded(snapshot.answer(asked))
        named = [tuple(r.dimensions.values()) for r in served]
        assert len(named) == len(set(named))
        for row in served:
            if row.suppressed:
                described = {d: v for d, v in row.dimensions.items() if d not in SCAFFOLD}
                assert set(described.values()) <= {FOLDED}, (asked, row)
                folds += bool(described)
            else:
                assert (cases(row) or 0) >= K, (asked, row)
    assert folds > 100, "a test of nothing otherwise"
