"""The participant client library: what ``python -m training.client`` and ``manage.py simulate_participants`` do.

``login`` (SIWE), ``check`` (the data file against the task's spec, locally), ``join`` (signed EIP-712
Join with the data summary and the node's public key), ``wait_registered``, ``start_node`` (the
participant's SuperNode) and ``follow`` (progress until the task's run ends). Runs without Django.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from training.client import api
from training.client.home import CliError, Home
from training.client.wallet import Wallet, create_key_file, load_wallet

MAX_NODE_RESTARTS = 5


def keygen(home: Home, out: str | Path | None = None, password: str | None = None) -> tuple[Wallet, Path]:
    path = Path(out).expanduser() if out else home.default_key_path
    return create_key_file(path, password=password), path


def login(home: Home, site: str, key_path: str | Path) -> dict:
    wallet = load_wallet(key_path)
    client = api.Client(site)
    result = client.login(wallet)
    home.save_config(
        site=client.site,
        token=result["token"],
        address=result["address"],
        key_path=str(Path(key_path).resolve()),
    )
    return result


def check(
    home: Home, task_id: int, data: str | Path, site: str | None = None
) -> tuple[dict, dict | None, list[str]]:
    """(task, summary, problems): the data file checked locally against the task's downloaded spec."""
    client = home.client(site)
    task = client.task(task_id)
    summary, problems = api.data_check(data, api.task_data_spec(task))
    return task, summary, problems


def join(
    home: Home, task_id: int, data: str | Path, site: str | None = None, key: str | Path | None = None
) -> dict:
    task, summary, problems = check(home, task_id, data, site)
    if problems:
        raise CliError(check_report(task, summary, problems, data), code=3)
    if task.get("status") != "recruiting":
        raise CliError(f"Task {task_id} is {task.get('status')}, not recruiting participants.", code=3)
    client = home.client(site, need_login=True)
    wallet = home.wallet(key)
    if wallet.address.lower() != str(home.config().get("address", "")).lower():
        raise CliError(
            f"You are logged in as {home.config().get('address')}, not {wallet.address}; run `login` again."
        )
    _, public_key = home.node_key(task_id)
    return client.join(task, wallet, node_public_key=public_key, data_summary=summary)


def wait_registered(
    home: Home,
    task_id: int,
    *,
    timeout: float | None = None,
    poll: float = 2.0,
    on_wait: Callable[[dict | None], None] | None = None,
) -> int:
    """Block until the platform has registered this participant's node; returns its node id (-1: not shown)."""
    client = home.client(need_login=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        participation = client.participation(task_id)
        if participation is None:
            raise CliError(
                f"You have not joined task {task_id}. Run `join --task {task_id} --data FILE` first."
            )
        state = api.participant_state(client.training(task_id), participation["wallet"])
        node_id = api.node_registration(participation, state)
        if node_id is not None:
            return node_id
        if state and state.get("node_status") == "failed":
            raise CliError(
                f"The platform could not register your node: {state.get('node_error') or 'no reason given'}"
            )
        task_status = participation.get("task_status")
        if task_status in api.ENDED_STATUSES:
            raise CliError(f"Task {task_id} is {task_status}; your node was never registered.")
        if participation.get("status") in ("excluded", "withdrawn"):
            raise CliError(f"Your participation in task {task_id} is {participation['status']}.")
        if deadline is not None and time.monotonic() > deadline:
            raise CliError(
                f"The platform has not registered your node for task {task_id} after {timeout:.0f}s."
            )
        if on_wait:
            on_wait(participation)
        time.sleep(poll)


def node_config_for(
    home: Home,
    task_id: int,
    data: str | Path,
    key_path: str | Path | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    key_path = key_path or home.config().get("key_path")
    if not key_path:
        raise CliError("No wallet key file known. Run `login` first.")
    config = {
        "data-path": str(Path(data).resolve()),
        "key-path": str(Path(key_path).resolve()),
        "progress-path": str(home.task_dir(task_id) / "progress.jsonl"),
    }
    config.update(extra or {})
    return config


def start_node(
    home: Home,
    task_id: int,
    data: str | Path,
    *,
    superlink: str,
    root_cert: str | Path,
    isolation: str = "warm",
    key_path: str | Path | None = None,
    extra_node_config: Mapping[str, Any] | None = None,
):
    """Start this participant's SuperNode (``training.client.supernode``); returns its handle (call ``stop()``)."""
    from training.client import supernode

    if not Path(root_cert).is_file():
        raise CliError(
            f"Root certificate {root_cert} does not exist (ask the platform for its CA certificate)."
        )
    node_key, _ = home.node_key(task_id, create=False)
    load_wallet(key_path or home.config().get("key_path", ""))  # fail here, not in every round
    tdir = home.task_dir(task_id)
    return supernode.start_supernode(
        superlink=superlink,
        isolation=isolation,
        root_certificates=Path(root_cert).resolve(),
        auth_private_key=node_key,
        node_config=node_config_for(home, task_id, data, key_path, extra_node_config),
        flwr_home=tdir / "flwr",
        log_path=tdir / "supernode.log",
        preload=("eth_account", "eth_utils") if isolation == "warm" else (),
    )


def local_rounds(home: Home, task_id: int) -> list[dict]:
    path = home.task_dir(task_id) / "progress.jsonl"
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError):
        return []


def follow(
    home: Home,
    task_id: int,
    *,
    out: TextIO = sys.stdout,
    poll: float = 3.0,
    timeout: float | None = None,
    nodes: dict | None = None,
) -> str:
    """Show progress until the task's run ends (or timeout); returns the task status.

    ``nodes`` holds this participant's SuperNode handle under "node" and is updated in place: while the task
    trains, a node that stopped (flwr's SuperNode exits when the SuperLink restarts) is started again, with
    backoff, up to MAX_NODE_RESTARTS times.
    """
    from training.client.supernode import revive

    client = home.client()
    deadline = None if timeout is None else time.monotonic() + timeout
    last = ""
    tty = out.isatty() if hasattr(out, "isatty") else False

    def say(message: str) -> None:  # on its own line, below the progress bar
        out.write(("\n" if tty else "") + message + "\n")
        out.flush()

    while True:
        task, line = progress_line(home, client, task_id)
        if line != last:
            out.write(("\r" + line) if tty else (line + "\n"))
            out.flush()
            last = line
        status = str(task.get("status"))
        if status in api.ENDED_STATUSES:
            out.write("\n" if tty else "")
            return status
        if nodes:
            try:
                revive(nodes, max_restarts=MAX_NODE_RESTARTS, log=say)
            except RuntimeError as exc:
                raise CliError(
                    f"Your SuperNode keeps stopping: {exc}\n"
                    + _tail(home.task_dir(task_id) / "supernode.log")
                ) from exc
        if deadline is not None and time.monotonic() > deadline:
            return status
        time.sleep(poll)


def progress_line(home: Home, client: api.Client, task_id: int) -> tuple[dict, str]:
    """(task, one line of progress): rounds done, what trained here, how the platform judged the updates."""
    task = client.task(task_id)
    training = client.training(task_id)
    done, total = api.round_progress(task, None if training else client.rounds(task_id), training)
    mine = local_rounds(home, task_id)
    trained = max((int(r.get("round", 0)) for r in mine), default=0)
    loss = f" · trained here {trained}, last loss {mine[-1]['train-loss']:.3f}" if mine else ""
    state = api.participant_state(training, home.config().get("address", ""))
    judged = ""
    if state:
        judged = f" · your updates accepted {state.get('updates_accepted', 0)}, rejected {state.get('updates_rejected', 0)}"
        if state.get("last_rejection_reason"):
            judged += f" ({state['last_rejection_reason']})"
    return task, f"{progress_bar(done, total)} round {done}/{total} · task {task.get('status')}{loss}{judged}"


def progress_bar(done: int, total: int, width: int = 20) -> str:
    total = max(total, 1)
    filled = min(width, round(width * min(done, total) / total))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def check_report(task: dict, summary: dict | None, problems: list[str], data: str | Path) -> str:
    title = f"task {task.get('id')} ({task.get('title', '')})"
    if not problems:
        per = summary["examples_per_label"] if summary else {}
        return (
            f"OK: {data} fits {title}: {summary['n']} examples of shape "
            f"{'x'.join(str(d) for d in summary['feature_shape'])}, labels "
            + ", ".join(f"{k}: {v}" for k, v in per.items())
            + "."
            + _terms(task)
        )
    if summary is None:  # the file itself is unusable
        return f"Your data file {data} cannot be used: " + " ".join(problems)
    lines = [f"Your data {data} does not fit {title}:"]
    lines += [f"  - {p}" for p in problems]
    return "\n".join(lines)


def _terms(task: dict) -> str:
    """What a participant agrees to by joining: the committed aggregation rule and contribution measure."""
    spec = task.get("spec") or {}
    contribution = spec.get("contribution") or {}
    lines = []
    if spec.get("aggregation_rule"):
        lines.append(f"Aggregation rule: {spec['aggregation_rule']}.")
    if contribution.get("scorer"):
        lines.append(f"Contribution measure ({contribution['scorer']}): {contribution.get('utility', '')}")
    return "".join("\n" + line for line in lines)


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""
