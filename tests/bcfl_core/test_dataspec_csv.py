"""Participants' CSV files: headers only when they look like one, delimiters detected, no row dropped."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bcfl_core import dataspec


def _write(tmp_path, text, name="d.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _rows(n=50, features=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 16, size=(n, features))
    y = rng.integers(0, 10, size=n)
    return x, y


def test_first_data_row_with_an_empty_cell_is_an_error_not_a_header(tmp_path):
    # given 50 data rows, the first with one empty cell (used to be taken as a header: 49 of 50 kept)
    x, y = _rows()
    lines = [",".join(map(str, [*r, lbl])) for r, lbl in zip(x, y, strict=True)]
    lines[0] = "," + lines[0].split(",", 1)[1]
    path = _write(tmp_path, "\n".join(lines) + "\n")
    # then
    with pytest.raises(dataspec.DataFileError, match=r"line 1, column 1: empty cell"):
        dataspec.load_csv(path)


def test_empty_cell_in_a_later_row_names_line_and_column(tmp_path):
    path = _write(tmp_path, "f1,f2,label\n1,2,0\n3,,1\n")
    with pytest.raises(dataspec.DataFileError, match=r"d.csv line 3, column 2: empty cell"):
        dataspec.load_csv(path)


def test_non_numeric_cell_in_first_row_is_an_error_when_it_does_not_look_like_a_header(tmp_path):
    path = _write(tmp_path, "1,abc,0\n3,4,1\n")
    with pytest.raises(dataspec.DataFileError, match=r"line 1, column 2: 'abc' is not a number"):
        dataspec.load_csv(path)


def test_all_fifty_rows_kept_with_and_without_a_header(tmp_path):
    x, y = _rows()
    body = "\n".join(",".join(map(str, [*r, lbl])) for r, lbl in zip(x, y, strict=True)) + "\n"
    for text in (body, "a,b,c,label\n" + body):
        got_x, got_y = dataspec.load_csv(_write(tmp_path, text))
        assert got_x.shape == (50, 3) and got_y.tolist() == y.tolist()


def test_numbered_column_names_are_a_header(tmp_path):
    path = _write(tmp_path, "0,1,label\n5,6,1\n7,8,2\n")
    x, y = dataspec.load_csv(path)
    assert x.tolist() == [[5, 6], [7, 8]] and y.tolist() == [1, 2]


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_delimiters_are_detected(tmp_path, delimiter):
    path = _write(
        tmp_path, delimiter.join(["f1", "f2", "label"]) + "\n" + delimiter.join(["1", "2", "0"]) + "\n"
    )
    x, y = dataspec.load_csv(path)
    assert x.tolist() == [[1, 2]] and y.tolist() == [0]


def test_semicolon_file_with_decimal_commas(tmp_path):
    path = _write(tmp_path, "f1;f2;label\n0,5;1,25;0\n2;3;1\n")
    x, y = dataspec.load_csv(path)
    assert x.tolist() == [[0.5, 1.25], [2.0, 3.0]] and y.tolist() == [0, 1]


def test_single_column_file_says_what_separators_are_recognised(tmp_path):
    path = _write(tmp_path, "1\n2\n")
    with pytest.raises(dataspec.DataFileError, match="semicolons, tabs and | are recognised"):
        dataspec.load_csv(path)


def test_byte_order_mark_is_ignored_and_non_utf8_is_refused(tmp_path):
    x, y = dataspec.load_csv(_write(tmp_path, "\ufefff1,label\n1,0\n"))
    assert x.tolist() == [[1.0]] and y.tolist() == [0]
    with pytest.raises(dataspec.DataFileError, match="not UTF-8"):
        dataspec.load_csv(_write(tmp_path, "f1,label\n1,0\n\xff,1\n", encoding="latin-1"))


def test_blank_lines_do_not_shift_line_numbers(tmp_path):
    path = _write(tmp_path, "1,2,0\n\n3,4,1\n5,x,1\n")
    with pytest.raises(dataspec.DataFileError, match=r"line 4, column 2"):
        dataspec.load_csv(path)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(-1000, 1000), min_size=3, max_size=3),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from([",", ";", "\t", "|"]),
    st.booleans(),
)
def test_every_numeric_row_is_kept(tmp_path_factory, rows, delimiter, header):
    # given any numeric table, with or without a header line
    text = ("a" + delimiter + "b" + delimiter + "label\n" if header else "") + "\n".join(
        delimiter.join(map(str, r)) for r in rows
    )
    path = tmp_path_factory.mktemp("csv") / "d.csv"
    path.write_text(text + "\n")
    # when
    x, y = dataspec.load_csv(path)
    # then no row is lost and values are exact
    assert x.tolist() == [[float(v) for v in r[:2]] for r in rows]
    assert y.tolist() == [r[2] for r in rows]


def test_semicolon_file_of_decimal_commas_without_header(tmp_path):
    path = _write(tmp_path, "0,5;1,25;0\n2,5;3,5;1\n")
    x, y = dataspec.load_csv(path)
    assert x.tolist() == [[0.5, 1.25], [2.5, 3.5]] and y.tolist() == [0, 1]
