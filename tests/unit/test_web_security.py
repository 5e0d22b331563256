"""Every page carries the security headers; a form sent from another site, or a body far
larger than any form, is refused before it can change anything; a proxy's word about the
caller is believed only from the proxy itself."""

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.responses import PlainTextResponse

from shared.access import Grant, grant_from_claims
from shared.web import MAX_BODY_BYTES, BearerOnly, Proxied, Secured, peer

HOST = "notify.zh-a.example"


@pytest.fixture
def posted() -> list[str]:
    return []


@pytest.fixture
def client(posted: list[str]) -> httpx.AsyncClient:
    async def page(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        posted.append(scope["method"])
        await PlainTextResponse("recorded")(scope, receive, send)

    transport = httpx.ASGITransport(app=Secured(page))
    return httpx.AsyncClient(transport=transport, base_url=f"https://{HOST}")


async def test_every_answer_carries_the_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/respond?t=signed")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "form-action 'self'" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://attacker.example"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site", "origin": f"https://{HOST}"},
        {"sec-fetch-site": "same-site"},
        {"origin": f"http://{HOST}"},
    ],
)
async def test_a_form_from_another_site_is_refused_unseen(
    client: httpx.AsyncClient, posted: list[str], headers: dict[str, str]
) -> None:
    response = await client.post("/respond?t=signed", data={"answer": "accept"}, headers=headers)
    assert response.status_code == 403
    assert response.headers["x-frame-options"] == "DENY"
    assert posted == []


@pytest.mark.parametrize(
    "headers",
    [{"origin": f"https://{HOST}"}, {"origin": "null", "sec-fetch-site": "same-origin"}, {}],
)
async def test_a_form_from_its_own_page_or_a_script_is_let_through(
    client: httpx.AsyncClient, posted: list[str], headers: dict[str, str]
) -> None:
    response = await client.post("/respond?t=signed", data={"answer": "accept"}, headers=headers)
    assert response.status_code == 200
    assert posted == ["POST"]


async def test_metrics_with_a_token_configured_answer_only_its_bearer() -> None:
    async def metrics(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        await PlainTextResponse("peer_support_outbox_backlog 0.0")(scope, receive, send)

    def client(token: str | None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=BearerOnly(metrics, token))
        return httpx.AsyncClient(transport=transport, base_url="http://matching:8082")

    async with client(None) as local, client("scrape-0123456789") as guarded:
        assert (await local.get("/metrics")).status_code == 200, "from this host"
        refused = await guarded.get("/metrics", headers={"Authorization": "Bearer wrong"})
        assert refused.status_code == 401
        assert "peer_support" not in refused.text
        scraped = await guarded.get(
            "/metrics", headers={"Authorization": "Bearer scrape-0123456789"}
        )
        assert scraped.text == "peer_support_outbox_backlog 0.0"


async def test_metrics_without_a_token_answer_no_other_host() -> None:
    async def metrics(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        await PlainTextResponse("peer_support_outbox_backlog 0.0")(scope, receive, send)

    transport = httpx.ASGITransport(app=BearerOnly(metrics, None), client=("10.1.2.3", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://intake:8081") as other:
        refused = await other.get("/metrics")
    assert refused.status_code == 401
    assert "peer_support" not in refused.text


@pytest.mark.parametrize(("hsts", "expected"), [(True, True), (False, False)])
async def test_hsts_only_where_the_service_is_served_over_tls(hsts: bool, expected: bool) -> None:
    async def page(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        await PlainTextResponse("ok")(scope, receive, send)

    transport = httpx.ASGITransport(app=Secured(page, hsts=hsts))
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{HOST}") as client:
        answer = await client.get("/request")
    assert ("strict-transport-security" in answer.headers) is expected
    if expected:
        assert "max-age=31536000" in answer.headers["strict-transport-security"]


async def test_a_body_larger_than_any_form_is_refused_unread(
    client: httpx.AsyncClient, posted: list[str]
) -> None:
    huge = {"department": "x" * (MAX_BODY_BYTES + 1)}
    answer = await client.post("/request/ask", data=huge)
    assert answer.status_code == 413
    assert posted == []


async def test_a_body_that_lies_about_its_length_is_cut_off() -> None:
    """Chunked, no `Content-Length`: counted as it comes."""
    read: list[int] = []

    async def page(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        body = b""
        while (message := await receive())["more_body"]:
            body += message["body"]
        read.append(len(body))
        await PlainTextResponse("recorded")(scope, receive, send)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"y" * 8192

    transport = httpx.ASGITransport(app=Secured(page))
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{HOST}") as client:
        answer = await client.post("/request/ask", content=chunks())
    assert answer.status_code == 413
    assert read == []


def proxied_client(peer_address: str, trusted: list[str]) -> httpx.AsyncClient:
    async def page(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        seen = f"{scope['client'][0]} {scope['scheme']} {peer(scope)}"
        await PlainTextResponse(seen)(scope, receive, send)

    transport = httpx.ASGITransport(app=Proxied(page, trusted), client=(peer_address, 5000))
    return httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}")


FORWARDED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


@pytest.mark.parametrize(
    ("peer_address", "trusted", "seen"),
    [
        ("127.0.0.1", [], "127.0.0.1 http 127.0.0.1"),  # loopback is not a proxy by default
        ("10.0.0.9", ["10.0.0.1"], "10.0.0.9 http 10.0.0.9"),
        ("10.0.0.1", ["10.0.0.1"], "203.0.113.7 https 10.0.0.1"),
        ("10.0.4.2", ["10.0.4.0/24"], "203.0.113.7 https 10.0.4.2"),
    ],
)
async def test_forwarded_headers_are_believed_only_from_a_trusted_proxy(
    peer_address: str, trusted: list[str], seen: str
) -> None:
    async with proxied_client(peer_address, trusted) as client:
        answer = await client.get("/", headers=FORWARDED)
    assert answer.text == seen


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        (
            {"sub": "u1", "name": "Anna", "peer_support_scope": "ZH-A"},
            Grant("ZH-A", "Anna (hospital sign-in)"),
        ),
        (
            {"sub": "u2", "peer_support_scope": ["network"]},
            Grant("network", "u2 (hospital sign-in)"),
        ),
        ({"sub": "u3"}, None),
        ({"sub": "u4", "peer_support_scope": "ZH-A ZH-B"}, None),
        ({"sub": "u5", "peer_support_scope": ["ZH-A", "ZH-B"]}, None),
    ],
)
def test_what_the_identity_provider_vouches_for_is_one_scope_or_nothing(
    claims: dict[str, object], expected: Grant | None
) -> None:
    assert grant_from_claims(claims, "peer_support_scope") == expected
