"""Search of the model list's `q` (title, description, model kind, dataset of the model's task).

On PostgreSQL: full-text search over one tsvector of the task's four fields (English stemming), every word of
`q` a prefix ("digit" finds "digits", "mnist" finds "fashion-mnist"), served by the GIN expression index
`tasks_task_search` that migration marketplace 0003 creates over exactly `TASK_VECTOR_SQL`. Elsewhere (SQLite):
every word a case-insensitive substring of one of the four fields, the same rows for ordinary words.
"""

from __future__ import annotations

import re

from django.db import connection
from django.db.models import BooleanField, F, Func, Q, QuerySet

MAX_WORDS = 8
# The index's expression over tasks_task's columns; the query's must be the same expression to use it.
TASK_VECTOR_SQL = (
    "to_tsvector('english'::regconfig, coalesce({title}, '') || ' ' || coalesce({description}, '') || ' ' "
    "|| coalesce({model_kind}, '') || ' ' || coalesce({validation_summary} ->> 'dataset', ''))"
)
FIELDS = ("title", "description", "model_kind", "validation_summary")
INDEX_NAME = "tasks_task_search"


def words(q: str) -> list[str]:
    """The search words of `q`: runs of letters and digits, lowercased, at most `MAX_WORDS`."""
    return re.findall(r"[^\W_]+", q.lower())[:MAX_WORDS]


def prefix_tsquery(terms: list[str]) -> str:
    """A to_tsquery text in which every word is a prefix, all required: "digit:* & mlp:*"."""
    return " & ".join(f"{w}:*" for w in terms)


class TaskMatches(Func):
    """PostgreSQL: `TASK_VECTOR_SQL` over the task's columns (as joined by the query) @@ the prefix query."""

    output_field = BooleanField()

    def __init__(self, task_path: str, tsquery: str):
        super().__init__(*(F(f"{task_path}__{name}") for name in FIELDS))
        self.tsquery = tsquery

    def as_sql(self, compiler, connection, **extra):
        columns, params = {}, []
        for name, expression in zip(FIELDS, self.get_source_expressions(), strict=True):
            sql, column_params = compiler.compile(expression)
            columns[name] = sql
            params += column_params
        vector = TASK_VECTOR_SQL.format(**columns)
        return f"{vector} @@ to_tsquery('english'::regconfig, %s)", [*params, self.tsquery]


def search_tokens(qs: QuerySet, q: str, *, task_path: str = "task") -> QuerySet:
    """`qs` kept to the rows whose task (reached through `task_path`) matches every word of `q`; `q` without
    words (punctuation only) matches nothing, an empty `q` everything."""
    terms = words(q)
    if not q.strip():
        return qs
    if not terms:
        return qs.none()
    if connection.vendor == "postgresql":
        return qs.filter(TaskMatches(task_path, prefix_tsquery(terms)))
    for w in terms:
        fields = ("title", "description", "model_kind", "validation_summary__dataset")
        any_field = Q()
        for name in fields:
            any_field |= Q(**{f"{task_path}__{name}__icontains": w})
        qs = qs.filter(any_field)
    return qs
