"""Prediction service: real digits samples (PNG images and CSV rows) through a trained model's ONNX export, and
one test per input refusal, each naming what is wrong."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from tests.training.trained import digits_final_model
from training import datasets
from training.predict import (
    MAX_INPUT_BYTES,
    MAX_ROWS,
    InputSpec,
    ModelNotReady,
    PredictInputError,
    digits_image,
    model_inputs,
    predict,
)
from training.services.exports import final_model_onnx_export, final_model_torch

DIGITS = InputSpec((64,), tuple(range(10)), "digits")
CUSTOM = InputSpec((4,), (0, 1, 2), "")


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"


def _raw_digits_test() -> tuple[np.ndarray, np.ndarray]:
    """The digits test split in the dataset's own units (pixels 0..16), and its labels."""
    _x_tr, x_te, _y_tr, y_te = datasets._raw_split("digits")
    return x_te, y_te


def _png(pixels16: np.ndarray, *, dark_ink: bool = True, side: int = 32, fmt: str = "PNG") -> bytes:
    """A digit as an image file: 8x8 pixels in 0..16 drawn `side` pixels wide, dark ink on white by default."""
    gray = np.round(np.asarray(pixels16, dtype=np.float64).reshape(8, 8) / 16 * 255)
    gray = 255 - gray if dark_ink else gray
    img = Image.fromarray(gray.astype(np.uint8), mode="L").resize((side, side), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _csv(rows: np.ndarray, header: list[str] | None = None) -> str:
    lines = [",".join(header)] if header else []
    lines += [",".join(f"{v:g}" for v in row) for row in rows]
    return "\n".join(lines) + "\n"


# --- real predictions ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_digits_images_and_csv_rows_are_predicted_like_the_torch_model():
    # given: a trained digits MLP, exported
    final = digits_final_model("mlp")
    final_model_onnx_export(final_model=final)
    x_raw, y = _raw_digits_test()
    ds = datasets.load_dataset("digits")
    with torch.no_grad():
        torch_labels = final_model_torch(final_model=final)(torch.from_numpy(ds.x_test)).argmax(1).numpy()
    # when: every test digit as CSV rows (dataset units, header of feature names)
    rows = predict(final, _csv(x_raw, datasets.feature_names("digits")))
    # then
    labels = np.array([r["label"] for r in rows])
    assert len(rows) == len(y) == 360
    assert (labels == torch_labels).all()
    assert (labels == y).mean() >= 0.9
    assert set(rows[0]["probabilities"]) == {str(i) for i in range(10)}
    assert abs(sum(rows[0]["probabilities"].values()) - 1) < 1e-9
    assert rows[0]["probabilities"][str(rows[0]["label"])] == max(rows[0]["probabilities"].values())
    # when: the first 40 as PNG images (dark ink on white, 32x32) and JPEG (light ink on black)
    png = [predict(final, _png(x))[0]["label"] for x in x_raw[:40]]
    jpeg = [predict(final, _png(x, dark_ink=False, fmt="JPEG"))[0]["label"] for x in x_raw[:40]]
    # then
    assert (np.array(png) == torch_labels[:40]).mean() >= 0.95
    assert (np.array(jpeg) == y[:40]).mean() >= 0.85


@pytest.mark.django_db
def test_a_model_without_onnx_export_is_not_ready():
    final = digits_final_model("mlp")
    with pytest.raises(ModelNotReady, match="has not been exported to ONNX yet"):
        predict(final, "0," * 63 + "0\n")


def test_image_is_scaled_to_the_digits_range_with_the_ink_high():
    x_raw, _y = _raw_digits_test()
    for pixels in x_raw[:5]:
        assert np.abs(digits_image(_png(pixels)) - pixels).max() < 0.05
        assert np.abs(digits_image(_png(pixels, dark_ink=False)) - pixels).max() < 0.05


def test_csv_values_of_a_bundled_dataset_are_standardised_as_in_training():
    x_raw, _y = _raw_digits_test()
    got = model_inputs(_csv(x_raw[:10]), DIGITS)
    assert np.abs(got - datasets.load_dataset("digits").x_test[:10]).max() < 1e-5


def test_other_tasks_take_their_values_as_given_in_their_shape():
    spec = InputSpec((1, 2, 2), (0, 1), "")
    got = model_inputs("a;b;c;d\n1;2;3;4\n", spec)
    assert got.shape == (1, 1, 2, 2) and got.ravel().tolist() == [1, 2, 3, 4]


# --- refusals -------------------------------------------------------------------------------------------


def _refused(data, spec, code: str, text: str) -> None:
    with pytest.raises(PredictInputError) as info:
        model_inputs(data, spec)
    assert info.value.code == code, info.value.message
    assert text in info.value.message, info.value.message


def test_wrong_column_count_is_named():
    _refused("1,2,3\n", CUSTOM, "column_count", "Row 1 (line 1) has 3 columns; this model takes exactly 4")
    _refused("1,2,3,4\n1,2,3,4,0\n", CUSTOM, "column_count", "Row 2 (line 2) has 5 columns")


def test_wrong_column_name_is_named():
    names = datasets.feature_names("digits")
    names[2] = "pixel_9_9"
    _refused(
        _csv(np.zeros((1, 64)), names), DIGITS, "column_name", "Column 3 of the header is named 'pixel_9_9'"
    )
    _refused(_csv(np.zeros((1, 64)), names), DIGITS, "column_name", "expects 'pixel_0_2' there")


def test_non_numeric_value_is_named_by_row_and_column():
    _refused(
        "a,b,c,d\n1,2,3,4\n1,2,3,4\n5,6,x7,8\n", CUSTOM, "not_a_number", "Row 3 (line 4), column 3: 'x7'"
    )
    _refused("1,2,,4\n", CUSTOM, "not_a_number", "Row 1 (line 1), column 3: an empty cell")
    _refused("1,2,nan,4\n", CUSTOM, "not_a_number", "'nan' is not a finite number")


def test_image_that_cannot_be_decoded_is_refused():
    _refused(
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, DIGITS, "image_undecodable", "The image could not be decoded"
    )
    _refused(b"\xff\xd8\xff\xe0garbage", DIGITS, "image_undecodable", "could not be decoded")


def test_image_for_a_model_not_trained_on_digits_images_is_refused():
    x_raw, _y = _raw_digits_test()
    spec = InputSpec((64,), tuple(range(10)), "")
    _refused(_png(x_raw[0]), spec, "image_not_accepted", "send CSV rows of its 64 features")


def test_too_many_rows_is_refused():
    _refused("1,2,3,4\n" * (MAX_ROWS + 1), CUSTOM, "too_many_rows", "1,001 rows; at most 1,000")
    assert model_inputs("1,2,3,4\n" * MAX_ROWS, CUSTOM).shape == (MAX_ROWS, 4)


def test_more_than_1_mb_is_refused():
    _refused("1,2,3,4\n" + " " * MAX_INPUT_BYTES, CUSTOM, "too_large", "at most 1,000,000 (1 MB)")
    _refused(b"\x89PNG\r\n\x1a\n" + bytes(MAX_INPUT_BYTES), DIGITS, "too_large", "bytes; at most")


def test_binary_that_is_not_an_image_or_text_is_refused():
    _refused(b"\x00\xff\xfe\x80\x81", CUSTOM, "not_text", "neither a PNG/JPEG image nor UTF-8 CSV text")


def test_empty_input_is_refused():
    _refused("\n\n", CUSTOM, "empty", "The input is empty")
    _refused("a,b,c,d\n", CUSTOM, "empty", "header but no rows")


def test_decompression_bomb_is_refused():
    img = Image.new("L", (5000, 5000), 255)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    assert len(buf.getvalue()) < MAX_INPUT_BYTES
    _refused(buf.getvalue(), DIGITS, "image_too_large", "5000×5000 pixels")
