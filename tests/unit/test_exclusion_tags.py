"""Tags that need a key: with `EXCLUSION_KEY`, which only intake and matching hold, the salt
on the cases topic and a supporter's pseudonym (once on the roster topic) no longer tell
anyone who was in which incident; matching, which holds the key, still keeps those involved
away, and one without it keeps everyone away rather than guess."""

from collections import Counter
from dataclasses import replace

from services.intake.cases import IntakePolicy, Occasion, reconcile
from services.matching.policy import Case, Policy, Refusal, excludes, rank
from shared.events import IncidentReported, IncidentUpdated, SupportCaseOpened, SupportCaseUpdated
from shared.pseudonyms import PseudonymKeys, key_fingerprint, pseudonymise, tagged
from tests.factories import KEYS, NOW, PSEUDONYM_KEY, case_to_match, incident_json, supporter

TAG_KEY = b"exclusion-key-of-intake-and-matching-0123456789"
INVOLVED = pseudonymise(PSEUDONYM_KEY, "ZH-A", "E23456")


def case_tagged_with(keys: PseudonymKeys) -> Case:
    """The first case intake opens for the example incident, as matching holds it."""
    occasion = Occasion.of_incident(IncidentReported.model_validate(incident_json()))
    outcome = reconcile(None, occasion, keys, set(), IntakePolicy(), NOW)
    return case_to_match(next(e for e in outcome.cases if isinstance(e, SupportCaseOpened)))


def keyed_case() -> Case:
    return case_tagged_with(replace(KEYS, tag_key=TAG_KEY))


def test_a_tag_cannot_be_made_from_what_the_topics_carry() -> None:
    exclusions = keyed_case().exclusions
    assert exclusions.tag_key_id == key_fingerprint(TAG_KEY)
    from_the_topics = tagged(exclusions.salt, INVOLVED)
    assert from_the_topics not in exclusions.involved_pseudonyms, "the salt alone matches none"
    assert tagged(exclusions.salt, INVOLVED, TAG_KEY) in exclusions.involved_pseudonyms


def refusals(case: Case, policy: Policy) -> Counter[Refusal]:
    roster = [supporter("P1", pseudonym=INVOLVED), supporter("P2")]
    return rank(case, roster, policy, NOW).refusals


def test_matching_with_the_key_keeps_those_involved_away() -> None:
    case = keyed_case()
    assert refusals(case, Policy(tag_key=TAG_KEY))[Refusal.INVOLVED] == 1
    assert excludes(case.exclusions, supporter("P1", pseudonym=INVOLVED), Policy(tag_key=TAG_KEY))


def test_matching_without_the_key_keeps_everyone_away_rather_than_guess() -> None:
    case = keyed_case()
    for policy in (Policy(), Policy(tag_key=b"another-key-altogether-0123456789")):
        assert refusals(case, policy) == Counter({Refusal.KEY_UNKNOWN: 2})
        assert excludes(case.exclusions, supporter("P2"), policy)


def test_a_case_tagged_before_the_key_is_still_judged_as_it_was() -> None:
    case = case_tagged_with(KEYS)
    assert case.exclusions.tag_key_id is None
    assert refusals(case, Policy(tag_key=TAG_KEY))[Refusal.INVOLVED] == 1


def test_a_case_revised_after_the_key_came_keeps_the_tagging_it_was_opened_with() -> None:
    """Its line manager's tag was made at the opening: the new exclusions must match it."""
    first = Occasion.of_incident(IncidentReported.model_validate(incident_json()))
    opened = reconcile(None, first, KEYS, set(), IntakePolicy(), NOW)
    event = incident_json(event_type="incident.updated", revision=2, harm="mild")
    revised = Occasion.of_incident(IncidentUpdated.model_validate(event))
    keyed = replace(KEYS, tag_key=TAG_KEY)
    outcome = reconcile(opened.record, revised, keyed, set(), IntakePolicy(), NOW)
    updates = [e for e in outcome.cases if isinstance(e, SupportCaseUpdated)]
    assert updates
    assert {u.exclusions.tag_key_id for u in updates} == {None}
    case = updates[0]
    assert tagged(case.exclusions.salt, INVOLVED) in case.exclusions.involved_pseudonyms
