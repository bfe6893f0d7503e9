"""The round's contribution game in torch: utility of a coalition of updates and its Taylor surrogate.

Utility ``v(S)`` = minus the mean cross-entropy loss on the validation set ``(x, y)`` of the model whose
parameters are the FedAvg aggregate of the updates in ``S`` (mixing coefficients ``w_i / Σ_{j∈S} w_j``,
``w_i`` the update's example count); ``v(∅)`` is the global model before the round. No retraining. The
surrogate is the second-order Taylor expansion of the loss at the global model in the update directions
``d_i = θ_i − θ_global``: ``a_i = −∇L·d_i`` and ``B_ij = −d_iᵀ H d_j`` (one gradient and ``n``
Hessian-vector products). See :mod:`training.shapley` for the estimator that uses both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from training import shapley
from training.shapley import QuadraticSurrogate


class RoundGame:
    """A round's contribution game over ``updates`` (each a list of arrays in the model's key order).

    ``model`` gives the architecture and parameter names/order (its own values are not used);
    ``global_arrays`` the global model before the round; ``weights`` (n,) example counts (floats ≥ 0,
    all zero → equal weights). Shapes: every update has the global model's array shapes.
    """

    def __init__(
        self,
        model: nn.Module,
        global_arrays: Sequence[np.ndarray],
        updates: Sequence[Sequence[np.ndarray]],
        weights: Sequence[float],
        x: np.ndarray,
        y: np.ndarray,
    ):
        self.model = model.eval()
        self.keys = list(model.state_dict().keys())
        self.shapes = [tuple(np.shape(a)) for a in global_arrays]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.g = torch.from_numpy(_flat(global_arrays))
        self.W = torch.from_numpy(np.stack([_flat(u) for u in updates])) if updates else torch.zeros(0)
        w = np.asarray(weights, dtype=np.float64)
        self.weights = w if w.sum() > 0 else np.ones_like(w)
        self.x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        self.y = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
        self.evaluations = 0

    @property
    def n(self) -> int:
        return len(self.weights)

    def _params(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        out, start = {}, 0
        for key, shape, size in zip(self.keys, self.shapes, self.sizes, strict=True):
            out[key] = flat[start : start + size].reshape(shape)
            start += size
        return out

    def loss(self, flat: torch.Tensor) -> torch.Tensor:
        logits = functional_call(self.model, self._params(flat), (self.x,))
        return nn.functional.cross_entropy(logits, self.y)

    def theta(self, mask: np.ndarray) -> torch.Tensor:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return self.g
        p = self.weights * mask
        p = torch.from_numpy(p / p.sum()).to(self.W.dtype)
        return p @ self.W

    @torch.no_grad()
    def utility(self, mask: np.ndarray) -> float:
        """``v(S)`` for a bool mask (n,): minus the validation loss of the coalition's FedAvg aggregate."""
        self.evaluations += 1
        return -float(self.loss(self.theta(mask)))

    @torch.no_grad()
    def utilities(self, masks: np.ndarray, chunk: int = 256) -> np.ndarray:
        """:meth:`utility` of every row of ``masks`` (k, n), ``chunk`` coalitions per vectorised forward pass
        (``torch.func.vmap``): the same values, a fraction of the time. Returns (k,) float64."""
        masks = np.asarray(masks, dtype=bool).reshape(-1, self.n)
        p = self.weights * masks
        sums = p.sum(axis=1, keepdims=True)
        p = np.divide(p, sums, out=np.zeros_like(p), where=sums > 0)
        thetas = torch.from_numpy(p).to(self.W.dtype) @ self.W if self.n else self.g.repeat(len(masks), 1)
        thetas[torch.from_numpy(sums[:, 0] == 0)] = self.g
        batched = torch.func.vmap(self.loss)
        losses = [batched(thetas[i : i + chunk]) for i in range(0, len(thetas), chunk)]
        self.evaluations += len(masks)
        return -torch.cat(losses).double().numpy() if losses else np.zeros(0)

    def surrogate(self, center: str = "aggregate") -> QuadraticSurrogate:
        """The second-order Taylor surrogate of the utility in the mixing coefficients.

        ``center="aggregate"`` (default) expands at the FedAvg of all updates ``θ(N)`` in the deviations
        ``e_i = θ_i − θ(N)`` (a coalition's aggregate ``Σ p_i θ_i`` is ``θ(N) + Σ p_i e_i``: short steps,
        so the expansion holds even for large updates; ``u(N) = v(N)`` exactly and ``u(∅)`` is left to the
        caller); ``center="global"`` expands at the global model in the update directions (``u(∅) = v(∅)``).
        """
        base = self.theta(np.ones(self.n, dtype=bool)) if center == "aggregate" else self.g
        g = base.clone().requires_grad_(True)
        loss = self.loss(g)
        (grad,) = torch.autograd.grad(loss, g, create_graph=True)
        D = self.W - base  # (n, D) directions from the expansion point
        hd = []
        for d in D:
            (h,) = torch.autograd.grad(grad, g, grad_outputs=d, retain_graph=True)
            hd.append(h.detach())
        HD = torch.stack(hd) if hd else torch.zeros_like(D)
        a = -(D @ grad.detach()).double().numpy()
        B = -(D @ HD.T).double().numpy()
        B = 0.5 * (B + B.T)
        return QuadraticSurrogate(-float(loss.detach()), a, B, self.weights)


def _flat(arrays: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(a, dtype=np.float32).ravel() for a in arrays])


SHAPLEY_BUDGET = 100  # utility evaluations per round above EXACT_MAX_PLAYERS (exact: 2**n)
EXACT_MAX_PLAYERS = 10


def shapley_scorer(
    server_round, accepted, rejected, global_before, update_arrays, central_eval
) -> dict[int, float]:
    """Per-round Shapley values of the accepted updates (``training.contribution`` scorer signature).

    Utility: minus the validation loss of the coalition's FedAvg (``central_eval.model/x/y``, the task's
    committed validation set); exact up to ``EXACT_MAX_PLAYERS`` updates, else
    :func:`training.shapley.estimate` with ``SHAPLEY_BUDGET`` evaluations, seeded by the round. Rejected
    updates are not players (score 0). Without a validation set every accepted update scores 1.
    """
    if not accepted or central_eval is None or not hasattr(central_eval, "model"):
        return {u.node_id: 1.0 for u in accepted}
    game = RoundGame(
        central_eval.model,
        global_before,
        [update_arrays[u.node_id] for u in accepted],
        [max(int(u.num_examples), 0) for u in accepted],
        central_eval.x,
        central_eval.y,
    )
    surrogate = game.surrogate() if len(accepted) > EXACT_MAX_PLAYERS else None
    if surrogate is None:
        values, _ = shapley.exact_batched(game.n, game.utilities)
    else:
        values = shapley.estimate(
            game.utility, surrogate, budget=SHAPLEY_BUDGET, seed=int(server_round)
        ).values
    return {u.node_id: float(v) for u, v in zip(accepted, values, strict=True)}
