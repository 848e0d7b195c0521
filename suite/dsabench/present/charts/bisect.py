"""The bisection chart: each step's medians along the commits walked, one panel per case group
where BAD differed from GOOD.

x is the commit's place in the walk (0 = GOOD, last = BAD); every step measured GOOD, the
midpoint and BAD in one run, so GOOD and BAD get a point per step (their spread is the
run-to-run variation the gate allows for). The midpoint's colour is its verdict; a commit that
did not load is a cross at the foot of the axes; the culprit's place is shaded.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib import rc_context
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import blended_transform_factory

from dsabench.analysis.bisect_plan import BAD, GOOD, SKIP, UNDECIDED, Attempt, Outcome, Plan
from dsabench.present.charts.common import (
    MISSING_COLOR, RC, Chart, add_legend, grid_shape, hide_unused, new_figure, save_chart,
)  # fmt: skip

COLORS = {GOOD: "#27ae60", BAD: "#c0392b", UNDECIDED: MISSING_COLOR, SKIP: "#2c3e50", "ends": MISSING_COLOR}
MAX_PANELS = 4  # case groups drawn; the state file keeps every group's medians


def _groups(plan: Plan, attempts) -> list[str]:
    found = []
    for a in attempts:
        for g in a.groups:
            if g.ends == plan.want and g.group not in found:
                found.append(g.group)
    return found or [g.group for a in attempts for g in a.groups][:1]


def bisect_chart(plan: Plan, attempts: tuple[Attempt, ...], outcome: Outcome, out_dir: Path,
                 title_env: str = "") -> Chart:
    groups = _groups(plan, attempts)
    shown = groups[:MAX_PANELS] or ["(no run)"]
    rows, cols = grid_shape(len(shown), max_cols=2)
    walked = sorted({0, plan.last} | {a.index for a in attempts if a.index is not None})
    foot = ("x: place in the walk (0 = GOOD, last = BAD), labelled with the short SHA of each commit measured; "
            "y: median per forward in that step's run (log scale). GOOD and BAD are measured again in every step. "
            "The colour of a midpoint is the gate's verdict on it (compare --impls), not a reading of these medians.")
    if len(groups) > len(shown):
        foot += f"\n{len(shown)} of {len(groups)} case groups drawn; all are in state.json"
    what = "faster" if plan.improvement else "slower"
    fig, axes, legend_y = new_figure(rows, cols, 7.5, 3.6,
                                     f"Bisection for the commit that made the forward {what}"
                                     + (f" ({title_env})" if title_env else ""), foot, legend_rows=2)
    step_of, seen = {}, []
    for a in attempts:
        if a.kind == "run" and a.index not in seen:
            seen.append(a.index)
        step_of[id(a)] = len(seen)
    for ax, group in zip(axes.flat, shown):
        for a in attempts:
            g = next((x for x in a.groups if x.group == group), None)
            if a.kind == "load":
                ax.plot([a.index], [0.02], marker="x", color=COLORS[SKIP], linestyle="none",
                        transform=blended_transform_factory(ax.transData, ax.transAxes))
                continue
            if g is None:
                continue
            for x, ms, color in ((0, g.good_ms, COLORS[GOOD]), (plan.last, g.bad_ms, COLORS[BAD])):
                if math.isfinite(ms):
                    ax.plot([x], [ms], marker="o", color=color, markersize=4, alpha=0.6, linestyle="none")
            if a.index is not None and math.isfinite(g.mid_ms):
                ax.plot([a.index], [g.mid_ms], marker="D", color=COLORS.get(a.verdict, MISSING_COLOR), markersize=6,
                        linestyle="none")
                ax.annotate(f"{step_of[id(a)]}", (a.index, g.mid_ms), textcoords="offset points", xytext=(5, 4),
                            fontsize=7)
            elif a.index is not None and a.verdict == SKIP:
                ax.plot([a.index], [0.02], marker="x", color=COLORS[SKIP], linestyle="none",
                        transform=blended_transform_factory(ax.transData, ax.transAxes))
        if outcome.kind == "found" and outcome.culprit is not None:
            ax.axvspan(outcome.culprit - 0.5, outcome.culprit + 0.5, color=COLORS[BAD], alpha=0.12, linewidth=0)
        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        ax.set_xlim(-0.7, plan.last + 0.7)
        ax.set_xticks(walked, [plan.commits[i].sha[:7] for i in walked], rotation=45, ha="right")
        ax.set_title(group, fontsize=8)
        ax.set_ylabel("median per forward (ms)")
        ax.grid(axis="y", alpha=0.3)
    hide_unused(axes, len(shown))
    handles = [
        Line2D([], [], marker="o", color=COLORS[GOOD], linestyle="none", label="GOOD (each step)"),
        Line2D([], [], marker="o", color=COLORS[BAD], linestyle="none", label="BAD (each step)"),
        Line2D([], [], marker="D", color=COLORS[GOOD], linestyle="none", label="midpoint like GOOD"),
        Line2D([], [], marker="D", color=COLORS[BAD], linestyle="none", label="midpoint like BAD"),
        Line2D([], [], marker="D", color=MISSING_COLOR, linestyle="none", label="undecided"),
        Line2D([], [], marker="x", color=COLORS[SKIP], linestyle="none", label="skipped (does not load or run)"),
    ]
    add_legend(fig, legend_y, handles, ncols=3)
    png, svg = save_chart(fig, Path(out_dir), "bisect", svg=True)
    return Chart("bisect", "Medians along the commits walked", png, svg,
                 "Each step's median per forward of GOOD, the midpoint and BAD, measured in one run.")


def draw(plan: Plan, attempts, outcome: Outcome, out_dir: Path, title_env: str = "") -> Chart:
    """The chart under the suite's chart style (`common.RC`)."""
    with rc_context(RC):
        return bisect_chart(plan, tuple(attempts), outcome, out_dir, title_env)
