from functools import cache
from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET

from bcfl_site import selectors


@require_GET
def home(request):
    """For people: tasks recruiting now, trained models, what participants earn, how it works."""
    context = {
        "recruiting": selectors.recruiting_tasks(),
        "models": selectors.completed_models(),
    }
    return render(request, "home.html", context)


@require_GET
def status(request):
    """System status: chain, SuperLink, workers, broker, deployed contracts."""
    context = {
        "chain": selectors.chain_status(),
        "deployments": selectors.deployments(),
        "workers": selectors.worker_status(),
        "broker": selectors.broker_status(),
        "superlink": selectors.superlink_status(),
    }
    return render(request, "status.html", context)


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


@cache
def _favicon_bytes() -> bytes | None:
    path = finders.find("favicon.ico")
    return Path(path).read_bytes() if path else None


@cache_control(max_age=86400, public=True)
@require_GET
def favicon(request):
    """/favicon.ico, which browsers ask for on pages that link no icon (admin, API docs, JSON)."""
    data = _favicon_bytes()
    if data is None:
        raise Http404("No favicon in the static files.")
    return HttpResponse(data, content_type="image/x-icon")
