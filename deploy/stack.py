"""The whole product on one machine: local servers, topics, the roster and the four services.

Each service runs as its own process (`python -m services.<name>`), exactly as it would be
deployed, with its settings in its environment and its JSON log in `<workdir>/logs/`. The
process ids go to `<workdir>/stack.json`, so that `down` can stop a stack that `up` left
running in the background.
"""

import asyncio
import csv
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import httpx

from deploy.feed import Analyst, Coordinator, Counted
from deploy.incidents import HOSPITALS, directory_rows
from deploy.localservers import (
    HOST,
    LocalServers,
    Process,
    ServerError,
    free_port,
    stop_process_group,
)
from shared.kafka import ensure_topics
from shared.settings import Topics

SERVICES = ("intake", "matching", "notify", "reporting")
SEED_ROSTER = Path(__file__).parent / "seed" / "roster.csv"
SOURCE_SYSTEMS = json.dumps({h.source_system: [h.hospital_id] for h in HOSPITALS})
"""Each synthetic hospital's incident system reports for that hospital only."""
COORDINATORS = json.dumps(
    {h.hospital_id: [f"coordinator@{h.hospital_id.lower()}.example"] for h in HOSPITALS}
)
"""Each synthetic hospital's programme coordinator: their mail lands in the SMTP sink."""
MAIL_DOMAINS = json.dumps({h.hospital_id: [f"{h.hospital_id.lower()}.example"] for h in HOSPITALS})
"""Each synthetic hospital's staff mail domain, for the request page's confirmations."""
IDENTITY_PEOPLE = [
    *(
        {
            "sub": f"coordinator-{h.hospital_id.lower()}",
            "name": f"Coordinator {h.hospital_id}",
            "peer_support_scope": h.hospital_id,
        }
        for h in HOSPITALS
    ),
    {"sub": "network-analyst", "name": "Network analyst", "peer_support_scope": "network"},
]
"""Whom the local identity provider lets sign in to the desk and the dashboard: a coordinator
per synthetic hospital and one for the network."""
SECRETS = ("PSEUDONYM_KEY", "LINK_SECRET", "EXCLUSION_KEY", "OIDC_CLIENT_SECRET")
"""Generated for each stack unless set in the environment: no stack runs on a key anyone can
read in this repository."""
KEYS_OF = {
    "intake": {"PSEUDONYM_KEY", "EXCLUSION_KEY"},
    "roster": {"PSEUDONYM_KEY"},
    "matching": {"EXCLUSION_KEY", "OIDC_CLIENT_SECRET"},
    "notify": {"LINK_SECRET"},
    "reporting": {"OIDC_CLIENT_SECRET"},
}
"""Who is given which secret, as in production: reporting only its sign-in's."""


@dataclass
class Ports:
    kafka: int = 9092
    mongo: int = 27017
    smtp: int = 8025
    reporting: int = 8080
    intake: int = 8081
    matching: int = 8082
    notify: int = 8083
    identity: int = 9400

    @classmethod
    def free(cls) -> "Ports":
        """Ports nobody uses now: for a demo or benchmark beside a stack that is up."""
        return cls(*(free_port() for _ in fields(cls)))

    def of_service(self, service: str) -> int:
        port: int = getattr(self, service)
        return port


@dataclass
class Stack:
    workdir: Path
    ports: Ports = field(default_factory=Ports)
    roster: Path = SEED_ROSTER
    log_level: str = "INFO"
    settings: dict[str, str] = field(default_factory=dict)
    """Settings (environment variables) for every service beyond the stack's own."""
    tied: bool = False
    """Every process dies with the one that started the stack (a test's stack)."""
    servers: LocalServers = field(init=False)
    services: list[Process] = field(default_factory=list, init=False)
    api_token: str = field(default="", init=False)
    """A network-wide token for the analysts' API, issued at start."""
    coordinator_token: str = field(default="", init=False)
    """A network-wide token for the coordinator desk, issued at start."""

    def __post_init__(self) -> None:
        self.servers = LocalServers(
            self.workdir,
            self.ports.kafka,
            self.ports.mongo,
            self.ports.smtp,
            tied=self.tied,
            identity_port=self.ports.identity,
            identity_people=IDENTITY_PEOPLE,
        )

    @property
    def state_file(self) -> Path:
        return self.workdir / "stack.json"

    def secrets(self) -> dict[str, str]:
        """The stack's own random secrets, made once and kept (readable by its owner only)
        in `secrets.json` beside its data, which was pseudonymised with them."""
        kept = self.workdir / "secrets.json"
        stored: dict[str, str] = json.loads(kept.read_text()) if kept.exists() else {}
        if missing := [name for name in SECRETS if name not in stored]:
            stored |= {name: secrets.token_urlsafe(32) for name in missing}
            self.workdir.mkdir(parents=True, exist_ok=True)
            kept.touch(mode=0o600)
            kept.write_text(json.dumps(stored, indent=2))
        return stored

    @property
    def reporting_url(self) -> str:
        return f"http://{HOST}:{self.ports.reporting}"

    @property
    def desk_url(self) -> str:
        """The coordinator desk: matching's pages and API."""
        return f"http://{HOST}:{self.ports.matching}"

    def service_env(self, service: str, *, keys_of: str | None = None) -> dict[str, str]:
        """`keys_of`: whose secrets it is given, if not the service's own (the roster loader
        runs with matching's settings and the pseudonym key)."""
        given = KEYS_OF.get(keys_of or service, set())
        return {
            **{name: value for name, value in os.environ.items() if name not in SECRETS},
            "KAFKA_BOOTSTRAP_SERVERS": self.servers.kafka_bootstrap_servers,
            "MONGODB_URL": self.servers.mongodb_url,
            "SMTP_HOST": HOST,
            "SMTP_PORT": str(self.ports.smtp),
            "HTTP_HOST": HOST,
            "HTTP_PORT": str(self.ports.of_service(service)),
            **{
                name: os.environ.get(name) or secret
                for name, secret in self.secrets().items()
                if name in given
            },
            "PUBLIC_URL": f"http://{HOST}:{self.ports.notify}",
            "OIDC_ISSUER": f"http://{HOST}:{self.ports.identity}",
            "OIDC_CLIENT_ID": "peer-support",
            "DESK_URL": self.desk_url,
            "REQUEST_URL": f"http://{HOST}:{self.ports.intake}",
            "MAIL_DOMAINS": os.environ.get("MAIL_DOMAINS") or MAIL_DOMAINS,
            "COORDINATORS": os.environ.get("COORDINATORS") or COORDINATORS,
            "SOURCE_SYSTEMS": os.environ.get("SOURCE_SYSTEMS") or SOURCE_SYSTEMS,
            "LOG_LEVEL": self.log_level,
            **self.settings,
        }

    def start(self) -> None:
        if self.state_file.exists():
            raise ServerError(f"a stack is already up in {self.workdir}: `make down` first")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.servers.start()
        try:
            topics = Topics()
            bootstrap = self.servers.kafka_bootstrap_servers
            asyncio.run(ensure_topics(bootstrap, topics.all(), ingress=topics.ingress()))
            self.services = [
                Process(
                    service,
                    [sys.executable, "-m", f"services.{service}"],
                    self.workdir / "logs" / f"{service}.log",
                    env=self.service_env(service),
                    tied=self.tied,
                )
                for service in SERVICES
            ]
            for process in self.services:
                process.start()
            self.save_state()
            self.wait_until_ready()
            self._load_roster()
            self._load_directory()
            self.api_token = self._issue_token("reporting")
            self.coordinator_token = self._issue_token("matching")
        except BaseException:
            self.stop()
            raise

    def _load_roster(self) -> None:
        subprocess.run(  # noqa: S603 - our own command
            [
                *(sys.executable, "-m", "services.matching.cli"),
                *("load", str(self.roster), "--wait", "60"),
            ],
            env=self.service_env("matching", keys_of="roster"),
            check=True,
        )

    def _load_directory(self) -> None:
        """The synthetic hospitals' staff directories, as a hospital without SCIM loads one."""
        rows = [row for hospital in HOSPITALS for row in directory_rows(hospital)]
        path = self.workdir / "staff-directory.csv"
        with path.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        subprocess.run(  # noqa: S603 - our own command
            [sys.executable, "-m", "services.intake.cli", "directory", "load", str(path)],
            env=self.service_env("intake"),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def _issue_token(self, service: str) -> str:
        """A network-wide token: an analyst's (reporting) or a coordinator's (matching)."""
        issued = subprocess.run(  # noqa: S603 - our own command
            [
                *(sys.executable, "-m", f"services.{service}.cli"),
                *("token", "--scope", "network", "--label", f"stack in {self.workdir}"),
            ],
            env=self.service_env(service),
            check=True,
            capture_output=True,
            text=True,
        )
        return issued.stdout.strip().splitlines()[-1]

    @property
    def analyst(self) -> Analyst:
        return Analyst(self.reporting_url, self.api_token)

    @property
    def coordinator(self) -> Coordinator:
        return Coordinator(self.desk_url, self.coordinator_token)

    @property
    def counted(self) -> Counted:
        return Counted(self.servers.mongodb_url)

    def wait_until_ready(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        for process in self.services:
            url = f"http://{HOST}:{self.ports.of_service(process.name)}/health/ready"
            while not _answers_ok(url):
                if process.exited() is not None:
                    raise process.failure(f"exited with code {process.exited()}")
                if time.monotonic() > deadline:
                    raise process.failure(f"was not ready within {within:.0f}s")
                time.sleep(0.2)

    def save_state(self) -> None:
        state = {
            "ports": asdict(self.ports),
            "pids": {p.name: p.pid for p in [*self.servers.processes, *self.services]},
        }
        self.state_file.write_text(json.dumps(state, indent=2))

    def stop(self) -> None:
        """Services first (they finish their in-flight messages), then the servers."""
        for process in reversed(self.services):
            process.stop()
        self.servers.stop()
        self.state_file.unlink(missing_ok=True)


def stop_recorded(workdir: Path) -> list[str]:
    """Stop the stack whose process ids `up` recorded in `workdir`; returns what was stopped."""
    state_file = workdir / "stack.json"
    if not state_file.exists():
        return []
    pids: dict[str, int] = json.loads(state_file.read_text())["pids"]
    for pid in reversed(pids.values()):
        stop_process_group(pid)
    state_file.unlink()
    return list(reversed(pids))


def _answers_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False
