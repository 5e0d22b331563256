"""One matching decision against a large roster: the policy alone, without servers.

A decision is what matching computes per case: every hard rule and the score for every
supporter, the ranking, the explanation of the chosen one, and the chosen one's row updated
in the roster that matching holds in memory. The baseline, measured in the same run, is a
bare pass over the same roster that reads one field per supporter.
"""

import random
import statistics
import time
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from services.matching.matcher import BEST
from services.matching.policy import Case, Policy, assignment_for, rank
from services.matching.supporters import RosterColumns, Supporter
from shared.events import (
    Absence,
    CaseProfile,
    Category,
    Colleague,
    Exclusions,
    Function,
    Harm,
    Involvement,
    SupporterContact,
    Weekday,
)

HOSPITAL = "BENCH"
DEPARTMENTS = [f"Department-{n}" for n in range(40)]
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def roster(size: int, rng: random.Random) -> list[Supporter]:
    functions = list(Function)
    return [
        Supporter(
            contact=SupporterContact(
                supporter_id=f"S{n:05d}", display_name=f"Supporter {n}", email=f"s{n}@x.example"
            ),
            hospital_id=HOSPITAL,
            pseudonym=f"{rng.getrandbits(128):032x}",
            function=rng.choice(functions),
            department=(department := rng.choice(DEPARTMENTS)),
            team=f"{department}-{rng.randint(1, 4)}",
            max_open_cases=(most := rng.randint(2, 6)),
            open_cases=rng.randint(0, most),
            languages=frozenset({"nl", "en"} if rng.random() < 0.6 else {"nl"}),
            trained_on=date(2025, 1, 1) if rng.random() < 0.95 else None,
            available_days=frozenset(list(Weekday)[:5]) if rng.random() < 0.2 else frozenset(),
            absences=(Absence(first_day=date(2026, 11, 1), last_day=date(2026, 11, 30)),)
            if rng.random() < 0.05
            else (),
            seniority_years=rng.randint(0, 35),
            birth_year=rng.randint(1962, 2000),
            last_assigned_at=NOW - timedelta(days=rng.uniform(0, 200))
            if rng.random() < 0.8
            else None,
        )
        for n in range(size)
    ]


def case(rng: random.Random) -> Case:
    department = rng.choice(DEPARTMENTS)
    involved = [f"{rng.getrandbits(128):032x}" for _ in range(rng.randint(1, 4))]
    return Case(
        case_id=uuid.UUID(int=rng.getrandbits(128)),
        correlation_id="BENCH:INC-1",
        incident="BENCH:INC-1",
        profile=CaseProfile(
            hospital_id=HOSPITAL,
            function=Function.NURSE,
            department=department,
            category=Category.MEDICATION,
            harm=Harm.SEVERE,
            calamity=False,
            incident_occurred_at=NOW,
        ),
        colleague=Colleague(
            pseudonym=involved[0],
            function=rng.choice(list(Function)),
            department=department,
            team=f"{department}-1",
            involvement=Involvement.DIRECT,
            seniority_years=rng.randint(0, 30),
            birth_year=rng.randint(1965, 2000),
            languages=["nl"],
        ),
        exclusions=Exclusions(involved_pseudonyms=involved, incident_size=len(involved)),
    )


def match_latencies(size: int = 10_000, decisions: int = 300) -> tuple[list[float], float, float]:
    """Seconds per decision, of the baseline pass over the same roster, and of building the
    roster's columns (once per roster, not per decision)."""
    rng = random.Random(2026)
    supporters = roster(size, rng)
    policy = Policy()
    cases = [case(rng) for _ in range(decisions)]
    started = time.perf_counter()
    columns = RosterColumns(supporters, policy.recent_cases_full)
    built = time.perf_counter() - started
    latencies = []
    for each in cases:
        started = time.perf_counter()
        ranking = rank(each, columns, policy, NOW, best=BEST)
        chosen = ranking.candidates[0]
        assignment_for(each, chosen, 1, policy, NOW, each.case_id)
        # As matching's own write comes back: capacity is given back as often as it is taken
        # here, so the roster does not fill up over the run.
        columns.put(replace(chosen.supporter, last_assigned_at=NOW))
        latencies.append(time.perf_counter() - started)
    baselines = []
    for _ in range(decisions):
        started = time.perf_counter()
        sum(1 for s in supporters if s.active)
        baselines.append(time.perf_counter() - started)
    return latencies, statistics.median(baselines), built


def report(sizes: tuple[int, ...] = (60, 1_000, 10_000)) -> list[str]:
    """One `match:` line per roster size: a hospital's (60), a network's, and the stress size."""
    lines = []
    for size in sizes:
        latencies, baseline, built = match_latencies(size)
        p50, p99 = statistics.median(latencies), statistics.quantiles(latencies, n=100)[98]
        lines.append(
            f"match: {size:,} supporters: p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms "
            f"(p50 = {p50 / baseline:.0f} x a bare pass over the roster, "
            f"{baseline * 1000:.3f} ms; the roster held as columns, built once in "
            f"{built * 1000:.0f} ms)"
        )
    return lines


if __name__ == "__main__":
    print("\n".join(report()))
