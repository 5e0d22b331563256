"""The links in a supporter's message: only ours work, and not forever."""

import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from services.notify.links import Link, LinkProblem, Links
from services.notify.pages import (
    Closed,
    Outcome,
    closed_page,
    outcome_page,
    problem_page,
    question_page,
)

SECRET = "test-link-secret-0123456789"
ASSIGNMENT = uuid.UUID("6f1c2d7e-3b0a-4c55-9f51-2a1e0c9d8b77")


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


def test_a_link_names_its_assignment_and_nothing_else() -> None:
    links = Links(SECRET, "https://peer.zh-a.example/", 3600)
    url = links.respond_url(ASSIGNMENT)
    assert url.startswith("https://peer.zh-a.example/respond?t=")
    assert links.read(token_of(url)) == Link(ASSIGNMENT)


def test_a_link_signed_with_another_secret_or_altered_is_forged() -> None:
    ours = Links(SECRET, "https://peer.example", 3600)
    theirs = Links("another-secret-0123456789", "https://peer.example", 3600)
    token = token_of(theirs.respond_url(ASSIGNMENT))
    assert ours.read(token) is LinkProblem.FORGED
    genuine = token_of(ours.respond_url(ASSIGNMENT))
    assert ours.read(genuine[:-2] + ("AA" if genuine[-2:] != "AA" else "BB")) is LinkProblem.FORGED
    assert ours.read("") is LinkProblem.FORGED


def test_a_link_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    links = Links(SECRET, "https://peer.example", 60)
    token = token_of(links.respond_url(ASSIGNMENT))
    assert links.read(token) == Link(ASSIGNMENT)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 61)
    assert links.read(token) is LinkProblem.EXPIRED


def test_opening_the_link_only_asks_the_question() -> None:
    page = question_page("nl", "tok&en")
    assert '<form method="post" action="respond?t=tok&amp;en">' in page
    assert 'value="accept"' in page
    assert 'value="decline"' in page
    assert "Ja, ik neem contact op" in page


def test_pages_speak_the_supporters_language() -> None:
    assert "Je hebt het verzoek aangenomen" in outcome_page("nl", Outcome.ACCEPTED)
    assert "We will ask another colleague" in outcome_page("en", Outcome.DECLINED)
    assert "already" in closed_page("de", Closed.ANSWERED)
    forged = problem_page(LinkProblem.FORGED)
    assert "niet geldig" in forged
    assert "not valid" in forged
