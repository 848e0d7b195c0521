"""`dsabench run --impl` and `compare --impls` end to end through the CLI: a fixture FastDeploy tree at
two commits in a temporary git repository, both commits and the mirror measured in one run on
the CPU with real Paddle, interleaved per case group in one worker.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("paddle")

from test_fastdeploy_impl import AFTER, _commit_edit, _fixture_repo, _git  # noqa: E402

from dsabench.analysis.compare_impls import compare_impls  # noqa: E402
from dsabench.bench.impls.plan import MIRROR_RUN, ImplRun, detect_variant, plan  # noqa: E402
from dsabench.errors import InputError  # noqa: E402
from dsabench.store import rundir as store  # noqa: E402
from dsabench.store.frames import load_runs  # noqa: E402
from dsabench.workload.cases import Case  # noqa: E402
from dsabench.workload.variants import BASELINE, PATCHED  # noqa: E402

import cli_process  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# two configs: one cache head (both commits run) and two (the after commit's view asserts)
FILTER = r"decode\.b(1\.c256|2\.c128\.p0\.n16\.bs64\.ch2).*(tensor-contiguous|scalar-view)\.eager"
FAST = ("--max-time-s", "0.05", "--profile-iters", "0")


def dsabench(*args, cache: Path, cwd=REPO):
    return cli_process.dsabench(*args, cwd=cwd, timeout=300, env={**os.environ, "XDG_CACHE_HOME": str(cache)})


@pytest.fixture(scope="module")
def fd(tmp_path_factory):
    """(repo, before sha, after sha, worktree cache)."""
    repo = _fixture_repo(tmp_path_factory.mktemp("fd"))
    before = _git(repo, "rev-parse", "HEAD")
    after = _commit_edit(repo, "after: scalar scale, view layout", AFTER)
    return repo, before, after, tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def run(fd, tmp_path_factory):
    """One run: both commits and the mirror, --check; (run dir, completed process)."""
    repo, before, after, cache = fd
    out = tmp_path_factory.mktemp("out")
    r = dsabench("run", "smoke", "--impl", f"fastdeploy:{repo}@{before[:10]}", "--impl", f"fastdeploy:{repo}@{after}",
                 "--impl", "mirror", "--filter", FILTER, "--check", *FAST, "--out", out, "--run-id", "pair",
                 cache=cache)
    return out / "pair", r


def _records(run_dir: Path) -> list[dict]:
    records, warnings = store.read_records(run_dir)
    assert not warnings
    return records


# ---- the run --------------------------------------------------------------------------------------


def test_a_run_of_two_commits_and_the_mirror_writes_one_record_per_case_and_impl(fd, run):
    repo, before, after, _ = fd
    run_dir, r = run
    assert r.returncode == 0, r.stderr
    by = {}
    for rec in _records(run_dir):
        by.setdefault(rec["impl"], []).append(rec)
    assert set(by) == {"mirror", f"fastdeploy:{before[:12]}", f"fastdeploy:{after[:12]}"}
    assert len(by["mirror"]) == 4  # 2 configs x 2 variants
    assert len(by[f"fastdeploy:{before[:12]}"]) == len(by[f"fastdeploy:{after[:12]}"]) == 2  # one per group
    manifest = json.loads((run_dir / store.MANIFEST).read_text())
    assert [i["label"] for i in manifest["impls"]] == [f"fastdeploy:{before[:12]}", f"fastdeploy:{after[:12]}",
                                                       "mirror"]
    assert manifest["impls"][0]["sha"] == before and manifest["impls"][1]["subject"].startswith("after")
    assert manifest["cases_planned"] == 8


def test_each_commit_is_recorded_as_the_variant_its_own_lines_spell_with_sha_subject_ops_and_standins(fd, run):
    repo, before, after, _ = fd
    for rec in _records(run[0]):
        info = rec["impl_info"]
        assert info["ops"] == "dsabench" and info["ops_reason"]
        if rec["impl"] == "mirror":
            continue
        sha = before if rec["impl"].endswith(before[:12]) else after
        assert info["sha"] == sha and info["dirty"] is False
        assert info["subject"].startswith("before" if sha == before else "after")
        assert "CPU build" in info["ops_reason"]
        assert info["modules"]["fastdeploy.platforms"].startswith("stand-in")
        want = BASELINE if sha == before else PATCHED
        assert rec["params"]["variant"] == want.name and info["variant"] == want.name
        assert rec["case_id"].endswith(f".{want.scale}-{want.layout}.eager")


def test_each_commits_record_says_what_its_package_import_set_in_the_environment_and_that_it_was_undone(run):
    records = [r for r in _records(run[0]) if r["impl"] != "mirror"]
    assert records
    for rec in records:
        effects = rec["impl_info"]["import_effects"]
        assert effects["env_restored"]["AISTUDIO_LOG"]["import_set"] == "critical"
        assert effects["env_restored"]["GLOG_minloglevel"]["import_set"] == "2"
        assert effects["prometheus_scratch_dir_removed"] is (os.environ.get("PROMETHEUS_MULTIPROC_DIR", "") == "")


def test_every_record_names_the_attention_kernel_that_really_ran(run):
    """The commits run dsabench's ops on this CPU: each attention call of their checked forward ran
    the reference ops, and the record's kernel says the same (no record claims a kernel it did not run)."""
    for rec in _records(run[0]):
        if rec["impl"] == "mirror" or rec["status"] != "ok":
            continue
        assert rec["kernel"] == "reference" and rec["impl_info"]["attention_ran"] == {"decode": "reference"}


def test_case_ids_stay_comparable_across_impls(fd, run):
    repo, before, _, _ = fd
    records = _records(run[0])
    mirror_ids = {r["case_id"] for r in records if r["impl"] == "mirror"}
    assert {r["case_id"] for r in records if r["impl"] != "mirror"} <= mirror_ids


def test_the_baseline_commit_copies_the_cache_and_the_patched_commit_does_not(fd, run):
    _, before, after, _ = fd
    for rec in _records(run[0]):
        if rec["impl"] == f"fastdeploy:{before[:12]}" and rec["status"] == "ok":
            n_blocks, heads = rec["params"]["num_blocks"], rec["params"]["cache_heads"]
            assert rec["output"]["layout_copy_bytes"] == n_blocks * heads * rec["params"]["block_size"] * 656
        if rec["impl"] == f"fastdeploy:{after[:12]}" and rec["status"] == "ok":
            assert rec["output"]["layout_copy_bytes"] == 0


def test_the_patched_commits_view_is_invalid_on_a_two_head_cache_and_the_baseline_commit_runs(fd, run):
    _, before, after, _ = fd
    two = {r["impl"]: r for r in _records(run[0]) if r["params"]["cache_heads"] == 2 and r["impl"] != "mirror"}
    assert two[f"fastdeploy:{before[:12]}"]["status"] == "ok"
    assert two[f"fastdeploy:{after[:12]}"]["status"] == "invalid"
    assert "cache heads" in two[f"fastdeploy:{after[:12]}"]["message"]


def test_both_commits_agree_bit_for_bit_with_each_other_and_the_mirror_and_the_oracle(run):
    ok = [r for r in _records(run[0]) if r["status"] == "ok" and r["params"]["cache_heads"] == 1]
    assert len(ok) == 4
    assert len({r["output"]["digest"] for r in ok}) == 1
    assert all(r["output"]["oracle_rel_error"] <= r["output"]["oracle_bound"] for r in ok)
    assert "compared bit for bit" in run[1].stdout and "all identical" in run[1].stdout


def test_the_impls_of_a_case_group_are_measured_in_one_worker(run):
    pids = {}
    for r in _records(run[0]):
        if r["status"] == "ok":
            pids.setdefault(r["group_id"], set()).add(r["worker"]["pid"])
    assert pids and all(len(p) == 1 for p in pids.values())


def test_the_worktrees_are_removed_when_the_run_ends(fd, run):
    repo, _, _, cache = fd
    wt = cache / "dsabench" / "fastdeploy-worktrees"
    assert not wt.exists() or not any(wt.iterdir())
    assert len(_git(repo, "worktree", "list").splitlines()) == 1


def test_resume_treats_each_impl_of_a_case_as_its_own_record(fd, run):
    r = dsabench("run", "--resume", run[0], cache=fd[3])
    assert r.returncode == 0, r.stderr
    assert "0 of 8 cases to measure" in r.stderr
    assert len(_records(run[0])) == 8


def test_the_frame_holds_every_impl_of_a_case_without_calling_it_a_duplicate(run):
    df = load_runs([run[0]]).df
    assert len(df) == 8 and df["impl"].nunique() == 3
    assert set(df.loc[df["impl"] != "mirror", "impl_ops"]) == {"dsabench"}


def test_history_keeps_fastdeploys_code_in_a_series_of_its_own_with_the_commits_as_points(fd, run):
    from dsabench.analysis.history import case_series

    _, before, after, _ = fd
    series = case_series(load_runs([run[0]]))
    one = series[series["case_id"].str.startswith("decode.b1.c256")]
    mirror = one[~one["case_id"].str.endswith("@fastdeploy")]
    assert (mirror.groupby("case_id").size() == 1).all()  # one point per run, never a commit's
    commits = one[one["case_id"].str.endswith("@fastdeploy")]
    assert set(commits["commit"]) == {before, after}


# ---- compare --impls ----------------------------------------------------------------------------


def test_compare_impls_names_both_commits_shas_and_subjects(fd, run, cli):
    _, before, after, _ = fd
    code, out, err = cli("compare", "--impls", run[0], "--base-impl", before[:8], "--cand-impl", after[:8])
    assert code == 0, err
    head = out.splitlines()[0]
    assert before[:12] in head and after[:12] in head
    assert "'before: tensor scale, contiguous layout'" in head and "'after: scalar scale, view layout'" in head
    code, md, _ = cli("compare", "--impls", run[0], "--base-impl", before[:8], "--cand-impl", after[:8], "--markdown")
    assert code == 0 and before[:12] in md and "after: scalar scale" in md


def test_compare_impls_pairs_each_group_once_and_the_mirror_at_the_commits_variant(fd, run):
    _, before, after, _ = fd
    frame = load_runs([run[0]])
    t = compare_impls(frame, before[:8], after[:8]).table
    assert len(t) == 2  # one row per case group
    two = t[t["case"].str.contains(".ch2.")].iloc[0]
    assert two["verdict"] == "failed" and two["reason"] == "cand_failed"
    m = compare_impls(frame, "mirror", after[:8]).table
    one = m[m["case"].str.contains(".ch1.")].iloc[0]
    assert one["base_case_id"] == one["cand_case_id"] and one["base_layout_mode"] == "view"


def test_the_report_names_each_commits_sha_subject_ops_and_judges_head_against_base(fd, run, cli, tmp_path):
    _, before, after, _ = fd
    code, _, err = cli("report", run[0], "--out", tmp_path / "rep")
    assert code == 0, err
    text = (tmp_path / "rep" / "evidence.md").read_text()
    section = text[text.index("## Implementations"):]
    assert before in section and after in section and "'after: scalar scale, view layout'" in section
    assert "ops: dsabench (this Paddle" in section and "stand-in modules" in section
    heads = [ln for ln in section.splitlines() if ln.startswith("### dsabench compare (impls)")]
    assert f"fastdeploy:{before[:12]}" in heads[0].split(" vs ")[0] and f"fastdeploy:{after[:12]}" in heads[0]


def test_compare_impls_of_a_run_with_three_impls_asks_which_two(run, cli):
    code, _, err = cli("compare", "--impls", run[0])
    assert code == 2 and len(err) == 1 and "holds 3 impl(s)" in err[0]


# ---- refusals: one line, exit 2, nothing written (in this process: nothing is measured) ----------


@pytest.fixture
def cli(fd, monkeypatch, capsys):
    """`dsabench ARGS` in this process -> (exit code, stdout, stderr lines)."""
    import signal

    from dsabench.cli.main import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(fd[3]))

    def call(*args):
        handler = signal.getsignal(signal.SIGTERM)
        try:
            code = main([*map(str, args)])
        except SystemExit as exc:  # argparse
            code = exc.code
        finally:
            signal.signal(signal.SIGTERM, handler)
        got = capsys.readouterr()
        return code, got.out, [ln for ln in got.err.splitlines() if ln.strip()]

    return call


@pytest.fixture
def refused(cli, tmp_path):
    """Run `dsabench ARGS --out OUT`; assert exit 2, one error line holding `words`, nothing under OUT."""
    out = tmp_path / "out"

    def check(*args, words=()):
        code, _, err = cli(*args, "--out", out)
        assert code == 2, err
        assert len(err) == 1 and all(w in err[0] for w in words), err
        assert not out.exists() or not any(out.iterdir())

    return check


def test_a_path_that_is_not_a_fastdeploy_tree_is_refused_before_anything_is_written(refused, tmp_path):
    refused("run", "smoke", "--impl", f"fastdeploy:{tmp_path}",
            words=("not a FastDeploy tree", "dsa_attention_backend.py is missing"))


def test_an_unknown_commit_is_refused_before_anything_is_written(refused, fd):
    refused("run", "smoke", "--impl", f"fastdeploy:{fd[0]}@deadbeef1234", words=("unknown commit 'deadbeef1234'",))


def test_a_commit_without_the_backend_class_is_refused_naming_it(refused, tmp_path):
    repo = _fixture_repo(tmp_path)
    sha = _commit_edit(repo, "renamed", [("class DSAAttentionBackend(AttentionBackend):",
                                          "class DSABackend(AttentionBackend):")])
    refused("run", "smoke", "--impl", f"fastdeploy:{repo}@{sha}", words=("has no class DSAAttentionBackend",))
    assert len(_git(repo, "worktree", "list").splitlines()) == 1  # the refused commit's worktree is gone too


def test_a_commit_whose_layout_line_the_plugin_cannot_read_is_refused(refused, tmp_path):
    repo = _fixture_repo(tmp_path)
    sha = _commit_edit(repo, "new layout", [(".transpose([0, 2, 1, 3]).contiguous()", ".clone()")])
    refused("run", "smoke", "--impl", f"fastdeploy:{repo}@{sha}", words=("cannot tell which variant",))


@pytest.mark.parametrize("spec, words", [
    ("fastdeploy", ("--impl", "fastdeploy:PATH[@COMMIT]")),
    ("torch", ("--impl", "'mirror', 'mirror+inject=F'", "or 'fastdeploy:PATH[@COMMIT]'")),
])
def test_a_misspelt_impl_is_refused(refused, spec, words):
    refused("run", "smoke", "--impl", spec, words=words)


def test_the_same_commit_given_twice_is_refused(refused, fd):
    refused("run", "smoke", "--impl", f"fastdeploy:{fd[0]}@{fd[2]}", "--impl", f"fastdeploy:{fd[0]}@HEAD",
            words=("the same as", "expected each impl once"))


def test_a_fastdeploy_impl_on_the_torch_backend_is_refused(refused, fd):
    refused("run", "smoke", "--backend", "torch", "--impl", f"fastdeploy:{fd[0]}", words=("expected --backend paddle",))


# ---- the scenario file's [preset] impl -----------------------------------------------------------


def _scenario(where: Path, impl: str) -> Path:
    path = where / "fd.toml"
    path.write_text(f'[preset]\nimpl = {impl}\n\n[[scenario]]\nname = "d"\nphase = "decode"\nbatch = 1\n'
                    'context_len = 64\nblock_size = 16\nheads = 4\ntopk = 32\nvariant = "patched"\n')
    return path


def test_a_scenario_files_impl_key_takes_a_list_with_paths_relative_to_the_file(fd, tmp_path):
    repo, before, _, cache = fd
    where = tmp_path / "scen"
    where.mkdir()
    rel = os.path.relpath(repo, where)
    path = _scenario(where, f'["fastdeploy:{rel}@{before[:10]}"]')
    r = dsabench("run", path, *FAST, "--out", tmp_path / "out", "--run-id", "s", cache=cache)
    assert r.returncode == 0, r.stderr
    (rec,) = _records(tmp_path / "out" / "s")
    # the scenario asked for `patched` only; the baseline commit runs, and says so
    assert rec["impl"] == f"fastdeploy:{before[:12]}" and rec["params"]["variant"] == "baseline"


def test_a_scenario_files_impl_key_of_the_wrong_type_names_file_and_key(refused, tmp_path):
    refused("run", _scenario(tmp_path, "3"), words=("fd.toml", "[preset]", "key 'impl' is 3"))


# ---- pure parts ---------------------------------------------------------------------------------


def test_the_variant_is_read_from_the_commits_scale_and_layout_lines():
    base = "k_range = paddle.tensor(200.0)\nx = latent_cache.transpose([0, 2, 1, 3]).contiguous()\n"
    patched = "scale = a.max() / 200.0\nnew_cache = latent_cache.view(new_cache_shape)\n"
    assert detect_variant(base, "x")[0] == BASELINE
    assert detect_variant(patched, "x")[0] == PATCHED
    assert detect_variant("latent_cache.view(s)", "x")[0].scale == "none"
    with pytest.raises(InputError, match="neither as transpose"):
        detect_variant("k_range = paddle.tensor(200.0)\n", "fastdeploy:x")


def test_the_plan_gives_the_mirror_every_case_and_a_commit_one_case_per_group():
    cases = tuple(Case(scenario="s", phase="decode", batch=1, context_len=64, prefill_len=0, num_blocks=16, block_size=16,
                       cache_heads=1, heads=4, topk=32, seed=0, mode="hot", graph=g, variant=v)
                  for g in (False, True) for v in (BASELINE, PATCHED))
    commit = ImplRun("fastdeploy:abc", "spec", checkout=object(), variant=BASELINE)
    got = plan(cases, (MIRROR_RUN, commit))
    assert [impl for _, impl, _ in got].count("mirror") == 4
    assert {kernel for *_, kernel in got} == {""}  # one kernel: no kernel axis
    mine = [c for c, impl, _ in got if impl == "fastdeploy:abc"]
    assert len(mine) == 2 and all(c.variant == BASELINE for c in mine)
    assert {c.group_id for c in mine} == {c.group_id for c in cases}
