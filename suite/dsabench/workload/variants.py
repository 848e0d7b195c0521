"""The variants of forward_mixed that PR #7253 moves between.

A variant is a scale mode times a layout mode:
- scale `tensor`: `paddle.tensor(200.0)` then divide (before #7253; a blocking host-to-device copy);
  `scalar`: divide by the Python float 200.0 (after #7253); `none`: skip the phase, since the
  fp8_ds_mla write-cache kernel never reads the scale (what deleting it would save).
- layout `contiguous`: `transpose([0, 2, 1, 3]).contiguous()` (before; copies the whole cache in
  Paddle 3.x); `view`: reshape-free view with dims 1 and 2 swapped (after; legal only when
  cache heads == 1).
"""

from __future__ import annotations

from dataclasses import dataclass

SCALE_MODES = ("tensor", "scalar", "none")
LAYOUT_MODES = ("contiguous", "view")


@dataclass(frozen=True)
class Variant:
    scale: str
    layout: str

    def __post_init__(self) -> None:
        if self.scale not in SCALE_MODES:
            raise ValueError(f"scale mode {self.scale!r}; expected one of {list(SCALE_MODES)}")
        if self.layout not in LAYOUT_MODES:
            raise ValueError(f"layout mode {self.layout!r}; expected one of {list(LAYOUT_MODES)}")

    @property
    def name(self) -> str:
        return ALIAS_OF.get(self, f"{self.scale}+{self.layout}")


BASELINE = Variant("tensor", "contiguous")
PATCHED = Variant("scalar", "view")
ALIASES = {"baseline": BASELINE, "patched": PATCHED}
ALIAS_OF = {v: k for k, v in ALIASES.items()}
ALL_VARIANTS = tuple(Variant(s, l) for s in SCALE_MODES for l in LAYOUT_MODES)


def parse_variant(text: str) -> Variant:
    """'baseline', 'patched' or 'SCALE+LAYOUT' (e.g. 'scalar+contiguous')."""
    if text in ALIASES:
        return ALIASES[text]
    scale, sep, layout = text.partition("+")
    if not sep:
        raise ValueError(
            f"variant {text!r}; expected 'baseline', 'patched', 'all' or SCALE+LAYOUT with SCALE in "
            f"{list(SCALE_MODES)} and LAYOUT in {list(LAYOUT_MODES)}"
        )
    return Variant(scale, layout)
