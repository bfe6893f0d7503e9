"""The GIN index behind the model list's search on PostgreSQL (`marketplace.search`): an expression index over
the task's tsvector, built on tasks_task (the rows searched) by the marketplace (the only reader). Other
databases get nothing: the search falls back to substring matches there."""

from django.db import migrations

# Must stay marketplace.search.TASK_VECTOR_SQL over the bare columns (tests check the text and, on PostgreSQL,
# that the search's plan uses the index).
VECTOR = (
    "to_tsvector('english'::regconfig, coalesce(title, '') || ' ' || coalesce(description, '') || ' ' "
    "|| coalesce(model_kind, '') || ' ' || coalesce(validation_summary ->> 'dataset', ''))"
)


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS tasks_task_search ON tasks_task USING gin ({VECTOR})"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS tasks_task_search")


class Migration(migrations.Migration):
    dependencies = [
        ("marketplace", "0002_list_indexes"),
        ("tasks", "0003_contribution_scorer"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
