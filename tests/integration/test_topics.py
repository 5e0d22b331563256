"""Topics are created as the settings say, dead letters kept shorter than events, the
hospitals' own events shorter still."""

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.kafka import ensure_topics
from shared.settings import TopicLayout
from tests.integration.rig import Servers

pytestmark = pytest.mark.integration


async def test_each_topic_and_its_dead_letters_get_their_retention(servers: Servers) -> None:
    topic, ingress = f"layout-{uuid.uuid4().hex[:8]}", f"ingress-{uuid.uuid4().hex[:8]}"
    layout = TopicLayout(
        partitions=2, retention_days=30, dead_letter_retention_days=14, ingress_retention_days=7
    )
    await ensure_topics(
        servers.kafka_bootstrap_servers, [topic, ingress], layout, ingress=[ingress]
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=servers.kafka_bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, name)
                for name in (topic, f"{topic}.dlq", ingress, f"{ingress}.dlq")
            ]
        )
        partitions = {
            t["topic"]: len(t["partitions"]) for t in (await admin.describe_topics([topic]))
        }
    finally:
        await admin.close()
    configs = {
        name: {entry[0]: entry[1] for entry in entries}
        for response in described
        for _, _, _, name, entries in response.resources
    }
    assert configs[topic]["retention.ms"] == str(30 * 86_400_000)
    assert configs[f"{topic}.dlq"]["retention.ms"] == str(14 * 86_400_000)
    assert configs[topic]["cleanup.policy"] == "delete"
    # Staff ids and contact details as the hospital sent them: intake reads them at once.
    assert configs[ingress]["retention.ms"] == str(7 * 86_400_000)
    assert configs[f"{ingress}.dlq"]["retention.ms"] == str(7 * 86_400_000)
    assert partitions == {topic: 2}
