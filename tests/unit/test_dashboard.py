"""The dashboard draws what the API serves and never a hidden row's value."""

from typing import Any

from services.reporting.aggregates import SERVED
from services.reporting.dashboard import charts, page, svg


def served(period: str, hidden: bool = False, **counts: int) -> dict[str, Any]:
    values = dict.fromkeys(SERVED) if hidden else dict.fromkeys(SERVED, 0) | counts
    return {"period": period, **values, "suppressed": hidden}


BY_MONTH = [
    served("2026-09", cases_opened=14, accepted=6, declined=2, supporter_minutes=390,
           days_to_first_contact_p50=1, days_to_first_contact_p90=3),
    served("2026-10", hidden=True),
]  # fmt: skip
BY_HARM = [
    {**served("2026-09", cases_opened=12), "harm": "mild"},
    {**served("2026-09", hidden=True), "harm": "death"},
    {**served("2026-10", hidden=True), "harm": "mild"},
]


def test_each_question_gets_a_chart_month_by_month() -> None:
    titles = [chart.title for chart in charts(BY_MONTH, BY_HARM)]
    assert titles == [
        "Cases opened per month, by harm level",
        "Time to first contact (days)",
        "First contact within 3 days (% of accepted cases)",
        "Time to assignment (hours)",
        "Offers accepted (% of answered)",
        "Supporter time (hours)",
        "How support ended",
        "Time in support (days)",
        "Contacts per ended case (contacts)",
        "Referrals to professional help, by kind",
    ]


def test_outcomes_and_referrals_are_stacked_by_kind() -> None:
    month = served("2026-09", ended_completed=9, ended_referred=3, referred_psychologist=2,
                   referred_eap=1)  # fmt: skip
    by_title = {chart.title: chart for chart in charts([month], BY_HARM)}
    ended = {s.name: s.values for s in by_title["How support ended"].series}
    assert ended["completed"] == [9.0]
    assert ended["referred"] == [3.0]
    assert ended["declined by colleague"] == [0.0]
    kinds = by_title["Referrals to professional help, by kind"]
    assert kinds.stacked
    assert {s.name: s.values for s in kinds.series}["psychologist"] == [2.0]


def test_acceptance_and_supporter_time_are_derived_from_the_counts() -> None:
    by_title = {chart.title: chart for chart in charts(BY_MONTH, BY_HARM)}
    (accepted,) = by_title["Offers accepted (% of answered)"].series
    assert accepted.values == [75.0, None]
    (hours,) = by_title["Supporter time (hours)"].series
    assert hours.values == [6.5, None]


def test_a_hidden_row_is_drawn_as_hidden_never_as_a_value() -> None:
    cases_by_harm = charts(BY_MONTH, BY_HARM)[0]
    assert [s.name for s in cases_by_harm.series] == ["mild", "death"]
    assert cases_by_harm.hidden == [True, True], "September's death row is hidden"
    drawn = svg(cases_by_harm)
    assert "2026-09 mild: 12 cases" in drawn
    assert "death:" not in drawn
    assert drawn.count("hidden to protect small groups") == 2


def test_the_page_names_its_scope_and_the_minimum_escaped() -> None:
    html = page(charts(BY_MONTH, BY_HARM), "hospital <ZH-A>", 11, [])
    assert "hospital &lt;ZH-A&gt;" in html
    assert "fewer than 11 cases" in html
    assert "<script" not in html
