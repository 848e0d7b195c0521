"""What each device measures, and when: shards of a run, the items a worker measures in one go,
longest first, and the queue the devices' drivers take from.

Pure scheduling: no process, no framework. `runner` drives the workers with it.
"""

from __future__ import annotations

import threading
from collections import defaultdict

from dsabench.store.schema import record_key
from dsabench.workload.cases import Case
from dsabench.workload.shards import shard_of


def select_shard(cases: tuple[Case, ...], k: int, n: int) -> tuple[Case, ...]:
    """Cases of shard k of n (1-based k, as `--shard K/N`)."""
    return tuple(c for c in cases if shard_of(c.group_id, n) == k - 1)


Planned = tuple  # (Case, impl label, kernel): one record of the run (impls.plan.plan); kernel '' but on a kernel axis


def planned(cases) -> tuple[Planned, ...]:
    """Cases as (case, impl, kernel) triples: a bare Case is the mirror's, a pair (case, impl) has
    no kernel of its own (the run's one kernel, as each worker resolved it)."""
    return tuple((c, "mirror", "") if not isinstance(c, tuple) else (*c, "")[:3] for c in cases)


def work_items(cases, interleave: bool = True) -> list[tuple[Planned, ...]]:
    """What one worker measures in one go: the eager variants and impls of a case together (inputs
    shared, timing interleaved), every graph case alone (a failed capture may poison its process).
    `cases`: Case, (Case, impl label) or (Case, impl label, kernel)."""
    pairs = planned(cases)
    if not interleave:
        return [(p,) for p in pairs]
    items: list[list[Planned]] = []
    index: dict[str, int] = {}
    for p in pairs:
        c = p[0]
        if c.graph:
            items.append([p])
        elif c.group_id in index:
            items[index[c.group_id]].append(p)
        else:
            index[c.group_id] = len(items)
            items.append([p])
    return [tuple(i) for i in items]


def item_cost(item: tuple[Case, ...]) -> float:
    """A relative estimate of an item's wall time, to hand out the longest work first: each case
    costs its set-up (filling the cache, on the order of its bytes) plus its passes (attention work
    per forward, a proxy for where the protocol's time caps bind)."""
    return sum(c.cache_bytes() / 1e9 + c.num_tokens * c.heads * c.topk / 1e7 + 1.0 for c, *_ in planned(item))


def schedule(items: list[tuple[Case, ...]]) -> list[tuple[Case, ...]]:
    """Longest first (stable for equal costs): with several devices taking from one queue, the
    last items to start are the short ones, so every device stays busy until close to the end."""
    return sorted(items, key=item_cost, reverse=True)


def config_of(item) -> str:
    return planned(item)[0][0].config_id


def _keys(item) -> frozenset:
    return frozenset(record_key(c.id, impl, kernel) for c, impl, kernel in planned(item))


RESTART = "restart"  # WorkQueue.take: start a fresh process on this device, then take again
WAIT = "wait"  # WorkQueue.take: the items left are the other devices' processes' to take


class WorkQueue:
    """The run's items, (repeat, item) in schedule order, shared by the devices' drivers.

    A worker process measures each case at most once: the R records of a case come from R
    different processes (the between-process variance the verdicts need). A device whose process
    has measured every item left starts a fresh one when the other devices' processes cannot take
    them all, or when waiting for them would take longer than its start-up (the seconds per unit of
    `item_cost` are learnt from the items done so far). So one device runs R passes of fresh
    processes, and two devices with two repeats keep one process each for the whole run (a device
    takes the repeat of a case that the other measured), with no start-up, profiler set-up or
    kernel load paid twice.

    Among the items its process may take, a device takes the next item of the configuration it
    measured last (the worker keeps that configuration's host inputs: worker._host_inputs), else
    the first item whose configuration no other device is on, else the first item; earlier repeats
    come first, so a case's processes are spread over the run."""

    def __init__(self, items: list[tuple[int, tuple]]) -> None:
        self._items = list(items)
        self._keys = [_keys(item) for _, item in self._items]
        self._cost = [item_cost(item) for _, item in self._items]
        self._pending = dict.fromkeys(range(len(self._items)))  # insertion-ordered: schedule order
        self._seen: dict = {}  # device -> record keys its current process has measured (or is measuring)
        self._done_cost = self._done_s = 0.0
        self._left_cost = sum(self._cost)  # of the items whose records are not written yet
        self._changed = threading.Condition()

    def join(self, device) -> None:
        """`device` is driving (again) with a fresh process: it may take any item."""
        with self._changed:
            self._seen[device] = set()
            self._changed.notify_all()

    def leave(self, device) -> None:
        """`device` takes nothing more (finished, or lost): the others stop waiting for it."""
        with self._changed:
            self._seen.pop(device, None)
            self._changed.notify_all()

    def finished(self, item, seconds: float) -> None:
        """An item took `seconds` on its device: what a unit of item_cost takes, learnt as the run goes."""
        with self._changed:
            self._done_cost += item_cost(item)
            self._done_s += seconds
            self._changed.notify_all()

    def settled(self, item) -> None:
        """An item's records are written (measured, crashed or timed out): its work is behind."""
        with self._changed:
            self._left_cost -= item_cost(item)

    def eta_s(self) -> float | None:
        """Seconds until every item is settled: the cost left at the rate the timed items took,
        over the devices driving now; None until an item has been timed. Start-ups are not in it."""
        with self._changed:
            if not self._done_cost:
                return None
            return max(0.0, self._left_cost) * self._done_s / self._done_cost / max(1, len(self._seen))

    def take(self, device, last: str | None, busy: set, start_s: float = 0.0, wait_s: float = 0.0):
        """(repeat, item); RESTART; WAIT (after waiting up to wait_s for a change); or None when
        every item is handed out. last: the configuration this device measured last; busy: the
        configurations other devices are on now; start_s: this device's last start-up, in seconds."""
        with self._changed:
            got = self._choose(device, last, busy, start_s)
            if got == WAIT and wait_s > 0:
                self._changed.wait(wait_s)
                got = self._choose(device, last, busy, start_s)
            if isinstance(got, int):
                self._seen[device] |= self._keys[got]
                del self._pending[got]
                self._changed.notify_all()
                return self._items[got]
            return got

    def _choose(self, device, last, busy, start_s):
        if not self._pending:
            return None
        seen = self._seen.setdefault(device, set())
        mine = [i for i in self._pending if not (self._keys[i] & seen)]
        if mine:
            for i in mine if last is not None else ():
                if config_of(self._items[i][1]) == last:
                    return i
            for i in mine:
                if config_of(self._items[i][1]) not in busy:
                    return i
            return mine[0]
        others = [s for d, s in self._seen.items() if d != device]
        left: dict[str, int] = defaultdict(int)
        for i in self._pending:
            for k in self._keys[i]:
                left[k] += 1
        if any(n > sum(k not in s for s in others) for k, n in left.items()):
            return RESTART  # more repeats of a record are left than processes that may measure it
        if any(all(self._keys[i] & s for s in others) for i in self._pending):
            return RESTART  # an item no other process may take (each measured a part of it)
        if self._done_cost and others:
            wait = sum(self._cost[i] for i in self._pending) / len(others) * self._done_s / self._done_cost
            if wait > start_s:
                return RESTART  # a fresh process here finishes sooner than waiting for the others
        return WAIT
