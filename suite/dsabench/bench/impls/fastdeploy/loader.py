"""Import `DSAAttentionBackend` from a FastDeploy tree, without installing or building FastDeploy.

The tree's packages and modules are loaded under their own names, found through the tree's
`fastdeploy` directory (never through sys.path, so an installed FastDeploy cannot leak in).
Each module the backend imports is the checkout's own where it executes cleanly; otherwise a
declared stand-in (standins.py). Package `__init__`s that fail become plain package shells
(their submodules still load from the tree). The result records every module's source.

Loading is isolated: FastDeploy's entries in sys.modules are set aside first and put back after,
so two commits load side by side in one process, and what the tree's package `__init__`s do to
the environment (variables, a Prometheus directory) is undone and recorded (import_effects.py). The only names forward_mixed imports when it
runs (`flash_mla`, `fastdeploy.model_executor.ops.gpu`) are installed by `LoadedBackend.activate`
before each forward of that commit.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

from dsabench.bench.impls.fastdeploy import standins
from dsabench.bench.impls.fastdeploy.checkout import Checkout
from dsabench.bench.impls.fastdeploy.import_effects import ImportEffects, contained
from dsabench.bench.impls.fastdeploy.ops import PhaseBridge, make_ops, with_phases
from dsabench.errors import InputError

BACKEND_MODULE = "fastdeploy.model_executor.layers.attention.dsa_attention_backend"
GPU_OPS = "fastdeploy.model_executor.ops.gpu"
RUNTIME = ("flash_mla", GPU_OPS)
PACKAGES = ("fastdeploy", "fastdeploy.model_executor", "fastdeploy.model_executor.layers",
            "fastdeploy.model_executor.layers.attention")
FORWARD_PARAMS = ("q", "k", "v", "qkv", "compressed_kv", "k_pe", "layer", "forward_meta")
INIT_PARAMS = ("fd_config", "kv_num_heads", "num_heads", "head_dim")
OPS_MODES = ("auto", "fastdeploy", "dsabench")


class UnsupportedLayout(InputError):
    """The commit's backend does not have the layout the plug-in drives (one line, names what)."""


@dataclass
class LoadedBackend:
    """One commit's DSAAttentionBackend class, the modules it runs with, and where each came from."""

    checkout: Checkout
    cls: type
    module: types.ModuleType
    runtime: dict[str, types.ModuleType]
    bridge: PhaseBridge
    ops: str  # "fastdeploy" | "dsabench"
    ops_reason: str
    modules: dict[str, str] = field(default_factory=dict)  # module -> "checkout" | "shell: ..." | "stand-in: ..."
    import_effects: ImportEffects = field(default_factory=ImportEffects)

    @property
    def label(self) -> str:
        c = self.checkout
        return f"fastdeploy:{c.path}" + (f"@{c.commit}" if c.commit else "")

    def activate(self) -> None:
        """Point the names forward_mixed imports at run time to this commit's ops."""
        for name, mod in self.runtime.items():
            if sys.modules.get(name) is not mod:
                sys.modules[name] = mod

    def describe(self) -> dict:
        return {**self.checkout.describe(), "ops": self.ops, "ops_reason": self.ops_reason, "modules": dict(self.modules),
                "import_effects": self.import_effects.describe()}


def _ours(name: str) -> bool:
    return name == "flash_mla" or name == "fastdeploy" or name.startswith("fastdeploy.")


def _module_file(root: Path, name: str) -> tuple[Path, list[str] | None] | None:
    base = root.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py", [str(base)]
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py"), None
    return None


def _exec(name: str, path: Path, search: list[str] | None) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=search)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _try_checkout(root: Path, name: str) -> tuple[bool, str]:
    """Execute the tree's module `name`; on failure undo every sys.modules entry it added."""
    found = _module_file(root, name)
    if found is None:
        return False, "not in the tree"
    before = set(sys.modules)
    try:
        _exec(name, *found)
        return True, ""
    except Exception as exc:  # noqa: BLE001 - any failure means: use the declared fallback
        for key in set(sys.modules) - before:
            del sys.modules[key]
        return False, f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


def _shell(root: Path, name: str) -> types.ModuleType:
    mod = types.ModuleType(name, "dsabench package shell: submodules load from the tree")
    mod.__path__ = [str(root.joinpath(*name.split(".")))]
    sys.modules[name] = mod
    return mod


def _packages(root: Path, modules: dict[str, str]) -> None:
    for pkg in PACKAGES:
        ok, why = _try_checkout(root, pkg)
        modules[pkg] = "checkout" if ok else f"shell: {why}"
        if not ok:
            _shell(root, pkg)


def _fastdeploy_ops(root: Path) -> tuple[dict[str, types.ModuleType] | None, str]:
    """FastDeploy's compiled ops and FlashMLA, when this machine has them; else (None, why not)."""
    import paddle  # noqa: PLC0415

    if not paddle.is_compiled_with_cuda():
        return None, f"this Paddle ({paddle.__version__}) is a CPU build"
    try:
        flash_mla = importlib.import_module("flash_mla")
    except Exception as exc:  # noqa: BLE001
        return None, f"flash_mla does not import: {type(exc).__name__}: {exc}"
    if not _try_checkout(root, "fastdeploy.model_executor.ops")[0]:
        _shell(root, "fastdeploy.model_executor.ops")
    ok, why = _try_checkout(root, GPU_OPS)
    if not ok:
        return None, f"{GPU_OPS} does not import from the tree (is it built?): {why}"
    gpu = sys.modules[GPU_OPS]
    missing = [n for n in ("dsk_attn_write_cache", "merge_prefill_decode_output") if not hasattr(gpu, n)]
    if missing:
        return None, f"{GPU_OPS} has no {', '.join(missing)}"
    return {"flash_mla": flash_mla, GPU_OPS: gpu}, "FastDeploy's compiled ops and FlashMLA import here"


def load(checkout: Checkout, ops: str = "auto") -> LoadedBackend:
    """The commit's DSAAttentionBackend; `ops` picks FastDeploy's ops, dsabench's, or (auto) the
    former where they import. Raises UnsupportedLayout naming a missing import or attribute.
    The process's environment is as it was before, whether it returns or raises."""
    if ops not in OPS_MODES:
        raise InputError(f"ops {ops!r}; expected one of {list(OPS_MODES)}")
    effects = ImportEffects()
    with contained(effects):
        return _load(checkout, ops, effects)


def _load(checkout: Checkout, ops: str, effects: ImportEffects) -> LoadedBackend:
    root = checkout.root
    label = f"fastdeploy:{checkout.path}" + (f"@{checkout.commit}" if checkout.commit else "")
    saved = {k: sys.modules.pop(k) for k in [k for k in sys.modules if _ours(k)]}
    meta_path = list(sys.meta_path)
    modules: dict[str, str] = {}
    chosen = "dsabench"
    try:
        runtime, reason = None, "dsabench's ops asked for"
        if ops != "dsabench":
            _packages(root, modules)
            runtime, reason = _fastdeploy_ops(root)
            if runtime is None and ops == "fastdeploy":
                raise InputError(f"{label}: FastDeploy's own ops asked for, but {reason}")
            if runtime is None:  # start again with dsabench's ops in place before any package runs
                for key in [k for k in sys.modules if _ours(k)]:
                    del sys.modules[key]
                modules.clear()
        chosen = "fastdeploy" if runtime is not None else "dsabench"
        bridge = PhaseBridge()
        if runtime is None:
            flash_mla, gpu = make_ops(bridge=bridge)  # their attention calls run what the backend asks (bridge)
            runtime = {"flash_mla": flash_mla, GPU_OPS: gpu}
            sys.modules.update(runtime)
            sys.modules[standins.PLATFORMS] = standins.FACTORIES[standins.PLATFORMS]()
            modules[standins.PLATFORMS] = f"stand-in: {standins.ROLE[standins.PLATFORMS]}"
            _packages(root, modules)
        for name in RUNTIME:
            modules[name] = "fastdeploy" if chosen == "fastdeploy" else "dsabench ops"
        for dep in standins.DEPENDENCIES:
            if dep in sys.modules:
                modules.setdefault(dep, "checkout")
                continue
            ok, why = _try_checkout(root, dep)
            if not ok:
                sys.modules[dep] = standins.FACTORIES[dep]()
                modules[dep] = f"stand-in ({why}): {standins.ROLE[dep]}"
            else:
                modules[dep] = "checkout"
        module = _import_backend(root, label, modules)
        cls = _check_layout(module, label)
        _mark_slot_mapping(module, bridge, modules)
        runtime = dict(zip(RUNTIME, with_phases(bridge, runtime["flash_mla"], runtime[GPU_OPS])))
        return LoadedBackend(checkout, cls, module, runtime, bridge, chosen, reason, modules, effects)
    finally:
        if chosen != "fastdeploy":  # FastDeploy's import-time torch proxy for flash_mla: ours imports no torch
            if _undo_torch_proxy(meta_path):
                effects.torch_proxy = "undone"
        elif any(f not in meta_path for f in sys.meta_path):
            effects.torch_proxy = "kept: FastDeploy's ops use it"
        for key in [k for k in sys.modules if _ours(k)]:
            del sys.modules[key]
        sys.modules.update(saved)


def _import_backend(root: Path, label: str, modules: dict[str, str]) -> types.ModuleType:
    found = _module_file(root, BACKEND_MODULE)
    if found is None:
        raise UnsupportedLayout(f"{label}: {BACKEND_MODULE} is not in the tree")
    try:
        return _exec(BACKEND_MODULE, *found)
    except ImportError as exc:
        where = f" (that module is {modules[exc.name]})" if exc.name in modules else ""
        raise UnsupportedLayout(
            f"{label}: dsa_attention_backend.py does not import here: {exc}{where}; "
            "the plug-in supports the imports of FastDeploy commits 3d3e282b and 08db3779"
        ) from exc
    except Exception as exc:
        raise UnsupportedLayout(f"{label}: dsa_attention_backend.py fails on import: {type(exc).__name__}: {exc}") from exc


def _params(fn) -> tuple[str, ...]:
    return tuple(p for p in inspect.signature(fn).parameters if p != "self")


def _check_layout(module: types.ModuleType, label: str) -> type:
    cls = getattr(module, "DSAAttentionBackend", None)
    if not isinstance(cls, type):
        raise UnsupportedLayout(f"{label}: {BACKEND_MODULE} has no class DSAAttentionBackend")
    fwd = getattr(cls, "forward_mixed", None)
    if not callable(fwd):
        raise UnsupportedLayout(f"{label}: DSAAttentionBackend has no method forward_mixed")
    if _params(fwd)[: len(FORWARD_PARAMS)] != FORWARD_PARAMS:
        raise UnsupportedLayout(
            f"{label}: DSAAttentionBackend.forward_mixed takes {list(_params(fwd))}; "
            f"the plug-in passes {list(FORWARD_PARAMS)}"
        )
    if _params(cls.__init__)[: len(INIT_PARAMS)] != INIT_PARAMS:
        raise UnsupportedLayout(
            f"{label}: DSAAttentionBackend.__init__ takes {list(_params(cls.__init__))}; "
            f"the plug-in passes {list(INIT_PARAMS)}"
        )
    return cls


def _mark_slot_mapping(module: types.ModuleType, bridge: PhaseBridge, modules: dict[str, str]) -> None:
    """Mark the `slot_mapping` phase around FastDeploy's own module-level compute_slot_mapping."""
    fn = getattr(module, "compute_slot_mapping", None)
    if not callable(fn):
        modules["phase slot_mapping"] = "not marked: the module has no compute_slot_mapping (counted in scale)"
        return

    def compute_slot_mapping(*args, **kwargs):
        bridge.open("slot_mapping")
        try:
            return fn(*args, **kwargs)
        finally:
            bridge.close()

    module.compute_slot_mapping = compute_slot_mapping


def _undo_torch_proxy(meta_path: list) -> bool:
    """Undo `paddle.enable_compat(scope={"flash_mla"})` if the import ran it (True then): disable_compat
    also puts back the torch modules it set aside (restoring sys.meta_path alone leaves torch broken)."""
    if not any(f not in meta_path for f in sys.meta_path):
        return False
    import paddle  # noqa: PLC0415

    paddle.disable_compat()
    sys.meta_path[:] = meta_path
    return True
