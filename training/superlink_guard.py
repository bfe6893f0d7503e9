"""``flower-superlink`` with its public port narrowed to the Fleet API: ``python -m training.superlink_guard``.

Flower 1.42 serves every SuperLink API from one HTTPS port (uvicorn + FastAPI): the Fleet API the SuperNodes
use (``/v1/fleet/...``), the Control API the ``flwr`` CLI uses (``/v1/control/...``: start, stop and list
runs) and the Runtime API of the ServerApp processes (``/v1/runtime/...``). Open-source Flower authenticates
the SuperNodes (``--enable-supernode-auth``) but not Control API callers, and the platform gives every
participant the CA certificate. So anyone who could reach the public port could list the platform's runs,
stop them, or start a run of their own Flower app, whose ClientApp the participants' SuperNodes would then
execute.

This entry point runs flwr's own ``flower-superlink`` main with one change: the ASGI app uvicorn serves is
wrapped in `FleetOnlyFromOutside`, which answers HTTP 403 to any request outside the Fleet API and the
health check unless the TCP peer is one of the control hosts (loopback by default: the platform's workers,
its ``flwr`` CLI calls and the ServerApp processes run on the SuperLink's machine). SuperNodes only ever call
``/v1/fleet/...`` (``flwr.supernode.fleet_http_client``), so participants notice nothing.

Usage: ``python -m training.superlink_guard [--control-hosts 127.0.0.1,::1] <flower-superlink arguments>``.
Behind a reverse proxy on the same machine every peer looks like loopback: such a proxy must itself forward
only ``/v1/fleet/`` (see the README's "Running it for real").
"""

from __future__ import annotations

import json
import posixpath
import sys
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]

PUBLIC_PREFIXES = ("/v1/fleet/",)
PUBLIC_PATHS = ("/health",)
DEFAULT_CONTROL_HOSTS = ("127.0.0.1", "::1")
REFUSAL = (
    "Only the Fleet API (/v1/fleet/) is served to other machines; the Control and Runtime APIs answer the "
    "platform's own host only."
)


def is_public_path(path: str) -> bool:
    """Is `path` (an ASGI scope's decoded path) part of what other machines may call?

    Paths that are not in normal form (``..``, ``//``, ``.`` segments) are never public, so no spelling
    reaches another API through the Fleet prefix.
    """
    if not path.startswith("/") or posixpath.normpath(path) != path.rstrip("/") or "//" in path:
        return False
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class FleetOnlyFromOutside:
    """ASGI middleware: requests from peers not in `control_hosts` reach only the Fleet API and ``/health``.

    Refused requests get HTTP 403 with ``{"detail": REFUSAL}`` and never reach flwr. Lifespan and other
    non-HTTP scopes pass through untouched.
    """

    def __init__(self, app: ASGIApp, control_hosts: Iterable[str] = DEFAULT_CONTROL_HOSTS) -> None:
        self.app = app
        self.control_hosts = frozenset(h.strip() for h in control_hosts if h.strip())

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            peer = (scope.get("client") or ("", 0))[0]
            if peer not in self.control_hosts and not is_public_path(scope.get("path", "")):
                await _forbidden(scope, send)
                return
        await self.app(scope, receive, send)


async def _forbidden(scope: Scope, send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"detail": REFUSAL}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def split_args(argv: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """(control hosts, the remaining flower-superlink arguments) from this entry point's argv."""
    hosts, rest = DEFAULT_CONTROL_HOSTS, []
    it = iter(argv)
    for arg in it:
        if arg == "--control-hosts":
            hosts = tuple(h for h in next(it, "").split(",") if h.strip())
        elif arg.startswith("--control-hosts="):
            hosts = tuple(h for h in arg.split("=", 1)[1].split(",") if h.strip())
        else:
            rest.append(arg)
    return hosts, rest


def main(argv: list[str] | None = None) -> int:
    """Run flwr's ``flower-superlink`` with uvicorn's app wrapped in `FleetOnlyFromOutside`."""
    hosts, rest = split_args(list(sys.argv[1:] if argv is None else argv))
    import uvicorn
    from flwr.superlink.cli import flower_superlink

    serve = uvicorn.run

    def guarded_run(app, *args, **kwargs):
        return serve(FleetOnlyFromOutside(app, hosts), *args, **kwargs)

    uvicorn.run = guarded_run  # flower_superlink calls uvicorn.run(app=...) once, at start
    sys.argv = ["flower-superlink", *rest]
    return flower_superlink() or 0


if __name__ == "__main__":
    sys.exit(main())
