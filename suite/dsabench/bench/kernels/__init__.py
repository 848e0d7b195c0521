"""Fused GPU kernels (Triton) and FlashMLA bindings: GPU only."""
