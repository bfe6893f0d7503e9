from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from bcfl_site import selectors


@require_GET
def home(request):
    context = {
        "chain": selectors.chain_status(),
        "deployments": selectors.deployments(),
        "workers": selectors.worker_status(),
        "broker": selectors.broker_status(),
        "superlink": selectors.superlink_status(),
    }
    return render(request, "home.html", context)


@never_cache
@require_GET
def healthz(request):
    """Readiness: database, broker and chain must answer; SuperLink and workers are reported, not required
    (the site keeps serving pages and the ledger keeps working while training infrastructure restarts)."""
    checks = {
        "database": selectors.database_status(),
        "broker": selectors.broker_status(),
        "chain": selectors.chain_status(),
        "superlink": selectors.superlink_status(),
        "workers": selectors.worker_status(),
    }
    ok = all(checks[name]["ok"] for name in ("database", "broker", "chain"))
    body = {"status": "ok" if ok else "degraded", "checks": checks}
    return JsonResponse(body, status=200 if ok else 503, json_dumps_params={"default": str})
