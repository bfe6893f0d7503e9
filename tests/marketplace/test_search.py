"""The model list's search (`marketplace.search`): every word must match (a prefix on PostgreSQL's full-text
index, a substring elsewhere) in title, description, model kind or dataset; on PostgreSQL the GIN index that
migration 0003 creates serves it (its expression is the query's)."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection

from marketplace import search, selectors
from tests.marketplace.factories import ModelTokenFactory

pytestmark = pytest.mark.django_db


def _token(title: str, description: str = "", dataset: str = "iris", kind: str = "mlp"):
    return ModelTokenFactory(
        task__title=title,
        task__description=description,
        task__model_kind=kind,
        task__validation_summary={"dataset": dataset},
    )


def _ids(q: str) -> set[int]:
    return {t.token_id for t in selectors.model_list(q=q)}


def test_words_are_letters_and_digits_lowercased_and_bounded():
    assert search.words("Fashion-MNIST, robust_CNN #12!") == ["fashion", "mnist", "robust", "cnn", "12"]
    assert len(search.words(" ".join(f"w{i}" for i in range(20)))) == search.MAX_WORDS
    assert search.prefix_tsquery(["digit", "mlp"]) == "digit:* & mlp:*"


def test_every_word_must_match_one_of_the_four_fields():
    hospital = _token("Hospital readmission", description="A private model of wards.", dataset="ecg")
    digits = _token("Handwritten digits", description="Robust to noise.", dataset="digits", kind="cnn")
    fashion = _token("Clothes", dataset="fashion-mnist")
    assert _ids("digits") == {digits.token_id}  # title
    assert _ids("ECG") == {hospital.token_id}  # dataset, any case
    assert _ids("robust cnn") == {digits.token_id}  # description + model kind, both required
    assert _ids("robust mlp") == set()
    assert _ids("mnist") == {fashion.token_id}  # part of a hyphenated dataset name
    assert _ids("handwrit") == {digits.token_id}  # a word's beginning
    assert _ids("") == {hospital.token_id, digits.token_id, fashion.token_id}
    assert _ids("!!!") == set()  # no word at all: nothing, not everything


def test_the_migration_indexes_the_expression_the_query_uses():
    migration = importlib.import_module("marketplace.migrations.0003_task_search_index")
    bare = search.TASK_VECTOR_SQL.format(**{name: name for name in search.FIELDS})
    assert migration.VECTOR == bare


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the GIN index exists on PostgreSQL only")
def test_the_search_plan_uses_the_gin_index():
    for i in range(30):
        _token(f"Model {i}", description="sensor data")
    with connection.cursor() as cursor:
        cursor.execute(
            "SET enable_seqscan = off"
        )  # a 30-row table: make the planner show it can use the index
        try:
            plan = selectors.model_list(q="sensor").explain()
        finally:
            cursor.execute("SET enable_seqscan = on")
    assert search.INDEX_NAME in plan
