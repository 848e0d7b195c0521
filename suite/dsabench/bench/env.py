"""The machine a run measured on: host, GPU state, framework versions, git SHAs.

Collected in the main process without importing a framework (versions come from package
metadata; GPU state from NVML through nvidia-ml-py where installed). Each GPU check follows
pyperf's pattern: the state, and one piece of advice when it is not what a benchmark wants.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

# NVML clocks-event reasons (nvmlClocksEventReason*): bit -> name.
THROTTLE_REASONS = {
    0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
    0x10: "sync_boost", 0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown", 0x100: "display_clock_setting",
}


def package_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def git_state(path: Path) -> dict:
    """HEAD SHA, whether the work tree has uncommitted changes, and the commit's subject line
    (what the dashboard shows beside the SHA); None outside a git checkout."""
    def git(*args):
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "HEAD")
    except (OSError, subprocess.TimeoutExpired):
        return {"sha": None, "dirty": None}
    if head.returncode != 0:
        return {"sha": None, "dirty": None}
    dirty = git("status", "--porcelain", "--untracked-files=no")
    subject = git("log", "-1", "--format=%s")
    return {"sha": head.stdout.strip(), "dirty": bool(dirty.stdout.strip()),
            "message": subject.stdout.strip() or None if subject.returncode == 0 else None}


def gpus() -> list[dict]:
    """Per GPU: name, uuid, memory, driver, clocks now and max, throttle reasons, advice."""
    try:
        import pynvml  # noqa: PLC0415  (package nvidia-ml-py)
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver: no GPU to describe
        return []
    out = []
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        cuda_driver = pynvml.nvmlSystemGetCudaDriverVersion_v2() if hasattr(pynvml, "nvmlSystemGetCudaDriverVersion_v2") else None
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            g = {"index": i, "name": _s(pynvml.nvmlDeviceGetName(h)), "uuid": _s(pynvml.nvmlDeviceGetUUID(h)),
                 "driver": _s(driver), "cuda_driver": cuda_driver}
            g["memory_total_bytes"] = int(pynvml.nvmlDeviceGetMemoryInfo(h).total)
            for key, clock in (("sm", pynvml.NVML_CLOCK_SM), ("mem", pynvml.NVML_CLOCK_MEM)):
                g[f"{key}_clock_mhz"] = _try(pynvml.nvmlDeviceGetClockInfo, h, clock)
                g[f"{key}_clock_max_mhz"] = _try(pynvml.nvmlDeviceGetMaxClockInfo, h, clock)
            reasons = _try(pynvml.nvmlDeviceGetCurrentClocksThrottleReasons, h)
            g["throttle_reasons"] = [n for bit, n in THROTTLE_REASONS.items() if reasons and reasons & bit]
            g["persistence_mode"] = _try(pynvml.nvmlDeviceGetPersistenceMode, h)
            g["temperature_c"] = _try(pynvml.nvmlDeviceGetTemperature, h, pynvml.NVML_TEMPERATURE_GPU)
            procs = _try(pynvml.nvmlDeviceGetComputeRunningProcesses, h) or []
            g["other_processes"] = len(procs)
            g["advice"] = gpu_advice(g)
            out.append(g)
    finally:
        pynvml.nvmlShutdown()
    return out


def gpu_advice(g: dict) -> list[str]:
    """What a benchmark would want different about this GPU's state (never changed for you)."""
    advice = []
    bad = [r for r in g.get("throttle_reasons", []) if r not in ("gpu_idle", "applications_clocks_setting")]
    if bad:
        advice.append(f"clocks are being held down ({', '.join(bad)}): results may be low and noisy")
    if g.get("other_processes"):
        advice.append(f"{g['other_processes']} other process(es) use this GPU: timings will be disturbed")
    if g.get("persistence_mode") == 0:
        advice.append("persistence mode is off: the first CUDA call of each worker pays driver start-up")
    return advice


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


def _try(fn, *args):
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001 - a field NVML cannot give is left empty
        return None


def collect(measured_checkout: Path | None = None) -> dict:
    env = {
        "host": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "packages": {n: package_version(n) for n in (
            "paddlepaddle", "paddlepaddle-gpu", "torch", "numpy", "pandas", "nvtx", "nvidia-ml-py", "cuda-bench")},
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "gpus": gpus(),
    }
    cpu_gov = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    env["cpu_governor"] = cpu_gov.read_text().strip() if cpu_gov.exists() else None
    git = {"suite": git_state(REPO)}
    if measured_checkout is not None:
        git["measured"] = {"path": str(measured_checkout), **git_state(measured_checkout)}
    return {"env": env, "git": git}
