"""Sending e-mail over SMTP: notify's messages to supporters and coordinators, and intake's
confirmation links to staff who ask for support.

`EmailChannel.send` raises `RejectedEvent` when the server refuses the address for good and
`RetryLater` when the refusal may pass.
"""

from dataclasses import KW_ONLY, dataclass, field
from email.message import EmailMessage

import aiosmtplib

from shared.errors import RejectedEvent, RetryLater
from shared.settings import MailSettings


@dataclass(frozen=True)
class Outreach:
    """One message to one address (or phone number)."""

    to: str
    subject: str
    body: str
    language: str


@dataclass
class EmailChannel:
    host: str
    port: int
    sender: str
    _: KW_ONLY
    start_tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    """Certificates to trust for STARTTLS besides the system's."""
    timeout: float = 15.0
    name: str = field(default="email", init=False)
    retries_are_safe: bool = field(default=False, init=False)

    async def send(self, outreach: Outreach, message_id: str) -> None:
        """Send one message; its Message-ID is the assignment's, so a repeat is recognisable."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = outreach.to
        message["Subject"] = outreach.subject
        message["Message-ID"] = f"<{message_id}@peer-support>"
        message.set_content(outreach.body)
        message["Content-Language"] = outreach.language  # after set_content, which clears it
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                start_tls=self.start_tls,
                username=self.username,
                password=self.password,
                cert_bundle=self.ca_file,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            if all(500 <= refused.code < 600 for refused in error.recipients):
                raise RejectedEvent(f"the mail server refuses {outreach.to}: {error}") from error
            raise RetryLater(f"the mail server defers {outreach.to}: {error}") from error
        except aiosmtplib.SMTPException as error:
            # Down, full, or misconfigured: not the assignment's fault, so it waits its turn.
            raise RetryLater(f"mail server {self.host}:{self.port}: {error}") from error


def email_channel(settings: MailSettings) -> EmailChannel:
    password = settings.smtp_password
    return EmailChannel(
        settings.smtp_host,
        settings.smtp_port,
        settings.mail_from,
        start_tls=settings.smtp_starttls,
        username=settings.smtp_username,
        password=password.get_secret_value() if password else None,
        ca_file=settings.smtp_ca_file,
    )
