"""The runtime's cold-start histogram and scale-event counters, as a scraper reads them."""

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fnmesh.platform.model import Revision
from fnmesh.platform.model.resources import Artifact, ObjectMeta, RevisionSpec
from fnmesh.platform.runtime.local.metrics import RuntimeMetrics


def revision(name: str = "hello-00001") -> Revision:
    spec = RevisionSpec(function="hello", handler="main:handle", artifact=Artifact("sha256:0"))
    return Revision(metadata=ObjectMeta(name=name, namespace="team"), spec=spec)


def samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


LABELS = {("namespace", "team"), ("function", "hello"), ("revision", "hello-00001")}


def test_cold_starts_and_scale_events_per_revision() -> None:
    registry = CollectorRegistry()
    metrics = RuntimeMetrics(registry)
    metrics.scaled(revision(), 0, 1)
    metrics.cold_start(revision(), 0.04)
    metrics.scaled(revision(), 1, 1)  # the same count again: no event
    metrics.scaled(revision(), 1, 4)
    metrics.cold_start(revision(), 0.2)
    metrics.scaled(revision(), 4, 0)
    found = samples(registry)
    assert found[("scale_events_total", frozenset(LABELS | {("direction", "up")}))] == 2
    assert found[("scale_events_total", frozenset(LABELS | {("direction", "down")}))] == 1
    assert found[("cold_start_seconds_count", frozenset(LABELS))] == 2
    assert abs(found[("cold_start_seconds_sum", frozenset(LABELS))] - 0.24) < 1e-9
    assert found[("cold_start_seconds_bucket", frozenset(LABELS | {("le", "0.05")}))] == 1
    assert found[("cold_start_seconds_bucket", frozenset(LABELS | {("le", "0.2")}))] == 2


def test_a_removed_revision_takes_its_series_with_it() -> None:
    registry = CollectorRegistry()
    metrics = RuntimeMetrics(registry)
    metrics.scaled(revision(), 0, 1)
    metrics.cold_start(revision(), 0.04)
    metrics.scaled(revision("hello-00002"), 0, 1)
    metrics.forget(revision())
    metrics.forget(revision("never-seen"))  # nothing to drop: no error
    names = {dict(labels)["revision"] for _, labels in samples(registry)}
    assert names == {"hello-00002"}
