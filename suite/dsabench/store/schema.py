"""What a run writes: the typed, versioned `Manifest` (manifest.json) and `Record` (one line of cases.jsonl).

msgspec Structs: the writer builds these types, and loading decodes into the same types, so a
field has one spelling and one type on both sides and damage is found once, at load, with the
path of the field that is wrong. Raw per-iteration samples are the record; medians and intervals
are recomputed at analysis time. Older files reach the current version through one function,
`upgrade_to_current`; `store.rundir` does the file work (atomic writes, the writer's lock).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Mapping, Union

import msgspec

SCHEMA_VERSION = 3

STATUSES = ("ok", "capture_failed", "oom", "crashed", "unsupported", "invalid", "nonfinite")

# Bounds of a run file, far beyond what a run writes and well inside what every reader can hold
# and compute on; a file beyond one is refused at load, naming its line and key (issue 21).
MAX_SAMPLE_MS = 86_400_000.0  # one latency sample: a day (no forward takes that long; squares and sums of
#                               such samples stay far from float overflow, which 1e308 reached)
MAX_SAMPLES = 2_000  # samples of one record: 4x the GPU protocol's cap of 500 (bench.protocol)
MAX_DEPTH = 8  # levels of objects and arrays in a free-form value (device, trace, a worker's hello): runs write 4
INT_RANGE = (-(2**63), 2**63 - 1)  # integers of a free-form value: signed 64 bits (at most 19 digits)

Int = Annotated[int, msgspec.Meta(ge=INT_RANGE[0], le=INT_RANGE[1])]
Scalar = Union[str, Int, float, bool, None]


def _nested(levels: int):
    """JSON values of at most `levels` levels of arrays and objects."""
    t = Scalar
    for _ in range(levels):
        t = Union[Scalar, list[t], dict[str, t]]
    return t


Json = _nested(MAX_DEPTH - 1)  # a value inside a free-form object, which so has at most MAX_DEPTH levels


class _Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=False):
    """A part of a run file: unknown keys are refused, never silently dropped."""


class Chunk(_Strict, frozen=True):
    """One timed chunk: `samples` consecutive samples of `Timing.samples_ms`, taken back to back in
    round `round`, with what the host was doing (bench/host.py; None where this host has no such
    counter). Nothing of this is read inside the chunk: the probe and the counters are taken just
    before and just after it.

    start_s: wall clock (epoch seconds, microsecond resolution) when the chunk began. host_ms: the
    host's time from the chunk's first mark to its last (perf_counter). device_ms: device time from
    the first sample's start event to the last's stop event (CUDA; None with the host clock; in
    cold mode it includes the flushes between samples). cpu_ms: this thread's CPU time over host_ms.
    cpu, cpu_end: the CPU the thread was on before and after. run_delay_ms: time runnable but
    waiting for a CPU (schedstat). steal_ms: steal on those CPUs (/proc/stat, 10 ms ticks).
    probe_us: the host speed probe timed just before the chunk (bench/host.probe_us); probe_after_us:
    the same just after it (a mode that switched during the chunk shows in one of the two).
    memory_probe_us: random reads over a buffer larger than the cache, timed before the probe
    (bench/host.memory_probe_us): the host's slow mode on the H200 slowed it most.
    cycles, instructions, ref_cycles: the timing thread's user-space CPU counters over the chunk
    (bench/pmu.py); None where the host has no hardware counters.
    """

    round: Annotated[int, msgspec.Meta(ge=0, le=MAX_SAMPLES)]  # a round holds a chunk of 1 or more samples
    samples: Annotated[int, msgspec.Meta(ge=1, le=MAX_SAMPLES)]
    start_s: float
    host_ms: Annotated[float, msgspec.Meta(ge=0)]  # perf_counter's difference: never negative
    device_ms: Union[float, None] = None
    cpu_ms: Union[float, None] = None
    cpu: Union[int, None] = None
    cpu_end: Union[int, None] = None
    run_delay_ms: Union[float, None] = None
    steal_ms: Union[float, None] = None
    probe_us: Union[float, None] = None
    probe_after_us: Union[float, None] = None
    memory_probe_us: Union[float, None] = None
    cycles: Union[int, None] = None
    instructions: Union[int, None] = None
    ref_cycles: Union[int, None] = None


class Timing(_Strict, frozen=True):
    """Per-iteration latencies: each sample is K back-to-back forwards divided by K.

    clock: `cuda_event` (device events around the K forwards) or `host` (perf_counter after a
    synchronize). stop_reason says which stopping rule ended the repetition. chunks: the samples
    in the order taken, grouped as timed, with the host's evidence (schema 3; empty in older runs,
    whose chunks `analysis.host_steady` rebuilds from the protocol's chunk size).
    """

    samples_ms: tuple[float, ...]
    iters_per_sample: int
    warmup_iters: int
    warmup_ms: float
    clock: str
    stop_reason: str
    unit: Literal["ms"] = "ms"
    chunks: tuple[Chunk, ...] = ()

    def __post_init__(self) -> None:
        if len(self.samples_ms) > MAX_SAMPLES:
            raise ValueError(f"samples_ms holds {len(self.samples_ms)} samples; expected at most {MAX_SAMPLES} "
                             "(4x the protocol's cap)")
        for i, s in enumerate(self.samples_ms):
            if not (0 < s <= MAX_SAMPLE_MS):  # NaN fails it too
                raise ValueError(f"samples_ms[{i}] is {s!r}; expected a finite latency > 0 ms and <= "
                                 f"{MAX_SAMPLE_MS:.0f} ms (a day)")
        if self.iters_per_sample < 1:
            raise ValueError(f"iters_per_sample is {self.iters_per_sample}; expected an integer >= 1")
        if self.chunks and sum(c.samples for c in self.chunks) != len(self.samples_ms):
            raise ValueError(f"chunks hold {sum(c.samples for c in self.chunks)} samples; "
                             f"expected the {len(self.samples_ms)} of samples_ms")


class Record(_Strict, frozen=True):
    """One measured case. `status` is one of STATUSES, with `message` saying why when it is not ok."""

    run_id: str
    case_id: str
    config_id: str
    group_id: str
    params: dict[str, Scalar]
    status: str
    message: str
    backend: str
    device: dict[str, Json]
    timing: Union[Timing, None] = None
    phases_ms: dict[str, list[float]] = {}
    trace: Union[dict[str, Json], None] = None
    memory: Union[dict[str, Json], None] = None
    output: Union[dict[str, Json], None] = None
    # which forward each figure came from: timing 'eager' | 'graph'; phases_ms and memory 'eager'
    sources: dict[str, str] = {}
    started_at: str = ""
    wall_s: float = 0.0
    worker: dict[str, Json] = {}
    kernel: str = "reference"  # the attention kernel that ran (runs before the option: the reference path)
    # the run measured several kernels side by side (`--kernel A,B`): the kernel is part of the
    # record's key (`key_of`); False (every run before the axis): one kernel, keyed by case and impl
    kernel_axis: bool = False
    repeat: int = 0  # which of the run's worker-process passes measured it (--repeats)
    # where the forward came from: 'mirror' or 'fastdeploy:<sha12>'; impl_info says the commit's sha,
    # subject, dirty flag, ops ('fastdeploy' | 'dsabench') with the reason, and the stand-in modules
    impl: str = "mirror"
    impl_info: dict[str, Json] = {}
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status is {self.status!r}; expected one of {list(STATUSES)}")
        if not self.case_id:
            raise ValueError("case_id is empty; expected the case's id")

    def to_json(self) -> dict:
        """The plain-JSON form of one line of cases.jsonl (lists, not tuples; NaN and Infinity as None)."""
        return _plain(self)


# ---------------------------------------------------------------------------------- manifest


class GitState(_Strict, frozen=True):
    """A checkout's HEAD: SHA (None outside git), uncommitted changes, the commit's subject line."""

    sha: Union[str, None] = None
    dirty: Union[bool, None] = None
    message: Union[str, None] = None


class MeasuredCheckout(GitState, frozen=True):
    """The checkout the run measured (`--measured-checkout`), where it is."""

    path: str = ""


class GitInfo(_Strict, frozen=True):
    suite: GitState
    measured: Union[MeasuredCheckout, None] = None


class Gpu(_Strict, frozen=True):
    """One GPU as NVML saw it when the run began, with advice where its state is not what a benchmark wants."""

    index: int
    name: str
    uuid: Union[str, None] = None
    driver: Union[str, None] = None
    cuda_driver: Union[int, None] = None
    memory_total_bytes: Union[int, None] = None
    sm_clock_mhz: Union[int, None] = None
    sm_clock_max_mhz: Union[int, None] = None
    mem_clock_mhz: Union[int, None] = None
    mem_clock_max_mhz: Union[int, None] = None
    throttle_reasons: tuple[str, ...] = ()
    persistence_mode: Union[int, None] = None
    temperature_c: Union[int, None] = None
    other_processes: int = 0
    advice: tuple[str, ...] = ()


class Env(_Strict, frozen=True):
    """The machine: host, Python, package versions (None: not installed), GPUs, CPU governor."""

    host: str
    platform: str
    processor: str
    cpu_count: Union[int, None]
    python: str
    packages: dict[str, Union[str, None]]
    cuda_visible_devices: Union[str, None]
    gpus: tuple[Gpu, ...]
    cpu_governor: Union[str, None] = None


class ProtocolSettings(_Strict, frozen=True):
    """The timing protocol the run used (the fields of `bench.protocol.Protocol`), so --resume times alike."""

    warmup_min_iters: int
    warmup_min_ms: float
    min_sample_ms: float
    min_samples: int
    max_samples: int
    precision: float
    max_time_s: float
    mode: Literal["hot", "cold"]
    chunk: int
    min_rounds: int = 1  # interleaved rounds every series gets at least (schema 3; before it: none)

    def fields(self) -> dict:
        return msgspec.structs.asdict(self)


class RunOptions(_Strict, frozen=True):
    """The flags that shape what is measured; --resume reuses them."""

    check: bool
    filter: Union[str, None]
    devices: Union[tuple[str, ...], None]
    interleave: bool
    profile_iters: int
    nvtx_in_timed: bool
    kernel: str = "reference"  # asked for (auto resolved per worker); runs before the option used the reference path
    repeats: int = 1  # worker processes per case: each case is measured in this many different processes
    inject_delay: float = 0.0  # calibrate: F x the forward added to every forward (bench/inject.py: its kind, measured)
    calibration: Union[str, None] = None  # the calibrate run id that made this run: kept out of history and dashboards
    # workers pinned to one core each (`--pin`): 'off' (schema < 3: never pinned) or 'probe' (the
    # fastest of the worker's own cores by the host probe, re-probed between items; bench/pin.py);
    # --pin auto, the default, is recorded as the one of them it resolved to (pin.auto_mode)
    pin: Literal["off", "probe"] = "off"

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise ValueError(f"repeats is {self.repeats}; expected an integer >= 1")
        if not 0 <= self.inject_delay < 10:
            raise ValueError(f"inject_delay is {self.inject_delay}; expected a fraction >= 0")
        if self.filter is not None:
            try:
                re.compile(self.filter)
            except re.error as exc:
                raise ValueError(f"filter {self.filter!r} is not a valid regular expression ({exc})") from None
        if self.profile_iters < 0:
            raise ValueError(f"profile_iters is {self.profile_iters}; expected an integer >= 0")


class WorkerInfo(_Strict, frozen=True):
    """A worker's hello: the device it measured on, what its backend could do there, the protocol
    it settled for that device, its process id."""

    device: dict[str, Json]
    availability: dict[str, Json]
    protocol: Union[ProtocolSettings, None] = None
    pid: Union[int, None] = None
    kernel: Union[str, None] = None  # the attention kernel this worker resolved for its device
    ceilings: Union[dict[str, Json], None] = None  # copy GB/s and matmul TFLOP/s measured on it (GPU only)
    impls: dict[str, Json] = {}  # label -> what each implementation's backend is (FastDeploy commit, ops, stand-ins)
    # TEARDOWN_CUPTI as the worker ran: "1" drops the profiler after each trace; None (runs before the
    # suite set it) left it attached, and eager forwards timed after a trace in that process ran slower
    profiler_teardown: Union[str, None] = None
    # --pin probe: the cores this worker could take, the one it took, each core's probe in us (bench/pin.py)
    pin: Union[dict[str, Json], None] = None


class WorkerStart(_Strict, frozen=True):
    """One worker process started: on which device, why ("first", "new pass", "replaced") and how
    long from spawn to its hello (framework import, device context, ceilings)."""

    device: Union[str, None]
    why: str
    seconds: float


class Attempt(_Strict, frozen=True):
    """One invocation of `dsabench run` on this directory (the first, then each --resume): its wall
    time and worker start-ups, so that where a run's time went can be said from its files."""

    started_at: str
    wall_s: float
    devices: tuple[Union[str, None], ...]
    records: int
    worker_starts: tuple[WorkerStart, ...] = ()
    interrupted: bool = False


class Manifest(_Strict):
    """manifest.json: what ran, where, how. Written when the run begins; `workers` grows as they start.

    scenario_file is the resolved path of the scenario file (schema 1 kept it as typed) and
    scenario_sha256 its contents' hash, so --resume works from any directory and refuses a changed file.
    """

    run_id: str
    created_at: str
    command: tuple[str, ...]
    preset: Union[str, None]
    scenario_file: str
    scenario_sha256: str
    scenario_description: str
    backend: str
    shard: Union[tuple[int, int], None]
    cases_planned: int
    options: RunOptions
    protocol: Union[ProtocolSettings, None]  # None until a worker settles it for its device
    dsabench_version: str
    env: Env
    git: GitInfo
    workers: list[WorkerInfo] = []
    impls: list[dict[str, Json]] = []  # where the forward came from: the mirror, or FastDeploy commits (bench.impls)
    protocol_overrides: dict[str, Union[int, float]] = {}  # --max-time-s, --precision, --min-samples as given
    attempts: list[Attempt] = []  # each invocation's wall time and worker start-ups, appended when it ends
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not self.run_id:
            raise ValueError("run_id is empty; expected the run's name")
        if not re.fullmatch(r"[0-9a-f]{64}", self.scenario_sha256):
            raise ValueError(f"scenario_sha256 is {self.scenario_sha256[:80]!r}; expected 64 hex digits")
        if self.shard is not None and not 1 <= self.shard[0] <= self.shard[1]:
            raise ValueError(f"shard is {list(self.shard)}; expected [K, N] with 1 <= K <= N")

    def to_json(self) -> dict:
        """The plain-JSON form of manifest.json (lists, not tuples)."""
        return _plain(self)


def machine(collected: Mapping) -> dict:
    """`bench.env.collect()`'s {"env": ..., "git": ...} as the manifest's typed parts."""
    return {"env": msgspec.convert(collected["env"], Env), "git": msgspec.convert(collected["git"], GitInfo)}


def _plain(obj: msgspec.Struct) -> dict:
    """Dicts and lists only, as a JSON reader would see them (a round trip through msgspec's encoder)."""
    return msgspec.json.decode(msgspec.json.encode(obj, enc_hook=numpy_scalar))


def numpy_scalar(obj):
    """JSON-able value of what a framework hands over: a numpy scalar, a str subclass (torch's
    TorchVersion), an int or float subclass."""
    for plain in (bool, int, float, str):
        if isinstance(obj, plain):
            return plain(obj)
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"cannot write {type(obj).__name__} into a run file")


# ------------------------------------------------------------------------------- run ids, commits

RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def run_id_problem(run_id: str) -> str | None:
    """Why `run_id` cannot name a run directory, or None. Ids are names, never paths ('..', '/', '')."""
    if RUN_ID.fullmatch(run_id):
        return None
    return ("expected 1 to 128 letters, digits, '.', '_' or '-', not starting with '.' or '-' "
            "(a run id names a directory inside --out)")


def measured_git(manifest: Manifest | Mapping) -> GitState | None:
    """The git state of what a run measured: the measured checkout's where it has a SHA, else the suite's."""
    git = manifest.git if isinstance(manifest, Manifest) else _git_of(manifest)
    if git is None:
        return None
    for state in (git.measured, git.suite):
        if state is not None and state.sha:
            return state
    return None


def measured_commit(manifest: Manifest | Mapping) -> str | None:
    """The commit a run measured (the one lookup every reader uses)."""
    state = measured_git(manifest)
    return state.sha if state is not None else None


def _git_of(manifest: Mapping) -> GitInfo | None:
    try:
        return msgspec.convert(manifest.get("git"), GitInfo)
    except msgspec.ValidationError:
        return None  # a manifest view that was not loaded through this schema: no commit to show


# ---------------------------------------------------------------------------------- versions


def upgrade_to_current(doc: dict, kind: Literal["manifest", "record"]) -> dict:
    """Bring a manifest or record of an older schema to the current one: the one place versions meet.

    The caller has checked that doc["schema"] is an integer from 1 to SCHEMA_VERSION.
    1 -> 2: `options.interleave` became required. Runs written before the flag existed timed each
    case on its own, so a missing value means False. Schema 1 also kept scenario_file as typed
    (maybe relative); it cannot be resolved afterwards and is left as it is.
    2 -> 3: new optional fields only, whose defaults say what older runs did: `timing.chunks`
    empty (chunks are rebuilt from the samples and the protocol's chunk size), `protocol.min_rounds`
    1 (no minimum), `options.pin` 'off', a worker's `pin` None.
    """
    version = doc["schema"]
    if version < 2 and kind == "manifest":
        options = doc.get("options")
        if isinstance(options, dict):
            doc["options"] = {"interleave": False, **options}
    doc["schema"] = SCHEMA_VERSION
    return doc


# Record versions whose lines decode into the current Record unchanged (upgrade_to_current only
# bumps their number): codec's fast path takes them, so a year of older records loads as fast.
RECORD_VERSIONS_AS_IS = frozenset({1, 2})

# What a record's output.oracle_skipped says when the run was made without --check.
NO_CHECK = "the run was made without --check"


# The label prefix of an injected mirror (`--impl mirror+inject=F`): the mirror with a known slowdown,
# a calibration impl, never a measurement of code (bench.impls parses it, analysis.noise keeps its runs
# out of history).
INJECT_PREFIX = "mirror+inject="
# The label prefix of FastDeploy's own code at a commit (`--impl fastdeploy:PATH[@COMMIT]`, recorded as
# `fastdeploy:<sha12>`): what compare, history and the gaps' rule tell apart from the mirror.
FASTDEPLOY_PREFIX = "fastdeploy:"


def is_fastdeploy(impl) -> bool:
    """A record's impl label names FastDeploy's own code (not the mirror, nor an injected mirror)."""
    return isinstance(impl, str) and impl.startswith(FASTDEPLOY_PREFIX)


def record_key(case_id: str, impl: str | None = "mirror", kernel: str | None = None) -> str:
    """What identifies a case's record within a run: the case id, the impl unless it is the
    mirror (a mirror record keeps its bare case id, so runs from before impls load unchanged),
    and the kernel when the run measured several side by side (`#kernel`; None or '' otherwise).
    Records of one key differ only in `repeat` (the worker-process pass that measured them)."""
    key = case_id if impl in (None, "", "mirror") else f"{case_id}@{impl}"
    return f"{key}#{kernel}" if kernel else key


def axis_kernel(record: Mapping) -> str | None:
    """The record's kernel where it is on the run's kernel axis (`kernel_axis`), else None."""
    axis = record.get("kernel_axis")  # a frame cell may be NaN (a row of a run from before the axis)
    return str(record.get("kernel")) if axis is not None and axis == axis and bool(axis) else None


def key_of(record: Mapping) -> str:
    """`record_key` of a record or a frame row (case id, impl, and the kernel on a kernel axis)."""
    return record_key(record["case_id"], record.get("impl"), axis_kernel(record))
