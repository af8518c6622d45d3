"""Prometheus metrics at /metrics (docs/operations.md#metrics), through prometheus_client.

Two kinds:
- counted by the workers as requests are answered, on the Flask path and the hot path alike (from the same
  facts as the request's audit row): SCIM requests by tenant, operation, resource, status and scimType, their
  latency, and the database errors met. Under gunicorn each worker writes its counts to files in
  PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py sets one up), and a scrape, whichever worker answers it, adds up
  every worker's, those of replaced workers too, so each request is counted once;
- read from the database at each scrape, so every worker tells the same: webhook deliveries waiting and
  dead-lettered per tenant, the age of the oldest waiting one, and each tenant's name (`scim_tenant_info`).

/metrics answers only with SCIM_METRICS_TOKEN as a bearer token, and is not there at all while that is unset.
"""

import hmac
import logging
import os
from datetime import UTC

from flask import Blueprint, abort, current_app, request
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from models import Delivery, Tenant, Webhook, db, utcnow

metrics = Blueprint("metrics", __name__)
log = logging.getLogger(__name__)
COUNTED = CollectorRegistry()  # this process's own counts (without gunicorn: the development server, tests)

REQUESTS = Counter("scim_requests", "SCIM requests answered", ["tenant", "operation", "resource", "status",
                                                               "scim_type"], registry=COUNTED)
LATENCY = Histogram("scim_request_duration_seconds", "Time to answer a SCIM request", ["operation", "resource"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0), registry=COUNTED)
DATABASE_ERRORS = Counter("scim_database_errors", "Requests that met a database error, by kind", ["kind"],
                          registry=COUNTED)


def count_request(row: dict) -> None:
    """One answered SCIM request, from its audit facts (scim.audit.request_facts)."""
    tenant = "" if row["tenant_id"] is None else str(row["tenant_id"])
    operation, resource = row["operation"], row["resource_type"] or ""
    REQUESTS.labels(tenant, operation, resource, str(row["status"]), row["scim_type"] or "").inc()
    LATENCY.labels(operation, resource).observe(row["duration_ms"] / 1000)


def count_database_error(kind: str) -> None:
    """kind: unavailable (down, timed out, locked), misconfigured (missing or behind its migrations), limit (a
    request beyond what the database takes) or statement (a statement it refused)."""
    DATABASE_ERRORS.labels(kind).inc()


class FromTheDatabase:
    """The gauges every worker reads alike from the database, at the scrape."""

    def collect(self):
        up = GaugeMetricFamily("scim_database_up", "1 when the database answered this scrape's queries")
        try:
            found = self.read()
        except SQLAlchemyError as exc:  # the scrape still answers, with what the workers counted
            log.warning("metrics: the database did not answer: %s", getattr(exc, "orig", exc))
            db.session.rollback()
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *found]

    def read(self):
        tenants = GaugeMetricFamily("scim_tenant_info", "A tenant's name, and 1 while it is enabled",
                                    labels=["tenant", "name"])
        for tenant_id, name, disabled in db.session.execute(select(Tenant.id, Tenant.name, Tenant.disabled)):
            tenants.add_metric([str(tenant_id), name], 0 if disabled else 1)
        waiting = GaugeMetricFamily("scim_webhook_deliveries_waiting", "Webhook deliveries not yet made, "
                                    "retries included", labels=["tenant"])
        dead = GaugeMetricFamily("scim_webhook_deliveries_failed", "Webhook deliveries dead-lettered (failed "
                                 "through the retry period), until redriven", labels=["tenant"])
        oldest = GaugeMetricFamily("scim_webhook_oldest_waiting_seconds", "Age of the oldest delivery waiting",
                                   labels=["tenant"])
        found = db.session.execute(
            select(Webhook.tenant_id, Delivery.state, func.count(), func.min(Delivery.created))
            .join(Webhook, Webhook.id == Delivery.webhook_id).where(Delivery.state.in_(("pending", "failed")))
            .group_by(Webhook.tenant_id, Delivery.state))
        now = utcnow()
        for tenant_id, state, count, first in found:
            if state == "pending":
                waiting.add_metric([str(tenant_id)], count)
                first = first if first.tzinfo else first.replace(tzinfo=UTC)  # SQLite's are naive, in UTC
                oldest.add_metric([str(tenant_id)], (now - first).total_seconds())
            else:
                dead.add_metric([str(tenant_id)], count)
        db.session.rollback()
        return [tenants, waiting, dead, oldest]


def scraped_registry() -> CollectorRegistry:
    """Every worker's counts under gunicorn (multiprocess mode), else this process's; and the database's."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(COUNTED)
    registry.register(FromTheDatabase())
    return registry


@metrics.get("/metrics")
def scrape():
    expected = current_app.config["SCIM_METRICS_TOKEN"]
    if not expected:
        abort(404)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        return "a bearer token (SCIM_METRICS_TOKEN) is needed\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'}
    encode, content_type = choose_encoder(request.headers.get("Accept"))  # the text formats Prometheus asks for
    return encode(scraped_registry()), 200, {"Content-Type": content_type, "Cache-Control": "no-store"}
