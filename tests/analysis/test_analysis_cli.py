import sys

import pytest

from dsabench.cli.main import build_parser


def run_cli(*argv) -> int:
    args = build_parser().parse_args([str(a) for a in argv])
    return args.func(args)


@pytest.fixture
def two_runs(builder):
    fast, slow = builder.case(batch=1), builder.case(batch=2)
    base = builder.simple_run("base", {fast: builder.samples(1), slow: builder.samples(2)})
    cand = builder.simple_run("cand", {fast: builder.samples(3), slow: builder.samples(4, median_ms=1.2)})
    return base, cand


def test_cli_compare_prints_the_table_and_exits_0_without_fail_on_regression(two_runs, capsys):
    assert run_cli("compare", *two_runs) == 0
    out = capsys.readouterr().out
    assert "BASE base" in out and "1 slower, 1 same" in out


def test_cli_compare_of_a_run_with_itself_says_so_in_the_table_and_the_markdown(two_runs, capsys, tmp_path):
    import shutil

    base, _ = two_runs
    assert run_cli("compare", base, base) == 0
    assert "warning: BASE and CAND are the same run (base)" in capsys.readouterr().out
    copy = tmp_path / "copy"
    shutil.copytree(base, copy)  # a copy of the run is still the same run
    assert run_cli("compare", base, copy, "--markdown") == 0
    assert "Warning: BASE and CAND are the same run (base)" in capsys.readouterr().out


def test_cli_compare_of_two_runs_gives_no_same_run_warning(two_runs, capsys):
    assert run_cli("compare", *two_runs) == 0
    assert "same run" not in capsys.readouterr().out


def test_cli_compare_fits_120_columns_unless_wide(two_runs, capsys):
    assert run_cli("compare", *two_runs) == 0
    assert max(map(len, capsys.readouterr().out.splitlines())) <= 120
    assert run_cli("compare", *two_runs, "--wide") == 0
    assert max(map(len, capsys.readouterr().out.splitlines())) > 120  # whole case ids, one line a row


def test_cli_compare_exits_1_on_a_regression_with_fail_on_regression(two_runs, capsys):
    assert run_cli("compare", *two_runs, "--fail-on-regression") == 1
    assert "1 regression(s)" in capsys.readouterr().err


def test_cli_compare_exits_0_with_fail_on_regression_when_the_slowdown_is_inside_the_threshold(two_runs):
    assert run_cli("compare", *two_runs, "--fail-on-regression", "--threshold", "0.5") == 0


def test_cli_compare_prints_markdown(two_runs, capsys):
    assert run_cli("compare", *two_runs, "--markdown") == 0
    assert capsys.readouterr().out.startswith("### dsabench compare (runs):")


def test_cli_compare_exits_2_naming_both_devices_when_they_differ(builder, capsys):
    case = builder.case()
    base = builder.simple_run("base", {case: builder.samples(1)}, device=builder.H100)
    cand = builder.simple_run("cand", {case: builder.samples(2)}, device=builder.H200)
    assert run_cli("compare", base, cand) == 2
    err = capsys.readouterr().err
    assert err.startswith("dsabench compare: error: device differs") and builder.H100 in err and builder.H200 in err
    assert run_cli("compare", base, cand, "--allow-mismatch") == 0


def test_cli_compare_exits_2_for_a_directory_without_runs(builder, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert run_cli("compare", tmp_path / "empty", tmp_path / "empty") == 2
    assert "holds no run" in capsys.readouterr().err


def test_cli_compare_exits_2_without_cand_unless_variants(two_runs, capsys):
    assert run_cli("compare", two_runs[0]) == 2
    assert "CAND is missing" in capsys.readouterr().err
    assert run_cli("compare", *two_runs, "--variants") == 2


def test_cli_compare_variants_compares_patched_with_baseline_inside_one_run(builder, capsys):
    from dsabench.workload.variants import BASELINE, PATCHED

    run = builder.simple_run(
        "r",
        {builder.case(variant=BASELINE): builder.samples(1), builder.case(variant=PATCHED): builder.samples(2, median_ms=0.7)},
    )
    assert run_cli("compare", run, "--variants", "--fail-on-regression") == 0
    out = capsys.readouterr().out
    assert "1 faster" in out and "BASE baseline in r" in out and "CAND patched in r" in out
    assert run_cli("compare", run, "--variants", "--base-variant", "patched", "--cand-variant", "baseline", "--fail-on-regression") == 1


def test_cli_threshold_must_be_a_fraction(two_runs, capsys):
    with pytest.raises(SystemExit) as exc:
        run_cli("compare", *two_runs, "--threshold", "3")
    assert exc.value.code == 2
    assert "3.0 is outside [0, 1); expected a fraction such as 0.03 for 3%" in capsys.readouterr().err


def test_cli_export_without_pyarrow_exits_2_saying_how_to_install_it(two_runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert run_cli("export", two_runs[0], "--parquet", tmp_path / "x.parquet") == 2
    assert "pip install pyarrow" in capsys.readouterr().err


def test_cli_export_writes_every_run_given(two_runs, tmp_path, capsys):
    pytest.importorskip("pyarrow")
    assert run_cli("export", *two_runs, "--parquet", tmp_path / "x.parquet") == 0
    assert "wrote 4 rows from 2 run(s)" in capsys.readouterr().out


def test_cli_history_without_apache_otava_exits_2_saying_how_to_install_it(two_runs, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "otava", None)
    assert run_cli("history", *two_runs) == 2
    assert "pip install --no-deps apache-otava" in capsys.readouterr().err


def test_cli_history_reports_no_change_points_over_two_runs(two_runs, capsys):
    pytest.importorskip("otava.analysis")
    assert run_cli("history", *two_runs) == 0
    assert capsys.readouterr().out.startswith("0 change point(s) in 2 case series over 2 run(s)")
