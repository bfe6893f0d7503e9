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
    }
    return render(request, "home.html", context)


@never_cache
@require_GET
def healthz(request):
    """Liveness/readiness: database, broker and chain must answer; workers are reported, not required."""
    checks = {
        "database": selectors.database_status(),
        "broker": selectors.broker_status(),
        "chain": selectors.chain_status(),
        "workers": selectors.worker_status(),
    }
    ok = all(checks[name]["ok"] for name in ("database", "broker", "chain"))
    body = {"status": "ok" if ok else "degraded", "checks": checks}
    return JsonResponse(body, status=200 if ok else 503, json_dumps_params={"default": str})
