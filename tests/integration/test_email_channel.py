"""notify's email channel against a real SMTP server: what counts as final, what as passing."""

import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from deploy.localservers import free_port
from shared.errors import RejectedEvent, RetryLater
from shared.mail import EmailChannel, Outreach
from tests.integration.rig import MailSink

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


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 Message accepted for delivery"


def accept_only(user: str, password: str) -> Any:
    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
        given = (auth.login.decode(), auth.password.decode())
        return AuthResult(success=given == (user, password))

    return authenticate


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[Controller, Mailbox, str]]:
    """A relay that demands STARTTLS and a login, with a certificate of its own CA."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    mailbox = Mailbox()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_context,
        require_starttls=True,
        auth_required=True,
        authenticator=accept_only("notify", RELAY_PASSWORD),
    )
    controller.start()
    yield controller, mailbox, str(ca_file)
    controller.stop()


RELAY_PASSWORD = "s3cret"


def secured(
    port: int, ca_file: str, password: str = RELAY_PASSWORD, start_tls: bool = True
) -> EmailChannel:
    return EmailChannel(
        "127.0.0.1",
        port,
        "peer-support@zh-a.example",
        start_tls=start_tls,
        username="notify",
        password=password,
        ca_file=ca_file,
        timeout=5,
    )


async def test_a_relay_demanding_starttls_and_a_login_gets_the_message(
    relay: tuple[Controller, Mailbox, str],
) -> None:
    controller, mailbox, ca_file = relay
    await secured(controller.port, ca_file).send(OUTREACH, "a1b2")
    (message,) = mailbox.messages
    assert b"Message-ID: <a1b2@peer-support>" in message


async def test_a_wrong_login_or_no_starttls_waits_for_the_operator(
    relay: tuple[Controller, Mailbox, str],
) -> None:
    controller, mailbox, ca_file = relay
    with pytest.raises(RetryLater):
        await secured(controller.port, ca_file, password="wrong").send(OUTREACH, "a1b2")
    with pytest.raises(RetryLater):
        await secured(controller.port, ca_file, start_tls=False).send(OUTREACH, "a1b2")
    assert mailbox.messages == []
