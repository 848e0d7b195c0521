"""The FastDeploy implementation plug-in, on a fixture FastDeploy tree at two commits, real Paddle on CPU.

The fixture (tests/data/fastdeploy_fixture) has FastDeploy's module layout and signatures; the
"before" commit spells the scale and layout lines as FastDeploy did before PR #7253, the "after"
commit as after it. Both commits' forward_mixed run for real through the suite's ops.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

from conftest import make_case  # noqa: E402

from dsabench.bench.backends.base import Marker  # noqa: E402
from dsabench.bench.backends.paddle import PaddleBackend, forward_mixed  # noqa: E402
from dsabench.bench.impls import MIRROR, parse_impl  # noqa: E402
from dsabench.bench.impls.fastdeploy import run  # noqa: E402
from dsabench.bench.impls.fastdeploy.backend import FastDeployBackend  # noqa: E402
from dsabench.bench.impls.fastdeploy.checkout import checkout  # noqa: E402
from dsabench.bench.impls.fastdeploy.loader import RUNTIME, UnsupportedLayout, load  # noqa: E402
from dsabench.errors import InputError, InvalidCase  # noqa: E402
from dsabench.reference import oracle  # noqa: E402
from dsabench.workload.inputs import make_host_inputs  # noqa: E402
from dsabench.workload.variants import BASELINE  # noqa: E402

FIXTURE = Path(__file__).parent / "data" / "fastdeploy_fixture"
BACKEND = "fastdeploy/model_executor/layers/attention/dsa_attention_backend.py"
# PR #7253's rewrite of the fixture, plus the constructor's rope_3d read of the later commit.
AFTER = (
    ("        k_range = paddle.tensor(200.0)\n        scale = paddle.abs(compressed_kv).max() / k_range\n",
     "        scale = paddle.abs(compressed_kv).max() / 200.0\n"),
    ("        decode_cache = latent_cache.transpose([0, 2, 1, 3]).contiguous()\n",
     "        new_shape = latent_cache.shape\n        assert new_shape[1] == 1\n"
     "        new_shape[1], new_shape[2] = new_shape[2], new_shape[1]\n"
     "        decode_cache = latent_cache.view(new_shape)\n"),
    ("self.rope_3d = fd_config.enable_rope_3d_runtime",
     'self.rope_3d = getattr(fd_config.model_config, "rope_3d", False)'),
)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def _commit_edit(repo: Path, message: str, edits) -> str:
    path = repo / BACKEND
    text = path.read_text()
    for old, new in edits:
        assert text.count(old) == 1, f"fixture line not found once: {old!r}"
        text = text.replace(old, new)
    path.write_text(text)
    _git(repo, "commit", "-qam", message)
    return _git(repo, "rev-parse", "HEAD")


def _fixture_repo(where: Path) -> Path:
    repo = where / "FastDeploy"
    shutil.copytree(FIXTURE, repo)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "bench@example.invalid")
    _git(repo, "config", "user.name", "bench")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "before: tensor scale, contiguous layout")
    return repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """(repo, before sha, after sha)."""
    repo = _fixture_repo(tmp_path_factory.mktemp("fd"))
    before = _git(repo, "rev-parse", "HEAD")
    after = _commit_edit(repo, "after: scalar scale, view layout", AFTER)
    return repo, before, after


@pytest.fixture(scope="module")
def pair(repo, tmp_path_factory):
    """Both commits loaded in this one process, their worktrees held for the module."""
    path, before, after = repo
    cache = tmp_path_factory.mktemp("worktrees")
    with checkout(str(path), before[:10], cache) as a, checkout(str(path), after[:10], cache) as b:
        yield load(a), load(b)


@pytest.fixture(scope="module")
def mirror():
    return PaddleBackend("cpu")


def _bytes(t) -> bytes:
    return t.contiguous().view(paddle.uint8).numpy().tobytes()


# ---- spec and checkout ------------------------------------------------------------------------


def test_impl_spec_is_mirror_or_fastdeploy_path_with_optional_commit():
    assert parse_impl("mirror") == MIRROR
    spec = parse_impl("fastdeploy:/src/FastDeploy@3d3e282b")
    assert (spec.kind, spec.path, spec.commit) == ("fastdeploy", "/src/FastDeploy", "3d3e282b")
    assert parse_impl("fastdeploy:../fd").commit == ""
    assert parse_impl("fastdeploy:/a@b/fd@HEAD").path == "/a@b/fd"


@pytest.mark.parametrize("text", ["torch", "fastdeploy", "fastdeploy:", "fastdeploy:/x@", "mirror:/x"])
def test_a_malformed_impl_spec_is_one_line_naming_what_is_allowed(text):
    with pytest.raises(InputError) as err:
        parse_impl(text)
    assert "\n" not in str(err.value) and "fastdeploy:PATH[@COMMIT]" in str(err.value)


def test_a_commit_runs_from_a_worktree_in_the_cache_that_is_removed_afterwards(repo, tmp_path):
    path, before, _ = repo
    with checkout(str(path), before[:8], tmp_path) as co:
        assert co.worktree and co.sha == before and co.subject.startswith("before")
        assert co.root.parent == tmp_path and (co.root / BACKEND).is_file()
        assert str(co.root) in _git(path, "worktree", "list")
        root = co.root
    assert not root.exists()
    assert str(root) not in _git(path, "worktree", "list")


def test_the_worktree_is_removed_when_the_run_fails(repo, tmp_path):
    path, before, _ = repo
    with pytest.raises(RuntimeError):
        with checkout(str(path), before, tmp_path) as co:
            root = co.root
            raise RuntimeError("the run failed")
    assert not root.exists() and str(root) not in _git(path, "worktree", "list")


def test_one_commit_asked_for_twice_gets_two_worktrees(repo, tmp_path):
    path, before, _ = repo
    with checkout(str(path), before, tmp_path) as a, checkout(str(path), before, tmp_path) as b:
        assert a.root != b.root and (a.root / BACKEND).is_file() and (b.root / BACKEND).is_file()
    assert not a.root.exists() and not b.root.exists()


def test_the_tree_as_it_is_records_its_head_and_local_changes(repo, tmp_path):
    path, _, after = repo
    with checkout(str(path)) as co:
        assert (co.sha, co.worktree, co.dirty, co.root) == (after, False, False, path.resolve())


def test_a_path_that_is_not_a_fastdeploy_tree_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="not a FastDeploy tree.*dsa_attention_backend.py is missing"):
        with checkout(str(tmp_path)):
            pass


def test_an_unknown_commit_is_one_clear_error(repo, tmp_path):
    path, _, _ = repo
    with pytest.raises(InputError, match="unknown commit 'deadbeef1234'"):
        with checkout(str(path), "deadbeef1234", tmp_path):
            pass


def test_a_commit_for_a_tree_outside_git_is_refused(tmp_path):
    tree = tmp_path / "plain"
    shutil.copytree(FIXTURE, tree)
    with pytest.raises(InputError, match="not in a git repository"):
        with checkout(str(tree), "HEAD", tmp_path / "cache"):
            pass


# ---- loading: modules, stand-ins, ops --------------------------------------------------------


def test_on_a_cpu_build_the_ops_are_dsabench_and_the_record_says_why_and_which_modules_stood_in(pair):
    before, _ = pair
    rec = before.describe()
    assert rec["ops"] == "dsabench" and "CPU build" in rec["ops_reason"]
    mods = rec["modules"]
    assert mods["flash_mla"] == mods["fastdeploy.model_executor.ops.gpu"] == "dsabench ops"
    assert mods["fastdeploy.platforms"].startswith("stand-in")
    assert mods["fastdeploy.model_executor.layers.attention.ops"].startswith("stand-in (ImportError")
    assert mods["fastdeploy.model_executor.layers.attention.attention"].startswith("stand-in (ModuleNotFoundError")
    assert mods["fastdeploy"].startswith("shell: ModuleNotFoundError")
    for own in ("fastdeploy.config", "fastdeploy.model_executor.layers.attention.base_attention_backend",
                "fastdeploy.model_executor.layers.attention.utils"):
        assert mods[own] == "checkout"
    assert Path(before.module.__file__).is_relative_to(before.checkout.root)


def test_loading_leaves_no_fastdeploy_module_behind_but_the_two_a_forward_imports(pair):
    left = {k for k in sys.modules if k == "fastdeploy" or k.startswith("fastdeploy.") or k == "flash_mla"}
    assert left <= set(RUNTIME)


@pytest.fixture
def bare_environment(monkeypatch, tmp_path):
    """The variables FastDeploy's package sets, as a user's shell may have them; scratch
    directories go to this test's own temporary directory."""
    monkeypatch.setenv("GLOG_minloglevel", "0")
    monkeypatch.delenv("AISTUDIO_LOG", raising=False)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    return tmp_path / "tmp"


def _fd_prom_dirs() -> set[str]:
    return set(glob.glob("/tmp/fd_prom_*"))


def test_loading_puts_back_every_variable_the_package_import_set_and_records_it(repo, bare_environment):
    path, _, _ = repo
    before, dirs = dict(os.environ), _fd_prom_dirs()
    with checkout(str(path)) as co:
        effects = load(co).describe()["import_effects"]
    assert dict(os.environ) == before
    assert effects["env_restored"] == {"AISTUDIO_LOG": {"before": None, "import_set": "critical"},
                                       "GLOG_minloglevel": {"before": "0", "import_set": "2"}}
    assert effects["prometheus_scratch_dir_removed"] is True
    assert _fd_prom_dirs() <= dirs and list(bare_environment.iterdir()) == []


def test_a_load_that_fails_also_puts_the_environment_back(tmp_path, bare_environment):
    repo = _broken(tmp_path, [("class DSAAttentionBackend(AttentionBackend):", "class DSABackend(AttentionBackend):")])
    before, dirs = dict(os.environ), _fd_prom_dirs()
    with checkout(str(repo)) as co:
        with pytest.raises(UnsupportedLayout):
            load(co)
    assert dict(os.environ) == before
    assert _fd_prom_dirs() <= dirs and list(bare_environment.iterdir()) == []


def test_a_prometheus_directory_the_user_set_is_left_as_it_is(repo, bare_environment, monkeypatch, tmp_path):
    path, _, _ = repo
    mine = tmp_path / "mine"
    mine.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(mine))
    with checkout(str(path)) as co:
        effects = load(co).describe()["import_effects"]
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(mine) and mine.is_dir()
    assert effects["prometheus_scratch_dir_removed"] is False
    assert "PROMETHEUS_MULTIPROC_DIR" not in effects["env_restored"]


def test_loading_undoes_the_torch_proxy_the_backend_installs_at_import(repo):
    torch = pytest.importorskip("torch")
    path, _, _ = repo
    finders = list(sys.meta_path)
    with checkout(str(path)) as co:
        load(co)  # the fixture calls paddle.enable_compat(scope={"flash_mla"}) on its CUDA path
    assert sys.meta_path == finders
    assert sys.modules["torch"] is torch and float(torch.ones(2).sum()) == 2.0


def test_asking_for_fastdeploy_ops_on_a_cpu_build_is_refused_with_the_reason(repo):
    path, _, _ = repo
    with checkout(str(path)) as co:
        with pytest.raises(InputError, match="FastDeploy's own ops asked for, but this Paddle .* is a CPU build"):
            load(co, ops="fastdeploy")


def _broken(tmp_path, edits):
    repo = _fixture_repo(tmp_path)
    _commit_edit(repo, "a layout the plug-in does not drive", edits)
    return repo


def test_a_backend_importing_a_name_nothing_provides_names_the_import(tmp_path):
    repo = _broken(tmp_path, [("    init_signal_layerwise,\n)", "    init_signal_layerwise,\n    brand_new_op,\n)")])
    with checkout(str(repo)) as co:
        with pytest.raises(UnsupportedLayout, match="cannot import name 'brand_new_op'.*stand-in"):
            load(co)


def test_a_tree_without_the_backend_class_is_refused_by_name(tmp_path):
    repo = _broken(tmp_path, [("class DSAAttentionBackend(AttentionBackend):", "class DSABackend(AttentionBackend):")])
    with checkout(str(repo)) as co:
        with pytest.raises(UnsupportedLayout, match="has no class DSAAttentionBackend"):
            load(co)


def test_a_constructor_reading_a_config_field_the_plugin_lacks_names_the_field(tmp_path, mirror):
    repo = _broken(tmp_path, [("        self.num_heads = num_heads\n",
                               "        self.num_heads = num_heads\n        self.chunk = model.prefill_chunk_size\n")])
    case = make_case()
    with checkout(str(repo)) as co:
        loaded = load(co)
        with pytest.raises(UnsupportedLayout, match=r"fd_config\.model_config\.prefill_chunk_size is read but not"):
            run.run(loaded, mirror, case, make_host_inputs(case))


def test_a_forward_reading_a_meta_field_the_plugin_does_not_build_names_the_field(tmp_path, mirror):
    repo = _broken(tmp_path, [("        latent_cache = forward_meta.caches[2 * layer.layer_id]\n",
                               "        latent_cache = forward_meta.caches[2 * layer.layer_id]\n"
                               "        forward_meta.attn_mask_offsets\n")])
    case = make_case()
    with checkout(str(repo)) as co:
        loaded = load(co)
        with pytest.raises(UnsupportedLayout, match="forward_mixed fails: .*attn_mask_offsets"):
            run.run(loaded, mirror, case, make_host_inputs(case))


def test_each_commits_constructor_reads_its_own_rope_3d_field(pair, mirror):
    case = make_case()
    reads = [run.construct(loaded, case)[1] for loaded in pair]
    assert "fd_config.enable_rope_3d_runtime" in reads[0] and "fd_config.model_config.rope_3d" not in reads[0]
    assert "fd_config.model_config.rope_3d" in reads[1] and "fd_config.enable_rope_3d_runtime" not in reads[1]


# ---- the forward ------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["decode", "prefill", "mixed"])
def test_both_commits_agree_bit_for_bit_with_each_other_and_the_mirror_and_match_the_oracle(pair, mirror, phase):
    case = make_case(phase=phase)
    host = make_host_inputs(case)
    outs = [run.run(loaded, mirror, case, host).output for loaded in pair]
    st = mirror.prepare(case, host)
    background = st.latent_cache.numpy().copy()
    mirrored = forward_mixed(st, BASELINE)
    assert _bytes(outs[0]) == _bytes(outs[1]) == _bytes(mirrored)
    ref = oracle.forward(case, host, background)
    out = outs[0].cast(paddle.float32).numpy().reshape(ref.shape)
    assert np.isfinite(out).all()
    assert oracle.relative_error(out, ref) <= oracle.REL_ERROR_BOUND


def test_only_the_baseline_commit_copies_the_cache_for_the_decode_kernel(pair, mirror):
    case = make_case(phase="decode")
    host = make_host_inputs(case)
    before, after = (run.run(loaded, mirror, case, host).record["layout_copy_bytes"] for loaded in pair)
    assert before == case.cache_bytes() and after == 0


def test_a_prefill_only_case_copies_nothing_in_either_commit(pair, mirror):
    case = make_case(phase="prefill")
    host = make_host_inputs(case)
    assert [run.run(loaded, mirror, case, host).record["layout_copy_bytes"] for loaded in pair] == [0, 0]


def test_forwards_of_two_commits_interleaved_in_one_process_each_run_their_own_lines(pair, mirror):
    case = make_case(phase="decode")
    host = make_host_inputs(case)
    prepared = [run.run(loaded, mirror, case, host) for loaded in pair]
    first = [_bytes(p.output) for p in prepared]
    for _ in range(2):
        for p, loaded, copies in zip(prepared, pair, (True, False)):
            out = p.forward()
            shares = loaded.bridge.decode_cache_ptr == p.state.mirror.latent_cache.data_ptr()
            assert shares is not copies
            assert _bytes(out) == first[0]
    assert first[0] == first[1]


def test_the_after_commits_view_refuses_a_two_head_cache_as_an_invalid_case(pair, mirror):
    case = make_case(phase="decode", cache_heads=2)
    host = make_host_inputs(case)
    run.run(pair[0], mirror, case, host)
    with pytest.raises(InvalidCase, match="cache heads"):
        run.run(pair[1], mirror, case, host)


class _Recorder(Marker):
    def __init__(self) -> None:
        super().__init__(None, False)
        self.names: list[str] = []

    def __call__(self, name: str):
        self.names.append(name)
        return super().__call__(name)


def test_phases_of_fastdeploys_forward_are_marked_as_the_mirrors(pair, mirror):
    case = make_case(phase="mixed")
    host = make_host_inputs(case)
    state = run.prepare(pair[0], mirror.prepare(case, host), host, mirror.place)
    fd, mir = _Recorder(), _Recorder()
    run.forward(state, fd)
    forward_mixed(mirror.prepare(case, host), BASELINE, mir)
    assert fd.names == ["scale", "slot_mapping", "write_cache", "prefill", "layout", "decode", "merge"]
    assert sorted(fd.names) == sorted(mir.names)


def test_the_worker_backend_serves_a_commit_like_the_paddle_backend(pair):
    backend = FastDeployBackend(pair[0], "cpu")
    case = make_case(phase="decode")
    host = make_host_inputs(case)
    state = backend.prepare(case, host)
    out = backend.forward(state, BASELINE)
    assert backend.output_numpy(out).shape == (case.num_tokens, case.heads, 512)
    assert backend.cache_numpy(state).shape == (case.num_blocks, 1, case.block_size, 656)
    assert backend.layout_copy_bytes(state, BASELINE) == case.cache_bytes()
    assert backend.availability().details["sha"] == pair[0].checkout.sha


# ---- the attention kernel: what runs, what is recorded --------------------------------------------


@pytest.mark.parametrize("phase,calls", [("decode", {"decode"}), ("prefill", {"prefill"}),
                                         ("mixed", {"prefill", "decode"})])
def test_with_dsabenchs_ops_each_attention_call_runs_the_backends_kernel_and_says_so(pair, phase, calls):
    """On this CPU the kernel is the reference ops: the backend asks for it, both calls run it, and
    what each call ran is what the record names (`kernel` and `impl_info.attention_ran`)."""
    backend = FastDeployBackend(pair[0], "cpu")
    backend.use_kernel("reference")
    case = make_case(phase=phase)
    state = backend.prepare(case, make_host_inputs(case))
    backend.forward(state, BASELINE)
    ran = backend.attention_ran(state)
    assert set(ran) == calls and set(ran.values()) == {backend.kernel} == {"reference"}


def test_fastdeploys_own_ops_call_flashmla_so_any_other_kernel_is_refused_in_one_line(pair):
    """`ops: fastdeploy` (a GPU build with FlashMLA) cannot honour --kernel reference or triton: its
    two attention calls are FlashMLA's. The loaded commit is this CPU's, marked as FastDeploy's ops."""
    import dataclasses

    from dsabench.errors import Unsupported

    theirs = FastDeployBackend(dataclasses.replace(pair[0], ops="fastdeploy"), "cpu")
    for kernel in ("reference", "triton"):
        with pytest.raises(Unsupported) as err:
            theirs.use_kernel(kernel)
        text = str(err.value)
        assert "\n" not in text and f"kernel {kernel!r}" in text and "ops: fastdeploy" in text
        assert "--kernel flashmla" in text


def test_fastdeploys_own_flash_mla_is_recorded_as_flashmla_by_the_phase_proxies():
    """with_phases around a flash_mla module that is not dsabench's (FastDeploy's, i.e. FlashMLA)
    notes `flashmla` for each call it forwards (around dsabench's ops the ops note it themselves:
    the test above)."""
    import types

    from dsabench.bench.impls.fastdeploy.ops import PhaseBridge, make_ops, with_phases

    bridge = PhaseBridge()
    real = types.ModuleType("flash_mla")
    real.get_mla_metadata = lambda *a, **k: (None, None)
    real.flash_mla_with_kvcache = lambda q, k_cache, *a, **k: ("out", None)
    real.flash_mla_sparse_fwd = lambda *a, **k: ("out", None, None)
    fm, _ = with_phases(bridge, real, make_ops(bridge=bridge)[1])
    fm.flash_mla_sparse_fwd(None, None, None, 1.0)
    fm.flash_mla_with_kvcache(None, paddle.zeros([1], dtype="uint8"))
    assert bridge.ran == {"prefill": "flashmla", "decode": "flashmla"}
