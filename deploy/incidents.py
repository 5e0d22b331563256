"""Realistic synthetic `incident.reported` events, as hospital incident systems send them.

Three hospitals of different size; categories, harm levels and functions weighted roughly as
Dutch incident reports are (medication errors and falls most frequent, most reports without
harm, nurses most often involved); one to four professionals per incident, drawn from each
hospital's staff, so trained peer supporters are now and then among those involved.
Seeded: the same seed gives the same incidents.
"""

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from shared.events import Category, Function, Harm, IncidentStatus, Involvement


@dataclass(frozen=True)
class Hospital:
    hospital_id: str
    source_system: str
    domain: str
    weight: int
    staff_size: int


HOSPITALS = (
    Hospital("ZH-A", "epd-zh-a", "zh-a.example", weight=5, staff_size=400),
    Hospital("ZH-B", "epd-zh-b", "zh-b.example", weight=3, staff_size=250),
    Hospital("UMC-C", "safety-umc-c", "umc-c.example", weight=6, staff_size=600),
)

DEPARTMENTS = (
    "ICU", "ED", "OR", "Cardiology", "Oncology", "Pediatrics", "Obstetrics", "Surgery",
    "Internal Medicine", "Neurology", "Pharmacy", "Radiology",
)  # fmt: skip

CATEGORIES = {
    Category.MEDICATION: 30, Category.FALL: 18, Category.TREATMENT: 12, Category.DIAGNOSIS: 10,
    Category.SURGERY: 8, Category.COMMUNICATION: 10, Category.DEVICE: 6, Category.OTHER: 6,
}  # fmt: skip

HARMS = {
    Harm.NONE: 40, Harm.MILD: 25, Harm.MODERATE: 18, Harm.SEVERE: 9, Harm.DEATH: 3,
    Harm.UNKNOWN: 5,
}  # fmt: skip

FUNCTIONS = {
    Function.NURSE: 45, Function.PHYSICIAN: 15, Function.RESIDENT: 12, Function.MIDWIFE: 3,
    Function.PHARMACIST: 4, Function.PARAMEDIC: 2, Function.ALLIED_HEALTH: 7,
    Function.SUPPORT_STAFF: 5, Function.MANAGER: 3, Function.OTHER: 4,
}  # fmt: skip

PARTICIPANT_COUNTS = {1: 45, 2: 35, 3: 14, 4: 6}

FIRST_NAMES = ("anna", "bram", "chantal", "daan", "eva", "fatima", "gijs", "hanna", "ibrahim")
LAST_NAMES = ("jansen", "de vries", "bakker", "visser", "smit", "el amrani", "meijer", "bos")


def staff_id(number: int) -> str:
    """Staff ids run E10000, E10001, ... in every hospital; the seed roster uses the same."""
    return f"E{10000 + number}"


T = TypeVar("T")


def _pick(rng: random.Random, weights: dict[T, int]) -> T:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _participant(rng: random.Random, hospital: Hospital, number: int, home: str) -> dict[str, Any]:
    function = _pick(rng, FUNCTIONS)
    seniority = rng.randint(0, 35)
    name = f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES).replace(' ', '')}"
    # Most of those involved work where it happened; some came from elsewhere.
    department = home if rng.random() < 0.8 else rng.choice(DEPARTMENTS)
    return {
        "staff_id": staff_id(number),
        "function": function.value,
        "department": department,
        "team": f"{department.replace(' ', '')}-{rng.randint(1, 3)}",
        "line_manager_staff_id": staff_id(rng.randrange(hospital.staff_size)),
        "involvement": _pick(rng, {Involvement.DIRECT: 80, Involvement.INDIRECT: 20}).value,
        "seniority_years": seniority,
        "birth_year": 2026 - 22 - seniority - rng.randint(0, 8),
        "languages": ["nl", "en"] if rng.random() < 0.6 else ["nl"],
        "contact": {
            "email": f"{name}.{number}@{hospital.domain}",
            "phone": f"+316{rng.randint(10_000_000, 99_999_999)}",
        },
    }


def incident(rng: random.Random, sequence: int, now: datetime) -> dict[str, Any]:
    """One `incident.reported` v1 event as JSON-ready data, occurring in the last 60 days."""
    hospital = rng.choices(HOSPITALS, weights=[h.weight for h in HOSPITALS])[0]
    occurred = now - timedelta(days=rng.uniform(1, 60))
    department = rng.choice(DEPARTMENTS)
    count = _pick(rng, PARTICIPANT_COUNTS)
    numbers = rng.sample(range(hospital.staff_size), count)
    harm = _pick(rng, HARMS)
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "event_type": "incident.reported",
        "schema_version": 1,
        "occurred_at": occurred.isoformat(timespec="seconds"),
        "reported_at": (occurred + timedelta(hours=rng.uniform(0.5, 48))).isoformat(
            timespec="seconds"
        ),
        "source_system": hospital.source_system,
        "hospital_id": hospital.hospital_id,
        "incident_id": f"INC-{occurred:%Y}-{sequence:06d}",
        "status": IncidentStatus.COMPLETED.value
        if rng.random() < 0.85
        else IncidentStatus.IN_PROGRESS.value,
        "actuality": "actual" if rng.random() < 0.9 else "potential",
        "category": _pick(rng, CATEGORIES).value,
        "harm": harm.value,
        "calamity": harm in (Harm.SEVERE, Harm.DEATH) and rng.random() < 0.5,
        "department": department,
        "participants": [_participant(rng, hospital, n, department) for n in numbers],
        "investigators": [staff_id(rng.randrange(hospital.staff_size)) for _ in range(2)]
        if harm in (Harm.SEVERE, Harm.DEATH)
        else [],
    }


def incidents(
    count: int, seed: int = 2026, now: datetime | None = None, first: int = 1
) -> list[dict[str, Any]]:
    """`count` incidents numbered from `first` (numbers make the incident ids unique)."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    return [incident(rng, sequence, now) for sequence in range(first, first + count)]


def kafka_key(event: dict[str, Any]) -> bytes:
    """The key hospitals publish under: `hospital_id:incident_id`."""
    return f"{event['hospital_id']}:{event['incident_id']}".encode()


IN_DIRECTORY = 0.95
"""The share of each hospital's staff its directory lists: the others (agency staff,
students) are reached as their incidents say."""


def directory_rows(hospital: Hospital, seed: int = 7) -> list[dict[str, str]]:
    """The hospital's staff directory as a CSV's rows (`services.intake.cli directory load`):
    the same staff ids and mail domain as the incidents, a work address and phone each."""
    rng = random.Random(f"{seed}/{hospital.hospital_id}")
    listed = int(hospital.staff_size * IN_DIRECTORY)
    return [
        {
            "hospital_id": hospital.hospital_id,
            "staff_id": staff_id(number),
            "email": f"{staff_id(number).lower()}@{hospital.domain}",
            "phone": f"+316{rng.randint(10_000_000, 99_999_999)}",
            "function": _pick(rng, FUNCTIONS).value,
            "department": rng.choice(DEPARTMENTS).replace(" ", ""),
            "languages": "nl;en" if rng.random() < 0.6 else "nl",
        }
        for number in range(listed)
    ]
