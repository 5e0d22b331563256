"""Topics are created as the settings say, dead letters kept shorter than events."""

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.kafka import ensure_topics
from shared.settings import TopicLayout
from tests.integration.rig import Servers

pytestmark = pytest.mark.integration


async def test_each_topic_and_its_dead_letters_get_their_retention(servers: Servers) -> None:
    topic = f"layout-{uuid.uuid4().hex[:8]}"
    layout = TopicLayout(partitions=2, retention_days=30, dead_letter_retention_days=14)
    await ensure_topics(servers.kafka_bootstrap_servers, [topic], layout)
    admin = AIOKafkaAdminClient(bootstrap_servers=servers.kafka_bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in (topic, f"{topic}.dlq")]
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
    assert partitions == {topic: 2}
