"""Every metric of the product is named `peer_support_*`, in the service's own registry, with
the process's own figures beside it."""

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

NAMESPACE = "peer_support"


def service_registry() -> CollectorRegistry:
    """A registry with the process's CPU, memory and file descriptors, and Python's version."""
    registry = CollectorRegistry()
    ProcessCollector(namespace=NAMESPACE, registry=registry)
    PlatformCollector(registry=registry)
    return registry
