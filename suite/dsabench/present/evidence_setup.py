"""The evidence's setup sections: what was run (command, scenario, backend, device, versions,
git, protocol, per shard) and the machine's state at the start (clocks, throttle reasons,
persistence, other processes, advice). Every string from a run is escaped (text.md_text)."""

from __future__ import annotations

import shlex
from typing import Sequence

from dsabench.present.runset import RunSet
from dsabench.present.text import fmt_bytes, md_code, md_fenced, md_table, md_text
from dsabench.store.rundir import LoadedRun


def dig(obj, *keys):
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _shard_name(shard: LoadedRun) -> str:
    s = shard.manifest.get("shard")
    return f"shard {s[0]}/{s[1]}" if isinstance(s, (list, tuple)) and len(s) == 2 else "run"


def _per_shard(shards: Sequence[LoadedRun], get) -> str:
    """One value when every shard agrees, else 'shard 1/2: a; shard 2/2: b'."""
    values = [get(s) for s in shards]
    shown = ["-" if v in (None, "", [], {}) else str(v) for v in values]
    if len(set(shown)) == 1:
        return md_text(shown[0])
    return "<br>".join(f"{_shard_name(s)}: {md_text(v)}" for s, v in zip(shards, shown))


def _command(m: dict) -> str:
    cmd = m.get("command")
    return shlex.join(str(c) for c in cmd) if isinstance(cmd, list) else str(cmd or "")


# ----------------------------------------------------------------------------------- sections


def what_was_run(rs: RunSet) -> list[str]:
    shards, df = rs.shards, rs.frame.df
    worker = lambda s: (s.manifest.get("workers") or [{}])[0]  # noqa: E731
    avail = lambda s: worker(s).get("availability") or {}  # noqa: E731

    def device(s):
        d = worker(s).get("device") or {}
        if not d:
            return None
        parts = [str(d.get("name"))]
        extra = [f"capability {d['capability']}" if d.get("capability") else "",
                 f"{d['sm_count']} SMs" if d.get("sm_count") else "",
                 fmt_bytes(d["memory_bytes"]) if d.get("memory_bytes") else "", str(d.get("kind") or "")]  # fmt: skip
        extra = [e for e in extra if e]
        return parts[0] + (f" ({', '.join(extra)})" if extra else "") + (f", {d['uuid']}" if d.get("uuid") else "")

    def framework(s):
        a = avail(s)
        details = a.get("details") or {}
        extra = ", ".join(f"{k} {v}" for k, v in details.items() if v)
        return f"{a.get('backend', s.manifest.get('backend'))} {a.get('framework_version', '?')}" + (
            f" ({extra})" if extra else "")

    def git(s):
        g = s.manifest.get("git") or {}
        suite = g.get("suite") or {}
        sha = suite.get("sha")
        dirty = suite.get("dirty")
        text = f"suite {sha[:12]}" if sha else "suite SHA not recorded"
        text += "" if dirty is None else (" (dirty)" if dirty else " (clean)")
        measured = dig(g, "measured", "sha")
        return text + (f"; measured checkout {measured[:12]}" if measured else "; no measured checkout")

    def gpu_driver(s):
        gpus = dig(s.manifest, "env", "gpus") or []
        return ", ".join(f"{g.get('driver')} (CUDA driver {g.get('cuda_driver')})" for g in gpus) or None

    def packages(s):
        pk = dig(s.manifest, "env", "packages") or {}
        return ", ".join(f"{k} {v}" for k, v in pk.items() if v) or None

    def protocol(s):
        p = s.manifest.get("protocol") or {}
        return ", ".join(f"{k} {v}" for k, v in p.items()) or None

    def options(s):
        o = s.manifest.get("options") or {}
        return ", ".join(f"{k} {v}" for k, v in o.items()) or None

    def kernel(s):
        asked = (s.manifest.get("options") or {}).get("kernel")
        got = sorted({str(w.get("kernel")) for w in s.manifest.get("workers") or [] if w.get("kernel")})
        if not asked and not got:
            return "reference (run made before the option)"
        return f"{' + '.join(got) or '?'} (asked: {asked or '?'})"

    def ceilings(s):
        cs = [w.get("ceilings") for w in s.manifest.get("workers") or [] if isinstance(w.get("ceilings"), dict)]
        return "; ".join(c["error"] if c.get("error") else
                         f"copy {c['copy_gbs']:.0f} GB/s, bf16 matmul {c['matmul_tflops']:.0f} TFLOP/s" for c in cs) \
            or "not measured (CPU worker)"

    statuses = df["status"].value_counts()
    counts = ", ".join(f"{n} {k}" for k, n in statuses.items())
    rows = [
        ("run id", md_code(rs.run_id)),
        ("cases", md_text(f"{len(df)} in {len(shards)} director{'y' if len(shards) == 1 else 'ies'}: {counts}")),
        ("preset", _per_shard(shards, lambda s: s.manifest.get("preset"))),
        ("scenario file", _per_shard(shards, lambda s: s.manifest.get("scenario_file"))),
        ("scenario sha256", _per_shard(shards, lambda s: s.manifest.get("scenario_sha256"))),
        ("scenario", _per_shard(shards, lambda s: s.manifest.get("scenario_description"))),
        ("backend", _per_shard(shards, framework)),
        ("attention kernel", _per_shard(shards, kernel)),
        ("device ceilings", _per_shard(shards, ceilings)),
        ("device", _per_shard(shards, device)),
        ("GPU driver", _per_shard(shards, gpu_driver)),
        ("created", _per_shard(shards, lambda s: s.manifest.get("created_at"))),
        ("dsabench", _per_shard(shards, lambda s: s.manifest.get("dsabench_version"))),
        ("git", _per_shard(shards, git)),
        ("python", _per_shard(shards, lambda s: dig(s.manifest, "env", "python"))),
        ("platform", _per_shard(shards, lambda s: dig(s.manifest, "env", "platform"))),
        ("packages", _per_shard(shards, packages)),
        ("options", _per_shard(shards, options)),
        ("protocol", _per_shard(shards, protocol)),
        ("run directories", "<br>".join(md_code(s.path) for s in shards)),
    ]
    lines = ["## What was run", ""]
    lines += md_table(["", ""], ([f"**{k}**", v] for k, v in rows))
    lines += ["", "Commands, one per run directory:", ""]
    lines += md_fenced("\n".join(f"{_command(s.manifest)}    # {_shard_name(s)}" for s in shards))
    return lines + [""]


def environment(rs: RunSet) -> list[str]:
    lines = ["## Environment and GPU state at the start of the run", ""]
    rows = []
    for s in rs.shards:
        env = s.manifest.get("env") or {}
        for g in env.get("gpus") or []:
            clocks = (f"SM {g.get('sm_clock_mhz')} / {g.get('sm_clock_max_mhz')} MHz, "
                      f"memory {g.get('mem_clock_mhz')} / {g.get('mem_clock_max_mhz')} MHz")  # fmt: skip
            rows.append([
                md_text(_shard_name(s)), md_text(f"{g.get('index')}: {g.get('name')}"), md_text(clocks),
                md_text(", ".join(g.get("throttle_reasons") or []) or "none"), md_text(g.get("persistence_mode")),
                md_text(g.get("temperature_c")), md_text(g.get("other_processes")),
                md_text("; ".join(g.get("advice") or []) or "none"),
            ])  # fmt: skip
    if rows:
        lines += md_table(["dir", "GPU", "clocks (current / max)", "throttle reasons", "persistence", "temp C",
                         "other processes", "advice"], rows)  # fmt: skip
        lines += ["", "Clocks and throttle reasons are sampled once, before the first case: an idle GPU reports a "
                  "low SM clock with the reason `gpu_idle`, and the clock rises under load.", ""]  # fmt: skip
    else:
        lines += ["No GPU in the manifest (a CPU run): no clocks, persistence mode or other-process checks.", ""]
    host = []
    for s in rs.shards:
        env = s.manifest.get("env") or {}
        host.append([md_text(_shard_name(s)), md_text(env.get("host")), md_text(env.get("cpu_count")),
                     md_text(env.get("cpu_governor") or "not readable"),
                     md_text(env.get("cuda_visible_devices") or "unset"), md_text(env.get("processor"))])  # fmt: skip
    lines += md_table(["dir", "host", "CPUs", "CPU governor", "CUDA_VISIBLE_DEVICES", "processor"], host)
    return lines + [""]
