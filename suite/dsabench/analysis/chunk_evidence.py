"""What a chunk's recorded host evidence says, apart from its time: the lines of the host-steady rule
(analysis/host_steady.py's docstring is the reference), the run's reference probes, and the reasons a
chunk's evidence calls it disturbed. Independent of the chunks' own times, hence of the code measured.
Pure functions over plain data.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

PROBE_SLOW = 1.3  # a probe this much slower than the run's reference: the CPU itself runs slower
PROBE_REF_QUANTILE = 0.02  # the run's reference probe: nearly its fastest, past a rare freak
SHARE_LIMIT = 0.05  # run delay or steal above this share of a chunk's host time
# The memory probe's fast chunks spread wider than the interpreter probe's (its 2% to 75% quantiles
# 233-362 us on the H200, slow ones around 940): 2x its reference caught 90% of slow chunks with the
# interpreter probe and lost 9% of the others (scripts/host_probes_gpu.py; docs/design.md note 15).
MEMORY_SLOW = 2.0


class ProbeRef(float):
    """The reference probe (us), a float as every caller takes it, carrying the memory probe's
    reference (`memory_us`) where every chunk with a probe also recorded a memory probe, else None:
    a rule that saw the memory of one side and not the other would judge the sides differently."""

    memory_us: float | None

    def __new__(cls, probe_us: float, memory_us: float | None = None) -> "ProbeRef":
        obj = super().__new__(cls, probe_us)
        obj.memory_us = memory_us
        return obj


def probe_reference(processes: Iterable) -> ProbeRef | None:
    """The reference probe (us): the PROBE_REF_QUANTILE quantile of the probes of every recorded
    chunk given, with the memory probe's the same way (`ProbeRef`); None when no chunk has a probe
    (runs before schema 3)."""
    evidence = [e for p in processes for e in p.evidence if e.get("probe_us")]
    if not evidence:
        return None
    memory = [e.get("memory_probe_us") for e in evidence]
    memory_ref = float(np.quantile(memory, PROBE_REF_QUANTILE)) if all(memory) else None
    return ProbeRef(float(np.quantile([e["probe_us"] for e in evidence], PROBE_REF_QUANTILE)), memory_ref)


def evidence_reasons(ev: Mapping, probe_ref_us: float | None) -> list[str]:
    """Why a chunk's recorded evidence calls it disturbed ('probe', 'memory', 'run_delay', 'steal');
    empty when it does not. Independent of the chunk's time, hence of the code measured."""
    reasons = []
    probe = ev.get("probe_us")
    if probe is not None and probe_ref_us and probe > PROBE_SLOW * probe_ref_us:
        reasons.append("probe")
    memory, memory_ref = ev.get("memory_probe_us"), getattr(probe_ref_us, "memory_us", None)
    if memory is not None and memory_ref and memory > MEMORY_SLOW * memory_ref:
        reasons.append("memory")
    host_ms = ev.get("host_ms") or 0.0
    for name in ("run_delay", "steal"):
        value = ev.get(f"{name}_ms")
        if value is not None and host_ms > 0 and value > SHARE_LIMIT * host_ms:
            reasons.append(name)
    return reasons
