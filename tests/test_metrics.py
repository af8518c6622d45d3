"""/metrics (docs/operations.md#metrics): Prometheus text behind its own token; every SCIM request counted once
by tenant, operation, status and scimType, on the Flask path and the hot path, across gunicorn's workers; the
webhook deliveries waiting and dead-lettered, read from the database."""

import http.client
import json
import pathlib
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from models import DEFAULT_TENANT_ID, Delivery, db
from scim import delivery
from scim.tenants import create_tenant
from scim.tokens import create_token
from scim.webhooks import add_webhook
from tests.conftest import TOKEN, Api, user_body
from tests.servers import at_once, gunicorn, request

METRICS_TOKEN = "metrics-scrape-token-0123456789"


def samples(text: str) -> dict:
    """{(sample name, frozenset of its labels): value} of a scrape."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(found: dict, metric: str, **labels) -> float:
    return found.get((metric, frozenset(labels.items())), 0.0)


def requests_counted(found: dict, tenant, operation, resource, status, scim_type="") -> float:
    return value(found, "scim_requests_total", tenant=str(tenant), operation=operation, resource=resource,
                 status=str(status), scim_type=scim_type)


@pytest.fixture
def scraped(make_app, app):
    """(an app with /metrics on, scrape() -> its samples)."""
    on = make_app(SCIM_METRICS_TOKEN=METRICS_TOKEN, SCIM_WEBHOOK_ALLOWED_HOSTS=("127.0.0.1",))
    client = on.test_client()

    def scrape() -> dict:
        response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert response.status_code == 200, response.data
        return samples(response.get_data(as_text=True))
    return on, scrape


def test_no_metrics_are_served_without_a_scrape_token_set(client):
    assert client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 404


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {METRICS_TOKEN}",
                                           f"Bearer {TOKEN}"])
def test_a_scrape_without_the_scrape_token_is_refused(make_app, authorization):
    client = make_app(SCIM_METRICS_TOKEN=METRICS_TOKEN).test_client()
    response = client.get("/metrics", headers={"Authorization": authorization} if authorization else {})
    assert response.status_code == 401
    assert b"scim_requests" not in response.data


def test_a_scrape_is_prometheus_text(scraped):
    on, _ = scraped
    response = on.test_client().get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    families = {family.name for family in text_string_to_metric_families(response.get_data(as_text=True))}
    assert {"scim_requests", "scim_request_duration_seconds", "scim_database_errors", "scim_tenant_info",
            "scim_database_up"} <= families
    openmetrics = on.test_client().get("/metrics", headers={
        "Authorization": f"Bearer {METRICS_TOKEN}", "Accept": "application/openmetrics-text;version=1.0.0"})
    assert openmetrics.headers["Content-Type"].startswith("application/openmetrics-text")
    assert openmetrics.data.endswith(b"# EOF\n")


def test_each_request_is_counted_by_its_tenant_operation_status_and_scim_type(scraped):
    on, scrape = scraped
    second = create_tenant("second")
    _token, secret = create_token("second-token", tenant_id=second.id)
    default, other = Api(on.test_client()), Api(on.test_client(), {"Authorization": f"Bearer {secret}"})
    before = scrape()
    for index in range(3):
        assert default.post("/Users", json=user_body(f"u{index}@example.com")).status_code == 201
    assert default.get("/Users?filter=userName%20zz%20%22x%22").status_code == 400
    assert default.get("/Users/no-such-id").status_code == 404
    for _ in range(2):
        assert other.get("/Users?filter=userName%20eq%20%22u0@example.com%22").get_json()["totalResults"] == 0
    assert Api(on.test_client(), {"Authorization": "Bearer wrong"}).get("/Users").status_code == 401
    after = scrape()

    def added(*labels):
        return requests_counted(after, *labels) - requests_counted(before, *labels)
    assert added(DEFAULT_TENANT_ID, "create", "Users", 201) == 3
    assert added(DEFAULT_TENANT_ID, "list", "Users", 400, "invalidFilter") == 1
    assert added(DEFAULT_TENANT_ID, "read", "Users", 404) == 1
    assert added(second.id, "list", "Users", 200) == 2
    assert added("", "list", "Users", 401) == 1
    assert added(DEFAULT_TENANT_ID, "list", "Users", 200) == 0  # tenant B's lookups are its own
    timed = value(after, "scim_request_duration_seconds_count", operation="list", resource="Users") - value(
        before, "scim_request_duration_seconds_count", operation="list", resource="Users")
    assert timed == 4
    assert value(after, "scim_tenant_info", tenant=str(second.id), name="second") == 1
    assert value(after, "scim_database_up") == 1


def test_deliveries_waiting_and_dead_lettered_are_read_from_the_database(scraped):
    on, scrape = scraped
    with on.app_context():
        add_webhook(DEFAULT_TENANT_ID, "http://127.0.0.1:9/")  # never sent to: no worker runs here
    api = Api(on.test_client())
    for index in range(3):
        assert api.post("/Users", json=user_body(f"w{index}@example.com")).status_code == 201
    with on.app_context():
        assert delivery.make_deliveries() == 3
        first = db.session.scalar(select(Delivery.id).order_by(Delivery.id).limit(1))
        db.session.execute(update(Delivery).where(Delivery.id == first).values(state="failed"))
        db.session.commit()
    found = scrape()
    tenant = str(DEFAULT_TENANT_ID)
    assert value(found, "scim_webhook_deliveries_waiting", tenant=tenant) == 2
    assert value(found, "scim_webhook_deliveries_failed", tenant=tenant) == 1
    assert 0 <= value(found, "scim_webhook_oldest_waiting_seconds", tenant=tenant) < 600


def test_a_scrape_answers_while_the_database_does_not(make_app, empty_database):
    """A database without its tables: SCIM requests are 503 and counted as database errors; the scrape itself
    still answers, with scim_database_up 0."""
    on = make_app(SQLALCHEMY_DATABASE_URI=empty_database, SCIM_METRICS_TOKEN=METRICS_TOKEN)
    client = on.test_client()
    auth = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    before = samples(client.get("/metrics", headers=auth).get_data(as_text=True))
    assert Api(client).get("/Users").status_code == 503
    response = client.get("/metrics", headers=auth)
    assert response.status_code == 200
    after = samples(response.get_data(as_text=True))
    assert value(after, "scim_database_up") == 0
    assert (value(after, "scim_database_errors_total", kind="misconfigured")
            - value(before, "scim_database_errors_total", kind="misconfigured")) == 1


def scrape_server(port: int) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        response = connection.getresponse()
        assert response.status == 200
        return samples(response.read().decode())
    finally:
        connection.close()


def test_a_scrape_of_several_workers_counts_each_request_once(migrated, tmp_path):
    """Two workers, each replaced after about 20 requests: whichever worker answers a scrape, it counts every
    request once, those answered by workers that have since exited included."""
    lookup = '/scim/v2/Users?filter=userName%20eq%20%22nobody@example.com%22'
    with gunicorn(migrated, workers=2, SCIM_METRICS_TOKEN=METRICS_TOKEN, PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
                  GUNICORN_MAX_REQUESTS=20, SCIM_AUTH_FAILURE_LIMIT=0) as (port, _):
        for _round in range(3):
            assert at_once(20, lambda _i: request(port, "GET", lookup)[0]) == [200] * 20
        counts = [requests_counted(scrape_server(port), DEFAULT_TENANT_ID, "list", "Users", 200) for _ in range(6)]
    assert counts == [60] * 6
    workers = {path.name.split("_")[1] for path in tmp_path.glob("counter_*.db")}
    assert len(workers) >= 3  # 60 requests cannot all be answered by the first two workers


def test_the_grafana_dashboard_queries_only_metrics_the_service_serves(scraped):
    on, _ = scraped
    text = on.test_client().get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).get_data(as_text=True)
    served = {family.name + suffix for family in text_string_to_metric_families(text)
              for suffix in ("", "_total", "_bucket", "_count", "_sum")}
    dashboard = json.loads((pathlib.Path(__file__).parent.parent / "docs" / "grafana-dashboard.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\bscim_\w+", re.sub(r"\{[^}]*\}|by \([^)]*\)", "", target["expr"]))}
    assert queried and queried <= served, queried - served
