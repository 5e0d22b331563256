"""notify's email channel against a real SMTP server: what counts as final, what as passing."""

import re
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from deploy.localservers import free_port
from services.notify.channels import EmailChannel
from services.notify.messages import Outreach
from shared.errors import RejectedEvent, RetryLater
from tests.integration.conftest import MailSink

pytestmark = pytest.mark.integration

OUTREACH = Outreach(to="p1@zh-a.example", subject="Verzoek", body="Beste P1,", language="nl")


class RefusingServer:
    def __init__(self, code: int) -> None:
        self.code = code

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        return f"{self.code} {'no such mailbox' if self.code >= 500 else 'try again later'}"


def channel(port: int) -> EmailChannel:
    return EmailChannel("127.0.0.1", port, "peer-support@zh-a.example", timeout=5)


async def test_a_message_arrives_with_the_assignment_as_its_id() -> None:
    sink = MailSink()
    sink.controller.start()
    try:
        await channel(sink.controller.port).send(OUTREACH, "a1b2")
    finally:
        sink.controller.stop()
    (mail,) = sink.messages
    assert mail["Message-ID"] == "<a1b2@peer-support>"
    assert mail["To"] == "p1@zh-a.example"
    assert mail["Content-Language"] == "nl"


@pytest.mark.parametrize(("code", "error"), [(550, RejectedEvent), (451, RetryLater)])
async def test_a_refused_address_is_final_only_when_the_server_says_so(
    code: int, error: type[Exception]
) -> None:
    server = Controller(RefusingServer(code), hostname="127.0.0.1", port=free_port())
    server.start()
    try:
        with pytest.raises(error, match=re.escape("p1@zh-a.example")):
            await channel(server.port).send(OUTREACH, "a1b2")
    finally:
        server.stop()


async def test_a_mail_server_that_is_down_is_waited_for() -> None:
    with pytest.raises(RetryLater, match=re.escape("mail server 127.0.0.1")):
        await channel(free_port()).send(OUTREACH, "a1b2")
