"""reporting: case events in, anonymised aggregates out, served to analysts over HTTP.

The counting is `count_batch`'s, the releases `Releaser`'s, the API `aggregates_router`'s,
the dashboard `dashboard_router`'s; answers come from `Snapshots` of what was released."""

from datetime import timedelta

from fastapi import FastAPI
from faststream.kafka.annotations import KafkaMessage

from services.reporting.api import aggregates_router
from services.reporting.counting import count_batch
from services.reporting.releaser import Releaser
from services.reporting.settings import SERVICE, ReportingSettings
from services.reporting.snapshots import Snapshots
from services.reporting.store import CellStore
from services.reporting.web import dashboard_router
from shared.gate import refusals_of
from shared.kafka import subscription
from shared.service import Clock, web_app, wire
from shared.signin import SignIn
from shared.tokens import ApiTokens, Sessions


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    settings = settings or ReportingSettings()
    wiring = wire(SERVICE, settings)
    broker = wiring.broker
    retention = timedelta(days=settings.counted_event_retention_days)
    store = CellStore(wiring.database, retention, settings.reporting_dimensions)
    tokens = ApiTokens(wiring.database, timedelta(days=settings.api_token_days))
    sessions = Sessions(wiring.database, tokens)
    refusals = refusals_of(wiring.database, wiring.registry, wiring.log, settings)
    releaser = Releaser(
        store, settings.release_delay, settings.min_cell_size, wiring.log, wiring.registry
    )
    snapshots = Snapshots(
        store,
        settings.reporting_dimensions,
        settings.min_cell_size,
        settings.snapshot_seconds,
        settings.first_contact_target_days,
    )

    @broker.subscriber(
        *settings.topics.counted(),
        **subscription(settings, SERVICE, "case_events", batch=True),
    )
    async def on_case_events(message: KafkaMessage) -> None:
        raw = message.raw_message
        records = raw if isinstance(raw, tuple) else (raw,)
        await count_batch(records, store, wiring.dead_letters, wiring.log)

    api = web_app(
        wiring,
        settings,
        title="peer-support reporting",
        description="Anonymised aggregates of the peer-support programme. "
        f"Cells with fewer than {settings.min_cell_size} cases are suppressed.",
        on_startup=[store.ensure_indexes, sessions.ensure_indexes, refusals.ensure_indexes],
        background=[Clock("releasing", releaser.release_due, settings.release_scan_seconds).keep],
    )
    api.include_router(aggregates_router(tokens, snapshots, refusals, settings))
    sign_in = SignIn(tokens, sessions, refusals, settings)
    sign_in.install(api)
    api.include_router(dashboard_router(sign_in, store, snapshots, settings))
    return api
