"""Many tasks at once through Dask distributed: batch audits of a folder of models, grading a class.

One engine for both (taught in 10_workbench; ``make grade`` uses it too):

- with no address, :func:`engine` starts a :class:`distributed.LocalCluster` on this machine
  (processes, one thread each, on 127.0.0.1, its dashboard on a free loopback port) and closes
  it afterwards;
- with a scheduler's address (``tcp://host:8786``, or ``MODELSEC_DASK_SCHEDULER``), the same
  code runs on that cluster's workers, on as many machines as it has, with no change.

:func:`map_tasks` runs a function over items and returns one :class:`TaskResult` per item,
in the items' order, whatever order they finish in. A task that raises is reported (its
error type and message), never fatal to the others. Tasks must be importable functions
(module-level), so that every worker can unpickle them.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

from utils import validation as v

#: Environment variable naming an existing Dask scheduler (``tcp://host:8786``).
SCHEDULER_ENV = "MODELSEC_DASK_SCHEDULER"


@dataclass(frozen=True)
class TaskResult:
    """One item's outcome: its value, or the error that stopped it (taught in 10_workbench)."""

    item: Any
    ok: bool
    value: Any = None
    error: str = ""
    seconds: float = 0.0


def _timed(fn: Callable, item: Any) -> tuple[bool, Any, str, float]:
    start = time.perf_counter()
    try:
        value = fn(item)
    except Exception as e:  # a task's failure is its result, not the batch's
        return False, None, f"{type(e).__name__}: {e}", time.perf_counter() - start
    return True, value, "", time.perf_counter() - start


@contextlib.contextmanager
def engine(address: str | None = None, n_workers: int = 2, memory_limit: str = "4GiB") -> Iterator[Any]:
    """A Dask ``Client``: on a local cluster by default, or on the scheduler at ``address``.

    Args:
        address: an existing scheduler (``tcp://host:8786``); default ``$MODELSEC_DASK_SCHEDULER``,
            else a local cluster.
        n_workers: local worker processes (one thread each), 1–64; ignored with an address.
        memory_limit: per local worker; Dask restarts a worker that goes over it.

    Taught in 10_workbench.
    """
    from distributed import Client, LocalCluster

    address = address or os.environ.get(SCHEDULER_ENV) or None
    if address is not None:
        if not (isinstance(address, str) and "://" in address):
            v.fail("parallel.engine", f"address {address!r} is not a scheduler address",
                   "give e.g. 'tcp://10.0.0.5:8786'")
        with Client(address, timeout="20s") as client:
            yield client
        return
    v.integer(n_workers, "n_workers", "parallel.engine", 1, 64)
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0",
                           silence_logs=logging.ERROR, memory_limit=memory_limit)
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def map_tasks(fn: Callable[[Any], Any], items: Iterable[Any], *, client: Any = None, address: str | None = None,
              n_workers: int = 2, progress: Callable[[int, int], None] | None = None) -> list[TaskResult]:
    """Run ``fn`` on every item through Dask; one :class:`TaskResult` per item, in order.

    Args:
        fn: a module-level function of one item.
        items: the work (paths, configurations); each is sent to a worker.
        client: an open client from :func:`engine` (else one is made for this call).
        address, n_workers: passed to :func:`engine` when no client is given.
        progress: called with (done, total) as tasks finish.

    Taught in 10_workbench.
    """
    if not callable(fn):
        v.fail("parallel.map_tasks", f"fn is a {type(fn).__name__}", "give a function of one item")
    items = list(items)
    if not items:
        return []
    if client is None:
        with engine(address, n_workers) as own:
            return map_tasks(fn, items, client=own, progress=progress)
    from distributed import as_completed

    futures = [client.submit(_timed, fn, item, pure=False) for item in items]
    index = {f.key: i for i, f in enumerate(futures)}
    out: list[TaskResult | None] = [None] * len(items)
    for done, future in enumerate(as_completed(futures), 1):
        i = index[future.key]
        try:
            ok, value, error, seconds = future.result()
        except Exception as e:  # the worker itself died (e.g. over its memory limit)
            ok, value, error, seconds = False, None, f"worker lost: {type(e).__name__}: {e}", 0.0
        out[i] = TaskResult(items[i], ok, value, error, round(seconds, 3))
        if progress is not None:
            progress(done, len(items))
    return [r for r in out if r is not None]


def serial_tasks(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[TaskResult]:
    """The same as :func:`map_tasks` in this process, one item after another (taught in 10_workbench)."""
    results = []
    for item in items:
        ok, value, error, seconds = _timed(fn, item)
        results.append(TaskResult(item, ok, value, error, round(seconds, 3)))
    return results
