"""Bounds on what a scenario may ask for, so that validating it can neither hang nor exhaust memory.

Three bounds, each checked before the thing it protects is built:
- per axis value: what one unit of the axis costs at the least (a cached token record, a query
  head, a gathered key), times the value, must fit in `DEVICE_BYTES_BOUND`;
- per file: the combinations its scenarios expand to, before exclusions, at most `MAX_CASES`;
- per case: its estimated memory (`Case.estimated_bytes`) at most `DEVICE_BYTES_BOUND` at load,
  and, with the impls that hold their inputs at once (`needed_bytes`), at most the memory of the
  device a run targets before the run starts (`cli/device_fit.py`).
"""

from __future__ import annotations

from dsabench.workload.cases import Case
from dsabench.workload.dims import DEFAULT_DIMS

GIB = 2**30

# Memory of the largest device a case may be planned for: more than any single GPU holds today.
# A case or axis value that would not fit in it cannot run anywhere, so it is refused at load.
DEVICE_BYTES_BOUND = 512 * GIB
BOUND_TEXT = "no device holds more than 512 GiB"

# Combinations one scenario file may expand to before its [[exclude]] tables apply.
MAX_CASES = 10_000

# Bytes a scenario file may have: a preset is a few KiB.
MAX_FILE_BYTES = 2**20

# TOML integers can be arbitrarily large; paddle.seed and torch's generator take 64-bit seeds.
MAX_SEED = 2**63 - 1

_RECORD = DEFAULT_DIMS.record_bytes  # one cached token
_Q_HEAD = DEFAULT_DIMS.q_head_dim * 2  # one query head of one token, bf16
_GATHERED_KEY = DEFAULT_DIMS.q_head_dim * 4 * 2  # one gathered key of one token, fp32, twice
_TOKENS = DEVICE_BYTES_BOUND // _RECORD

# Per axis: the largest value, and why (the least memory one unit of the axis costs).
AXIS_BOUNDS: dict[str, tuple[int, str]] = {
    "batch": (_TOKENS, f"each request caches at least one {_RECORD}-byte token record"),
    "context_len": (_TOKENS, f"each cached token takes a {_RECORD}-byte record"),
    "prefill_len": (_TOKENS, f"each prefill token takes a {_RECORD}-byte record"),
    "num_blocks": (_TOKENS, f"each block holds at least one {_RECORD}-byte token record"),
    "block_size": (_TOKENS, f"each token of a block takes a {_RECORD}-byte record"),
    "cache_heads": (_TOKENS, f"each cache head holds at least one {_RECORD}-byte token record"),
    "heads": (DEVICE_BYTES_BOUND // _Q_HEAD, f"each query head of a token takes {_Q_HEAD} bytes"),
    "topk": (DEVICE_BYTES_BOUND // _GATHERED_KEY, f"each selected key of a token takes {_GATHERED_KEY} bytes"),
}


def axis_bound_text(axis: str) -> str:
    """What a message says about an axis's bound: the largest value and why."""
    bound, why = AXIS_BOUNDS[axis]
    return f"at most {bound} ({why}, and {BOUND_TEXT})"


def gib(n: int) -> str:
    return f"{n / GIB:,.1f} GiB"


def needed_bytes(case: Case, states: int = 1) -> int:
    """The case's estimate with `states` impls of the run holding their inputs at once (each impl of
    a case group builds its own cache and queries from the same seeded inputs and keeps them while
    the group is timed in rounds): the cache once per impl, the rest once."""
    return case.estimated_bytes() + (max(states, 1) - 1) * case.cache_bytes()
