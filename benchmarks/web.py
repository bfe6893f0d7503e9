"""Web latency and throughput of the marketplace's pages and API on PostgreSQL with 10,000 models.

Creates a scratch PostgreSQL database (`bcfl_bench`, dropped at the end, also on Ctrl-C), migrates it, bulk-creates
the data (`benchmarks/web_seed.py`), serves the site with gunicorn (sync workers) under the production settings
(DEBUG off, HTTPS expected behind a proxy: the load generator sends `X-Forwarded-Proto: https`), and drives each
endpoint with locust headless on loopback at a bounded rate (`--rate` requests a second in all, spread over
`--users` users with `constant_throughput`; `--rate 0` = no think time, saturation) for a fixed duration, each
endpoint after the machine's 1-minute load average fell below `--quiet-load` (waiting at most `--quiet-wait` s:
the machine is shared; the load before and after each endpoint is recorded). Prints
a table of p50/p95/p99 latency (ms) and requests per second per endpoint and writes benchmarks/results/web.json.

Run: .venv/bin/python benchmarks/web.py [--models 10000] [--rate 20] [--users 4] [--seconds 20] (or `make bench-web`)
Needs: a local PostgreSQL (127.0.0.1:5432, trust auth for `postgres`; `--pg-url` to change).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "web.json"
BIN = Path(sys.executable).parent
TARGETS_MS = {"api_list": 25, "browse": 50, "detail": 50}  # p95 targets of the Marketplace issue


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _admin(pg_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql)


def _environment(args, var_dir: str) -> dict:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="bcfl_site.settings.production",
        DJANGO_SECRET_KEY=secrets.token_hex(32),
        DATABASE_URL=f"{args.pg_url.rsplit('/', 1)[0]}/{args.db}",
        DATABASE_CONN_MAX_AGE="60",  # persistent connections, as a production deployment sets
        BCFL_VAR_DIR=var_dir,
        LOG_LEVEL="WARNING",
    )
    return env


def _prepare(args, env: dict) -> dict:
    """Migrate and seed in this process (Django configured from `env`); returns the seed summary + timings."""
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from benchmarks.web_seed import seed

    t0 = time.monotonic()
    call_command("migrate", verbosity=0, interactive=False)
    t1 = time.monotonic()
    summary = seed(n_models=args.models)
    t2 = time.monotonic()
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "VACUUM (ANALYZE)"
        )  # what autovacuum does to a live database: GIN pending list, hint bits
    connections.close_all()
    summary.update(migrate_s=round(t1 - t0, 1), seed_s=round(t2 - t1, 1))
    return summary


def _endpoints(token_ids: list[int], rng: random.Random) -> dict[str, list[str]]:
    searches = ("digits", "mnist", "robust", "medical", "wine", "sensor", "har", "federated")
    browse = [
        f"/marketplace/?q={q}&model_kind={kind}&licence=on&sort={sort}"
        for q in searches
        for kind in ("mlp", "cnn")
        for sort in ("newest", "accuracy")
    ]
    return {
        "home": ["/"],
        "browse": browse,
        "detail": [f"/marketplace/models/{t}/" for t in rng.sample(token_ids, min(500, len(token_ids)))],
        "api_list": ["/api/v1/models/"],
    }


def _start_gunicorn(env: dict, port: int, workers: int, log: Path) -> subprocess.Popen:
    cmd = [str(BIN / "gunicorn"), "bcfl_site.wsgi:application", "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    cmd += ["--access-logfile", "/dev/null", "--error-logfile", str(log), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            _get(port, "/")
            return proc
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("gunicorn did not answer within 60 s")


def _get(port: int, path: str) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"X-Forwarded-Proto": "https"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback only
        resp.read()
        return resp.status


def _locust(name: str, paths: list[str], port: int, args, env: dict, out: Path) -> dict:
    for path in paths[:20]:  # warm-up: every worker's templates, connections, caches
        _get(port, path)
        _get(port, path)
    prefix = out / name
    cmd = [str(BIN / "locust"), "-f", str(ROOT / "benchmarks" / "web_locustfile.py"), "--headless"]
    cmd += ["-u", str(args.users), "-r", str(args.users), "-t", f"{args.seconds}s", "--stop-timeout", "5"]
    cmd += [
        "--host",
        f"http://127.0.0.1:{port}",
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "ERROR",
    ]
    lenv = dict(
        env,
        BENCH_NAME=name,
        BENCH_PATHS="\n".join(paths),
        BENCH_USER_RPS=str(args.rate / args.users),
        BENCH_USERS=str(args.users),
    )
    subprocess.run(
        cmd, env=lenv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=args.seconds + 60
    )
    with open(f"{prefix}_stats.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["Name"] == name)
    return {
        "requests": int(row["Request Count"]),
        "failures": int(row["Failure Count"]),
        "p50_ms": float(row["50%"]),
        "p95_ms": float(row["95%"]),
        "p99_ms": float(row["99%"]),
        "mean_ms": round(float(row["Average Response Time"]), 1),
        "rps": round(float(row["Requests/s"]), 1),
        "bytes": round(float(row["Average Content Size"])),
    }


def _table(results: dict) -> str:
    lines = [
        "| endpoint | requests | failures | p50 (ms) | p95 (ms) | p99 (ms) | req/s | p95 target (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        target = TARGETS_MS.get(name)
        mark = "" if target is None else f"≤ {target} ({'met' if r['p95_ms'] <= target else 'not met'})"
        lines.append(
            f"| {name} `{r['path']}` | {r['requests']:,} | {r['failures']} | {r['p50_ms']:g} | {r['p95_ms']:g} "
            f"| {r['p99_ms']:g} | {r['rps']:g} | {mark} |"
        )
    return "\n".join(lines)


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _wait_for_quiet(args) -> None:
    """The machine is shared: wait (at most --quiet-wait s) for the 1-minute load average to drop below
    --quiet-load before measuring an endpoint; the load before and after is recorded either way."""
    deadline = time.monotonic() + args.quiet_wait
    while os.getloadavg()[0] >= args.quiet_load and time.monotonic() < deadline:
        time.sleep(5)


def _run(args, tmp: Path) -> dict:
    env = _environment(args, str(tmp / "var"))
    summary = _prepare(args, env)
    print(f"seeded {summary['rows']} in {summary['seed_s']} s (migrate {summary['migrate_s']} s)", flush=True)
    port = _free_port()
    gunicorn = _start_gunicorn(env, port, args.workers, tmp / "gunicorn.log")
    try:
        results = {}
        for name, paths in _endpoints(summary["token_ids"], random.Random(1)).items():
            if args.only and name not in args.only:
                continue
            _wait_for_quiet(args)
            load = _load_average()
            r = _locust(name, paths, port, args, env, tmp)
            r.update(path=paths[0] if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} variants)")
            r["load_average_before"], r["load_average_after"] = load, _load_average()
            results[name] = r
            print(
                f"{name}: p50 {r['p50_ms']:g} p95 {r['p95_ms']:g} p99 {r['p99_ms']:g} ms, {r['rps']:g} req/s, {r['failures']} failures, load before {load} after {r['load_average_after']}",
                flush=True,
            )
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        try:
            gunicorn.wait(timeout=20)
        except subprocess.TimeoutExpired:
            gunicorn.kill()
    return {"summary": summary, "results": results}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=10_000)
    p.add_argument("--users", type=int, default=4, help="concurrent locust users")
    p.add_argument("--rate", type=float, default=20, help="requests a second in all (0: no think time)")
    p.add_argument("--seconds", type=int, default=20, help="measured seconds per endpoint")
    p.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--db", default="bcfl_bench")
    p.add_argument(
        "--quiet-load", type=float, default=1.0, help="wait for a 1-minute load average below this"
    )
    p.add_argument("--quiet-wait", type=float, default=120, help="... at most this many seconds per endpoint")
    p.add_argument("--no-write", action="store_true", help="print only; leave web.json alone")
    p.add_argument("--only", action="append", help="endpoint names to measure (implies --no-write)")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    _admin(args.pg_url, f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
    _admin(args.pg_url, f'CREATE DATABASE "{args.db}"')
    tmp = Path(tempfile.mkdtemp(prefix="bcfl-web-bench-"))
    try:
        out = _run(args, tmp)
    finally:
        _admin(args.pg_url, f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)
    print(_table(out["results"]))
    record = {
        "config": {
            "models": args.models,
            "locust_users": args.users,
            "rate_rps": args.rate,
            "quiet_load": args.quiet_load,
            "seconds_per_endpoint": args.seconds,
            "gunicorn_workers": args.workers,
            "settings": "bcfl_site.settings.production (DEBUG off), DATABASE_CONN_MAX_AGE=60",
            "database": "PostgreSQL on 127.0.0.1",
            "cpus": os.cpu_count(),
        },
        "rows": out["summary"]["rows"],
        "seed_s": out["summary"]["seed_s"],
        "results": out["results"],
        "targets_p95_ms": TARGETS_MS,
    }
    if not (args.no_write or args.only):
        RESULTS.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
