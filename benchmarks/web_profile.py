"""Where a request's time goes, without load: for each endpoint of `benchmarks/web.py`, one sample path through
Django's test client on the seeded PostgreSQL database: wall time (median of --repeat), the SQL it runs (count,
time in the database from EXPLAIN ANALYZE of every query, and the slowest plans), time spent rendering templates,
and the top functions of a cProfile (cumulative).

Run: .venv/bin/python benchmarks/web_profile.py --setup     (creates and seeds `bcfl_profile`, 10,000 models)
     .venv/bin/python benchmarks/web_profile.py [--only browse] [--plans] [--cprofile]
     .venv/bin/python benchmarks/web_profile.py --drop
The database is kept between runs (seeding takes about a minute); `--drop` removes it.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.web import _admin, _prepare  # noqa: E402

SAMPLES = {
    "home": "/",
    "browse": "/marketplace/?q=digits&model_kind=mlp&licence=on&sort=accuracy",
    "browse_plain": "/marketplace/",
    "detail": "/marketplace/models/{token}/",
    "api_list": "/api/v1/models/",
    "api_search": "/api/v1/models/?q=robust&licence_for_sale=true&sort=-licence_price",
}


def _env(args) -> dict:
    return dict(
        DJANGO_SETTINGS_MODULE="bcfl_site.settings.production",
        DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", secrets.token_hex(32)),
        DATABASE_URL=f"{args.pg_url.rsplit('/', 1)[0]}/{args.db}",
        DATABASE_CONN_MAX_AGE="60",
        BCFL_VAR_DIR=args.var_dir,
        LOG_LEVEL="WARNING",
        DJANGO_ALLOWED_HOSTS="testserver,127.0.0.1,localhost",
    )


def _timed_render():
    """Patch Template.render to add up the seconds spent in (outermost) template rendering."""
    from django.template import base

    spent = {"s": 0.0, "depth": 0}
    original = base.Template.render

    def render(self, context):
        spent["depth"] += 1
        t0 = time.perf_counter()
        try:
            return original(self, context)
        finally:
            spent["depth"] -= 1
            if spent["depth"] == 0:
                spent["s"] += time.perf_counter() - t0

    base.Template.render = render
    return spent


def _explain(sql: str, params) -> tuple[float, str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) " + sql, params)
        lines = [r[0] for r in cursor.fetchall()]
    total = next((float(x.split(":")[1].split()[0]) for x in lines if x.startswith("Execution Time")), 0.0)
    return total, "\n".join(lines)


def profile(name: str, path: str, args, rendered: dict) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_X_FORWARDED_PROTO="https")
    assert client.get(path).status_code == 200
    walls, renders = [], []
    for _ in range(args.repeat):
        rendered["s"] = 0.0
        t0 = time.perf_counter()
        client.get(path)
        walls.append(1000 * (time.perf_counter() - t0))
        renders.append(1000 * rendered["s"])
    with CaptureQueriesContext(connection) as ctx:
        client.get(path)
    plans = []
    for q in ctx.captured_queries:
        sql = q["sql"]
        ms, plan = _explain(sql, None) if "%s" not in sql else (0.0, "")
        plans.append((ms, sql, plan))
    db_ms = sum(p[0] for p in plans)
    print(
        f"{name:12s} {path}\n  wall median {statistics.median(walls):.1f} ms (min {min(walls):.1f}), "
        f"render median {statistics.median(renders):.1f} ms, {len(plans)} queries, "
        f"database {db_ms:.1f} ms (EXPLAIN ANALYZE)"
    )
    for ms, sql, plan in sorted(plans, reverse=True)[: args.plans]:
        print(f"  -- {ms:.2f} ms: {sql[:300]}")
        if args.show_plans:
            print("     " + plan.replace("\n", "\n     "))
    if args.cprofile:
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(5):
            client.get(path)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(args.cprofile)
        print(out.getvalue())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--setup", action="store_true", help="create, migrate and seed the database first")
    p.add_argument("--drop", action="store_true", help="drop the database and stop")
    p.add_argument("--models", type=int, default=10_000)
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--db", default="bcfl_profile")
    p.add_argument("--var-dir", default=str(Path(tempfile.gettempdir()) / "bcfl-web-profile"))
    p.add_argument("--only", action="append", help="endpoint names (default: all)")
    p.add_argument("--path", action="append", default=[], help="NAME=PATH: profile this path too")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--plans", type=int, default=3, help="slowest queries to list")
    p.add_argument("--show-plans", action="store_true", help="print their EXPLAIN ANALYZE plans")
    p.add_argument("--cprofile", type=int, default=0, help="print the top N functions (cumulative)")
    args = p.parse_args()
    if args.drop:
        _admin(args.pg_url, f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        return
    env = _env(args)
    if args.setup:
        _admin(args.pg_url, f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        _admin(args.pg_url, f'CREATE DATABASE "{args.db}"')
        summary = _prepare(argparse.Namespace(models=args.models), env)
        token = summary["token_ids"][len(summary["token_ids"]) // 2]
        Path(args.var_dir, "sample_token").write_text(str(token))
        print(f"seeded in {summary['seed_s']} s")
    else:
        os.environ.update(env)
        import django

        django.setup()
    token = Path(args.var_dir, "sample_token").read_text().strip()
    rendered = _timed_render()
    samples = dict(SAMPLES, **dict(x.split("=", 1) for x in args.path))
    for name, path in samples.items():
        if not args.only or name in args.only:
            profile(name, path.format(token=token), args, rendered)


if __name__ == "__main__":
    main()
