"""The coordinator's import command against the running pipeline: all or nothing, then only
what changed."""

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from services.matching.roster import COLUMNS
from shared.pseudonyms import key_fingerprint, pseudonymise
from tests.factories import PSEUDONYM_KEY
from tests.integration.pipeline import Pipeline
from tests.integration.rig import until_true

pytestmark = pytest.mark.integration

ROW = (
    "R1-{n},R1,E8{n},Supporter {n},s{n}@r1.example,,nl,,nl,nurse,ICU,ICU-1,5,1990,2025-02-01,3,"
    ",,true"
)


async def import_roster(
    pipeline: Pipeline,
    path: Path,
    key: bytes = PSEUDONYM_KEY,
    *options: str,
    retired: Sequence[bytes] = (),
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": pipeline.bootstrap_servers,
        "MONGODB_URL": pipeline.servers.mongodb_url,
        "MONGODB_DATABASE_PREFIX": pipeline.database_prefix,
        "TOPIC_ROSTER": pipeline.topics.roster,
        "TOPIC_ROSTER_CONTACTS": pipeline.topics.roster_contacts,
        "PSEUDONYM_KEY": key.decode(),
        "PSEUDONYM_KEYS_RETIRED": json.dumps([k.decode() for k in retired]),
    }
    load = [sys.executable, "-m", "services.matching.cli", "load", str(path), "--wait", "30"]
    command = [*load, *options]
    return await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
    )


async def test_a_file_with_errors_publishes_nothing_a_good_one_only_changes(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    header = ",".join(COLUMNS)
    rows = [ROW.format(n=n) for n in range(1, 4)]
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "\n".join([header, rows[0], rows[1].replace("nurse", "surgeon"), rows[2][:-4] + "maybe"])
    )
    refused = await import_roster(pipeline, bad)
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        f"{bad}:3: 1 contract violation(s): function: Input should be 'nurse', 'physician', "
        "'resident', 'midwife', 'pharmacist', 'paramedic', 'allied_health', 'support_staff', "
        "'manager' or 'other'",
        f"{bad}:4: 1 contract violation(s): active: Input should be a valid boolean, "
        "unable to interpret input",
        "2 row error(s): nothing loaded",
    ]
    published = pipeline.log.on(pipeline.topics.roster)
    assert [r for r in published if (r.key or b"").startswith(b"R1-")] == []

    good = tmp_path / "good.csv"
    good.write_text("\n".join([header, *rows]) + "\n")
    loaded = await import_roster(pipeline, good)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "3 supporters in the file: 3 registered"

    changed = [rows[0], rows[1].replace(",3,,,true", ",5,,,true"), rows[2].replace("true", "false")]
    good.write_text("\n".join([header, *changed]) + "\n")
    reloaded = await import_roster(pipeline, good)
    assert reloaded.returncode == 0, reloaded.stderr
    assert reloaded.stdout.strip() == "3 supporters in the file: 1 deactivated, 1 updated"
    supporters = pipeline.mongo[f"{pipeline.database_prefix}matching"]["supporters"]
    stored = {d["_id"]: d async for d in supporters.find({"hospital_id": "R1"})}
    assert stored["R1-2"]["max_open_cases"] == 5
    assert stored["R1-3"]["active"] is False
    assert "E82" not in str(stored)


async def test_a_roster_loaded_with_another_key_is_refused(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """Every supporter's pseudonym would change, and the rule that nobody supports an incident
    they were involved in would compare pseudonyms made with different keys."""
    roster = tmp_path / "roster.csv"
    roster.write_text("\n".join([",".join(COLUMNS), ROW.format(n=7).replace("R1", "R7")]) + "\n")
    assert (await import_roster(pipeline, roster)).returncode == 0
    other = await import_roster(pipeline, roster, key=b"another-key-Zq81Lm0Xv3Tn5Bw9")
    assert other.returncode == 2
    assert "PSEUDONYM_KEY is not the key this roster was loaded with" in other.stderr
    supporters = pipeline.mongo[f"{pipeline.database_prefix}matching"]["supporters"]
    stored = await supporters.find_one({"_id": "R7-7"})
    assert stored is not None
    assert stored["pseudonym"] == pseudonymise(PSEUDONYM_KEY, "R7", "E87"), "unchanged"


async def test_a_notify_that_lost_its_copy_of_the_roster_learns_it_again(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """Offers name supporters by id: notify reaches them through its own copy of the roster."""
    roster = tmp_path / "roster.csv"
    rows = [ROW.format(n=n).replace("R1", "R8") for n in (1, 2)]
    roster.write_text("\n".join([",".join(COLUMNS), *rows]) + "\n")
    assert (await import_roster(pipeline, roster)).returncode == 0
    copy = pipeline.mongo[pipeline.database("notify")]["supporters"]
    ours = {"_id": {"$in": ["R8-1", "R8-2"]}}
    await until_true(lambda: copy.count_documents(ours), lambda n: n == 2, "notify's copy")
    await copy.delete_many(ours)

    unchanged = await import_roster(pipeline, roster)
    assert unchanged.stdout.strip() == "2 supporters in the file: no changes"
    again = await import_roster(pipeline, roster, PSEUDONYM_KEY, "--again")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "2 supporters in the file: 2 registered"
    await until_true(lambda: copy.find_one({"_id": "R8-2"}), bool, "notify learns it again")
    known = await copy.find_one({"_id": "R8-2"})
    assert known is not None
    assert known["contact"]["email"] == "s2@r1.example"
    told = [r for r in pipeline.log.on(pipeline.topics.roster_contacts) if r.key == b"R8-2"]
    assert told, "notify learns of supporters from their own topic"
    assert all(b"pseudonym" not in (r.value or b"") for r in told), "no pseudonym for notify"


async def test_a_new_key_beside_the_one_it_replaces_rekeys_the_roster(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    """A rotation: every supporter is announced again with a pseudonym under both keys, and
    from then on the roster is the new key's."""
    roster = tmp_path / "roster.csv"
    roster.write_text("\n".join([",".join(COLUMNS), ROW.format(n=8).replace("R1", "R8")]) + "\n")
    assert (await import_roster(pipeline, roster)).returncode == 0
    new = b"rotated-key-Hq27Vn4Kd8Ys1Lp5Wx"
    try:
        rotated = await import_roster(pipeline, roster, new, retired=[PSEUDONYM_KEY])
        assert rotated.returncode == 0, rotated.stderr
        assert rotated.stdout.strip() == "1 supporters in the file: 1 updated"
        supporters = pipeline.mongo[f"{pipeline.database_prefix}matching"]["supporters"]
        stored = await supporters.find_one({"_id": "R8-8"})
        assert stored is not None
        assert stored["pseudonym"] == pseudonymise(new, "R8", "E88")
        assert stored["pseudonyms"] == {
            key_fingerprint(new): pseudonymise(new, "R8", "E88"),
            key_fingerprint(PSEUDONYM_KEY): pseudonymise(PSEUDONYM_KEY, "R8", "E88"),
        }
        refused = await import_roster(pipeline, roster)
        assert refused.returncode == 2, "the old key alone is no longer the roster's"
        assert "nor among PSEUDONYM_KEYS_RETIRED" in refused.stderr
    finally:
        back = await import_roster(pipeline, roster, PSEUDONYM_KEY, retired=[new])
        assert back.returncode == 0, back.stderr
