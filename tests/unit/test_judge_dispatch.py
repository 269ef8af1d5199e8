"""How a round's judge calls are cut into batch tasks (judges.runs.dispatch)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from judges.runs.dispatch import _tasks


def test_without_groups_the_calls_are_cut_in_order():
    calls = [(i, "0,1", 0) for i in range(7)]
    assert _tasks(calls, None, 3) == [
        [[0, "0,1", 0], [1, "0,1", 0], [2, "0,1", 0]],
        [[3, "0,1", 0], [4, "0,1", 0], [5, "0,1", 0]],
        [[6, "0,1", 0]],
    ]


@given(st.lists(st.integers(0, 9), max_size=60), st.integers(1, 8))
def test_a_groups_calls_share_one_task_and_every_call_is_dispatched_once(keys, size):
    calls = [(i, "0,1", 0) for i in range(len(keys))]
    tasks = _tasks(calls, keys, size)
    dispatched = [call[0] for task in tasks for call in task]
    assert sorted(dispatched) == list(range(len(keys)))
    task_of = {call[0]: t for t, task in enumerate(tasks) for call in task}
    for i, key in enumerate(keys):
        assert {task_of[j] for j, k in enumerate(keys) if k == key} == {task_of[i]}
    # a task grows past the size only with one group too large to share it
    for task in tasks:
        if len(task) > size:
            assert len({keys[call[0]] for call in task}) == 1
