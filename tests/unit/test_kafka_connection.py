"""How every Kafka client reaches a production broker: TLS and SASL as the settings say."""

import ssl

from faststream.security import SASLScram512

from shared.kafka import broker_security, client_options, subscription
from shared.settings import ServiceSettings, TopicLayout


def test_a_local_broker_is_reached_in_plain_text() -> None:
    settings = ServiceSettings()
    assert client_options(settings) == {"security_protocol": "PLAINTEXT"}
    assert broker_security(settings) is None


def test_sasl_over_tls_gives_every_client_the_same_credentials() -> None:
    settings = ServiceSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="matching",
        kafka_sasl_password="from-a-secret-file",
    )
    options = client_options(settings)
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "matching",
        "from-a-secret-file",
    )
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    security = broker_security(settings)
    assert isinstance(security, SASLScram512)
    assert security.use_ssl


def test_dead_letters_are_kept_shorter_than_events() -> None:
    layout = TopicLayout(min_insync_replicas=2)
    assert layout.configs(dead_letters=False) == {
        "cleanup.policy": "delete",
        "retention.ms": str(30 * 86_400_000),
        "min.insync.replicas": "2",
    }
    assert layout.configs(dead_letters=True)["retention.ms"] == str(14 * 86_400_000)
    ingress = layout.configs(dead_letters=False, ingress=True)
    assert ingress["retention.ms"] == str(7 * 86_400_000), "the hospitals' own events"
    assert layout.configs(dead_letters=True, ingress=True) == ingress


def test_the_outreach_path_asks_the_broker_more_often_than_the_rest() -> None:
    """Every case's hops wait least at a broker that holds a fetch for its whole wait; the
    idle consumers elsewhere ask less often, as the operator set."""
    settings = ServiceSettings(kafka_fetch_max_wait_ms=20, kafka_background_fetch_max_wait_ms=400)
    on_the_path = subscription(settings, "matching", "cases", batch=True, outreach=True)
    answers = subscription(settings, "matching", "responses")
    assert (on_the_path["fetch_max_wait_ms"], answers["fetch_max_wait_ms"]) == (20, 400)
