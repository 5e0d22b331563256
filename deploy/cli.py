"""Operator commands for the whole stack on this machine: `python -m deploy.cli --help`."""

import asyncio
import contextlib
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from deploy.bench import roomy_roster, run_bench
from deploy.chaos import CHAOS_TIMING, run_chaos
from deploy.demo import DEMO_TIMING, run_demo
from deploy.feed import publish_incidents
from deploy.incidents import incidents
from deploy.localservers import ServerError
from deploy.stack import SERVICES, Ports, Stack, stop_recorded
from shared.kafka import client_options, ensure_topics
from shared.settings import ServiceSettings, TopicLayout, Topics

RUN_DIR = Path(".run")

cli = typer.Typer(help="Run peer-support on local servers, without Docker.", no_args_is_help=True)


@cli.callback()
def _stop_cleanly_on_sigterm() -> None:
    """A demo or benchmark that is terminated still stops the servers it started."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


Incidents = Annotated[int, typer.Option(help="How many synthetic incidents to feed.", min=1)]


def _fresh(workdir: Path) -> Path:
    stop_recorded(workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    return workdir


@cli.command()
def up() -> None:
    """Start servers and services in the background on the default ports."""
    stack = Stack(RUN_DIR / "stack")
    try:
        stack.start()
    except ServerError as error:
        typer.echo(f"could not start: {error}", err=True)
        raise typer.Exit(1) from error
    ports = stack.ports
    typer.echo(
        f"""peer-support is up (logs in {stack.workdir / "logs"}):
Kafka broker       {stack.servers.kafka_bootstrap_servers}
MongoDB            {stack.servers.mongodb_url}
SMTP sink          127.0.0.1:{ports.smtp} (mail in {stack.servers.maildir})
reporting API      {stack.reporting_url}/api/v1/aggregates  (contract: /openapi.json)
dashboard          {stack.reporting_url}/  (hospital sign-in: network-analyst; or the API token)
API token          {stack.api_token}  (network; `make token SCOPE=...` issues more)
coordinator desk   {stack.desk_url}/  (hospital sign-in: coordinator-zh-a, ...; or the token)
identity provider  http://127.0.0.1:{ports.identity}  (stands in for the hospital's, e.g. Entra ID)
coordinator token  {stack.coordinator_token}  (network; `make coordinator SCOPE=...`)
request page       http://127.0.0.1:{ports.intake}/request  (staff ask for support)
health & metrics   """
        + ", ".join(f"{s} http://127.0.0.1:{ports.of_service(s)}/metrics" for s in SERVICES)
        + "\nFeed incidents with `make feed`; stop with `make down`."
    )


@cli.command()
def topics() -> None:
    """Create the topics and their dead-letter topics where missing, as the TOPICS_* and
    KAFKA_* settings say (the Kubernetes Job and any cluster without auto-creation)."""
    settings = ServiceSettings()
    names = Topics().all()
    options = client_options(settings)
    bootstrap, ingress = settings.kafka_bootstrap_servers, Topics().ingress()
    asyncio.run(ensure_topics(bootstrap, names, TopicLayout(), ingress=ingress, **options))
    typer.echo(f"{len(names)} topics and their dead letters are there")


@cli.command()
def down() -> None:
    """Stop what `up` started."""
    stopped = stop_recorded(RUN_DIR / "stack")
    typer.echo(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")


@cli.command()
def feed(
    count: Incidents = 50,
    seed: Annotated[int | None, typer.Option(help="Repeat a feed by its seed.")] = None,
) -> None:
    """Publish new synthetic incidents to the stack `up` started (or KAFKA_BOOTSTRAP_SERVERS)."""
    seed = int(time.time()) if seed is None else seed
    events = incidents(count, seed=seed, first=(seed % 100_000) * 1_000 + 1)
    bootstrap = ServiceSettings().kafka_bootstrap_servers
    sent = asyncio.run(publish_incidents(bootstrap, events))
    typer.echo(f"published {len(sent)} incidents (seed {seed}) to {bootstrap}")


@cli.command()
def demo(count: Incidents = 150) -> None:
    """Start everything on free ports, feed incidents, let supporters answer, print the
    aggregates and what supporters did, stop."""
    stack = Stack(_fresh(RUN_DIR / "demo"), Ports.free(), settings=DEMO_TIMING)
    stack.start()
    try:
        run_demo(stack, count)
        if sys.stdin.isatty():
            with contextlib.suppress(EOFError, KeyboardInterrupt):
                input("The stack stays up for the dashboard: press Enter to stop it. ")
    finally:
        stack.stop()


@cli.command()
def chaos(
    count: Incidents = 120,
    kills: Annotated[int, typer.Option(help="Services killed with SIGKILL.", min=2)] = 10,
    seed: Annotated[int, typer.Option(help="Repeat a run by its seed.")] = 7,
) -> None:
    """Feed incidents while killing services and pausing servers; then check that nothing
    was lost or doubled. Exits 1 if anything was."""
    stack = Stack(_fresh(RUN_DIR / "chaos"), Ports.free(), settings=CHAOS_TIMING)
    stack.start()
    try:
        findings = run_chaos(stack, count, kills, seed)
    finally:
        stack.stop()
    typer.echo(findings.table())
    typer.echo(findings.line())
    if sum(findings.lost.values()) or sum(findings.doubled.values()):
        raise typer.Exit(1)


@cli.command()
def bench(count: Incidents = 400) -> None:
    """End-to-end throughput and latency beside the raw broker and store ceilings."""

    workdir = _fresh(RUN_DIR / "bench")
    stack = Stack(workdir, Ports.free(), roster=roomy_roster(workdir), log_level="WARNING")
    stack.start()
    try:
        run_bench(stack, count)
    finally:
        stack.stop()


if __name__ == "__main__":
    cli()
