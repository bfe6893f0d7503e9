"""The attack registry: each attack changes the update (or the data) as intended."""

import numpy as np
import pytest

from training import attacks


def arrays(seed=0):
    rng = np.random.default_rng(seed)
    return [
        rng.normal(size=(4, 3)).astype(np.float32),
        rng.normal(size=3).astype(np.float32),
        np.array(7, dtype=np.int64),
    ]


def test_registry_lists_builtin_attacks():
    assert {"label_flip", "gaussian", "sign_flip", "scaling", "free_rider"} <= set(attacks.names())


def test_register_new_attack():
    @attacks.register("zero_test")
    class Zero(attacks.Attack):
        def poison_update(self, trained, global_, rng):
            return [np.zeros_like(a) for a in trained]

    try:
        out = attacks.from_node_config({"attack": "zero_test"}).poison_update(arrays(), arrays(), None)
        assert all(not a.any() for a in out)
    finally:
        attacks.ATTACKS.pop("zero_test")


def test_no_attack_without_node_config():
    assert attacks.from_node_config({}) is None
    assert attacks.from_node_config({"attack": ""}) is None


def test_unknown_attack_and_option():
    with pytest.raises(ValueError, match="unknown attack"):
        attacks.get_attack("nope")
    with pytest.raises(ValueError, match="no option"):
        attacks.get_attack("scaling:sigma=2")


def test_label_flip_flips_labels():
    y = np.array([0, 1, 2, 9, 5])
    x = np.zeros((5, 2))
    x2, y2 = attacks.get_attack("label_flip").poison_data(x, y, 10, np.random.default_rng(0))
    assert x2 is x
    assert y2.tolist() == [9, 8, 7, 0, 4]
    _, y3 = attacks.get_attack("label_flip:random=true").poison_data(x, y, 10, np.random.default_rng(0))
    assert (y3 != y).all() and ((0 <= y3) & (y3 < 10)).all()


def test_label_flip_leaves_update_alone():
    g, t = arrays(0), arrays(1)
    out = attacks.get_attack("label_flip").poison_update(t, g, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(out, t, strict=True))


def test_sign_flip_reverses_delta():
    g, t = arrays(0), arrays(1)
    out = attacks.get_attack("sign_flip").poison_update(t, g, np.random.default_rng(0))
    for o, gg, tt in zip(out[:2], g, t, strict=False):
        np.testing.assert_allclose(o - gg, -(tt - gg), rtol=1e-5, atol=1e-6)
        assert o.dtype == tt.dtype
    assert out[2] == t[2]  # integer buffers untouched


def test_scaling_boosts_delta():
    g, t = arrays(0), arrays(1)
    out = attacks.from_node_config({"attack": "scaling", "attack-factor": 5.0}).poison_update(t, g, None)
    np.testing.assert_allclose(out[0] - g[0], 5 * (t[0] - g[0]), rtol=1e-5, atol=1e-5)


def test_gaussian_is_noise_around_global():
    g = [np.zeros((200, 50), np.float32)]
    attack = attacks.get_attack("gaussian", sigma=2.0)
    assert attack.skips_training
    out = attack.poison_update(g, g, np.random.default_rng(0))
    assert out[0].shape == (200, 50) and out[0].dtype == np.float32
    assert abs(float(out[0].std()) - 2.0) < 0.05


def test_free_rider_returns_global():
    g = arrays(0)
    attack = attacks.get_attack("free_rider")
    assert attack.skips_training
    out = attack.poison_update(g, g, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(out, g, strict=True))
    noisy = attacks.get_attack("free_rider:noise=1e-4").poison_update(g, g, np.random.default_rng(0))
    delta = max(float(np.abs(a - b).max()) for a, b in zip(noisy[:2], g, strict=False))
    assert 0 < delta < 1e-3


# --- invalid-update attacks (the ServerApp must reject them; see test_invalid_updates.py) ---------


def test_invalid_update_attacks_are_registered():
    assert {"nan", "wrong_shape", "oversized", "bad_signature"} <= set(attacks.names())


def test_nan_sets_some_weights_nan():
    t = arrays(1)
    out = attacks.get_attack("nan").poison_update(t, arrays(0), np.random.default_rng(0))
    assert np.isnan(out[0]).sum() == 1  # 10% of 12, at least one
    assert np.isfinite(out[1]).all() and out[2] == t[2]
    assert [a.shape for a in out] == [a.shape for a in t] and out[0].dtype == np.float32
    many = attacks.get_attack("nan:fraction=0.5").poison_update(t, t, np.random.default_rng(0))
    assert np.isnan(many[0]).sum() == 6
    assert np.isfinite(t[0]).all()  # the input is not modified


def test_wrong_shape_changes_one_array_shape():
    t = arrays(1)
    out = attacks.get_attack("wrong_shape").poison_update(t, t, np.random.default_rng(0))
    assert out[0].shape == (3, 3) and out[0].dtype == np.float32
    np.testing.assert_array_equal(out[0], t[0][:3])
    assert [a.shape for a in out[1:]] == [a.shape for a in t[1:]]
    one_row = attacks.get_attack("wrong_shape").poison_update([np.ones((1, 2), np.float32)], [None], None)
    assert one_row[0].shape == (3,)


def test_oversized_pads_one_array_over_the_limit():
    t = arrays(1)
    out = attacks.get_attack("oversized:mb=0.01").poison_update(t, t, np.random.default_rng(0))
    assert sum(a.nbytes for a in out) > 0.01 * 2**20
    assert out[0].dtype == np.float32 and out[0].ndim == 1
    np.testing.assert_array_equal(out[0][:12], t[0].reshape(-1))
    assert not out[0][12:].any()
    # the default is over the default max-update-mb (50)
    big = attacks.get_attack("oversized").poison_update(t, t, None)
    assert sum(a.nbytes for a in big) > 50 * 2**20


def test_bad_signature_provides_another_key_and_leaves_update_alone():
    from eth_account import Account

    t = arrays(1)
    attack = attacks.get_attack("bad_signature")
    assert attacks.get_attack("scaling").signing_key() is None
    assert Account.from_key(attack.signing_key()).address.startswith("0x")
    out = attack.poison_update(t, arrays(0), np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(out, t, strict=True))
    key = "0x" + "11" * 32
    assert attacks.get_attack(f"bad_signature:key={key}").signing_key() == key


def test_inflate_examples_claims_a_huge_data_size():
    attack = attacks.get_attack("inflate_examples")
    assert attack.claimed_examples(30) == 10**9
    assert attacks.get_attack("inflate_examples:claim=500").claimed_examples(30) == 500
    assert attacks.get_attack("label_flip").claimed_examples(30) == 30
