"""Which non-ok case statuses are expected findings of their case, and how to name them.

Three statuses are what their case is meant to show, not a failure of the suite:
- `unsupported` on a CUDA Graph case: the device (a CPU) has no CUDA Graph; and `unsupported`
  by the attention kernel (its message starts "kernel NAME:"): the kernel does not take the
  case's shape (FlashMLA: 64 or 128 query heads, topk a multiple of 64 / 128; bench/kernels);
- `invalid` on a view-layout case: the view that swaps dims 1 and 2 is refused on a multi-head
  cache (legal only while cache heads == 1);
- `capture_failed` of a tensor-scale variant (baseline, tensor+view): the host-to-device copy of
  `paddle.tensor(200.0)` breaks CUDA Graph capture, which is PR #7253's own finding.

Charts, compare and evidence show these neutrally (grey, "n/a: ..." / "finding: ..."); every
other non-ok status (oom, crashed, nonfinite, a capture failure of a variant without the host
copy) is a failure, shown in red.
"""

from __future__ import annotations

import re
from typing import Mapping

FINDING_COLOR = "#7f8c8d"  # neutral grey: an expected result of the case
FAILURE_COLOR = "#b03a2e"  # red: something went wrong


def _is(value) -> bool:
    return bool(value) and value == value  # NaN-safe truthiness for frame cells


def finding(row: Mapping) -> str | None:
    """The short neutral label of an expected non-ok status, or None when the status is ok or
    a real failure. `row` is a frame row or a record's params plus status and message."""
    status = row.get("status")
    if status == "unsupported" and _is(row.get("graph")):
        # Both backends say the capture "needs a CUDA device" when there is none (a CPU run).
        return "n/a: no CUDA Graph on CPU" if "CUDA device" in str(row.get("message") or "") else "n/a: no CUDA Graph"
    if status == "unsupported" and (m := re.match(r"kernel (\w+): ", str(row.get("message") or ""))):
        return f"n/a: {m.group(1)} does not take this shape"
    if status == "invalid" and row.get("layout_mode") == "view":
        return "n/a: view invalid on a multi-head cache"
    if status == "capture_failed" and row.get("scale_mode") == "tensor":
        return "finding: capture fails (host copy)"
    return None


def status_label(row: Mapping) -> str:
    """What a chart or table cell says for a case: its finding label, else its status."""
    return finding(row) or str(row.get("status"))


def status_color(row: Mapping) -> str:
    return FINDING_COLOR if finding(row) else FAILURE_COLOR
