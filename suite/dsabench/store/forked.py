"""Map a function over items in forked worker processes, results in order: for the CPU-bound
loops over a year of nightly runs (loading runs, searching case series for change points),
which split cleanly and otherwise keep one core of a 2-core machine idle."""

from __future__ import annotations

import multiprocessing
import os
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_WORKERS = 2  # the 2 cores a nightly dashboard is meant to run on; each worker holds its share once


def workers(n_items: int, min_items: int) -> int:
    """Worker processes for n_items: none (1: this process) below min_items, else up to MAX_WORKERS
    and the CPUs this process may use, where fork exists (a fork costs ~0.1 s, and results travel back)."""
    if n_items < min_items or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0)), n_items))


def fork_map(fn: Callable[[T], R], items: Sequence[T], min_items: int) -> list[R]:
    """[fn(x) for x in items], in forked workers when there are min_items or more. An exception
    in fn is raised here as in the loop (the first item's that failed among those done)."""
    n = workers(len(items), min_items)
    if n == 1:
        return [fn(x) for x in items]
    with multiprocessing.get_context("fork").Pool(n) as pool:
        return pool.map(fn, items, chunksize=max(1, len(items) // (8 * n)))
