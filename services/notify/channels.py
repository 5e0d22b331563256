"""The channels notify reaches supporters through."""

from email.message import EmailMessage

import aiosmtplib

from services.notify.messages import Outreach
from shared.errors import RejectedEvent, RetryLater


class EmailChannel:
    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        start_tls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.start_tls = start_tls
        self.username = username
        self.password = password
        self.timeout = timeout

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
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            if all(500 <= refused.code < 600 for refused in error.recipients):
                raise RejectedEvent(f"the mail server refuses {outreach.to}: {error}") from error
            raise RetryLater(f"the mail server defers {outreach.to}: {error}") from error
        except aiosmtplib.SMTPException as error:
            # Down, full, or misconfigured: not the assignment's fault, so it waits its turn.
            raise RetryLater(f"mail server {self.host}:{self.port}: {error}") from error
