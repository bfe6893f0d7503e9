import pytest

from tasks.models import Task
from tasks.services import ALLOWED_TRANSITIONS, TaskStateError, task_transition

S = Task.Status


@pytest.mark.django_db
def test_happy_path(task_factory):
    # given
    task = task_factory(status=S.DRAFT, chain_task_id=None)
    # when
    for to in (S.REGISTERING, S.RECRUITING, S.TRAINING, S.FINALIZING, S.COMPLETED):
        task_transition(task=task, to=to)
    # then
    task.refresh_from_db()
    assert task.status == S.COMPLETED


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("start", "to"),
    [
        (S.DRAFT, S.RECRUITING),
        (S.DRAFT, S.TRAINING),
        (S.RECRUITING, S.DRAFT),
        (S.TRAINING, S.CANCELLED),
        (S.COMPLETED, S.RECRUITING),
        (S.CANCELLED, S.RECRUITING),
        (S.FAILED, S.TRAINING),
        (S.FINALIZING, S.TRAINING),
    ],
)
def test_illegal_transitions_raise(task_factory, start, to):
    task = task_factory(status=start)
    with pytest.raises(TaskStateError, match="cannot go from"):
        task_transition(task=task, to=to)
    task.refresh_from_db()
    assert task.status == start


@pytest.mark.django_db
def test_same_status_is_a_noop(task_factory):
    task = task_factory(status=S.RECRUITING)
    assert task_transition(task=task, to=S.RECRUITING).status == S.RECRUITING


def test_final_states_have_no_exits():
    assert all(not ALLOWED_TRANSITIONS[s] for s in (S.COMPLETED, S.FAILED, S.CANCELLED))
    assert set(ALLOWED_TRANSITIONS) == set(S.values)


@pytest.mark.django_db
def test_transition_reads_status_under_lock(task_factory):
    # given: a stale in-memory copy
    task = task_factory(status=S.RECRUITING)
    Task.objects.filter(pk=task.pk).update(status=S.CANCELLED)
    # then: the DB status decides
    with pytest.raises(TaskStateError):
        task_transition(task=task, to=S.TRAINING)
