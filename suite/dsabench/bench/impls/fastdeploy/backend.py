"""The worker's Backend for one FastDeploy commit: the Paddle backend with forward_mixed swapped.

Device, clocks, CUDA Graph capture, memory, profiler and output checks are PaddleBackend's; only
prepare (the commit's backend and meta), forward (the commit's forward_mixed) and the layout
copy measurement differ. The variant argument is ignored: a commit's own code fixes its scale
and layout lines.

The attention kernel: with FastDeploy's own ops (`ops: fastdeploy`) its two attention calls are
FlashMLA's, so only `flashmla` can be asked of it (any other is refused in one line); with
dsabench's ops (`ops: dsabench`) they run the kernel asked for (ops.PhaseBridge.attention),
FlashMLA through paddle.enable_compat as FastDeploy calls it. Each record names the kernel that
ran, and `attention_ran` what each call really ran in the checked forward.
"""

from __future__ import annotations

from dsabench.bench.backends.base import NULL_MARKER, Availability, Marker
from dsabench.bench.backends.paddle import PaddleBackend
from dsabench.bench.impls.fastdeploy import run
from dsabench.bench.impls.fastdeploy.loader import LoadedBackend
from dsabench.errors import Unsupported
from dsabench.workload.cases import Case
from dsabench.workload.inputs import HostInputs
from dsabench.workload.variants import Variant


class FastDeployBackend(PaddleBackend):
    name = "paddle"

    def __init__(self, loaded: LoadedBackend, device: str | None = None) -> None:
        super().__init__(device)
        self.loaded = loaded

    def availability(self) -> Availability:
        base = super().availability()
        details = {**base.details, "impl": self.loaded.label, **self.loaded.describe()}
        return Availability(base.backend, base.framework_version, base.device, base.graph, base.profiler_targets,
                            base.nvtx, details)

    def use_kernel(self, kernel: str) -> None:
        if self.loaded.ops == "fastdeploy" and kernel != "flashmla":
            raise Unsupported(f"kernel {kernel!r} with {self.loaded.label}: its own ops (ops: fastdeploy) call FlashMLA "
                              "for both attention calls; ask for --kernel flashmla or auto, or measure kernels with "
                              "the mirror (--impl mirror)")
        super().use_kernel(kernel)  # ops: fastdeploy never reads it; ops: dsabench hands it to its calls

    def attention_ran(self, state: run.FastDeployState) -> dict:
        return dict(state.loaded.bridge.ran)

    def prepare(self, case: Case, host: HostInputs) -> run.FastDeployState:
        return run.prepare(self.loaded, super().prepare(case, host), host, self.place)

    def forward(self, state: run.FastDeployState, variant: Variant, mark: Marker = NULL_MARKER):
        bridge = state.loaded.bridge  # shared by the kernels of an axis: this backend's kernel, this forward
        bridge.attention, bridge.ran = (self._attention if self.loaded.ops == "dsabench" else None), {}
        return run.forward(state, mark)

    def layout_copy_bytes(self, state: run.FastDeployState, variant: Variant) -> int:
        return run.layout_copy_bytes(state)

    def cache_numpy(self, state: run.FastDeployState):
        return state.mirror.latent_cache.numpy()


    def output_numpy(self, out):
        """[T, H, 512] like the mirror's: FastDeploy returns a decode-only output as [T, 1, H, 512]."""
        return super().output_numpy(out.reshape([-1, out.shape[-2], out.shape[-1]]))
