"""The channels notify reaches supporters through: e-mail (`shared.mail.EmailChannel`) and
text messages.

Each raises `RejectedEvent` when the provider refuses the message for good (the fallback
channel is tried) and `RetryLater` when it may pass (retried with a growing pause).
"""

from typing import Protocol

import httpx

from shared.errors import RejectedEvent, RetryLater
from shared.mail import Outreach


class Channel(Protocol):
    name: str
    retries_are_safe: bool
    """Whether sending the same message again after a crash cannot reach the supporter
    twice (the provider drops a repeated idempotency key); SMTP cannot promise that."""

    async def send(self, outreach: Outreach, message_id: str) -> None: ...


class WebhookChannel:
    """SMS or pager through an HTTP provider: one JSON post per message.

    The body is `{"to": phone, "text": ..., "reference": message_id}`, with the message id
    also in the `Idempotency-Key` header, so a provider that honours it delivers a repeat
    once. 2xx is sent; 408, 429 and 5xx may pass; any other 4xx is final.
    """

    name = "sms"
    retries_are_safe = True

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = timeout

    async def send(self, outreach: Outreach, message_id: str) -> None:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(
                    self.url,
                    json={"to": outreach.to, "text": outreach.body, "reference": message_id},
                    headers={**self.headers, "Idempotency-Key": message_id},
                )
        except httpx.HTTPError as error:
            raise RetryLater(f"sms provider {self.url}: {error}") from error
        if response.is_success:
            return
        reason = f"sms provider answered {response.status_code}: {response.text[:200]}"
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise RetryLater(reason)
        raise RejectedEvent(reason)
