"""The SuperLink's public port serves other machines the Fleet API only (training.superlink_guard).

Unit tests drive the ASGI middleware directly; the real test starts the platform's SuperLink on all interfaces
and calls it from this machine's non-loopback address, as an outsider holding the CA certificate would.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import urllib.error
import urllib.request

import pytest

from training import superlink as sl
from training.superlink_guard import REFUSAL, FleetOnlyFromOutside, is_public_path, split_args


@pytest.mark.parametrize(
    ("path", "public"),
    [
        ("/v1/fleet/pull-messages", True),
        ("/v1/fleet/register-node", True),
        ("/health", True),
        ("/v1/control/start-run", False),
        ("/v1/control/list-runs", False),
        ("/v1/runtime/acquire-task", False),
        ("/v1/fleet/../control/start-run", False),
        ("/v1/fleet//../control/stop-run", False),
        ("/v1/fleet/./pull-messages", False),
        ("/v1/fleetx/pull-messages", False),
        ("/docs", False),
        ("", False),
    ],
)
def test_public_paths(path, public):
    assert is_public_path(path) is public


def _call(middleware, path: str, peer: str) -> tuple[int, bytes, bool]:
    reached = []

    async def app(scope, receive, send):
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": path, "client": (peer, 50000), "method": "POST", "headers": []}
    asyncio.run(middleware(app)(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), bool(reached)


def test_outsiders_reach_the_fleet_api_only():
    guard = lambda app: FleetOnlyFromOutside(app)  # noqa: E731
    assert _call(guard, "/v1/fleet/pull-messages", "203.0.113.9") == (200, b"ok", True)
    status, body, reached = _call(guard, "/v1/control/start-run", "203.0.113.9")
    assert (status, reached) == (403, False) and json.loads(body) == {"detail": REFUSAL}
    assert _call(guard, "/v1/runtime/acquire-task", "203.0.113.9")[0] == 403
    # the platform's own host keeps every API
    assert _call(guard, "/v1/control/start-run", "127.0.0.1") == (200, b"ok", True)
    assert _call(guard, "/v1/runtime/acquire-task", "::1") == (200, b"ok", True)


def test_control_hosts_are_configurable():
    guard = lambda app: FleetOnlyFromOutside(app, ["10.0.0.5"])  # noqa: E731
    assert _call(guard, "/v1/control/list-runs", "10.0.0.5")[0] == 200
    assert _call(guard, "/v1/control/list-runs", "127.0.0.1")[0] == 403


def test_split_args():
    assert split_args(["--control-hosts", "a,b", "--port", "1"]) == (("a", "b"), ["--port", "1"])
    assert split_args(["--control-hosts=c", "--insecure"]) == (("c",), ["--insecure"])
    assert split_args(["--host", "h"]) == (("127.0.0.1", "::1"), ["--host", "h"])


def test_superlink_runs_behind_the_guard(tmp_path):
    cmd = sl.SuperLink(var_dir=tmp_path, address="127.0.0.1:9999", control_hosts=("127.0.0.1",)).command()
    assert cmd[1:3] == ["-m", "training.superlink_guard"]
    assert cmd[cmd.index("--control-hosts") + 1] == "127.0.0.1"


def _outside_address() -> str | None:
    """This machine's first non-loopback IPv4 address (a peer other than loopback), if any."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.254", 9))  # no packet is sent; picks the outgoing interface
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def _post(url: str, ca_cert, body: bytes = b"") -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(ca_cert))
    context.check_hostname = False  # the outside address is not among the certificate's names
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 (https only)
    request.add_header("Content-Type", "application/protobuf")
    try:
        with urllib.request.urlopen(request, context=context, timeout=20) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_a_real_superlink_refuses_control_calls_from_another_machine(tmp_path):
    outside = _outside_address()
    if outside is None:
        pytest.skip("this machine has no non-loopback IPv4 address to call from")
    port = sl.free_port()
    link = sl.SuperLink(var_dir=tmp_path, address=f"0.0.0.0:{port}")
    with link:
        # the platform's own flwr CLI (loopback) still lists runs
        assert link.flwr_json("ls")["success"] is True
        # an outsider with the CA certificate: no Control or Runtime API, the Fleet API answers
        status, body = _post(f"https://{outside}:{port}/v1/control/list-runs", link.certs["ca_cert"])
        assert status == 403 and json.loads(body) == {"detail": REFUSAL}
        assert _post(f"https://{outside}:{port}/v1/runtime/acquire-task", link.certs["ca_cert"])[0] == 403
        status, body = _post(f"https://{outside}:{port}/v1/fleet/get-run", link.certs["ca_cert"])
        assert status != 403 and REFUSAL.encode() not in body, (status, body)
