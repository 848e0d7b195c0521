"""A run's wall-time breakdown as one paragraph for the terminal, wrapped at the width (present.fit)."""

from __future__ import annotations

from dsabench.analysis.wall import WallBreakdown
from dsabench.present.fit import WIDTH, wrap


def _share(seconds: float, total: float) -> str:
    return f"{seconds:.1f} s ({100 * seconds / total:.0f}%)" if total > 0 else f"{seconds:.1f} s"


def format_wall(b: WallBreakdown | None, width: int | None = WIDTH) -> str:
    """'' when the run has no attempts on file."""
    if b is None:
        return ""
    total = b.device_s
    per = f"{b.attempts} invocations, " if b.attempts > 1 else ""
    head = (f"wall time {b.wall_s:.1f} s ({per}{b.devices} device{'s' if b.devices != 1 else ''}, "
            f"{total:.0f} device-seconds); where they went:")
    parts = []
    if b.starts:
        n = sum(c for c, _ in b.starts.values())
        why = ", ".join(f"{c} {w}" for w, (c, _) in b.starts.items())
        parts.append(f"worker start-ups {n} ({why}) {_share(b.start_s, total)}")
    parts += [f"{name} {_share(sec, total)}" for name, sec in b.stages_s.items()]
    parts.append(f"between cases and idle devices {_share(b.other_s, total)}")
    return "\n".join([*wrap(head, width), *wrap("; ".join(parts), width, "  ")])
