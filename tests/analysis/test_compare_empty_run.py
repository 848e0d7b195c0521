"""Comparing with a run that holds no records says so, instead of blaming a device difference."""

from __future__ import annotations

import pytest

from dsabench.cli.main import build_parser


def run_cli(*argv) -> int:
    args = build_parser().parse_args([str(a) for a in argv])
    return args.func(args)


@pytest.mark.parametrize("empty_side", ["BASE", "CAND"])
def test_compare_with_an_empty_run_names_the_empty_side_in_one_line(builder, capsys, empty_side):
    case = builder.case()
    measured = builder.simple_run("measured", {case: builder.samples(1)})
    empty = builder.run("empty", [])
    sides = (empty, measured) if empty_side == "BASE" else (measured, empty)
    for extra in ([], ["--allow-mismatch"]):
        assert run_cli("compare", *sides, *extra) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert err.startswith(f"dsabench compare: error: {empty_side} 'empty' holds no records (nothing was measured)")
        assert "differs" not in err
