"""Webhooks (docs/events.md#webhooks): every event a webhook asked for reaches a real HTTP receiver on
127.0.0.1, signed as Standard Webhooks, in order for each resource, through a receiver that is down for a
while, a worker killed mid-delivery and two workers at once; dead-lettered after the retry period, and sent
again by a redrive."""

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select, update

from models import DEFAULT_TENANT_ID, Delivery, Webhook, db
from scim import delivery
from scim.webhooks import Refused, add_webhook, check_destination, redrive, rotate_secret
from tests.conftest import DATABASE_ENVIRONMENT, ON_POSTGRESQL, user_body
from tests.receiver import Receiver, assert_sent_as_in_the_feed, delivered_once

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
FAST = {"SCIM_WEBHOOK_BACKOFF_SECONDS": 0.05, "SCIM_WEBHOOK_BACKOFF_MAX_SECONDS": 0.2,
        "SCIM_WEBHOOK_TIMEOUT": 0.5, "SCIM_WEBHOOK_POLL_SECONDS": 0.05}


@pytest.fixture
def hooks_app(app):
    app.config.update(SCIM_WEBHOOK_ALLOWED_HOSTS=("127.0.0.1",), **FAST)
    return app


@pytest.fixture
def receiver():
    with Receiver() as found:
        yield found


def feed_of(client, tenant_id=DEFAULT_TENANT_ID) -> list[dict]:
    """The tenant's whole feed, read with an events token made for the purpose."""
    from scim.tokens import create_token
    secret = create_token(f"feed-{time.monotonic_ns()}", tenant_id=tenant_id, scope="events")[1]
    found, after = [], None
    while True:
        response = client.get("/api/events", query_string={"limit": 1000, **({"after": after} if after else {})},
                              headers={"Authorization": f"Bearer {secret}"})
        body = response.get_json()
        if not body["data"]:
            return found
        found, after = found + body["data"], body["next"]


def provision(api) -> None:
    """Some of everything: users created, changed, deactivated, deleted; a group and its members."""
    ids = [api.post("/Users", json=user_body(f"hook{n}@example.com")).get_json()["id"] for n in range(3)]
    api.put(f"/Users/{ids[0]}", json=user_body("hook0@example.com", given="Changed"))
    api.patch(f"/Users/{ids[1]}", json={"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "active", "value": False}]})
    group = api.post("/Groups", json={"schemas": [GROUP], "displayName": "Hooked",
                                      "members": [{"value": ids[0]}, {"value": ids[1]}]}).get_json()
    api.patch(f"/Groups/{group['id']}", json={"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": f'members[value eq "{ids[0]}"]'}]})
    assert api.delete(f"/Users/{ids[2]}").status_code == 204


def test_every_event_arrives_signed_and_as_the_feed_has_it(hooks_app, api, client, receiver):
    webhook, secret = add_webhook(DEFAULT_TENANT_ID, receiver.url)
    assert secret.startswith("whsec_") and secret not in str(db.session.execute(select(Webhook)).all())
    provision(api)
    counts = delivery.run(hooks_app, once=True)
    sent = receiver.verified(secret)  # raises unless every signature is valid
    assert_sent_as_in_the_feed(sent, feed_of(client))
    assert len(sent) == counts["delivered"] == 10
    assert [e["type"] for e in sent][:3] == ["user.created"] * 3
    headers = receiver.received[0][0]
    assert headers["webhook-id"] == sent[0]["id"] and headers["content-type"] == "application/json"
    assert db.session.scalar(select(func.count()).select_from(Delivery).where(Delivery.state == "delivered")) == 10


def test_a_webhook_gets_only_the_types_it_asked_for_from_its_creation_on(hooks_app, api, receiver):
    api.post("/Users", json=user_body("before@example.com"))  # written before the webhook: not sent
    _webhook, secret = add_webhook(DEFAULT_TENANT_ID, receiver.url, "user.deactivated,group.member_*")
    provision(api)
    delivery.run(hooks_app, once=True)
    assert [e["type"] for e in receiver.verified(secret)] == [
        "user.deactivated", "group.member_added", "group.member_added", "group.member_removed"]


def test_another_tenant_webhook_gets_none_of_these_events(hooks_app, api, tenant_api, receiver):
    from tests.test_tenants import tenant_id
    acme = tenant_api("acme")
    add_webhook(tenant_id("acme"), receiver.url)
    provision(api)
    acme.post("/Users", json=user_body("acme@example.com"))
    delivery.run(hooks_app, once=True)
    assert [(body_type(r), tenant_of(r)) for r in receiver.received] == [("user.created", "acme")]


def body_type(request):
    import json
    return json.loads(request[1])["type"]


def tenant_of(request):
    import json
    return json.loads(request[1])["tenant"]


def test_a_receiver_down_for_a_while_still_gets_every_event_in_order_per_resource(hooks_app, api, client):
    # 503s, then answers that come too late (timeouts), then it is back
    answers = lambda n: (503, 0) if n < 6 else (200, 1.0) if n < 9 else (200, 0)  # noqa: E731
    with Receiver(answers) as receiver:
        _webhook, secret = add_webhook(DEFAULT_TENANT_ID, receiver.url)
        provision(api)
        delivery.run(hooks_app, once=True)
        sent = receiver.verified(secret)
    feed = feed_of(client)
    assert_sent_as_in_the_feed(sent, feed)
    assert len(sent) > len(feed)  # the failed attempts were retried
    states = dict(db.session.execute(select(Delivery.state, func.count()).group_by(Delivery.state)).all())
    assert states == {"delivered": len(feed)}


def test_after_the_retry_period_a_delivery_is_dead_lettered_and_a_redrive_sends_it(hooks_app, api):
    hooks_app.config["SCIM_WEBHOOK_RETRY_SECONDS"] = 1
    with Receiver(lambda n: (503, 0)) as down:
        _webhook, secret = add_webhook(DEFAULT_TENANT_ID, down.url)
        api.post("/Users", json=user_body("dead@example.com"))
        started = time.monotonic()
        counts = delivery.run(hooks_app, once=True)
        assert counts["failed"] == 1 and len(down.received) >= 3 and time.monotonic() - started < 10
    failed = db.session.scalar(select(Delivery))
    assert (failed.state, failed.last_status) == ("failed", 503)
    assert hooks_app.test_cli_runner().invoke(args=["webhooks", "deliveries", "--failed"]).output.count("failed") == 1
    with Receiver() as back:
        db.session.execute(update(Webhook).values(url=back.url))
        db.session.commit()
        assert redrive() == 1
        assert delivery.run(hooks_app, once=True)["delivered"] == 1
        assert [e["data"]["userName"] for e in back.verified(secret)] == ["dead@example.com"]


def test_a_rotated_secret_signs_from_then_on_and_the_old_one_no_longer_verifies(hooks_app, api, receiver):
    webhook, old = add_webhook(DEFAULT_TENANT_ID, receiver.url)
    new = rotate_secret(webhook)
    api.post("/Users", json=user_body("rotated@example.com"))
    delivery.run(hooks_app, once=True)
    assert len(receiver.verified(new)) == 1
    with pytest.raises(Exception, match="signature"):
        receiver.verified(old)


@pytest.mark.parametrize("url, allowed", [
    ("http://127.0.0.1:9/hook", ()),  # loopback is not a public address
    ("http://10.1.2.3/hook", ()),
    ("http://169.254.169.254/latest/meta-data", ()),  # a cloud's metadata service
    ("http://[::1]/hook", ()),
    ("http://10.1.2.3/hook", ("127.0.0.1",)),
    ("http://localhost/hook", ("127.0.0.0/8", "hooks.example.com")),  # resolves to ::1 too, outside the list
    ("ftp://hooks.example.com/", ()),
    ("http:///nohost", ()),
])
def test_a_destination_the_operator_did_not_allow_is_refused(app, url, allowed):
    app.config["SCIM_WEBHOOK_ALLOWED_HOSTS"] = allowed
    if url == "http://localhost/hook" and not _resolves_to_ipv6("localhost"):
        pytest.skip("localhost has no IPv6 address here")
    with pytest.raises(Refused):
        check_destination(url)
    with pytest.raises(Refused):
        add_webhook(DEFAULT_TENANT_ID, url)
    assert db.session.scalar(select(func.count()).select_from(Webhook)) == 0


def _resolves_to_ipv6(host):
    import socket
    return any(info[0] == socket.AF_INET6 for info in socket.getaddrinfo(host, None))


def test_the_allow_list_takes_names_patterns_and_networks(app):
    app.config["SCIM_WEBHOOK_ALLOWED_HOSTS"] = ("127.0.0.0/8", "*.example.test")
    check_destination("http://127.0.0.1:8080/hook")
    with pytest.raises(Refused):
        check_destination("http://example.test/hook")  # *.domain: its subdomains, not itself


def test_the_cli_adds_lists_rotates_and_removes_webhooks(hooks_app, receiver):
    runner = hooks_app.test_cli_runner()
    added = runner.invoke(args=["webhooks", "add", receiver.url, "--events", "user.*"])
    assert added.exit_code == 0, added.output
    secret = added.output.splitlines()[1]
    assert secret.startswith("whsec_")
    listed = runner.invoke(args=["webhooks", "list"]).output.splitlines()
    assert listed[0].split() == ["ID", "TENANT", "URL", "EVENTS", "PENDING", "DELIVERED", "FAILED"]
    assert listed[1].split()[1:4] == ["default", receiver.url, "user.*"] and secret not in "".join(listed)
    webhook_id = listed[1].split()[0]
    rotated = runner.invoke(args=["webhooks", "rotate-secret", webhook_id]).output.splitlines()[1]
    assert rotated.startswith("whsec_") and rotated != secret
    refused = runner.invoke(args=["webhooks", "add", "http://10.0.0.1/x"])
    assert refused.exit_code != 0 and "SCIM_WEBHOOK_ALLOWED_HOSTS" in refused.output
    assert runner.invoke(args=["webhooks", "add", receiver.url, "--events", "user.renamed"]).exit_code != 0
    assert runner.invoke(args=["webhooks", "remove", webhook_id]).exit_code == 0
    assert runner.invoke(args=["webhooks", "list"]).output.splitlines()[1:] == []


def worker(database_url: str, **settings) -> subprocess.Popen:
    env = {**os.environ, **DATABASE_ENVIRONMENT, "DATABASE_URL": database_url, "SCIM_ACCESS_LOG": "0",
           "SCIM_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1", **{k: str(v) for k, v in {**FAST, **settings}.items()}}
    return subprocess.Popen([sys.executable, "manage.py", "events", "deliver"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    process.send_signal(sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def delivered() -> int:
    found = db.session.scalar(select(func.count()).select_from(Delivery).where(Delivery.state == "delivered"))
    db.session.rollback()
    return found


def wait_until(condition, seconds=60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not ON_POSTGRESQL, reason="worker processes at once: PostgreSQL (on SQLite, one worker)")
def test_a_worker_killed_mid_delivery_loses_nothing(hooks_app, api, migrated):
    release = {"first": True}

    def answer(n):  # the first request hangs until the worker that sent it is killed
        return (200, 30) if release["first"] and n == 0 else (200, 0)
    with Receiver(answer) as receiver:
        _webhook, secret = add_webhook(DEFAULT_TENANT_ID, receiver.url)
        api.post("/Users", json=user_body("killed@example.com"))
        first = worker(migrated, SCIM_WEBHOOK_TIMEOUT=1)  # a lease of 8 s
        try:
            assert wait_until(lambda: len(receiver.received) == 1)
        finally:
            stop(first, signal.SIGKILL)
        release["first"] = False
        second = worker(migrated, SCIM_WEBHOOK_TIMEOUT=1)
        try:
            assert wait_until(lambda: len(receiver.received) >= 2)  # once the killed worker's lease ran out
        finally:
            stop(second)
        sent = receiver.verified(secret)
    assert [e["data"]["userName"] for e in delivered_once(sent)] == ["killed@example.com"]
    assert sent[0]["id"] == sent[1]["id"]  # the same event, recognisable by webhook-id
    assert db.session.scalar(select(Delivery.state)) == "delivered"


@pytest.mark.skipif(not ON_POSTGRESQL, reason="worker processes at once: PostgreSQL (on SQLite, one worker)")
def test_two_workers_never_deliver_one_event_at_the_same_time(hooks_app, api, migrated, client):
    with Receiver(lambda n: (200, 0.02)) as receiver:
        _webhook, secret = add_webhook(DEFAULT_TENANT_ID, receiver.url)
        workers = [worker(migrated), worker(migrated)]
        try:
            for n in range(40):
                api.post("/Users", json=user_body(f"pair{n}@example.com"))
            assert wait_until(lambda: delivered() == 40)
        finally:
            for process in workers:
                stop(process)
        sent = receiver.verified(secret)
    assert receiver.in_flight == 1
    assert_sent_as_in_the_feed(sent, feed_of(client))
    assert len(sent) == 40
