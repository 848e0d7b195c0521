"""What a bisection does to the world: its settings and state file, whether a commit loads, and
one step's `dsabench run` of three commits.

Each step is a real `dsabench run` in a child process (`--impl` GOOD, midpoint, BAD: one run,
one worker per case group, interleaved on shared inputs), writing an ordinary run directory
under `DIR/steps/`, so `compare --impls` re-judges it and `run --resume` finishes it after an
interrupt. The state file `DIR/state.json` is replaced atomically after each step, and names
the step in flight (`pending`) before its run starts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dsabench.analysis.bisect_plan import (
    Attempt, Plan, attempt_from_dict, attempt_to_dict, plan_from_dict, plan_to_dict,
)  # fmt: skip
from dsabench.errors import DsabenchError, InputError
from dsabench.store.files import write_atomic
from dsabench.store.rundir import MANIFEST

STATE = "state.json"
STEPS = "steps"
SCHEMA = 1
# Seconds an interrupted step's run gets to stop on its own (Ctrl-C reaches it too) before it is
# sent SIGTERM (a SIGTERM to the bisection reaches only the bisection).
INTERRUPT_GRACE_S = 10.0


class StepFailed(DsabenchError):
    """A step's run failed (no worker, a full disk, ...): the bisection stops, --resume goes on."""


@dataclass(frozen=True)
class Settings:
    """What the bisection was asked, resolved: the state file keeps it, `--resume` reuses it."""

    path: str  # the FastDeploy tree (absolute)
    good: str  # as given
    bad: str
    good_sha: str
    bad_sha: str
    scenario: str  # preset name or absolute file path
    filter: str | None = None
    kernel: str | None = None
    threshold: float | str = 0.03  # the gate's (compare --threshold)
    max_time_s: float | None = None
    all_commits: bool = False
    first_parent_count: int = 0  # first-parent commits after GOOD up to BAD, walked or not
    env: dict = field(default_factory=dict)  # device, backend, kernel, ops: read from the first run

    def impl(self, sha: str) -> str:
        return f"fastdeploy:{self.path}@{sha}"


@dataclass
class State:
    settings: Settings
    plan: Plan
    attempts: list[Attempt]
    pending: dict | None = None  # {"index", "sha", "repeats", "run"} of the step whose run is under way

    def to_json(self) -> bytes:
        return (json.dumps({
            "schema": SCHEMA, "settings": asdict(self.settings), "plan": plan_to_dict(self.plan),
            "attempts": [attempt_to_dict(a) for a in self.attempts], "pending": self.pending,
        }, indent=1, allow_nan=True) + "\n").encode()  # fmt: skip


def save(out_dir: Path, state: State) -> None:
    """Replace DIR/state.json whole (temporary file, fsync, rename): an interrupt leaves the old or the new."""
    write_atomic(Path(out_dir) / STATE, state.to_json())


def load(out_dir: Path) -> State:
    """The state of a bisection directory, or one InputError line naming the file and key."""
    path = Path(out_dir) / STATE
    if not path.is_file():
        raise InputError(f"--resume {out_dir}: {path} is missing; expected the directory of a bisection")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise InputError(f"{path}: key 'schema' is {data.get('schema') if isinstance(data, dict) else None!r}; "
                         f"expected {SCHEMA}")
    pending = data.get("pending")
    if pending is not None and not (isinstance(pending, dict) and {"index", "repeats", "run"} <= pending.keys()):
        raise InputError(f"{path}: key 'pending' is {pending!r}; expected null or an object with index, repeats "
                         "and run; start the bisection again")
    try:
        state = State(Settings(**data["settings"]), plan_from_dict(data["plan"]),
                      [attempt_from_dict(a) for a in data["attempts"]], pending)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:  # AttributeError: an attempt not an object
        raise InputError(f"{path}: damaged state ({type(exc).__name__}: {exc}); start the bisection again") from None
    if len(state.plan.commits) < 2:
        raise InputError(f"{path}: key 'plan.commits' holds {len(state.plan.commits)} commit(s); expected GOOD, "
                         "BAD and those between; start the bisection again")
    return state


def probe(settings: Settings, sha: str) -> str | None:
    """None when the commit loads as `dsabench run --impl` would load it, else why not (one line):
    a missing file, a new import, a class or signature the plug-in cannot drive."""
    from dsabench.cli import impl_setup  # noqa: PLC0415

    try:
        with ExitStack() as stack:
            impl_setup.resolve([settings.impl(sha)], "bisect", None, "paddle", stack)
    except InputError as exc:
        text, prefix = str(exc), settings.impl(sha)
        return text[len(prefix):].split(": ", 1)[-1] if text.startswith(prefix) else text
    return None


def run_dir(out_dir: Path, run: str) -> Path:
    return Path(out_dir) / STEPS / run


def run_step(settings: Settings, out_dir: Path, run: str, shas: list[str], repeats: int) -> Path:
    """`dsabench run` of the commits `shas` in one run (resumed when its directory already has a
    manifest); its output goes to DIR/steps/RUN.log. Raises KeyboardInterrupt when it was
    interrupted, StepFailed naming the log when it failed."""
    where = run_dir(out_dir, run)
    if (where / MANIFEST).is_file():
        cmd = ["run", "--resume", str(where)]
    else:
        cmd = ["run", settings.scenario, "--out", str(where.parent), "--run-id", run, "--profile-iters", "0",
               "--repeats", str(repeats)]
        for sha in shas:
            cmd += ["--impl", settings.impl(sha)]
        for flag, value in (("--filter", settings.filter), ("--kernel", settings.kernel),
                            ("--max-time-s", settings.max_time_s)):
            if value is not None:
                cmd += [flag, str(value)]
    where.parent.mkdir(parents=True, exist_ok=True)
    log = where.parent / f"{run}.log"
    with open(log, "a") as fh:
        fh.write(f"$ dsabench {' '.join(cmd)}\n")
        fh.flush()
        child = subprocess.Popen([sys.executable, "-m", "dsabench", *cmd], stdout=fh, stderr=subprocess.STDOUT)
        try:
            code = child.wait()
        except KeyboardInterrupt:  # Ctrl-C reached the child too and it is stopping; SIGTERM reached only us
            try:
                child.wait(timeout=INTERRUPT_GRACE_S)
            except subprocess.TimeoutExpired:
                child.send_signal(signal.SIGTERM)  # the run keeps its finished cases and exits 130
                child.wait()
            raise
    if code == 130:
        raise KeyboardInterrupt
    if code != 0 or not (where / MANIFEST).is_file():
        raise StepFailed(f"step run {run} exited {code}: {_last_error(log)}; its output is in {log}, finish it with "
                         f"dsabench bisect --resume {out_dir}")
    return where


def _last_error(log: Path) -> str:
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or ["(no output)"])[-1][:300]


def judge_run(settings: Settings, where: Path, good: str, bad: str, mid: str | None):
    """The gate's verdicts per case group of one step's run, and the run's device, kernel and ops."""
    from dsabench.analysis.bisect_judge import judge_step  # noqa: PLC0415
    from dsabench.bench.impls.plan import checkout_label  # noqa: PLC0415
    from dsabench.store.frames import load_runs  # noqa: PLC0415

    def label(sha: str) -> str:  # as the run's records name a commit
        return checkout_label(sha, False, settings.path)

    frame = load_runs([where])
    groups = judge_step(frame, label(good), label(bad), label(mid) if mid else None, settings.threshold)
    df = frame.df
    env = {k: " + ".join(sorted({str(v) for v in df[col].dropna()})) for k, col in
           (("device", "device_name"), ("backend", "backend"), ("kernel", "kernel"), ("ops", "impl_ops"))}
    return groups, env


def default_out(good_sha: str, bad_sha: str) -> Path:
    from datetime import datetime, timezone  # noqa: PLC0415

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("results") / "bisect" / f"{stamp}-{good_sha[:8]}-{bad_sha[:8]}"


def cwd_relative(path: Path) -> str:
    """The path as typed from here when it lies below the working directory, else absolute."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(Path(path).resolve())
    return str(Path(path).resolve()) if rel.startswith("..") else rel
