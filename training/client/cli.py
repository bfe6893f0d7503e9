"""``python -m training.client``: the BCFL participant CLI.

Runs without Django, on any machine with this repository, given the site URL and the
SuperLink address. State lives in ``~/.bcfl`` (``--home`` or ``$BCFL_HOME``)::

    <home>/config.json            site, API token, wallet address, wallet key path (0600)
    <home>/wallet.key             default wallet key file (``keygen``; 0600)
    <home>/tasks/<id>/node_key    the SuperNode's ECDSA P-384 key pair for task <id> (+ .pub)
    <home>/tasks/<id>/progress.jsonl, supernode.log, flwr/   training run files

Only the data *summary* (feature shape, examples per label, count) and the node *public*
key are ever sent; the data file and both private keys stay on this machine.

The functions below (``login``, ``check``, ``join``, ``wait_registered``, ``start_node``,
``follow``) are the client library that ``manage.py simulate_participants`` uses too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from training.client import api
from training.client.wallet import KeyFileError, Wallet, create_key_file, load_wallet

DEFAULT_HOME = "~/.bcfl"
PROG = "python -m training.client"


class CliError(RuntimeError):
    """A problem to print in plain words (exit code ``code``)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


# --- home directory ---------------------------------------------------------------------------


class Home:
    """The participant's local state directory."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path or os.environ.get("BCFL_HOME") or DEFAULT_HOME).expanduser().resolve()

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def default_key_path(self) -> Path:
        return self.path / "wallet.key"

    def config(self) -> dict[str, Any]:
        try:
            return json.loads(self.config_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as exc:
            raise CliError(
                f"Cannot read {self.config_path}: {exc}. Delete it and run `login` again."
            ) from exc

    def save_config(self, **values: Any) -> dict[str, Any]:
        data = {**self.config(), **values}
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        tmp = self.config_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, self.config_path)
        return data

    def client(self, site: str | None = None, *, need_login: bool = False) -> api.Client:
        cfg = self.config()
        site = site or cfg.get("site")
        if not site:
            raise CliError("No site known. Run `login --site URL --key FILE` first (or pass --site).")
        token = cfg.get("token") if api.normalise_site(site) == cfg.get("site") else None
        if need_login and not token:
            raise CliError(f"You are not logged in to {site}. Run `login --site {site} --key FILE` first.")
        return api.Client(site, token=token)

    def wallet(self, key_path: str | Path | None = None) -> Wallet:
        path = key_path or self.config().get("key_path")
        if not path:
            raise CliError(
                "No wallet key file known. Run `login --site URL --key FILE` first (or pass --key)."
            )
        return load_wallet(path)

    def task_dir(self, task_id: int) -> Path:
        d = self.path / "tasks" / str(int(task_id))
        d.mkdir(parents=True, exist_ok=True)
        return d

    def node_key(self, task_id: int, *, create: bool = True) -> tuple[Path, str]:
        """(private key path, public key text) of this task's SuperNode key; generated on first use."""
        from training.client.node_key import generate_node_key

        priv = self.task_dir(task_id) / "node_key"
        pub = priv.with_name("node_key.pub")
        if not (priv.exists() and pub.exists()):
            if not create:
                raise CliError(f"No SuperNode key for task {task_id}; run `join` first.")
            generate_node_key(priv)
        return priv, pub.read_text().strip()


# --- library functions (CLI and simulate_participants) ----------------------------------------


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


def wait_registered(home: Home, task_id: int, *, timeout: float | None = None, poll: float = 2.0,
                    on_wait: Callable[[dict | None], None] | None = None) -> int:  # fmt: skip
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


def node_config_for(home: Home, task_id: int, data: str | Path, key_path: str | Path | None = None,
                    extra: Mapping[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
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


def start_node(home: Home, task_id: int, data: str | Path, *, superlink: str, root_cert: str | Path,
               isolation: str = "warm", key_path: str | Path | None = None,
               extra_node_config: Mapping[str, Any] | None = None):  # fmt: skip
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


def follow(home: Home, task_id: int, *, out: TextIO = sys.stdout, poll: float = 3.0,
           timeout: float | None = None, nodes: dict | None = None) -> str:  # fmt: skip
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
        line = f"{progress_bar(done, total)} round {done}/{total} · task {task.get('status')}{loss}{judged}"
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
                raise CliError(f"Your SuperNode keeps stopping: {exc}\n"
                               + _tail(home.task_dir(task_id) / "supernode.log")) from exc  # fmt: skip
        if deadline is not None and time.monotonic() > deadline:
            return status
        time.sleep(poll)


MAX_NODE_RESTARTS = 5


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
        )
    if summary is None:  # the file itself is unusable
        return f"Your data file {data} cannot be used: " + " ".join(problems)
    lines = [f"Your data {data} does not fit {title}:"]
    lines += [f"  - {p}" for p in problems]
    return "\n".join(lines)


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


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
    s.add_argument("--password-env", metavar="VAR",
                   help="encrypt as a keystore JSON with the password in this environment variable")  # fmt: skip

    s = sub.add_parser("login", help="sign in with your wallet (SIWE) and store an API token")
    s.add_argument("--site", required=True, help="platform URL, e.g. https://bcfl.example.org")
    s.add_argument(
        "--key", required=True, help="wallet key file (plain hex 0600, or keystore with $BCFL_KEY_PASSWORD)"
    )

    for name, helptext in (("check", "check your data file against a task's data spec, locally"),
                           ("join", "check, then join a task with a signed EIP-712 Join (sends only a summary)")):  # fmt: skip
        s = sub.add_parser(name, help=helptext)
        s.add_argument("--task", type=int, required=True, help="task id on the platform")
        s.add_argument(
            "--data", required=True, help="your data file (.npz with x and y, or .csv, label last)"
        )
        s.add_argument("--site", help="platform URL (default: the one you logged in to)")
        if name == "join":
            s.add_argument("--key", help="wallet key file (default: the one you logged in with)")

    s = sub.add_parser("train", help="run your SuperNode for a joined task until its training ends")
    s.add_argument("--task", type=int, required=True)
    s.add_argument("--data", required=True)
    s.add_argument(
        "--superlink", required=True, metavar="HOST:PORT", help="the platform's SuperLink Fleet address"
    )
    s.add_argument("--root-cert", required=True, metavar="FILE", help="the platform's CA certificate")
    s.add_argument("--isolation", choices=("warm", "subprocess"), default="warm",
                   help="warm: one process imports torch once and forks per task (fast); subprocess: stock Flower")  # fmt: skip
    s.add_argument("--wait-timeout", type=float, default=None, metavar="S",
                   help="give up if the node is not registered after S seconds (default: wait)")  # fmt: skip
    s.add_argument("--poll", type=float, default=3.0, metavar="S", help="progress refresh interval")

    s = sub.add_parser("status", help="your participations and their state")
    s.add_argument("--task", type=int, help="only this task")
    return p


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
    print(f"Key file: {path} (mode 600{', encrypted keystore' if password else ''}). Keep it secret; "
          "back it up.", file=out)  # fmt: skip
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
    print(f"Joined task {participation['task']} ({participation.get('task_title', '')}) as "
          f"{participation['wallet']}; status {participation['status']}.", file=out)  # fmt: skip
    print(f"Sent: your data summary ({participation['data_summary'].get('n')} examples) and your node public key "
          f"({home.task_dir(args.task) / 'node_key.pub'}). Next: `train --task {args.task} ...`.", file=out)  # fmt: skip
    return 0


def _cmd_train(home: Home, args, out: TextIO) -> int:
    task, summary, problems = check(home, args.task, args.data)
    if problems:
        raise CliError(check_report(task, summary, problems, args.data), code=3)
    print(f"Waiting for the platform to register your node for task {args.task}…", file=out, flush=True)
    node_id = wait_registered(home, args.task, timeout=args.wait_timeout, poll=min(args.poll, 5.0))
    print(f"Node registered{f' (node id {node_id})' if node_id > 0 else ''}. Starting your SuperNode "
          f"({args.isolation}) against {args.superlink}…", file=out, flush=True)  # fmt: skip
    handle = start_node(home, args.task, args.data, superlink=args.superlink, root_cert=args.root_cert,
                        isolation=args.isolation)  # fmt: skip
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
        print(f"task {r['task']} {r.get('task_title', '')!r}: task {r.get('task_status')}, you {r['status']}, "
              f"{node_text}{trained}{judged}", file=out)  # fmt: skip
    return 0


_COMMANDS: dict[str, Callable[[Home, argparse.Namespace, TextIO], int]] = {
    "keygen": _cmd_keygen,
    "login": _cmd_login,
    "check": _cmd_check,
    "join": _cmd_join,
    "train": _cmd_train,
    "status": _cmd_status,
}
