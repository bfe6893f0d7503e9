"""``python -m training.client``: the BCFL participant CLI.

Runs without Django, on any machine with this repository, given the site URL and the
SuperLink address. State lives in ``~/.bcfl`` (``--home`` or ``$BCFL_HOME``)::

    <home>/config.json            site, API token, wallet address, wallet key path (0600)
    <home>/wallet.key             default wallet key file (``keygen``; 0600)
    <home>/tasks/<id>/node_key    the SuperNode's ECDSA P-384 key pair for task <id> (+ .pub)
    <home>/tasks/<id>/progress.jsonl, supernode.log, flwr/   training run files

Only the data *summary* (feature shape, examples per label, count) and the node *public*
key are ever sent; the data file and both private keys stay on this machine.

The client library (``login``, ``check``, ``join``, ``wait_registered``, ``start_node``, ``follow``) is
``training.client.participant``, which ``manage.py simulate_participants`` uses too; this module is
the command line over it (names re-exported).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TextIO

from training.client import api
from training.client.home import DEFAULT_HOME, CliError, Home
from training.client.participant import (
    MAX_NODE_RESTARTS,
    check,
    check_report,
    follow,
    join,
    keygen,
    local_rounds,
    login,
    node_config_for,
    progress_bar,
    start_node,
    wait_registered,
)
from training.client.wallet import KeyFileError, load_wallet

# Re-exported: the client library as callers imported it from here.
__all__ = [
    "DEFAULT_HOME",
    "MAX_NODE_RESTARTS",
    "CliError",
    "Home",
    "build_parser",
    "check",
    "check_report",
    "follow",
    "join",
    "keygen",
    "load_wallet",
    "local_rounds",
    "login",
    "main",
    "node_config_for",
    "progress_bar",
    "start_node",
    "wait_registered",
]

PROG = "python -m training.client"


# --- argparse ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="BCFL participant: sign in with your wallet, check your data against a task, join it, "
        "and train with your own Flower SuperNode. Your data and keys never leave this machine.",
    )
    p.add_argument("--home", help=f"state directory (default ${{BCFL_HOME}} or {DEFAULT_HOME})")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("keygen", help="create a new wallet key file (0600)")
    s.add_argument("--out", help="key file to create (default <home>/wallet.key)")
    s.add_argument(
        "--password-env",
        metavar="VAR",
        help="encrypt as a keystore JSON with the password in this environment variable",
    )

    s = sub.add_parser("login", help="sign in with your wallet (SIWE) and store an API token")
    s.add_argument("--site", required=True, help="platform URL, e.g. https://bcfl.example.org")
    s.add_argument(
        "--key", required=True, help="wallet key file (plain hex 0600, or keystore with $BCFL_KEY_PASSWORD)"
    )

    for name, helptext in (
        ("check", "check your data file against a task's data spec, locally"),
        ("join", "check, then join a task with a signed EIP-712 Join (sends only a summary)"),
    ):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("--task", type=int, required=True, help="task id on the platform")
        s.add_argument(
            "--data", required=True, help="your data file (.npz with x and y, or .csv, label last)"
        )
        s.add_argument("--site", help="platform URL (default: the one you logged in to)")
        if name == "join":
            s.add_argument("--key", help="wallet key file (default: the one you logged in with)")

    _add_train_parser(sub)
    s = sub.add_parser("status", help="your participations and their state")
    s.add_argument("--task", type=int, help="only this task")
    return p


def _add_train_parser(sub) -> None:
    s = sub.add_parser("train", help="run your SuperNode for a joined task until its training ends")
    s.add_argument("--task", type=int, required=True)
    s.add_argument("--data", required=True)
    s.add_argument(
        "--superlink", required=True, metavar="HOST:PORT", help="the platform's SuperLink Fleet address"
    )
    s.add_argument("--root-cert", required=True, metavar="FILE", help="the platform's CA certificate")
    s.add_argument(
        "--isolation",
        choices=("warm", "subprocess"),
        default="warm",
        help="warm: one process imports torch once and forks per task (fast); subprocess: stock Flower",
    )
    s.add_argument(
        "--wait-timeout",
        type=float,
        default=None,
        metavar="S",
        help="give up if the node is not registered after S seconds (default: wait)",
    )
    s.add_argument("--poll", type=float, default=3.0, metavar="S", help="progress refresh interval")


def main(argv: list[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    home = Home(args.home)
    try:
        return _COMMANDS[args.command](home, args, out)
    except CliError as exc:
        print(f"error: {exc}" if exc.code != 3 else str(exc), file=err)
        return exc.code
    except api.JoinRefused as exc:
        print(
            f"The platform refused to let you join: {exc.body.get('detail') if exc.body else exc}", file=err
        )
        if exc.code:
            print(f"(reason: {exc.code})", file=err)
        return 3
    except (api.ApiError, KeyFileError) as exc:
        print(f"error: {exc}", file=err)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted.", file=err)
        return 130


def _cmd_keygen(home: Home, args, out: TextIO) -> int:
    password = None
    if args.password_env:
        password = os.environ.get(args.password_env)
        if not password:
            raise CliError(f"${args.password_env} is empty; set the keystore password there.")
    wallet, path = keygen(home, args.out, password)
    print(f"New wallet {wallet.address}", file=out)
    print(
        f"Key file: {path} (mode 600{', encrypted keystore' if password else ''}). Keep it secret; "
        "back it up.",
        file=out,
    )
    return 0


def _cmd_login(home: Home, args, out: TextIO) -> int:
    result = login(home, args.site, args.key)
    print(f"Logged in to {home.config()['site']} as {result['address']}.", file=out)
    return 0


def _cmd_check(home: Home, args, out: TextIO) -> int:
    task, summary, problems = check(home, args.task, args.data, args.site)
    print(check_report(task, summary, problems, args.data), file=out)
    return 0 if not problems else 3


def _cmd_join(home: Home, args, out: TextIO) -> int:
    participation = join(home, args.task, args.data, args.site, args.key)
    print(
        f"Joined task {participation['task']} ({participation.get('task_title', '')}) as "
        f"{participation['wallet']}; status {participation['status']}.",
        file=out,
    )
    print(
        f"Sent: your data summary ({participation['data_summary'].get('n')} examples) and your node public key "
        f"({home.task_dir(args.task) / 'node_key.pub'}). Next: `train --task {args.task} ...`.",
        file=out,
    )
    return 0


def _cmd_train(home: Home, args, out: TextIO) -> int:
    task, summary, problems = check(home, args.task, args.data)
    if problems:
        raise CliError(check_report(task, summary, problems, args.data), code=3)
    print(f"Waiting for the platform to register your node for task {args.task}…", file=out, flush=True)
    node_id = wait_registered(home, args.task, timeout=args.wait_timeout, poll=min(args.poll, 5.0))
    print(
        f"Node registered{f' (node id {node_id})' if node_id > 0 else ''}. Starting your SuperNode "
        f"({args.isolation}) against {args.superlink}…",
        file=out,
        flush=True,
    )
    handle = start_node(
        home,
        args.task,
        args.data,
        superlink=args.superlink,
        root_cert=args.root_cert,
        isolation=args.isolation,
    )
    nodes = {"node": handle}
    try:
        status = follow(home, args.task, out=out, poll=args.poll, nodes=nodes)
    except KeyboardInterrupt:
        print("\nStopping your SuperNode…", file=out, flush=True)
        raise
    finally:
        nodes["node"].stop()
    print(f"Task {args.task} is {status}. Your SuperNode has stopped.", file=out)
    return 0 if status != "failed" else 1


def _cmd_status(home: Home, args, out: TextIO) -> int:
    client = home.client(need_login=True)
    rows = client.participations()
    if args.task is not None:
        rows = [r for r in rows if int(r["task"]) == args.task]
    cfg = home.config()
    print(f"{cfg.get('address')} on {cfg.get('site')}", file=out)
    if not rows:
        print("No participations" + (f" in task {args.task}." if args.task is not None else "."), file=out)
        return 0
    trainings: dict[int, dict | None] = {}
    for r in rows:
        tid = int(r["task"])
        if tid not in trainings:
            trainings[tid] = client.training(tid)
        state = api.participant_state(trainings[tid], r["wallet"])
        node = api.node_registration(r, state)
        node_text = (
            "node not registered yet" if node is None else (f"node {node}" if node > 0 else "node registered")
        )
        mine = local_rounds(home, int(r["task"]))
        trained = f", trained {len(mine)} round(s) here" if mine else ""
        judged = ""
        if state and (state.get("updates_accepted") or state.get("updates_rejected")):
            judged = f", updates accepted {state['updates_accepted']}, rejected {state['updates_rejected']}"
            if state.get("last_rejection_reason"):
                judged += f" (last: {state['last_rejection_reason']})"
        print(
            f"task {r['task']} {r.get('task_title', '')!r}: task {r.get('task_status')}, you {r['status']}, "
            f"{node_text}{trained}{judged}",
            file=out,
        )
        for line in api.defence_lines(state):
            print(f"  {line}", file=out)
    return 0


_COMMANDS: dict[str, Callable[[Home, argparse.Namespace, TextIO], int]] = {
    "keygen": _cmd_keygen,
    "login": _cmd_login,
    "check": _cmd_check,
    "join": _cmd_join,
    "train": _cmd_train,
    "status": _cmd_status,
}
