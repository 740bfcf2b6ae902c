"""utils.parallel: the one Dask engine behind batch audits and grading."""
from __future__ import annotations

import math

import pytest

from utils import parallel
from utils.validation import ValidationError


def test_a_two_worker_cluster_returns_every_result_in_order_and_reports_failures():
    items = [16, -1, 9, 0.25, "x"]
    with parallel.engine(n_workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")  # loopback only
        assert all(w.startswith("tcp://127.0.0.1:") for w in client.scheduler_info()["workers"])
        results = parallel.map_tasks(math.sqrt, items, client=client)
    assert [r.item for r in results] == items
    assert [r.ok for r in results] == [True, False, True, True, False]
    assert [r.value for r in results if r.ok] == [4.0, 3.0, 0.5]
    assert results[1].error == "ValueError: math domain error"
    assert results[4].error.startswith("TypeError")
    serial = parallel.serial_tasks(math.sqrt, items)
    assert [(r.ok, r.value, r.error) for r in serial] == [(r.ok, r.value, r.error) for r in results]


def test_progress_is_reported_once_per_task():
    seen = []
    parallel.map_tasks(abs, [-1, -2, -3], n_workers=1, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("kwargs, message", [({"address": "localhost"}, "not a scheduler address"),
                                             ({"n_workers": 0}, "n_workers")])
def test_bad_engine_settings_are_refused_with_the_reason(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        with parallel.engine(**kwargs):
            pass


def test_nothing_to_do_starts_no_cluster_and_a_non_function_is_refused():
    assert parallel.map_tasks(abs, []) == []
    with pytest.raises(ValidationError, match="give a function"):
        parallel.map_tasks(3, [1])
