import pytest
from django.urls import reverse
from django.utils import timezone

from bcfl_site.models import WorkerHeartbeat


@pytest.fixture
def live_chain(fake_chain):
    """A reachable chain for the page and the health check (the in-memory fake: no node needed)."""
    return fake_chain


@pytest.mark.django_db
def test_status_shows_chain_contracts_and_workers(client, live_chain):
    # given: contracts deployed on the test chain and one worker heartbeat
    from django.core.management import call_command

    call_command("deploy_contracts", "--redeploy-missing")
    WorkerHeartbeat.objects.create(queue="chain", hostname="chain@test", seen_at=timezone.now())

    # when
    resp = client.get(reverse("status"))

    # then
    body = resp.content.decode()
    assert resp.status_code == 200
    assert "Connected" in body
    for name in ("TaskRegistry", "IdentityRegistry", "ModelNFT", "StakeToken", "Marketplace"):
        assert name in body
    assert "running" in body  # the chain queue
    assert "no worker" in body  # default and training queues have no heartbeat


@pytest.mark.django_db
def test_status_explains_unreachable_chain(client, settings):
    settings.CHAIN_RPC_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    resp = client.get(reverse("status"))
    assert resp.status_code == 200
    assert "Not reachable" in resp.content.decode()


@pytest.mark.django_db
def test_healthz_ok_with_chain_and_broker(client, live_chain):
    resp = client.get(reverse("healthz"))
    data = resp.json()
    assert data["checks"]["database"]["ok"] is True
    assert data["checks"]["chain"]["ok"] is True
    assert resp.status_code == (200 if data["checks"]["broker"]["ok"] else 503)


@pytest.mark.django_db
def test_healthz_503_when_chain_down(client, settings):
    settings.CHAIN_RPC_URL = "http://127.0.0.1:9"
    resp = client.get(reverse("healthz"))
    assert resp.status_code == 503
    assert resp.json()["status"] == "degraded"
    assert resp.json()["checks"]["chain"]["ok"] is False


@pytest.mark.django_db
def test_healthz_reports_wrong_chain_id(client, settings, live_chain):
    settings.CHAIN_ID = 1
    resp = client.get(reverse("healthz"))
    assert resp.status_code == 503
    assert "expected 1" in resp.json()["checks"]["chain"]["error"]


@pytest.mark.django_db
def test_worker_heartbeat_job_records_queue():
    from bcfl_site.jobs import heartbeat_record

    heartbeat_record.run("training")
    assert WorkerHeartbeat.objects.get(queue="training").seen_at is not None


@pytest.mark.django_db
def test_healthz_reports_superlink(client, settings, live_chain):
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        settings.SUPERLINK_ADDRESS = f"127.0.0.1:{listener.getsockname()[1]}"
        up = client.get(reverse("healthz")).json()["checks"]["superlink"]
    settings.SUPERLINK_ADDRESS = "127.0.0.1:9"
    down = client.get(reverse("healthz")).json()["checks"]["superlink"]
    assert up["ok"] is True
    assert down["ok"] is False
    assert "Not running" in client.get(reverse("status")).content.decode()


def test_openapi_schema_generates_without_errors_or_warnings(tmp_path):
    from django.core.management import call_command

    out = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(out), "--validate", "--fail-on-warn")
    text = out.read_text()
    for path in ("/api/v1/tasks/", "/api/v1/auth/siwe/token", "/api/v1/tasks/{id}/rounds/{number}/proof/"):
        assert path in text


@pytest.mark.django_db
def test_api_docs_ui_is_served_without_a_cdn(client):
    resp = client.get(reverse("api-docs"))
    assert resp.status_code == 200
    body = resp.content.decode()
    assert "swagger-ui" in body
    assert "cdn.jsdelivr" not in body and "unpkg.com" not in body
