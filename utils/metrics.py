"""Prometheus metrics, served at GET /metrics by both HTTP doors.

Counters and the latency histogram live in the process that observes them; with several
processes (gunicorn workers, worker processes) `PROMETHEUS_MULTIPROC_DIR` makes
prometheus-client share them through files, and /metrics adds them up. Queue depth and
age are read from the database at scrape time, so every door reports the same figures.
"""
from __future__ import annotations

import logging
import os

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram,
                               generate_latest, multiprocess)
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

UPDATES_RECEIVED = Counter("keepdesk_updates_received_total",
                           "Telegram updates taken in", ["outcome"])  # stored | duplicate
SIGNALS_RECEIVED = Counter("keepdesk_signals_received_total",
                           "CRM signals taken in", ["outcome"])  # created | pending | rerun | restarted
JOBS_PROCESSED = Counter("keepdesk_jobs_processed_total",
                         "Jobs run by workers", ["kind", "outcome"])  # done | retry | failed
SENDS = Counter("keepdesk_telegram_sends_total", "Background sends to Telegram by outcome",
                ["outcome"])  # sent | rate_limited | retry_after | blocked | not_modified | merged | error
SIGNAL_TO_POST = Histogram("keepdesk_signal_to_post_seconds",
                           "From the CRM signal to the post reaching Telegram",
                           buckets=(0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 300))


class QueueCollector:
    """keepdesk_queue_depth and keepdesk_queue_oldest_seconds, read at scrape time from
    `queue_rows()` ([{"queue", "n", "oldest" (µs)}], e.g. JobQueue.depth_by_queue)."""

    def __init__(self, queue_rows) -> None:
        self.queue_rows = queue_rows

    def collect(self):
        depth = GaugeMetricFamily("keepdesk_queue_depth", "Unfinished jobs", labels=["queue"])
        age = GaugeMetricFamily("keepdesk_queue_oldest_seconds",
                                "Age of the oldest unfinished job", labels=["queue"])
        try:
            rows = self.queue_rows()
        except Exception as exc:  # a scrape must not fail because the database is away
            log.warning("queue metrics unavailable: %s", exc)
            rows = []
        for row in rows:
            depth.add_metric([row["queue"]], row["n"])
            age.add_metric([row["queue"]], (row["oldest"] or 0) / 1e6)
        yield depth
        yield age


def render(queue_rows) -> tuple[bytes, str]:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY
        registry = REGISTRY
    output = generate_latest(registry)
    queue_registry = CollectorRegistry()
    queue_registry.register(QueueCollector(queue_rows))
    return output + generate_latest(queue_registry), CONTENT_TYPE_LATEST
