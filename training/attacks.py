"""Simulated attacks for malicious participants (client side only; importable without Django/torch).

An attack is applied by the ClientApp only when the SuperNode's node config sets ``attack``
(``manage.py simulate_participants --malicious N --attack NAME``). Options come from node-config
keys ``attack-<option>`` (``attack-factor=10.0``), or inline as ``attack="scaling:factor=10"``.

Every attack has two hooks, both pure numpy:

* ``poison_data(x, y, num_classes, rng) -> (x, y)``  before local training (data poisoning);
* ``poison_update(trained, global_, rng) -> arrays`` after it (model poisoning), on the lists of
  arrays in state-dict order. Only floating-point arrays are changed; dtypes and shapes are kept,
  except by the *invalid-update* attacks (``nan``, ``wrong_shape``, ``oversized``), whose replies the
  ServerApp must reject in screening.

``skips_training`` attacks never train (their ``trained`` argument is the global model).
``signing_key()`` (simulation only): a private key the ClientApp signs the update with instead of the
joined wallet's (``bad_signature``); None for every other attack.

Extend with::

    @register("my_attack")
    class MyAttack(Attack):
        "One line on what it does."
        def poison_update(self, trained, global_, rng): ...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

Arrays = list[np.ndarray]

ATTACKS: dict[str, type[Attack]] = {}


def register(name: str) -> Callable[[type[Attack]], type[Attack]]:
    """Class decorator: make an ``Attack`` subclass available under ``name``."""

    def deco(cls: type[Attack]) -> type[Attack]:
        if name in ATTACKS and ATTACKS[name] is not cls:
            raise ValueError(f"attack {name!r} is already registered")
        cls.name = name
        ATTACKS[name] = cls
        return cls

    return deco


class Attack:
    """Base class: honest behaviour (no change). Subclasses override one or both hooks."""

    name: ClassVar[str] = ""
    skips_training: ClassVar[bool] = False
    #: option name -> default; values given as strings are coerced to the default's type
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - set(self.defaults)
        if unknown:
            raise ValueError(
                f"attack {self.name!r} has no option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(self.defaults)) or 'none'}"
            )
        self.options = {k: _coerce(options.get(k, v), v) for k, v in self.defaults.items()}

    def __getattr__(self, item: str) -> Any:
        options = self.__dict__.get("options", {})
        if item in options:
            return options[item]
        raise AttributeError(item)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({opts})"

    def poison_data(
        self, x: np.ndarray, y: np.ndarray, num_classes: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        return x, y

    def poison_update(
        self, trained: Sequence[np.ndarray], global_: Sequence[np.ndarray], rng: np.random.Generator
    ) -> Arrays:
        return [np.array(a, copy=True) for a in trained]

    def signing_key(self) -> str | None:
        """SIMULATION ONLY: a hex private key to sign the update with instead of the wallet's (None: the wallet)."""
        return None

    def claimed_examples(self, n: int) -> int:
        """The ``num-examples`` the reply claims (honest: the examples actually trained on)."""
        return n


def _coerce(value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    return value


def _is_float(a: np.ndarray) -> bool:
    return np.asarray(a).dtype.kind == "f"


def _map_delta(
    trained: Sequence[np.ndarray],
    global_: Sequence[np.ndarray],
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> Arrays:
    """Apply ``fn(global, delta) -> new`` to every float array; other arrays pass through unchanged."""
    if len(trained) != len(global_):
        raise ValueError(f"trained has {len(trained)} arrays, global model {len(global_)}")
    out: Arrays = []
    for t, g in zip(trained, global_, strict=True):
        t, g = np.asarray(t), np.asarray(g)
        if _is_float(t):
            delta = t.astype(np.float64) - g.astype(np.float64)
            out.append(np.asarray(fn(g.astype(np.float64), delta)).astype(t.dtype).reshape(t.shape))
        else:
            out.append(np.array(t, copy=True))
    return out


@register("label_flip")
class LabelFlip(Attack):
    """Train on flipped labels: y -> num_classes - 1 - y (or a random other label with ``random``)."""

    defaults: ClassVar[dict[str, Any]] = {"random": False}

    def poison_data(self, x, y, num_classes, rng):
        y = np.asarray(y)
        if num_classes < 2:
            return x, y.copy()
        if self.random:
            shift = rng.integers(1, num_classes, size=len(y))
            return x, ((y + shift) % num_classes).astype(y.dtype)
        return x, (num_classes - 1 - y).astype(y.dtype)


@register("gaussian")
class Gaussian(Attack):
    """Send noise, not a model: global + N(0, sigma²) in every parameter (no training)."""

    skips_training = True
    defaults: ClassVar[dict[str, Any]] = {"sigma": 1.0}

    def poison_update(self, trained, global_, rng):
        return _map_delta(trained, global_, lambda g, d: g + rng.normal(0.0, self.sigma, size=g.shape))


@register("sign_flip")
class SignFlip(Attack):
    """Train honestly, then send global - factor·delta (the update pointing the wrong way)."""

    defaults: ClassVar[dict[str, Any]] = {"factor": 1.0}

    def poison_update(self, trained, global_, rng):
        return _map_delta(trained, global_, lambda g, d: g - self.factor * d)


@register("scaling")
class Scaling(Attack):
    """Boosted update (model replacement): global + factor·delta."""

    defaults: ClassVar[dict[str, Any]] = {"factor": 10.0}

    def poison_update(self, trained, global_, rng):
        return _map_delta(trained, global_, lambda g, d: g + self.factor * d)


@register("free_rider")
class FreeRider(Attack):
    """No training: send the global model back (plus optional tiny noise to look busy)."""

    skips_training = True
    defaults: ClassVar[dict[str, Any]] = {"noise": 0.0}

    def poison_update(self, trained, global_, rng):
        if self.noise <= 0:
            return [np.array(g, copy=True) for g in global_]
        return _map_delta(global_, global_, lambda g, d: g + rng.normal(0.0, self.noise, size=g.shape))


# --- invalid updates: the ServerApp's screening must reject these with a reason ----------------------


def _first_float(arrays: Sequence[np.ndarray]) -> int:
    for i, a in enumerate(arrays):
        if _is_float(a) and np.asarray(a).size:
            return i
    raise ValueError("the update has no floating-point array to corrupt")


@register("nan")
class NaNs(Attack):
    """Train honestly, then set a ``fraction`` of the first float array's values (at least one) to NaN."""

    defaults: ClassVar[dict[str, Any]] = {"fraction": 0.1}

    def poison_update(self, trained, global_, rng):
        out = [np.array(a, copy=True) for a in trained]
        i = _first_float(out)
        flat = out[i].reshape(-1)
        k = max(1, int(round(self.fraction * flat.size)))
        flat[rng.choice(flat.size, size=min(k, flat.size), replace=False)] = np.nan
        return out


@register("wrong_shape")
class WrongShape(Attack):
    """Train honestly, then drop the last row (first axis) of the first float array: same key, other shape."""

    def poison_update(self, trained, global_, rng):
        out = [np.array(a, copy=True) for a in trained]
        i = _first_float(out)
        a = out[i]
        # a 0-d or 1-row array grows by one element instead; either way the shape differs and the size shrinks
        out[i] = a[:-1].copy() if a.ndim and a.shape[0] > 1 else np.append(a.reshape(-1), a.reshape(-1)[:1])
        return out


@register("oversized")
class Oversized(Attack):
    """Train honestly, then pad the first float array (same key, zeros appended) to ``mb`` MiB.

    The ServerApp sums the serialised bytes of the reply's arrays and compares them with the run's
    ``max-update-mb`` (default 50) before deserialising anything: the default 64 MiB is over it.
    """

    defaults: ClassVar[dict[str, Any]] = {"mb": 64.0}

    def poison_update(self, trained, global_, rng):
        out = [np.array(a, copy=True) for a in trained]
        i = _first_float(out)
        a = out[i]
        others = sum(np.asarray(b).nbytes for j, b in enumerate(out) if j != i)
        target = max(int(self.mb * 2**20) - others, a.nbytes) + a.dtype.itemsize
        n = -(-target // a.dtype.itemsize)  # elements, rounded up
        padded = np.zeros(n, dtype=a.dtype)
        padded[: a.size] = a.reshape(-1)
        out[i] = padded
        return out


@register("bad_signature")
class BadSignature(Attack):
    """Train honestly, but sign the update with another key than the joined wallet's (SIMULATION ONLY).

    ``key``: the hex private key to sign with; default: a fixed well-known throwaway key (never funded).
    """

    defaults: ClassVar[dict[str, Any]] = {"key": ""}
    THROWAWAY_KEY: ClassVar[str] = "0x" + "42" * 32

    def signing_key(self) -> str | None:
        return str(self.key or self.THROWAWAY_KEY)


@register("inflate_examples")
class InflateExamples(Attack):
    """Train honestly but claim ``claim`` examples (default 10^9) so FedAvg, which weights by the claim, would
    make this update the whole average. The ServerApp caps claims at the data size committed when joining."""

    defaults: ClassVar[dict[str, Any]] = {"claim": 10**9}

    def claimed_examples(self, n: int) -> int:
        return int(self.claim)


def names() -> list[str]:
    return sorted(ATTACKS)


def get_attack(spec: str, **options: Any) -> Attack:
    """An attack by name, ``"name"`` or ``"name:opt=value,opt=value"``; keyword options win."""
    name, _, inline = str(spec).strip().partition(":")
    name = name.strip()
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; known: {', '.join(names())}")
    opts: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in inline.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"attack option {part!r} must look like key=value")
        opts[key.strip().replace("-", "_")] = value.strip()
    opts.update(options)
    return ATTACKS[name](**opts)


def from_node_config(node_config: Mapping[str, Any]) -> Attack | None:
    """The attack a SuperNode's node config asks for (``attack`` + ``attack-<option>`` keys), or None."""
    spec = str(node_config.get("attack", "") or "").strip()
    if not spec or spec.lower() in ("none", "honest"):
        return None
    options = {
        key[len("attack-") :].replace("-", "_"): value
        for key, value in node_config.items()
        if key.startswith("attack-")
    }
    return get_attack(spec, **options)
