"""HTTP client for the BCFL platform API (urllib only; importable without Django, torch or flwr).

The participant's client library, shared by the CLI (``python -m training.client``) and
``manage.py simulate_participants``: SIWE sign-in, task and spec download, the local data
check, the signed EIP-712 Join (only the data *summary* is sent, never data or keys), and
polling for node registration and run progress.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SIWE_STATEMENT = "Sign in to BCFL."  # must match bcfl_site.siwe.services.STATEMENT
USER_AGENT = "bcfl-participant/1"
TERMINAL_STATUSES = ("completed", "failed", "cancelled")
ENDED_STATUSES = ("finalizing", *TERMINAL_STATUSES)


class ApiError(RuntimeError):
    """A request failed; ``str()`` is a plain-words message. ``status``/``body`` when the site answered."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None, code: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body
        self.code = code


class SiteUnreachable(ApiError):
    pass


class NotLoggedIn(ApiError):
    pass


class TaskNotFound(ApiError):
    pass


class JoinRefused(ApiError):
    """The platform refused the join; ``code`` is its reason (banned, full, spec_mismatch, …)."""


# Every request body this client sends passes through here; tests hook it to assert that no
# key material or data ever leaves the machine.
RequestHook = Callable[[str, str, bytes | None], None]


@dataclass
class Client:
    site: str
    token: str | None = None
    timeout: float = 30.0
    on_request: list[RequestHook] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.site = normalise_site(self.site)

    # --- transport ------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None, *, auth: bool = False) -> tuple[int, Any]:
        url = urllib.parse.urljoin(self.site + "/", path.lstrip("/"))
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if auth:
            if not self.token:
                raise NotLoggedIn("You are not logged in. Run `login --site URL --key FILE` first.")
            headers["Authorization"] = f"Token {self.token}"
        for hook in self.on_request:
            hook(method, url, data)
        req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - scheme checked
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - http(s) only
                return resp.status, _decode(resp.read())
        except urllib.error.HTTPError as err:
            payload = _decode(err.read())
            if err.code == 401 or (err.code == 403 and auth and _is_auth_error(payload)):
                raise NotLoggedIn(
                    "The site did not accept your login (token missing, expired or revoked). "
                    "Run `login` again.",
                    status=err.code,
                    body=payload,
                ) from None
            return err.code, payload
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise SiteUnreachable(f"Cannot reach the site at {self.site}: {reason}.") from None

    def _ok(self, method: str, path: str, body: Any = None, *, auth: bool = False, expect=(200, 201)) -> Any:
        status, payload = self.request(method, path, body, auth=auth)
        if status in expect:
            return payload
        raise ApiError(
            f"The site answered {status} to {method} {path}: {_detail(payload)}", status=status, body=payload
        )

    # --- SIWE -----------------------------------------------------------------------------

    def login(self, wallet) -> dict:
        """Sign in with ``wallet`` (``training.client.wallet.Wallet``); sets and returns {token, address}."""
        challenge = self._ok("POST", "/api/v1/auth/siwe/nonce", {})
        message = siwe_message(challenge, address=wallet.address)
        signature = personal_sign(message, wallet.private_key)
        status, payload = self.request(
            "POST", "/api/v1/auth/siwe/token", {"message": message, "signature": signature}
        )
        if status != 200:
            raise ApiError(f"Sign-in refused: {_detail(payload)}", status=status, body=payload)
        self.token = payload["token"]
        return payload

    # --- tasks ----------------------------------------------------------------------------

    def list_all(self, path: str, *, auth: bool = False, max_pages: int = 100) -> list[dict]:
        """Every item of a (DRF page-number paginated) list endpoint, following ``next`` links."""
        items: list[dict] = []
        for _ in range(max_pages):
            payload = self._ok("GET", path, auth=auth)
            items += _results(payload)
            nxt = payload.get("next") if isinstance(payload, dict) else None
            if not nxt:
                break
            parts = urllib.parse.urlsplit(nxt)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
        return items

    def tasks(self, status: str | None = None) -> list[dict]:
        path = "/api/v1/tasks/" + (f"?status={urllib.parse.quote(status)}" if status else "")
        return self.list_all(path, auth=bool(self.token))

    def task(self, task_id: int) -> dict:
        status, payload = self.request("GET", f"/api/v1/tasks/{int(task_id)}/", auth=bool(self.token))
        if status == 404:
            raise TaskNotFound(f"Task {task_id} does not exist (or is not public yet).", status=404)
        if status != 200:
            raise ApiError(f"Cannot load task {task_id}: {_detail(payload)}", status=status, body=payload)
        return payload

    def participations(self) -> list[dict]:
        return self.list_all("/api/v1/participations/mine/", auth=True)

    def participation(self, task_id: int) -> dict | None:
        for p in self.participations():
            if int(p.get("task", -1)) == int(task_id):
                return p
        return None

    def training(self, task_id: int) -> dict | None:
        """Training progress (``/tasks/<pk>/training/``: rounds done, run, participants' node states) or None."""
        try:
            status, payload = self.request(
                "GET", f"/api/v1/tasks/{int(task_id)}/training/", auth=bool(self.token)
            )
        except NotLoggedIn:
            return None
        return payload if status == 200 and isinstance(payload, dict) else None

    def rounds(self, task_id: int) -> list[dict] | None:
        """The task's rounds if the site has a rounds API, else None."""
        try:
            status, payload = self.request(
                "GET", f"/api/v1/tasks/{int(task_id)}/rounds/", auth=bool(self.token)
            )
        except ApiError:
            return None
        if status != 200:
            return None
        if isinstance(payload, dict) and "rounds" in payload:
            return list(payload["rounds"])
        return _results(payload)

    def join(self, task: dict, wallet, *, node_public_key: str, data_summary: dict) -> dict:
        """POST a signed Join for ``task`` (a ``task()`` dict). ``JoinRefused`` with the reason otherwise."""
        from bcfl_core import eip712

        domain = task.get("join_domain")
        if not domain:
            raise ApiError(
                "This task cannot be joined yet: the platform's contracts are not deployed (no join domain)."
            )
        if task.get("chain_task_id") is None:
            raise JoinRefused("This task is not on chain yet; try again later.", code="not_on_chain")
        typed = eip712.join_typed_data(
            chain_id=int(domain["chainId"]),
            verifying_contract=domain["verifyingContract"],
            task_id=int(task["chain_task_id"]),
            participant=wallet.address,
            node_public_key=node_public_key,
            data_summary=data_summary,
        )
        body = {
            "participant": wallet.address,
            "node_public_key": node_public_key.strip(),
            "data_summary": data_summary,
            "signature": eip712.sign_typed_data(typed, wallet.private_key),
        }
        status, payload = self.request("POST", f"/api/v1/tasks/{int(task['id'])}/join/", body, auth=True)
        if status == 201:
            return payload
        if status == 404:
            raise TaskNotFound(f"Task {task['id']} does not exist.", status=404)
        if isinstance(payload, dict) and "reason" in payload:
            raise JoinRefused(
                f"Join refused ({payload['reason']}): {payload.get('detail', '')}".strip(),
                status=status,
                body=payload,
                code=str(payload["reason"]),
            )
        raise ApiError(f"Join failed ({status}): {_detail(payload)}", status=status, body=payload)


# --- helpers ----------------------------------------------------------------------------------


def normalise_site(site: str) -> str:
    site = (site or "").strip().rstrip("/")
    if not site:
        raise ApiError("No site URL given (use --site https://…).")
    if "://" not in site:
        site = "http://" + site
    if urllib.parse.urlsplit(site).scheme not in ("http", "https"):
        raise ApiError(f"The site URL must start with http:// or https://, not {site!r}.")
    return site


def siwe_message(challenge: dict, *, address: str) -> str:
    """The EIP-4361 text for a nonce response (same layout as the site's wallet.js)."""
    lines = [
        f"{challenge['domain']} wants you to sign in with your Ethereum account:",
        address,
        "",
        challenge.get("statement") or SIWE_STATEMENT,
        "",
        f"URI: {challenge['uri']}",
        "Version: 1",
        f"Chain ID: {challenge['chain_id']}",
        f"Nonce: {challenge['nonce']}",
        f"Issued At: {challenge['issued_at']}",
    ]
    if challenge.get("expiration_time"):
        lines.append(f"Expiration Time: {challenge['expiration_time']}")
    return "\n".join(lines)


def personal_sign(message: str, private_key: str) -> str:
    from eth_account import Account
    from eth_account.messages import encode_defunct

    signed = Account.sign_message(encode_defunct(text=message), private_key=private_key)
    return "0x" + bytes(signed.signature).hex()


def participant_state(training: dict | None, wallet: str) -> dict | None:
    """This wallet's entry in a ``training()`` answer (node_registered, node_id, updates accepted/rejected)."""
    for row in (training or {}).get("participants") or []:
        if str(row.get("wallet", "")).lower() == str(wallet).lower():
            return row
    return None


def defence_lines(state: dict | None) -> list[str]:
    """What the platform's defence says about this participant (a ``participant_state`` row), in words:
    contribution so far, updates the aggregation rule left out, rounds with detection signals (the last
    round's signals with value and threshold), and the verdict and share once the task is finalized."""
    if not state:
        return []
    lines = []
    if state.get("updates_accepted"):
        excluded = state.get("updates_excluded") or 0
        left_out = f"; {excluded} left out of the aggregate by the rule" if excluded else ""
        lines.append(f"contribution so far {float(state.get('contribution') or 0.0):.4f}{left_out}")
    flagged = state.get("flagged_rounds") or []
    if flagged:
        shown = ", ".join(str(n) for n in flagged[:10]) + ("…" if len(flagged) > 10 else "")
        lines.append(f"detection signals in {len(flagged)} round(s): {shown}")
        for f in state.get("last_flags") or []:
            detail = f" ({f['detail']})" if f.get("detail") else ""
            lines.append(
                f"  last: {f.get('signal')} = {f.get('value')} (threshold {f.get('threshold')}){detail}"
            )
    if state.get("malicious"):
        lines.append("verdict: judged malicious: no stake, banned (see the task page for the evidence)")
    elif state.get("share_bps") is not None:
        lines.append(f"share of the model: {int(state['share_bps']) / 100:.2f}%")
    return lines


def node_registration(participation: dict | None, state: dict | None = None) -> int | None:
    """The SuperLink node id once the platform registered the key (-1: registered, id not shown), else None.

    ``state``: the participant's entry of the training API (preferred); ``participation``: the
    participations API row (fallback for sites without the training API).
    """
    if state and state.get("node_registered"):
        return int(state.get("node_id") or -1)
    if not participation:
        return None
    node_id = participation.get("node_id")
    if node_id not in (None, "", 0):
        return int(node_id)
    if participation.get("node_registered") or participation.get("status") in (
        "registered",
        "node_registered",
    ):
        return -1  # registered, id not shown
    return None


def round_progress(
    task: dict, rounds: list[dict] | None = None, training: dict | None = None
) -> tuple[int, int]:
    """(rounds done, rounds total) from the training API, else the task detail / rounds API."""
    total = int(task.get("rounds") or 0)
    if training and training.get("rounds_done") is not None:
        return int(training["rounds_done"]), int(training.get("rounds_total") or total)
    for key in ("rounds_completed", "rounds_done", "completed_rounds", "current_round"):
        if task.get(key) is not None:
            return int(task[key]), total
    if rounds is not None:
        done = sum(1 for r in rounds if r.get("status", "committed") not in ("pending", "running"))
        return done, total
    return 0, total


def data_check(data_path: str | Path, spec: dict) -> tuple[dict | None, list[str]]:
    """(summary, problems) of the local data file against a task's data spec; only the summary may leave."""
    from bcfl_core import dataspec

    try:
        x, y = dataspec.load_data_file(data_path)
    except dataspec.DataFileError as exc:
        return None, [str(exc)]
    summary = dataspec.data_summary(x, y)
    return summary, dataspec.check_against_spec(summary, spec)


def task_data_spec(task: dict) -> dict:
    spec = (task.get("spec") or {}).get("data")
    if spec:
        return spec
    return {
        "feature_shape": task.get("feature_shape"),
        "labels": task.get("label_set"),
        "min_samples": task.get("min_samples_per_participant"),
    }


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return raw.decode(errors="replace")[:500]


def _results(payload: Any) -> list[dict]:
    if isinstance(payload, dict) and "results" in payload:
        return list(payload["results"])
    return list(payload or [])


def _is_auth_error(payload: Any) -> bool:
    detail = str(payload.get("detail", "")) if isinstance(payload, dict) else ""
    return "credentials" in detail.lower() or "token" in detail.lower()


def _detail(payload: Any) -> str:
    if isinstance(payload, dict):
        for key in ("detail", "error"):
            if key in payload:
                return str(payload[key])
        return json.dumps(payload)[:500]
    return str(payload)[:500]
