"""Every page carries the security headers, and a form sent from another site is refused
before it can change anything."""

import httpx
import pytest
from starlette.responses import PlainTextResponse

from shared.web import BearerOnly, Secured

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

    async with client(None) as open_, client("scrape-0123456789") as guarded:
        assert (await open_.get("/metrics")).status_code == 200
        refused = await guarded.get("/metrics", headers={"Authorization": "Bearer wrong"})
        assert refused.status_code == 401
        assert "peer_support" not in refused.text
        scraped = await guarded.get(
            "/metrics", headers={"Authorization": "Bearer scrape-0123456789"}
        )
        assert scraped.text == "peer_support_outbox_backlog 0.0"
