"""``metahyper bench`` (a speed benchmark) and ``metahyper list`` (what the registries hold)."""

from __future__ import annotations

import argparse
import runpy
import sys

from metahyper.cli.common import USAGE, benchmark_names, import_option
from metahyper.config import ConfigError, did_you_mean
from metahyper.resources import SPEED_DIR, list_suites

BENCH_DIR = SPEED_DIR


def add_tool_commands(commands: argparse._SubParsersAction) -> None:
    """``bench NAME ...`` and ``list WHAT``."""
    bench = commands.add_parser("bench", help="run a speed benchmark from benchmarks/speed/",
                                description="Run speed benchmark NAME (benchmarks/speed/NAME.py) with the "
                                            "other arguments.", usage=USAGE["bench"])
    bench.add_argument("name", nargs="?", metavar="NAME", help=f"the benchmark: {', '.join(benchmark_names())} "
                       "(a file in benchmarks/speed/)")
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    bench.set_defaults(handler=cmd_bench, parser=bench)
    listing = commands.add_parser("list", help="list the models, data sets or built-in suites",
                                  description="List what build_model, load_store and `metahyper run` accept.",
                                  usage=USAGE["list"])
    listing.add_argument("what", choices=("models", "datasets", "suites"), metavar="{models,datasets,suites}")
    import_option(listing)
    listing.set_defaults(handler=cmd_list, parser=listing)


def cmd_bench(args: argparse.Namespace) -> int:
    """bench: run benchmarks/speed/NAME.py as a script with the remaining arguments (its folder
    first on ``sys.path``, as ``python NAME.py`` has it, so it imports its helper modules)."""
    if args.name is None:
        raise ConfigError(f"name a benchmark: {', '.join(benchmark_names())} (in {BENCH_DIR})")
    script = BENCH_DIR / f"{args.name}.py"
    if not script.is_file():
        known = benchmark_names()
        raise ConfigError(f"unknown benchmark {args.name!r} (in {BENCH_DIR}){did_you_mean(args.name, known)}")
    sys.argv = [str(script), *args.rest]
    sys.path.insert(0, str(script.parent))
    runpy.run_path(str(script), run_name="__main__")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """list: one name a line (suites with their descriptions; read without importing torch)."""
    if args.what == "suites":
        for name, description in list_suites().items():
            print(f"{name:40s} {description}".rstrip())
        return 0
    from metahyper.api import list_datasets, list_models  # the registries: every model and reader module

    print("\n".join(list_models() if args.what == "models" else list_datasets()))
    return 0
