"""Metric families in Prometheus' text format (0.0.4), without ``prometheus_client``.

The replica proxy serves its ``/metrics`` from these: importing ``prometheus_client``
(it pulls in ``http.server``, ``wsgiref``, ``email`` and more) would cost every proxy
about 5 MB of memory. A ``Family`` is one metric family with its samples; a source is
anything with ``families()``; a ``Registry`` lists sources and ``render``s them the way
``prometheus_client.generate_latest`` does (labels sorted, values in Go's notation), so
the output is the same whichever renders it.

``prometheus_metrics`` turns families into ``prometheus_client`` objects, importing it
only when called: that is how the same sources serve a ``prometheus_client`` registry
(the platform's own ``/metrics``) through their ``collect()``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Kind = Literal["counter", "gauge", "histogram"]
Labels = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class Family:
    """One family. ``name`` is the family's name (a counter's without ``_total``);
    each sample is (sample name, labels, value), e.g. ``("request_total", ..., 3.0)``."""

    name: str
    kind: Kind
    help: str
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)

    def add(
        self, names: Sequence[str], values: Sequence[str], value: float, suffix: str = ""
    ) -> None:
        """A sample labelled ``names=values``; ``suffix`` completes the sample's name
        (``_total`` is added to a counter's own)."""
        if not suffix and self.kind == "counter":
            suffix = "_total"
        self.samples.append((self.name + suffix, tuple(zip(names, values, strict=True)), value))

    @property
    def exposed_name(self) -> str:
        """The name in ``# HELP``/``# TYPE`` lines (a counter's with ``_total``)."""
        return self.name + "_total" if self.kind == "counter" else self.name


class Source(Protocol):
    def families(self) -> Iterable[Family]: ...


class MetricsRegistry(Protocol):
    """Where a source is registered: a ``Registry`` here, or a ``prometheus_client`` one."""

    def register(self, collector: Any) -> None: ...


class Registry:
    """The sources one endpoint renders, in the order they were registered."""

    def __init__(self) -> None:
        self._sources: list[Source] = []

    def register(self, source: Source) -> None:
        self._sources.append(source)

    def families(self) -> Iterator[Family]:
        for source in self._sources:
            yield from source.families()


def render(families: Iterable[Family]) -> bytes:
    """The text format of ``families``."""
    lines: list[str] = []
    for family in families:
        name = family.exposed_name
        lines.append(f"# HELP {name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {name} {family.kind}")
        for sample, labels, value in family.samples:
            if labels:
                shown = ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted(labels))
                lines.append(f"{sample}{{{shown}}} {go_float(value)}")
            else:
                lines.append(f"{sample} {go_float(value)}")
    return ("\n".join(lines) + "\n").encode() if lines else b""


def go_float(value: float) -> str:
    """A value as Prometheus writes it: ``3.0``, ``1.5e+09``, ``+Inf``, ``NaN``."""
    number = float(value)
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if math.isnan(number):
        return "NaN"
    text = repr(number)
    dot = text.find(".")
    if number > 0 and dot > 6:  # Go switches to exponents sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus_metrics(families: Iterable[Family]) -> list[Metric]:
    """``families`` as ``prometheus_client`` metrics, for a collector's ``collect()``."""
    from prometheus_client.metrics_core import Metric

    metrics: list[Metric] = []
    for family in families:
        metric = Metric(family.name, family.help, family.kind)
        for sample, labels, value in family.samples:
            metric.add_sample(sample, dict(labels), value)
        metrics.append(metric)
    return metrics


class PrometheusCollector:
    """What a ``prometheus_client`` registry needs of a source: ``collect`` (and an empty
    ``describe``, so that registering never collects)."""

    def families(self) -> Iterable[Family]:
        raise NotImplementedError

    def collect(self) -> list[Metric]:
        return prometheus_metrics(self.families())

    def describe(self) -> list[Any]:
        return []
