"""Map a function over items in forked worker processes, results in order: for the CPU-bound
loops over a year of nightly runs (loading runs, searching case series for change points),
which split cleanly and otherwise keep one core of a 2-core machine idle."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence, TypeVar

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
    back, pickled. An exception in fn is raised here as in the loop. A worker that dies (the
    out-of-memory killer, a signal) is a ChildProcessError here, never a wait without end (a
    multiprocessing.Pool waits forever for the items a dead worker held)."""
    global _TASK
    n = workers(len(items), min_items)
    if n == 1:
        return [fn(x) for x in items]
    _TASK = (fn, items)
    before = {p.pid for p in multiprocessing.active_children()}
    pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork"), initializer=_quiet)
    ours: list = []
    done = False
    try:
        with _fork_signals():  # the workers are forked by the first submit, in this thread
            results = pool.map(_one, range(len(items)), chunksize=max(1, len(items) // (8 * n)))
        # the workers, held now: one may die and be reaped before it could be listed later
        ours = list((getattr(pool, "_processes", None) or {}).values()) or \
            [p for p in multiprocessing.active_children() if p.pid not in before]
        try:
            out = list(results)
        except BrokenProcessPool:
            pool.shutdown(wait=True, cancel_futures=True)  # the broken pool's own clean-up reaps every worker
            codes = sorted({p.exitcode for p in ours if p.exitcode not in (None, 0)})
            raise ChildProcessError(
                f"a worker process ended abruptly (exit {', '.join(map(str, codes)) or 'unknown'}"
                f"{'; -9 is SIGKILL, often the out-of-memory killer' if -9 in codes else ''}) while mapping "
                f"{len(items)} items over {n} forked workers; with less memory in use, run it again") from None
        done = True
        return out
    finally:
        pool.shutdown(wait=done, cancel_futures=True)
        if not done:  # an error or Ctrl-C: stop the workers now, not after the items they hold
            left = {p.pid: p for p in [*ours, *multiprocessing.active_children()] if p.pid not in before}
            for p in left.values():
                if p.is_alive():
                    p.terminate()
            for p in left.values():
                p.join()
        _TASK = ()


@contextmanager
def _fork_signals() -> Iterator[None]:
    """Around the fork, the signal dispositions of `_quiet`, so a worker holds them from its first
    instruction: one stopped before its initializer ran would otherwise meet the parent's handlers
    (the CLI's, or a test runner's) and print a traceback."""
    if threading.current_thread() is not threading.main_thread():  # signal.signal works in the main thread only
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old[0])
        signal.signal(signal.SIGTERM, old[1])


def _quiet() -> None:
    """A worker leaves Ctrl-C to its parent and ends on SIGTERM without a word: the CLI's own
    handlers (SIGTERM as an interrupt) would print a traceback from each worker the pool stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
