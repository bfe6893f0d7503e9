"""Shapley values: the axioms on toy games, known values, and the estimator against exact on a real round."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training import shapley


def _game(table: dict[frozenset, float], n: int):
    return lambda mask: table[frozenset(np.nonzero(mask)[0].tolist())]


def _brute_force(n, v):
    """Shapley values by averaging marginal contributions over all n! orders."""
    phi = np.zeros(n)
    for order in itertools.permutations(range(n)):
        mask = np.zeros(n, dtype=bool)
        before = v(mask)
        for i in order:
            mask[i] = True
            after = v(mask)
            phi[i] += after - before
            before = after
    return phi / math.factorial(n)


random_games = st.integers(1, 5).flatmap(
    lambda n: st.tuples(
        st.just(n), st.lists(st.floats(-10, 10, allow_nan=False), min_size=2**n, max_size=2**n)
    )
)


@settings(max_examples=40, deadline=None)
@given(random_games)
def test_exact_matches_brute_force_and_is_efficient(game):
    n, values = game
    v = lambda m: values[int(np.dot(m, 1 << np.arange(n)))]  # noqa: E731
    phi, evals = shapley.exact(n, v)
    assert evals == 2**n
    np.testing.assert_allclose(phi, _brute_force(n, v), atol=1e-9)
    assert phi.sum() == pytest.approx(values[-1] - values[0], abs=1e-9)


def test_glove_game_known_values():
    # one left glove (player 0) and two right gloves (1, 2); a pair is worth 1: φ = (2/3, 1/6, 1/6)
    v = lambda m: float(m[0] and (m[1] or m[2]))  # noqa: E731
    phi, _ = shapley.exact(3, v)
    np.testing.assert_allclose(phi, [2 / 3, 1 / 6, 1 / 6])


def test_symmetry_null_player_and_additivity():
    n = 4
    w = np.array([1.0, 1.0, 3.0, 0.0])  # players 0 and 1 symmetric, 3 null
    v1 = lambda m: float(np.dot(m, w)) ** 2  # noqa: E731
    v2 = lambda m: float(m[0] and m[2])  # noqa: E731
    phi1, _ = shapley.exact(n, v1)
    phi2, _ = shapley.exact(n, v2)
    phi12, _ = shapley.exact(n, lambda m: v1(m) + v2(m))
    assert phi1[0] == pytest.approx(phi1[1])
    assert phi1[3] == pytest.approx(0.0) and phi2[3] == pytest.approx(0.0)
    np.testing.assert_allclose(phi12, phi1 + phi2)


def test_exact_refuses_huge_games():
    with pytest.raises(ValueError, match="use estimate"):
        shapley.exact(21, lambda m: 0.0)


def test_surrogate_values_of_a_quadratic_game_are_exact_and_sampling_agrees():
    rng = np.random.default_rng(0)
    n = 8
    B = rng.normal(size=(n, n))
    sur = shapley.QuadraticSurrogate(-2.0, rng.normal(size=n), B + B.T, rng.uniform(10, 100, size=n))
    exact_phi, _ = shapley.exact(n, lambda m: float(sur(m)[0]))
    np.testing.assert_allclose(shapley.surrogate_values(sur), exact_phi, atol=1e-9)
    sampled = shapley.surrogate_values(sur, exact_max_players=0, permutations=20000, seed=1)
    np.testing.assert_allclose(sampled, exact_phi, atol=0.02 * np.abs(exact_phi).max())


def test_coefficients_round_trip():
    rng = np.random.default_rng(1)
    B = rng.normal(size=(5, 5))
    sur = shapley.QuadraticSurrogate(0.5, rng.normal(size=5), B + B.T, np.ones(5))
    again = sur.with_coefficients(sur.coefficients())
    np.testing.assert_allclose(again.B, sur.B)
    masks = rng.random((20, 5)) > 0.5
    np.testing.assert_allclose(sur.features(masks) @ sur.coefficients() + sur.c, sur(masks))


def test_estimate_recovers_a_game_the_surrogate_explains_with_a_small_budget():
    # given a utility that is exactly quadratic in the mixing coefficients, plus a small additive residual
    rng = np.random.default_rng(2)
    n = 12
    B = rng.normal(size=(n, n)) * 0.1
    true = shapley.QuadraticSurrogate(-1.0, rng.normal(size=n), B + B.T, rng.uniform(20, 200, size=n))
    extra = rng.normal(size=n) * 0.01
    v = lambda m: float(true(m)[0]) + float(np.dot(m, extra))  # noqa: E731
    prior = shapley.QuadraticSurrogate(0.0, true.a * 0.8, true.B * 0.8, true.weights)  # an imperfect Taylor
    # when
    est = shapley.estimate(v, prior, budget=120, exact_max_players=10, seed=0)
    exact_phi, _ = shapley.exact(n, v)
    # then: efficiency is exact and the values are close
    assert est.evaluations <= 120 and est.method == "surrogate+kernelshap"
    assert est.values.sum() == pytest.approx(exact_phi.sum(), abs=1e-9)
    np.testing.assert_allclose(est.values, exact_phi, atol=0.03 * np.abs(exact_phi).max())


def test_estimate_is_exact_for_small_rounds():
    v = lambda m: float(m.sum()) ** 1.5  # noqa: E731
    sur = shapley.QuadraticSurrogate(0.0, np.zeros(3), np.zeros((3, 3)), np.ones(3))
    est = shapley.estimate(v, sur)
    assert est.method == "exact" and est.evaluations == 8
    np.testing.assert_allclose(est.values, np.full(3, 3**1.5 / 3))


def test_estimator_against_exact_on_a_real_round():
    """Ten digits participants whose contributions differ (sizes, noise, a free rider, a label flipper)."""
    torch = pytest.importorskip("torch")
    from training import datasets, zoo
    from training.flower_app import task
    from training.flower_app.valuation import RoundGame

    torch.set_num_threads(1)
    ds = datasets.load_dataset("digits")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(ds.x_train))
    sizes = [300, 200, 150, 100, 80, 60, 40, 120, 100, 100]
    starts = np.cumsum([0, *sizes])
    model = zoo.build_model("mlp", (64,), 10, seed=1)
    global_arrays = [v.numpy().copy() for v in model.state_dict().values()]
    updates = []
    for i, size in enumerate(sizes):
        part = order[starts[i] : starts[i] + size]
        x, y = ds.x_train[part], ds.y_train[part].copy()
        if i == 6:
            y = rng.integers(0, 10, size=len(y))  # label noise
        if i == 9:
            y = 9 - y  # label flip
        local = zoo.build_model("mlp", (64,), 10, seed=1)
        if i != 8:  # 8 is a free rider: sends the global model back
            task.train(local, x, y, epochs=1, batch_size=32, lr=0.05, seed=i)
        updates.append([v.detach().numpy().copy() for v in local.state_dict().values()])
    game = RoundGame(model, global_arrays, updates, sizes, ds.x_test[:200], ds.y_test[:200])
    exact_phi, _ = shapley.exact(10, game.utility)
    est = shapley.estimate(game.utility, game.surrogate(), budget=100, exact_max_players=0, seed=0)

    def shares(phi):
        phi = np.maximum(phi, 0)
        return 100 * phi / phi.sum()

    assert est.evaluations <= 100  # ≤ 10% of exact's 1,024
    assert np.abs(shares(est.values) - shares(exact_phi)).max() < 0.5  # percentage points
    assert exact_phi[9] < 0 and shares(exact_phi)[8] == pytest.approx(0, abs=0.5)  # attacker, free rider


def test_default_scorer_is_shapley_and_values_the_round_on_the_validation_set():
    """The registry's default scorer: an update that helps scores more than a copy of the global model, a
    harmful one < 0 (a free rider may still earn credit for diluting it: detection signals, not the
    valuation, catch free riders); without a validation set every accepted update scores 1."""
    pytest.importorskip("torch")
    from types import SimpleNamespace

    from training import contribution, datasets, zoo
    from training.flower_app import task

    ds = datasets.load_dataset("digits")
    model = zoo.build_model("mlp", (64,), 10, seed=3)
    g = [v.numpy().copy() for v in model.state_dict().values()]

    def trained(y_map):
        local = zoo.build_model("mlp", (64,), 10, seed=3)
        task.train(local, ds.x_train[:300], y_map(ds.y_train[:300]), epochs=2, batch_size=32, lr=0.1, seed=0)
        return [v.detach().numpy().copy() for v in local.state_dict().values()]

    updates = {1: trained(lambda y: y), 2: [a.copy() for a in g], 3: trained(lambda y: 9 - y)}
    accepted = [SimpleNamespace(node_id=i, num_examples=300) for i in updates]

    def central_eval(arrays):
        return {}

    central_eval.model, central_eval.x, central_eval.y = model, ds.x_test[:200], ds.y_test[:200]
    scorer = contribution.scorer("").load()
    scores = scorer(1, accepted, [], g, updates, central_eval)
    assert scores[1] > scores[2] and scores[1] > 0.05 and scores[3] < 0
    assert scorer(1, accepted, [], g, updates, None) == {1: 1.0, 2: 1.0, 3: 1.0}
