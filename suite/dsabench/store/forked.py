"""Map a function over items in forked worker processes, results in order: for the CPU-bound
loops over a year of nightly runs (loading runs, searching case series for change points),
which split cleanly and otherwise keep one core of a 2-core machine idle."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
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


_TASK: tuple = ()  # (fn, items) of the fork_map under way: forked workers inherit it, so neither is pickled


def _one(i: int):
    fn, items = _TASK
    return fn(items[i])


def fork_map(fn: Callable[[T], R], items: Sequence[T], min_items: int) -> list[R]:
    """[fn(x) for x in items], in forked workers when there are min_items or more. fn and the
    items reach the workers by the fork (a closure or a figure will do); only results travel
    back, pickled. An exception in fn is raised here as in the loop."""
    global _TASK
    n = workers(len(items), min_items)
    if n == 1:
        return [fn(x) for x in items]
    _TASK = (fn, items)
    pool = _pool(n)
    try:
        out = pool.map(_one, range(len(items)), chunksize=max(1, len(items) // (8 * n)))
        pool.close()  # the workers exit on their own
        return out
    finally:
        pool.terminate()
        pool.join()
        _TASK = ()


def _pool(n: int):
    """A fork pool whose workers hold _quiet's signal dispositions from their first instruction:
    they are set here around the fork, since a worker stopped before its initializer ran would
    otherwise meet the parent's handlers (the CLI's, or a test runner's) and print a traceback."""
    ctx = multiprocessing.get_context("fork")
    if threading.current_thread() is not threading.main_thread():  # signal.signal works in the main thread only
        return ctx.Pool(n, initializer=_quiet)
    old = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        return ctx.Pool(n, initializer=_quiet)
    finally:
        signal.signal(signal.SIGINT, old[0])
        signal.signal(signal.SIGTERM, old[1])


def _quiet() -> None:
    """A worker leaves Ctrl-C to its parent and ends on SIGTERM without a word: the CLI's own
    handlers (SIGTERM as an interrupt) would print a traceback from each worker the pool stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
