"""Shapley values of a round's updates: exact for small rounds, a control-variate estimator above that.

Pure numpy (no torch, no Django) so anyone can recompute a round's values from its stored updates.

A *game* has ``n`` players (a round's accepted updates) and a utility ``v(S)`` for every coalition ``S``,
given as a boolean mask of shape ``(n,)``. For FL contribution, ``v(S)`` is the negative cross-entropy loss
on the task's validation set of the FedAvg aggregate of just the updates in ``S`` (``v(∅)`` = the global
model before the round). The Shapley value (Shapley 1953) is

    φ_i = Σ_{S ⊆ N∖{i}} |S|! (n−|S|−1)! / n! · (v(S ∪ {i}) − v(S)),

the only allocation with efficiency (Σ φ_i = v(N) − v(∅)), symmetry, null player and additivity.

Estimator (:func:`estimate`), used above ``exact_max_players``: a quadratic surrogate of the utility in the
coalition's FedAvg mixing coefficients ``p_i(S) = w_i / Σ_{j∈S} w_j`` (``w_i`` = the update's example
count),

    u(S) = c + Σ_i a_i p_i(S) + ½ Σ_{i,j} B_ij p_i(S) p_j(S),

whose Shapley values cost no model evaluation (:func:`surrogate_values`: exact enumeration for small ``n``,
sampled permutations otherwise), plus the Shapley values of the residual ``v − u`` estimated from a small
budget of real evaluations by paired KernelSHAP (Lundberg & Lee 2017; Covert & Lee 2021). ``a`` and ``B``
come from a second-order Taylor expansion of the loss at the global model (gradient and Hessian-vector
products, see :mod:`training.flower_app.valuation`), refined by a ridge fit to the sampled evaluations, so
the residual is small and its estimate's variance with it: the surrogate acts as a control variate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Utility = Callable[[np.ndarray], float]  # bool mask (n,) -> utility


def _all_masks(n: int) -> np.ndarray:
    """Every coalition as a bool array (2**n, n); row k is the binary expansion of k."""
    k = np.arange(2**n, dtype=np.int64)
    return ((k[:, None] >> np.arange(n)) & 1).astype(bool)


def _shapley_weights(n: int) -> np.ndarray:
    """w[s] = s! (n−s−1)! / n! for s = 0..n−1."""
    return np.array([math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)])


def values_from_table(n: int, table: np.ndarray) -> np.ndarray:
    """Exact Shapley values from the utilities of all ``2**n`` coalitions (``table[k]`` = v(mask of k))."""
    if n == 0:
        return np.zeros(0)
    masks = _all_masks(n)
    sizes = masks.sum(axis=1)
    weights = _shapley_weights(n)
    phi = np.zeros(n)
    for i in range(n):
        without = ~masks[:, i]
        k = np.nonzero(without)[0]
        phi[i] = np.sum(weights[sizes[k]] * (table[k | (1 << i)] - table[k]))
    return phi


def exact(n: int, utility: Utility) -> tuple[np.ndarray, int]:
    """Exact Shapley values by evaluating all ``2**n`` coalitions; returns ``(phi (n,), evaluations)``.

    Raises ``ValueError`` above 20 players (a million evaluations).
    """
    if n > 20:
        raise ValueError(f"exact Shapley values of {n} players need 2**{n} evaluations; use estimate()")
    masks = _all_masks(n)
    table = np.array([float(utility(m)) for m in masks])
    return values_from_table(n, table), len(masks)


def exact_batched(n: int, utilities: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, int]:
    """:func:`exact` with a batched utility: ``utilities(masks (2**n, n)) -> (2**n,)`` in one call."""
    if n > 20:
        raise ValueError(f"exact Shapley values of {n} players need 2**{n} evaluations; use estimate()")
    masks = _all_masks(n)
    return values_from_table(n, np.asarray(utilities(masks), dtype=np.float64)), len(masks)


@dataclass(frozen=True)
class QuadraticSurrogate:
    """``u(S) = c + a·p(S) + ½ p(S)ᵀ B p(S)`` for ``S ≠ ∅``, with ``p(S)`` the FedAvg mixing coefficients of
    ``S``, and ``u(∅) = empty`` (``c`` when None).

    ``weights`` (n,) are the example counts.
    """

    c: float
    a: np.ndarray  # (n,)
    B: np.ndarray  # (n, n), symmetric
    weights: np.ndarray  # (n,)
    empty: float | None = None

    @property
    def u_empty(self) -> float:
        return self.c if self.empty is None else self.empty

    def mixing(self, masks: np.ndarray) -> np.ndarray:
        """(m, n) mixing coefficients of (m, n) masks; the empty coalition gets all zeros."""
        w = masks * self.weights[None, :]
        total = w.sum(axis=1, keepdims=True)
        return np.divide(w, total, out=np.zeros_like(w, dtype=float), where=total > 0)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        masks = np.atleast_2d(masks)
        p = self.mixing(masks)
        u = self.c + p @ self.a + 0.5 * np.einsum("mi,ij,mj->m", p, self.B, p)
        return np.where(masks.any(axis=1), u, self.u_empty)

    def features(self, masks: np.ndarray) -> np.ndarray:
        """Design matrix of the fit: [p_i] and [p_i p_j (i ≤ j)] per coalition."""
        p = self.mixing(np.atleast_2d(masks))
        iu = np.triu_indices(len(self.weights))
        quad = (p[:, :, None] * p[:, None, :])[:, iu[0], iu[1]]
        return np.hstack([p, quad])

    def with_coefficients(self, theta: np.ndarray) -> QuadraticSurrogate:
        n = len(self.weights)
        a = theta[:n]
        iu = np.triu_indices(n)
        upper = np.zeros((n, n))
        upper[iu] = theta[n:]
        # features use p_i p_j once for i < j and p_i² once: u = a·p + Σ_{i≤j} t_ij p_i p_j.
        B = upper + upper.T  # ½ pᵀ B p = Σ_{i<j} t_ij p_i p_j + Σ_i t_ii p_i²
        return QuadraticSurrogate(self.c, a, B, self.weights, self.empty)

    def coefficients(self) -> np.ndarray:
        n = len(self.weights)
        iu = np.triu_indices(n)
        t = self.B.copy()
        t[np.diag_indices(n)] *= 0.5
        return np.concatenate([self.a, t[iu]])


def surrogate_values(
    surrogate: QuadraticSurrogate, *, exact_max_players: int = 14, permutations: int = 2000, seed: int = 0
) -> np.ndarray:
    """Shapley values of the surrogate game (no model evaluation): exact up to ``exact_max_players``,
    else ``permutations`` antithetic permutation samples (each costs O(n²) arithmetic)."""
    n = len(surrogate.weights)
    if n <= exact_max_players:
        return values_from_table(n, surrogate(_all_masks(n)))
    rng = np.random.default_rng(seed)
    w, a, B = surrogate.weights, surrogate.a, surrogate.B
    phi = np.zeros(n)
    count = 0
    while count < permutations:
        perm = rng.permutation(n)
        for order in (perm, perm[::-1]):
            wp = w[order]
            cw = np.cumsum(wp)
            lin = np.cumsum(wp * a[order]) / cw
            M = B[np.ix_(order, order)] * wp[:, None] * wp[None, :]
            quad = np.diagonal(np.cumsum(np.cumsum(M, axis=0), axis=1)) / cw**2
            u = surrogate.c + lin + 0.5 * quad
            marg = np.diff(np.concatenate([[surrogate.u_empty], u]))
            phi[order] += marg
            count += 1
    return phi / count


def _kernel_samples(n: int, budget: int, rng: np.random.Generator) -> np.ndarray:
    """Paired coalition samples for KernelSHAP: size s with probability ∝ (n−1)/(s(n−s)), each with its
    complement. Returns at most ``budget`` distinct masks, none empty or full."""
    sizes = np.arange(1, n)
    prob = (n - 1) / (sizes * (n - sizes))
    prob /= prob.sum()
    seen: dict[bytes, np.ndarray] = {}
    tries = 0
    while len(seen) + 2 <= budget and tries < 50 * budget:
        tries += 1
        s = rng.choice(sizes, p=prob)
        mask = np.zeros(n, dtype=bool)
        mask[rng.choice(n, size=s, replace=False)] = True
        for m in (mask, ~mask):
            seen.setdefault(m.tobytes(), m)
    return np.array(list(seen.values()), dtype=bool).reshape(-1, n)


def kernel_shap(masks: np.ndarray, values: np.ndarray, v_empty: float, v_full: float) -> np.ndarray:
    """KernelSHAP from coalitions sampled by the Shapley kernel (so equally weighted): the least-squares
    additive fit ``v(S) − v(∅) ≈ Σ_{i∈S} φ_i`` under the efficiency constraint ``Σ φ = v(N) − v(∅)``."""
    n = masks.shape[1]
    total = v_full - v_empty
    if len(masks) == 0:
        return np.full(n, total / n)
    X = masks.astype(float)
    y = values - v_empty
    # Eliminate the constraint: φ_n = total − Σ_{i<n} φ_i.
    Xr = X[:, :-1] - X[:, [-1]]
    yr = y - X[:, -1] * total
    sol, *_ = np.linalg.lstsq(Xr, yr, rcond=None)
    return np.append(sol, total - sol.sum())


@dataclass(frozen=True)
class Estimate:
    values: np.ndarray  # (n,) Shapley values, Σ = v(N) − v(∅) exactly
    evaluations: int  # utility evaluations spent (v(∅) and v(N) included)
    method: str  # "exact" or "surrogate+kernelshap"


def estimate(
    utility: Utility,
    surrogate: QuadraticSurrogate,
    *,
    budget: int = 50,
    exact_max_players: int = 10,
    fit: bool = True,
    ridge: float = 1e-2,
    seed: int = 0,
) -> Estimate:
    """Shapley values of ``utility`` over ``len(surrogate.weights)`` players.

    Exact (``2**n`` evaluations) when ``n ≤ exact_max_players``; otherwise ``budget`` evaluations
    (v(∅), v(N) and ``budget − 2`` paired kernel samples): the surrogate (refined by a ridge fit to the
    samples when ``fit``) is the control variate, the residual's values come from KernelSHAP.
    """
    n = len(surrogate.weights)
    if n == 0:
        return Estimate(np.zeros(0), 0, "exact")
    if n <= exact_max_players:
        phi, evals = exact(n, utility)
        return Estimate(phi, evals, "exact")
    rng = np.random.default_rng(seed)
    empty, full = np.zeros(n, dtype=bool), np.ones(n, dtype=bool)
    v_empty, v_full = float(utility(empty)), float(utility(full))
    masks = _kernel_samples(n, max(budget - 2, 0), rng)
    values = np.array([float(utility(m)) for m in masks])
    surrogate = QuadraticSurrogate(surrogate.c, surrogate.a, surrogate.B, surrogate.weights, v_empty)
    if fit and len(masks):
        surrogate = _refit(surrogate, np.vstack([masks, full]), np.append(values, v_full), ridge)
    phi_u = surrogate_values(surrogate, seed=seed)
    u_full = float(surrogate(full)[0])
    residual = values - surrogate(masks) if len(masks) else np.zeros(0)
    phi_r = kernel_shap(masks, residual, 0.0, v_full - u_full)
    return Estimate(phi_u + phi_r, 2 + len(masks), "surrogate+kernelshap")


def _refit(
    surrogate: QuadraticSurrogate, masks: np.ndarray, values: np.ndarray, ridge: float
) -> QuadraticSurrogate:
    """Ridge regression of the surrogate's coefficients toward their Taylor values on sampled coalitions.

    With fewer samples than coefficients (``n + n(n+1)/2``), only ``a`` and one scale of ``B`` are fitted
    (``n + 1`` coefficients), which also keeps large rounds cheap.
    """
    n = len(surrogate.weights)
    full = n + n * (n + 1) // 2 <= len(masks)
    p = surrogate.mixing(masks)
    if full:
        X = surrogate.features(masks)
        prior = surrogate.coefficients()
    else:
        X = np.hstack([p, 0.5 * np.einsum("mi,ij,mj->m", p, surrogate.B, p)[:, None]])
        prior = np.append(surrogate.a, 1.0)
    y = values - surrogate.c - X @ prior
    scale = max(float(np.mean(X**2)), 1e-12)
    lam = ridge * scale * len(masks)
    delta = np.linalg.solve(X.T @ X + lam * np.eye(X.shape[1]), X.T @ y)
    if full:
        return surrogate.with_coefficients(prior + delta)
    return QuadraticSurrogate(
        surrogate.c,
        surrogate.a + delta[:n],
        surrogate.B * (1.0 + delta[n]),
        surrogate.weights,
        surrogate.empty,
    )
