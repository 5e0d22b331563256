"""The pages a supporter sees after clicking a link, in their language: pure, no I/O.

Opening a link only shows the question; the answer is a form post, so a mail scanner that
opens every link answers nothing.
"""

from enum import StrEnum
from html import escape
from string import Template

from services.notify.links import LinkProblem


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"


class Closed(StrEnum):
    """Why an offer can no longer be answered."""

    ANSWERED = "answered"
    WITHDRAWN = "withdrawn"
    LATE = "late"
    UNKNOWN = "unknown"


_PAGE = Template(
    """<!doctype html>
<html lang="$language"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title></head>
<body style="font-family: sans-serif; max-width: 36rem; margin: 2rem auto; line-height: 1.5">
<h1>$title</h1>
$body
</body></html>
"""
)

_TEXT = {
    "nl": {
        "concern_title": "Zorgen om de veiligheid van je collega",
        "concern_intro": "Maak je je zorgen dat je collega zichzelf of een ander iets aandoet, "
        "of niet veilig is? Meld het hier: de coördinator en de achterwacht van het ziekenhuis "
        "(psycholoog, bedrijfsarts) krijgen meteen bericht en bellen jou binnen het uur. "
        "Schrijf hier niets over wat er gezegd is.",
        "raise": "Zorg nu melden",
        "raised_title": "Je zorg is gemeld",
        "raised": "De coördinator en de achterwacht zijn gewaarschuwd en bellen je binnen het uur.",
        "danger": "Bij direct gevaar: bel 112.",
        "concern_link": "Zorgen om de veiligheid van je collega? Meld het meteen.",
        "question_title": "Verzoek om collegiale ondersteuning",
        "question": "Kun je contact opnemen met je collega en ondersteuning aanbieden?",
        "accept": "Ja, ik neem contact op",
        "decline": "Nee, nu niet",
        "accepted_title": "Dank je wel",
        "accepted": "Je hebt het verzoek aangenomen. Neem binnenkort contact op met je collega.",
        "declined_title": "Dank je voor je antwoord",
        "declined": "Je hebt het verzoek afgewezen. We vragen een andere collega.",
        "closed_title": "Dit verzoek is niet meer open",
        "answered": "Op dit verzoek is al geantwoord.",
        "withdrawn": "Dit verzoek is ingetrokken of aan een andere collega gegeven.",
        "late": "De tijd om te antwoorden is voorbij. Het verzoek gaat naar een andere collega "
        "of naar de coördinator.",
        "unknown": "Dit verzoek is niet bekend.",
        "link_title": "Deze link werkt niet",
        "forged": "De link is niet geldig. Gebruik de link uit je e-mail.",
        "expired": "De link is verlopen. Neem contact op met de coördinator.",
        "log_title": "Contact vastleggen",
        "log_intro": "Leg één contact met je collega vast. Alleen deze gegevens, geen inhoud.",
        "contact_date": "Datum",
        "minutes": "Duur (minuten)",
        "mode": "Vorm",
        "in_person": "persoonlijk",
        "phone": "telefoon",
        "video": "video",
        "tier": "Niveau (1 collegiaal, 2 ondersteuningsteam, 3 professionele zorg)",
        "referred": "Doorverwezen naar professionele hulp",
        "save": "Vastleggen",
        "logged_title": "Vastgelegd",
        "logged": "Dank je wel. Het contact is vastgelegd.",
        "used": "Deze link is al gebruikt. Elke follow-up heeft een nieuwe link.",
        "invalid": "Niet alle velden zijn goed ingevuld:",
        "end_title": "Loopt de ondersteuning nog?",
        "end_intro": "Laat weten hoe de ondersteuning van je collega ervoor staat.",
        "completed": "Afgerond: er is geen verdere ondersteuning nodig",
        "referred_end": "Doorverwezen naar professionele hulp",
        "declined_by_colleague": "Mijn collega wilde geen ondersteuning",
        "unreachable": "Ik kon mijn collega niet bereiken",
        "referral": "Naar wie (alleen het soort hulp)",
        "psychologist": "psycholoog",
        "occupational_physician": "bedrijfsarts",
        "eap": "hulpprogramma voor medewerkers",
        "spiritual_care": "geestelijke verzorging",
        "general_practitioner": "huisarts",
        "other": "anders",
        "end": "De ondersteuning is beëindigd",
        "still_supporting": "Ik ondersteun nog",
        "ended_title": "Dank je wel",
        "ended": "De ondersteuning is afgesloten. Dank je voor je steun aan je collega.",
        "continuing_title": "Dank je wel",
        "continuing": "We sturen je over een week nog een follow-up.",
        "not_in_support": "Deze ondersteuning loopt niet (meer).",
        "future": "De datum ligt in de toekomst.",
        "before_acceptance": "De datum ligt vóór de dag dat je het verzoek aannam ({day}).",
    },
    "en": {
        "concern_title": "Worried about your colleague's safety",
        "concern_intro": "Are you worried that your colleague may harm themselves or someone "
        "else, or is not safe? Raise it here: the coordinator and the hospital's back-up "
        "(psychologist, occupational physician) are told at once and call you within the hour. "
        "Write nothing here about what was said.",
        "raise": "Raise the concern now",
        "raised_title": "Your concern was raised",
        "raised": "The coordinator and the back-up have been alerted and will call you within "
        "the hour.",
        "danger": "In immediate danger: call 112.",
        "concern_link": "Worried about your colleague's safety? Raise it at once.",
        "question_title": "Request for peer support",
        "question": "Can you get in touch with your colleague and offer support?",
        "accept": "Yes, I will reach out",
        "decline": "No, not now",
        "accepted_title": "Thank you",
        "accepted": "You accepted the request. Please reach out to your colleague soon.",
        "declined_title": "Thank you for answering",
        "declined": "You declined the request. We will ask another colleague.",
        "closed_title": "This request is no longer open",
        "answered": "This request has been answered already.",
        "withdrawn": "This request was withdrawn or passed to another colleague.",
        "late": "The time to answer has passed. The request goes to another colleague or to "
        "the coordinator.",
        "unknown": "This request is not known.",
        "link_title": "This link does not work",
        "forged": "The link is not valid. Please use the link from your email.",
        "expired": "The link has expired. Please contact the coordinator.",
        "log_title": "Record a contact",
        "log_intro": "Record one contact with your colleague. Only these facts, no content.",
        "contact_date": "Date",
        "minutes": "Duration (minutes)",
        "mode": "How",
        "in_person": "in person",
        "phone": "phone",
        "video": "video",
        "tier": "Tier (1 peer, 2 support team, 3 professional care)",
        "referred": "Referred to professional help",
        "save": "Record",
        "logged_title": "Recorded",
        "logged": "Thank you. The contact is recorded.",
        "used": "This link was used already. Every follow-up brings a new one.",
        "invalid": "Not every field was filled in correctly:",
        "end_title": "Is support still going on?",
        "end_intro": "Let us know where support for your colleague stands.",
        "completed": "Ended: no further support is needed",
        "referred_end": "Referred to professional help",
        "declined_by_colleague": "My colleague did not want support",
        "unreachable": "I could not reach my colleague",
        "referral": "To whom (only the kind of help)",
        "psychologist": "psychologist",
        "occupational_physician": "occupational physician",
        "eap": "employee assistance programme",
        "spiritual_care": "spiritual care",
        "general_practitioner": "general practitioner",
        "other": "other",
        "end": "Support has ended",
        "still_supporting": "I am still supporting",
        "ended_title": "Thank you",
        "ended": "Support is closed. Thank you for supporting your colleague.",
        "continuing_title": "Thank you",
        "continuing": "We will send you another follow-up in a week.",
        "not_in_support": "This support is not (or no longer) going on.",
        "future": "The date is in the future.",
        "before_acceptance": "The date is before the day you accepted the request ({day}).",
    },
}


def _page(language: str, title_key: str, body: str) -> str:
    text = _TEXT[_known(language)]
    return _PAGE.substitute(language=_known(language), title=escape(text[title_key]), body=body)


def _known(language: str) -> str:
    return language if language in _TEXT else "en"


def question_page(language: str, token: str) -> str:
    text = _TEXT[_known(language)]
    buttons = "".join(
        f'<button type="submit" name="answer" value="{answer}" '
        f'style="font-size: 1.1rem; margin-right: 1rem">{escape(text[answer])}</button>'
        for answer in ("accept", "decline")
    )
    form = (
        f"<p>{escape(text['question'])}</p>"
        f'<form method="post" action="respond?t={escape(token)}">{buttons}</form>'
    )
    return _page(language, "question_title", form)


def outcome_page(language: str, outcome: Outcome) -> str:
    text = _TEXT[_known(language)]
    return _page(language, f"{outcome}_title", f"<p>{escape(text[outcome])}</p>")


def closed_page(language: str, closed: Closed) -> str:
    text = _TEXT[_known(language)]
    return _page(language, "closed_title", f"<p>{escape(text[closed])}</p>")


def problem_page(problem: LinkProblem) -> str:
    """The link names no assignment we trust, so no language is known: both are shown."""
    body = "".join(f"<p>{escape(_TEXT[lang][problem])}</p>" for lang in ("nl", "en"))
    return _page("nl", "link_title", body)


def contact_form_page(
    language: str, token: str, typed: dict[str, str], problems: str = "", concern_url: str = ""
) -> str:
    """`typed`: what the supporter typed (kept after a refusal), or the day's date alone."""
    text = _TEXT[_known(language)]
    modes = "".join(
        f'<option value="{mode}"{" selected" if typed.get("mode") == mode else ""}>'
        f"{escape(text[mode])}</option>"
        for mode in ("in_person", "phone", "video")
    )
    checked = " checked" if typed.get("referred") == "true" else ""
    warning = f'<p role="alert"><strong>{escape(text["invalid"])}</strong> {escape(problems)}</p>'
    form = f"""<p>{escape(text["log_intro"])}</p>{warning if problems else ""}
<form method="post" action="log-contact?t={escape(token)}">
<p><label>{escape(text["contact_date"])}
<input type="date" name="contact_date" value="{escape(typed.get("contact_date", ""))}" required>
</label></p>
<p><label>{escape(text["minutes"])}
<input type="number" name="minutes" min="1" max="600" value="{escape(typed.get("minutes", ""))}"
required></label></p>
<p><label>{escape(text["mode"])} <select name="mode">{modes}</select></label></p>
<p><label>{escape(text["tier"])}
<input type="number" name="tier" min="1" max="3" value="{escape(typed.get("tier", "1"))}"
required></label></p>
<p><label><input type="checkbox" name="referred" value="true"{checked}>
{escape(text["referred"])}</label></p>
<p><button type="submit">{escape(text["save"])}</button></p>
</form>{_concern_link(text, concern_url)}"""
    return _page(language, "log_title", form)


def _concern_link(text: dict[str, str], url: str) -> str:
    """On every page about a case the supporter holds: how to raise a safety concern."""
    return f'<p><a href="{escape(url)}">{escape(text["concern_link"])}</a></p>' if url else ""


def date_refusal(language: str, refusal: str, accepted_on: str) -> str:
    """A contact's date refused (`messages.contact_date_refusal`), in the page's language."""
    return _TEXT[_known(language)][refusal].format(day=accepted_on)


def logged_page(language: str) -> str:
    return _page(language, "logged_title", f"<p>{escape(_TEXT[_known(language)]['logged'])}</p>")


def used_page(language: str) -> str:
    return _page(language, "link_title", f"<p>{escape(_TEXT[_known(language)]['used'])}</p>")


ENDINGS = ("completed", "referred", "declined_by_colleague", "unreachable")
REFERRALS = (
    "psychologist",
    "occupational_physician",
    "eap",
    "spiritual_care",
    "general_practitioner",
    "other",
)


def end_form_page(language: str, token: str, problems: str = "", concern_url: str = "") -> str:
    """How support ended (no free text, nothing chosen beforehand), or that it goes on; each
    link answers once."""
    text = _TEXT[_known(language)]
    endings = "".join(
        f'<p><label><input type="radio" name="outcome" value="{ending}" required> '
        f"{escape(text['referred_end' if ending == 'referred' else ending])}</label></p>"
        for ending in ENDINGS
    )
    referrals = "".join(
        f'<option value="{kind}">{escape(text[kind])}</option>' for kind in REFERRALS
    )
    warning = f"<p><strong>{escape(text['invalid'])}</strong> {escape(problems)}</p>"
    form = f"""<p>{escape(text["end_intro"])}</p>{warning if problems else ""}
<form method="post" action="end-support?t={escape(token)}">
{endings}
<p><label>{escape(text["referral"])} <select name="referral">
<option value=""></option>{referrals}</select></label></p>
<p><button type="submit" name="choice" value="end">{escape(text["end"])}</button>
<button type="submit" name="choice" value="continue" formnovalidate>
{escape(text["still_supporting"])}</button></p>
</form>{_concern_link(text, concern_url)}"""
    return _page(language, "end_title", form)


def ended_page(language: str) -> str:
    return _page(language, "ended_title", f"<p>{escape(_TEXT[_known(language)]['ended'])}</p>")


def continuing_page(language: str) -> str:
    text = _TEXT[_known(language)]
    return _page(language, "continuing_title", f"<p>{escape(text['continuing'])}</p>")


def not_in_support_page(language: str) -> str:
    text = _TEXT[_known(language)]
    return _page(language, "closed_title", f"<p>{escape(text['not_in_support'])}</p>")


def concern_page(language: str, token: str, nonce: str) -> str:
    """Raised by a button, so that a mail scanner opening the link raises nothing."""
    text = _TEXT[_known(language)]
    form = f"""<p>{escape(text["concern_intro"])}</p>
<form method="post" action="concern?t={escape(token)}">
<input type="hidden" name="nonce" value="{escape(nonce)}">
<p><button type="submit" style="font-size: 1.1rem; padding: 0.6rem 1rem">
{escape(text["raise"])}</button></p>
</form>
<p><strong>{escape(text["danger"])}</strong></p>"""
    return _page(language, "concern_title", form)


def raised_page(language: str) -> str:
    text = _TEXT[_known(language)]
    body = f"<p>{escape(text['raised'])}</p><p><strong>{escape(text['danger'])}</strong></p>"
    return _page(language, "raised_title", body)
