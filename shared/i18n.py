"""The words people read, in their language: gettext catalogues (Babel PO files under
`shared/locale/`, compiled in memory when first used, so no build step and no binary in the
repository). The language of the page or mail at hand lives in a context variable: a request
or a mail sets it once, and pure modules say `_("...")` without being handed a language.
Outside any of them nothing is translated: the source language is English."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from gettext import NullTranslations
from io import BytesIO
from pathlib import Path
from typing import Literal

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment

Language = Literal["nl", "en"]
LANGUAGES: tuple[Language, ...] = ("nl", "en")
SOURCE: Language = "en"
LOCALES = Path(__file__).parent / "locale"
DOMAIN = "messages"

_speaking: ContextVar[Language] = ContextVar("speaking", default=SOURCE)


@cache
def translations(language: Language) -> NullTranslations:
    """The language's catalogue; English, the source, needs none."""
    path = LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if language == SOURCE or not path.exists():
        return NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def _(message: str) -> str:
    """`message` in the language being spoken."""
    return translations(_speaking.get()).gettext(message)


def N_(message: str) -> str:
    """Marks `message` for the catalogue where it is defined; `_()` translates it where said."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_speaking.get()).ngettext(singular, plural, n)


def speaking_now() -> Language:
    return _speaking.get()


@contextmanager
def speaking(language: str) -> Iterator[Language]:
    """Everything said inside is said in `language` (English for one we do not speak)."""
    chosen = language if language in LANGUAGES else SOURCE
    token = _speaking.set(chosen)
    try:
        yield _speaking.get()
    finally:
        _speaking.reset(token)


def preferred(chosen: str | None, accept_language: str | None, fallback: Language) -> Language:
    """The language a person chose (a cookie or a link), else the first their browser asks
    for that we speak, else the hospital's."""
    if chosen in LANGUAGES:
        return chosen
    for asked in _by_weight(accept_language or ""):
        try:
            language = Locale.parse(asked, sep="-").language
        except (ValueError, UnknownLocaleError):
            continue
        if language in LANGUAGES:
            return language
    return fallback


def _by_weight(header: str) -> list[str]:
    """`nl-NL,nl;q=0.9,en;q=0.8` as `['nl-NL', 'nl', 'en']`, the most wanted first."""
    weighed = []
    for position, part in enumerate(header.split(",")):
        tag, _semicolon, weight = part.strip().partition(";q=")
        if tag and tag != "*":
            try:
                weighed.append((-float(weight or 1), position, tag))
            except ValueError:
                continue
    return [tag for *_rank, tag in sorted(weighed)]


def install(templates: Environment) -> Environment:
    """Templates say `{{ _("...") }}` and `{% trans %}` in the language being spoken."""
    templates.add_extension("jinja2.ext.i18n")
    templates.globals["language"] = speaking_now
    templates.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=_, ngettext=ngettext, newstyle=True
    )
    return templates
