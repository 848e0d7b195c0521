"""Phase names of the forward, shared by both backends, NVTX ranges and profiler ranges."""

PHASE_NAMES = ("scale", "slot_mapping", "write_cache", "layout", "decode", "prefill", "merge")
NVTX_DOMAIN = "dsabench"
