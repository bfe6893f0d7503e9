import numpy as np
import pytest
import torch

from training import zoo


@pytest.mark.parametrize(
    ("kind", "shape", "batch"),
    [
        ("mlp", (64,), (5, 64)),
        ("cnn", (64,), (5, 64)),
        ("cnn", (1, 8, 8), (5, 1, 8, 8)),
        ("cnn", (1, 28, 28), (5, 1, 28, 28)),
    ],
)
def test_models_map_inputs_to_class_logits(kind, shape, batch):
    # given
    model = zoo.build_model(kind, shape, 10, seed=0)
    # when
    out = model(torch.zeros(batch))
    # then
    assert out.shape == (5, 10)


def test_unknown_kind_and_non_square_cnn_are_refused():
    with pytest.raises(ValueError, match="unknown model kind"):
        zoo.build_model("transformer", (64,), 10)
    with pytest.raises(ValueError, match="square"):
        zoo.build_model("cnn", (30,), 2)


def test_arrays_roundtrip_in_fixed_key_order():
    # given
    a = zoo.build_model("mlp", (64,), 10, seed=1)
    b = zoo.build_model("mlp", (64,), 10, seed=2)
    # when
    zoo.set_arrays(b, zoo.get_arrays(a))
    # then
    assert zoo.state_keys(a) == zoo.state_keys(b)
    assert zoo.weights_hash(zoo.get_arrays(a)) == zoo.weights_hash(zoo.get_arrays(b))


def test_set_arrays_rejects_wrong_shapes():
    model = zoo.build_model("mlp", (64,), 10)
    arrays = zoo.get_arrays(model)
    arrays[0] = np.zeros((3, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="expected shape"):
        zoo.set_arrays(model, arrays)


def test_weights_hash_is_deterministic_and_sensitive_to_dtype_shape_and_data():
    # given
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    # then: same seed, same hash; any change of dtype, shape or value changes it
    assert zoo.weights_hash([x]) == zoo.weights_hash([x.copy()])
    assert zoo.weights_hash(zoo.get_arrays(zoo.build_model("mlp", (64,), 10, seed=3))) == zoo.weights_hash(
        zoo.get_arrays(zoo.build_model("mlp", (64,), 10, seed=3))
    )
    assert zoo.weights_hash([x]) != zoo.weights_hash([x.astype(np.float64)])
    assert zoo.weights_hash([x]) != zoo.weights_hash([x.reshape(3, 2)])
    y = x.copy()
    y[0, 0] = 0.5
    assert zoo.weights_hash([x]) != zoo.weights_hash([y])
    assert zoo.weights_hash([x]) == zoo.weights_hash([x.astype(">f4")])  # byte order is canonicalised
    assert len(zoo.weights_hash([x])) == 64
