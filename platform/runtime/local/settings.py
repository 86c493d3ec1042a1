"""Settings of the local runtime (grouped into the platform's configuration)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    ready_timeout: float = 60.0
    stop_timeout: float = 10.0
    unroute_delay: float = 1.0  # seconds between leaving the routes and stopping a replica
    restart_backoff_min: float = 0.5
    restart_backoff_max: float = 30.0
    max_replicas: int = 20
    log_max_bytes: int = 10 * 1024 * 1024
    # output taken from each replica process per second; the excess is dropped and counted
    log_lines_per_second: int = 2000
    log_bytes_per_second: int = 1024 * 1024
    warm_pool_size: int = 2  # runtimes kept started for cold starts; 0 turns the pool off
    warm_pool_refill_delay: float = 0.5  # seconds after a cold start before refilling
    probe_interval: float = 5.0  # seconds between liveness probes of a ready replica
    probe_failures: int = 3  # failed probes in a row after which a replica is recycled
    sandbox: bool = True  # false only with --unsafe-no-sandbox: replicas run unconfined
    scratch_bytes: int = 64 * 1024 * 1024  # a sandboxed replica's private /tmp
