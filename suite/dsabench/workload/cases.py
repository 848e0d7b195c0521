"""A Case: one fully specified forward to measure, hashable and with a stable id.

The id is built from the parameters only (never from run metadata), so the same case matches
across runs, commits and machines. Requests of a case:
- phase `decode`: `batch` decode requests, each with `context_len` tokens already cached and one
  new token;
- phase `prefill`: `batch` prefill requests of `prefill_len` new tokens each;
- phase `mixed`: one prefill request of `prefill_len` tokens, then `batch` decode requests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from dsabench.workload.dims import DEFAULT_DIMS, Dims, blocks_for, cache_bytes
from dsabench.workload.variants import Variant

PHASES = ("decode", "prefill", "mixed")
MODES = ("hot", "cold")


@dataclass(frozen=True)
class Case:
    scenario: str
    phase: str
    batch: int
    context_len: int
    prefill_len: int
    num_blocks: int
    block_size: int
    cache_heads: int
    heads: int
    topk: int
    variant: Variant
    graph: bool
    seed: int
    mode: str = "hot"

    @property
    def id(self) -> str:
        return f"{self.config_id}.{self.variant.scale}-{self.variant.layout}.{'graph' if self.graph else 'eager'}"

    @property
    def config_id(self) -> str:
        """Everything but variant and graph: the cases that must give the same output."""
        return (
            f"{self.phase}.b{self.batch}.c{self.context_len}.p{self.prefill_len}.n{self.num_blocks}"
            f".bs{self.block_size}.ch{self.cache_heads}.h{self.heads}.k{self.topk}.s{self.seed}.{self.mode}"
        )

    @property
    def group_id(self) -> str:
        """Everything but variant: the cases whose variants are compared with each other."""
        return f"{self.config_id}.{'graph' if self.graph else 'eager'}"

    def request_groups(self) -> tuple[tuple[int, int, int, bool], ...]:
        """(count, cached, new, is_prefill) per group of equal requests, in batch order.

        Sizes are computed from the groups, never from one tuple per request, so that validating
        a case of a huge batch costs no memory.
        """
        decode = (self.batch, self.context_len, 1, False)
        if self.phase == "decode":
            return (decode,)
        if self.phase == "prefill":
            return ((self.batch, 0, self.prefill_len, True),)
        return ((1, 0, self.prefill_len, True), decode)

    def requests(self) -> tuple[tuple[int, int, bool], ...]:
        """(cached, new, is_prefill) per request, in batch order."""
        return tuple((cached, new, pre) for n, cached, new, pre in self.request_groups() for _ in range(n))

    @property
    def num_tokens(self) -> int:
        return sum(n * new for n, _, new, _ in self.request_groups())

    def blocks_needed(self) -> int:
        return sum(n * blocks_for(cached + new, self.block_size) for n, cached, new, _ in self.request_groups())

    @property
    def has_decode(self) -> bool:
        return self.phase in ("decode", "mixed")

    @property
    def has_prefill(self) -> bool:
        return self.phase in ("prefill", "mixed")

    def params(self) -> dict:
        """Flat, JSON-ready parameters (variant spelled out), as stored in records."""
        d = asdict(self)
        d["variant"] = self.variant.name
        d["scale_mode"] = self.variant.scale
        d["layout_mode"] = self.variant.layout
        return d

    def with_variant(self, variant: Variant) -> "Case":
        return replace(self, variant=variant)

    def cache_bytes(self, dims: Dims = DEFAULT_DIMS) -> int:
        return cache_bytes(self.num_blocks, self.cache_heads, self.block_size, dims)

    def estimated_bytes(self, dims: Dims = DEFAULT_DIMS) -> int:
        """Device memory the case needs: cache, its copy when the layout copies, and activations.

        Activations: q and outputs in bf16, fp32 working copies of the gathered keys, and the
        attention scores; an estimate to plan with, not a measurement.
        """
        t = self.num_tokens
        q = t * self.heads * dims.q_head_dim * 2
        out = 2 * t * self.heads * dims.kv_lora_rank * 2
        gathered = t * self.topk * dims.q_head_dim * 4 * 2
        scores = t * self.heads * self.topk * 4 * 2
        copy = self.cache_bytes(dims) if (self.variant.layout == "contiguous" and self.has_decode) else 0
        return self.cache_bytes(dims) + copy + q + out + gathered + scores
