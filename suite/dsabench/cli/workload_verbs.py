"""`dsabench scenarios list|show` and `dsabench env`: what would run, and what this machine can run."""

from __future__ import annotations

from dsabench.cli.exit_codes import EXIT_OK


def register(sub) -> None:
    s = sub.add_parser("scenarios", help="list presets or show the cases of one")
    ssub = s.add_subparsers(dest="scenarios_verb", required=True, parser_class=sub._parser_class)
    sl = ssub.add_parser("list", help="presets with their descriptions and case counts")
    sl.set_defaults(func=cmd_scenarios_list)
    ss = ssub.add_parser("show", help="expanded cases of a preset or file, with estimated memory")
    ss.add_argument("name", help="preset name or .toml file")
    ss.add_argument("--backend", choices=["paddle", "torch"], default="paddle",
                    help="the backend a run of it would use, for the checks of its impls (default paddle, as run)")
    ss.set_defaults(func=cmd_scenarios_show)

    e = sub.add_parser("env", help="this machine, and which backends, graph capture and profiler targets work here")
    e.add_argument("--backend", choices=["paddle", "torch", "all"], default="all")
    e.set_defaults(func=cmd_env)



def cmd_scenarios_list(args) -> int:
    from dsabench.workload.scenarios import list_presets  # noqa: PLC0415

    for info in list_presets():
        print(f"{info.name:<10} {info.num_cases:>4} cases  {info.description}")
    return EXIT_OK


def cmd_scenarios_show(args) -> int:
    """The file is checked as `run` checks it (its [preset] impl resolved as a run resolves it),
    so what this shows is what `run` would accept; the machine's checks (kernel, device memory) are run's."""
    from contextlib import ExitStack  # noqa: PLC0415

    from dsabench.cli.impl_setup import file_impls  # noqa: PLC0415
    from dsabench.present.cases_table import format_cases_table  # noqa: PLC0415
    from dsabench.workload.scenarios import load_named  # noqa: PLC0415

    sset = load_named(args.name)
    with ExitStack() as stack:
        impls = file_impls(sset, args.backend, stack)
    print(f"{sset.path}  sha256 {sset.sha256[:16]}  {sset.description}")
    if [i.label for i in impls] != ["mirror"]:
        print(f"impls: {', '.join(i.label for i in impls)}")
    print(format_cases_table(sset.cases))
    return EXIT_OK


def cmd_env(args) -> int:
    import json  # noqa: PLC0415
    import multiprocessing as mp  # noqa: PLC0415

    from dsabench.bench import env  # noqa: PLC0415

    info = env.collect()
    print(json.dumps(info, indent=2, default=str))
    names = ["paddle", "torch"] if args.backend == "all" else [args.backend]
    ctx = mp.get_context("spawn")
    for name in names:
        # A fresh process per framework (an import here would linger), ended by close + join:
        # a terminated child would print Paddle's fatal-signal report for its SIGTERM.
        pool = ctx.Pool(1)
        try:
            print(pool.apply(_availability_text, (name,)))
        finally:
            pool.close()
            pool.join()
    return EXIT_OK


def _availability_text(name: str) -> str:
    from dsabench.bench.backends.registry import get_backend  # noqa: PLC0415

    try:
        b = get_backend(name)
    except ImportError as exc:
        extra = "cpu" if name == "paddle" else "torch"
        return f"{name}: not usable: {exc} (its extra installs it: pip install 'dsabench[{extra}]', or '.[{extra}]' in a checkout)"
    except Exception as exc:  # noqa: BLE001
        return f"{name}: not usable: {type(exc).__name__}: {exc}"
    a = b.availability()
    def cap(label, c):
        return f"  {label:<10} {'yes' if c.usable else 'no'}  {c.reason}"
    return "\n".join([
        f"{name} {a.framework_version}: device {a.device.reason}; profiler targets {', '.join(a.profiler_targets)}",
        cap("graph", a.graph), cap("nvtx", a.nvtx), f"  device     {b.device_identity()}",
    ])


