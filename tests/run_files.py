"""Manifests for test runs, built with the writer's own types (store.schema), never as hand-made dicts.

The environment is this machine's, collected by `bench.env.collect` as `dsabench run` does; the
GPU list, git SHAs and the rest are then set to what a test needs, through the same types.
"""

from __future__ import annotations

import functools

from msgspec import structs

from dsabench import __version__
from dsabench.bench.env import collect
from dsabench.bench.protocol import CPU_PROTOCOL, GPU_PROTOCOL
from dsabench.store.schema import Gpu, GitInfo, GitState, Manifest, MeasuredCheckout, ProtocolSettings, RunOptions, machine

H100 = "NVIDIA H100 80GB HBM3"


@functools.lru_cache(maxsize=1)
def _here():
    return machine(collect())["env"]


def gpu(name: str = H100, index: int = 0, **fields) -> Gpu:
    return Gpu(index=index, name=name, uuid=f"GPU-{index:08d}", driver="580.159.04", cuda_driver=13000,
               memory_total_bytes=85520809984, **fields)  # fmt: skip


def manifest(
    run_id: str,
    *,
    backend: str = "paddle",
    created_at: str = "2025-01-01T00:00:00+00:00",
    preset: str | None = "smoke",
    scenario_file: str = "/src/dsabench/scenarios/smoke.toml",
    scenario_description: str = "",
    shard: tuple[int, int] | None = None,
    commit: str | None = None,
    suite_sha: str | None = "b" * 40,
    commit_message: str | None = None,
    gpus: tuple[Gpu, ...] | None = None,
    gpu_run: bool = True,
    cases_planned: int = 0,
    check: bool = False,
) -> Manifest:
    """A manifest as `dsabench run` writes it; `commit` is the measured checkout's SHA (None: no checkout)."""
    env = _here()
    env = structs.replace(env, gpus=gpus if gpus is not None else ((gpu(),) if gpu_run else ()))
    measured = None if commit is None else MeasuredCheckout(sha=commit, dirty=False, message=commit_message,
                                                            path="/src/FastDeploy")  # fmt: skip
    protocol = GPU_PROTOCOL if gpu_run else CPU_PROTOCOL
    command = ("dsabench", "run", preset or scenario_file, "--backend", backend, "--run-id", run_id)
    return Manifest(
        run_id=run_id, created_at=created_at, command=command, preset=preset, scenario_file=scenario_file,
        scenario_sha256="0" * 64, scenario_description=scenario_description, backend=backend, shard=shard,
        cases_planned=cases_planned,
        options=RunOptions(check=check, filter=None, devices=None, interleave=True, profile_iters=5, nvtx_in_timed=False),
        protocol=ProtocolSettings(**protocol.__dict__), dsabench_version=__version__, env=env,
        git=GitInfo(suite=GitState(sha=suite_sha, dirty=False), measured=measured),
    )  # fmt: skip
