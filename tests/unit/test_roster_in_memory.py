"""The roster matching holds in memory: the same judgement as the store's, kept current, and
never the reason a case escalates."""

import dataclasses

import structlog
from pymongo.asynchronous.client_session import AsyncClientSession

from services.matching.policy import Policy, Refusal, rank
from services.matching.rosters import Rosters
from services.matching.supporters import RosterColumns, Supporter
from shared.events import Absence, CaseEscalated, Exclusions, PeerAssigned
from shared.pseudonyms import tagged
from tests.factories import NOW, case_to_match, opened_cases, supporter
from tests.fakes import NO_SESSION, FakeRoster
from tests.unit.test_matcher_lifecycle import lifecycle

POLICY = Policy()


def held(*supporters: Supporter) -> RosterColumns:
    return RosterColumns(supporters, POLICY.recent_cases_full)


def chosen(columns: RosterColumns) -> list[str]:
    case = case_to_match(opened_cases()[0])
    return [c.supporter.supporter_id for c in rank(case, columns, POLICY, NOW).candidates]


def test_a_change_to_a_supporter_is_judged_at_once_in_the_roster_held() -> None:
    columns = held(supporter("P1", seniority_years=20), supporter("P2", seniority_years=0))
    assert chosen(columns) == ["P1", "P2"]
    today = NOW.date()
    away = supporter("P1", seniority_years=20, absences=(Absence(first_day=today, last_day=today),))
    assert columns.put(away)
    assert chosen(columns) == ["P2"]
    assert columns.put(dataclasses.replace(away, absences=(), open_cases=3))
    assert chosen(columns) == ["P2"], "P1 is now at capacity"
    assert not columns.put(supporter("P3")), "a newcomer needs the columns built again"
    assert not columns.put(supporter("P2", languages=frozenset({"tr"})))


def test_the_best_one_the_incident_excludes_is_passed_over_when_only_a_few_are_ranked() -> None:
    best, next_best = supporter("P1", seniority_years=20), supporter("P2", seniority_years=0)
    case = case_to_match(opened_cases()[0])
    salt = case.exclusions.salt
    case = dataclasses.replace(
        case,
        exclusions=Exclusions(
            involved_pseudonyms=[tagged(salt, best.pseudonym)], incident_size=1, salt=salt
        ),
    )
    ranking = rank(case, held(best, next_best), POLICY, NOW, best=1)
    assert [c.supporter.supporter_id for c in ranking.candidates] == ["P2"]
    assert ranking.refusals == {Refusal.INVOLVED: 1}


async def test_someone_joining_or_leaving_has_the_roster_read_again() -> None:
    store = FakeRoster([supporter("P1"), supporter("P2")])
    rosters = Rosters(store, POLICY.recent_cases_full, structlog.get_logger("test"))
    rosters.following = True
    assert len(await rosters.read("ZH-A")) == 2
    rosters.put(supporter("P1", open_cases=1))
    assert "ZH-A" in rosters.held, "a change to someone held is made in place"
    rosters.put(supporter("P3"))
    assert "ZH-A" not in rosters.held
    await rosters.read("ZH-A")
    rosters.put(supporter("P2", active=False))
    assert "ZH-A" not in rosters.held


async def test_a_roster_held_out_of_date_never_makes_a_case_escalate() -> None:
    life = lifecycle("P1")
    rosters = life.matcher.rosters
    rosters.following = True
    full = await rosters.read("ZH-A")
    full.put(dataclasses.replace(full.supporters[0], open_cases=3))  # no longer true
    await life.matcher.open(life.case)
    assert [o.supporter_id for o in life.unit_of_work.events(PeerAssigned)] == ["P1"]
    assert not life.unit_of_work.events(CaseEscalated)
    assert life.book.status(life.case.case_id) == "offered"


async def test_a_decision_reads_the_store_in_its_own_transaction() -> None:
    """Read beside its transaction, the roster came back empty under load on the local store
    and cases escalated with no supporter refused (`make demo` never settled)."""
    life = lifecycle("P1")
    sessions: list[object] = []
    read = life.roster.available_in

    async def recorded(
        hospital_id: str, session: AsyncClientSession | None = None
    ) -> list[Supporter]:
        sessions.append(session)
        return await read(hospital_id, session)

    life.roster.available_in = recorded  # type: ignore[method-assign]
    await life.matcher.open(life.case)
    assert sessions == [NO_SESSION]
    assert [o.supporter_id for o in life.unit_of_work.events(PeerAssigned)] == ["P1"]
