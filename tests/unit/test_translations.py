"""Every word the desk says is in Dutch as well as English: a string marked in the code but
missing from the Dutch catalogue, left untranslated or fuzzy, or translated with other
placeholders fails here (`make messages` gathers them)."""

import re
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from services.matching.desk_pages import duration
from services.matching.desk_words import in_words, reason_said, said
from shared.i18n import LOCALES, _, preferred, speaking

ROOT = Path(__file__).parents[2]
METHODS = [
    ("services/**.py", "python"),
    ("shared/**.py", "python"),
    ("services/**/templates/**.html", "jinja2"),
]
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}


def said_in_code() -> set[str]:
    return {
        message if isinstance(message, str) else message[0]
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT, METHODS, keywords=KEYWORDS
        )
    }


def dutch() -> Catalog:
    with (LOCALES / "nl" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale="nl")


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\(\w+\)[sd]|\{\w+(?::[^}]*)?\}", text))


def test_every_word_the_code_says_is_translated_into_dutch() -> None:
    catalog = dutch()
    translated = {
        m.id if isinstance(m.id, str) else m.id[0]
        for m in catalog
        if m.id and m.string and all(m.string) and not m.fuzzy
    }
    missing = sorted(said_in_code() - translated)
    assert not missing, f"not in Dutch yet (make messages, then translate): {missing}"
    assert len(translated) > 300, "the desk's words are all in the catalogue"


def test_dutch_keeps_every_placeholder_the_english_has() -> None:
    for message in dutch():
        if not message.id:
            continue
        english = message.id if isinstance(message.id, str) else " ".join(message.id)
        text = message.string if isinstance(message.string, str) else " ".join(message.string or ())
        assert placeholders(text) == placeholders(english), english


def test_a_sentence_is_said_in_the_language_being_spoken() -> None:
    detail = {"outcome": "referred", "referral": "occupational_physician"}
    with speaking("nl"):
        assert in_words("support.ended", detail, "Sanne", "Europe/Amsterdam") == (
            "Ondersteuning beëindigd: verwezen naar de bedrijfsarts."
        )
        assert said("at_capacity") == "heeft al zoveel casussen als hij of zij aanneemt"
        assert duration(3 * 24 * 60 + 4 * 60) == "3 d 4 u"
    assert in_words("support.ended", detail, "Sanne", "Europe/Amsterdam") == (
        "Support ended: referred to the occupational physician."
    )
    assert _("worklist") == "worklist", "outside a page or mail: English, the source"


def test_the_language_is_the_persons_choice_then_their_browsers_then_the_hospitals() -> None:
    assert preferred("en", "nl-NL,nl;q=0.9", "nl") == "en", "the switch wins"
    assert preferred(None, "de-DE,de;q=0.9,en;q=0.8,nl;q=0.7", "nl") == "en"
    assert preferred(None, "fr;q=0.5, nl-BE;q=0.9", "en") == "nl", "by weight, not by order"
    assert preferred(None, "de-DE", "nl") == "nl", "none we speak: the hospital's language"
    assert preferred("xx", "", "en") == "en"


def test_a_reason_kept_before_reasons_had_terms_reads_as_it_was_written() -> None:
    """Timelines stored before the desk kept the terms hold only the words: they stay."""
    with speaking("nl"):
        assert reason_said("age", {}, "12 years apart in age") == "12 years apart in age"
        assert reason_said("age", {"years_apart": "12"}, "") == "12 jaar leeftijdsverschil"
        assert reason_said("age", {"years_apart": "unknown"}, "") == "leeftijd onbekend"
