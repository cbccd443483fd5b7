"""The ``metahyper`` command: run benchmark suites, single stages, reports, data summaries, benchmarks.

    metahyper run [SUITE [RUN]] [--out DIR] [--jobs N | --launcher slurm] [KEY=VALUE ...]
                                                           pretrain -> meta-train -> evaluate -> report
    metahyper pretrain|meta-train|evaluate SUITE [RUN] [--out DIR] [KEY=VALUE ...]
    metahyper report DIR [--out DEST]                      rebuild DIR's report from its run folders
    metahyper status DIR                                   every run's stages: done, running, failed, ...
    metahyper data DATASET --root PATH [--split S]         print a summary of one split
    metahyper data fetch DATASET --root PATH [--mirror URL] download, verify and place a data set
    metahyper bench NAME [ARGS ...]                        run benchmarks/speed/NAME.py
    metahyper list models|datasets|suites                  what build_model, load_store, run accept

SUITE is a built-in suite's name (``benchmarks/suites/``) or a YAML path (a run folder's
``config.yaml`` is a one-run suite); RUN names one of its runs (needed by the stage commands
when it has several; ``run`` does every run without it). RUN is positional, not an option,
because ``torchrun`` would take ``--run`` for its own ``--run-path``. Overrides are described in
``metahyper.suites``; options and overrides may come in any order. ``--jobs``, ``--devices``,
``--launcher`` and ``status`` are ``metahyper.launch``. Bad configs, unknown keys, bad values,
missing data paths, unwritable output folders, missing devices and bad launch options exit with
status 2 and a message naming them, before any work; so do damaged checkpoints and data files,
and a stage that another process is working on.
"""

from __future__ import annotations

import argparse
import importlib
import os
import runpy
import sys
import textwrap
from pathlib import Path

from metahyper._version import __version__
from metahyper.config import ConfigError, did_you_mean, load_yaml, parse_yaml
from metahyper.data.fetch import MIRROR_ENV
from metahyper.exits import guarded
from metahyper.launch import commands as launch_commands
from metahyper.outdir import check_writable
from metahyper.plugins import drop_working_directory, import_user_code
from metahyper.progress import use_cli_logging
from metahyper.resources import SPEED_DIR
from metahyper.suites import SUITES_DIR, SuiteConfig, data_specs, known_suites, load_suite, suite_path

BENCH_DIR = SPEED_DIR
OVERRIDES_HELP = """\
overrides (KEY=VALUE, the value read as YAML):
  meta_train.iterations=50                   a run setting without "runs." applies to every run
  runs.hyper_wrn10_1.model.options.variant=2 one run, by name
  runs.0.seed=1                              one run, by position
  runs.*.pretrain.epochs=1                   every run
  data.root=/data/fc100                      where the source data lives
  targets.*.root=/data/miniimagenet          every target's data folder
  evaluation.shots=[1] evaluation.episodes=100 device=cpu
  evaluation.baselines={nearest_centroid: {}}  a mapping is set whole (keys cannot be added one by one)
"""


USAGE = {
    "run": "metahyper run [SUITE [RUN]] [KEY=VALUE ...] [--out DIR] [options]",
    **{stage: f"metahyper {stage} SUITE [RUN] [KEY=VALUE ...] [--out DIR] [options]"
       for stage in ("pretrain", "meta-train", "evaluate")},
    "report": "metahyper report RUN_DIR [--out DEST]",
    "status": "metahyper status OUT",
    "data": "metahyper data DATASET [--root PATH] [--split S] [options]  |  metahyper data fetch DATASET --root PATH",
    "bench": "metahyper bench NAME [ARGS ...]",
    "list": "metahyper list {models,datasets,suites} [--import MODULE]",
}
"""Each command's one-line usage: argparse shows it in ``--help`` and its own errors, and a
configuration error prints it under the message (``metahyper.exits.guarded``)."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's layout."""


def _epilog(stages_only: bool = False) -> str:
    """The shipped suites (only meta-learning ones for the stage commands) and the override forms."""
    names = [n for n in known_suites()
             if not stages_only or load_yaml(SUITES_DIR / f"{n}.yaml").get("kind") not in WHOLE_SUITE_KINDS]
    suites = textwrap.fill(f"suites: {', '.join(names)}", 100, subsequent_indent="  ", break_on_hyphens=False)
    return f"{suites}\n\n{OVERRIDES_HELP}"


def _suite_args(parser: argparse.ArgumentParser, whole: bool) -> None:
    if not whole:
        parser.add_argument("args", nargs="*", metavar="SUITE RUN KEY=VALUE",
                            help="a suite name or YAML file, the run (when the suite has several), overrides")
    else:
        parser.add_argument("args", nargs="*", metavar="SUITE [RUN] KEY=VALUE",
                            help="a suite name or YAML file (default: smoke), optionally one of its runs (default: "
                                 "all), then overrides")
    parser.add_argument("--out", type=Path, help="output folder (default: runs/<suite name>)")
    parser.add_argument("--download", action="store_true",
                        help="first fetch the suite's data that is missing from its data roots")
    parser.add_argument("--mirror", help=f"with --download: fetch from this URL prefix (or ${MIRROR_ENV})")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also write the JSONL metrics as TensorBoard event files (tb/ beside each); "
                             "the same as logging.tensorboard=true; needs pip install 'metahyper[tensorboard]'")
    import_option(parser)
    launch_commands.add_threads_option(parser)
    if whole:
        launch_commands.add_run_options(parser)


def import_option(parser: argparse.ArgumentParser) -> None:
    """``--import MODULE`` (repeatable): a user's module with models, data sets or methods."""
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import MODULE first, for the models, data sets or methods it registers (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="metahyper", formatter_class=_Formatter,
                                     description="Meta-learning benchmarks with hypernetwork-generated ResNets.",
                                     epilog=_epilog())
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {"run": "run a whole suite: every run's stages, then the report",
             "pretrain": "pretrain one run of a suite",
             "meta-train": "meta-train one run of a suite (from its pretrained model; torchrun-able)",
             "evaluate": "evaluate one meta-trained run of a suite, then rebuild the report"}
    for name, text in helps.items():
        sub = commands.add_parser(name, help=text, description=text, formatter_class=_Formatter,
                                  epilog=_epilog(stages_only=name != "run"), usage=USAGE[name])
        _suite_args(sub, whole=name == "run")
        sub.set_defaults(handler=cmd_suite, parser=sub)
    report = commands.add_parser("report", help="rebuild report.md/results.* and figures of a suite folder",
                                 description="Rebuild a suite folder's report from its run folders.",
                                 usage=USAGE["report"])
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                        help="a folder written by `metahyper run` (or one of its runs/<run> folders)")
    report.add_argument("--out", type=Path, help="write the report here instead (e.g. for a suite folder on "
                        "read-only storage)")
    report.set_defaults(handler=cmd_report, parser=report)
    launch_commands.add_status_command(commands, USAGE["status"])
    data = commands.add_parser("data", help="print a summary of one split of a data set",
                               description="Load one split of a data set and print a summary.", usage=USAGE["data"])
    data.add_argument("dataset", metavar="DATASET",
                      help="miniimagenet, fc100, omniglot, omniglot_full, omniglot_lake_runs, cifar10, cifar100, "
                           "mnist, synthetic; or 'fetch'")
    data.add_argument("fetch_name", nargs="?", metavar="FETCHED",
                      help="after 'fetch': omniglot, omniglot_lake_runs, cifar10, cifar100, mnist or fc100")
    data.add_argument("--mirror", help=f"fetch: URL prefix replacing the original hosts (or ${MIRROR_ENV})")
    data.add_argument("--checksums", type=Path, help="fetch: JSON {file name: md5} replacing torchvision's")
    data.add_argument("--root", type=Path, help="the data folder (not needed for synthetic)")
    data.add_argument("--split", help="train, val or test (default: train, or the data set's only split)")
    data.add_argument("--image-size", type=int, help="resize to this square size")
    data.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                      help="a reader option, e.g. family=target (synthetic), images_per_class=20")
    import_option(data)
    data.set_defaults(handler=cmd_data, parser=data)
    bench = commands.add_parser("bench", help="run a speed benchmark from benchmarks/speed/",
                                description="Run speed benchmark NAME (benchmarks/speed/NAME.py) with the "
                                            "other arguments.", usage=USAGE["bench"])
    bench.add_argument("name", metavar="NAME", help="benchmark name (a file in benchmarks/speed/)")
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    bench.set_defaults(handler=cmd_bench, parser=bench)
    listing = commands.add_parser("list", help="list the models, data sets or built-in suites",
                                  description="List what build_model, load_store and `metahyper run` accept.",
                                  usage=USAGE["list"])
    listing.add_argument("what", choices=("models", "datasets", "suites"))
    import_option(listing)
    listing.set_defaults(handler=cmd_list, parser=listing)
    return parser


def split_suite_args(args: list[str]) -> tuple[str, str | None, list[str]]:
    """(suite, run, overrides): items with ``=`` are overrides, the others SUITE then RUN."""
    names = [a for a in args if "=" not in a]
    if len(names) > 2:
        raise ConfigError(f"expected SUITE RUN and KEY=VALUE overrides, got {names}")
    names += [None] * (2 - len(names))
    return names[0] or "smoke", names[1], [a for a in args if "=" in a]


def default_out(ref: str, suite: SuiteConfig) -> Path:
    """The suite folder a run folder's ``config.yaml`` belongs to, else ``runs/<suite name>``."""
    path = suite_path(ref).resolve()
    if path.name == "config.yaml" and path.parent.parent.name == "runs":
        if (path.parents[2] / "suite.yaml").is_file():
            return path.parents[2]
    return Path("runs") / suite.name


def world_size() -> int:
    """Processes launched together (``torchrun`` sets WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def cmd_suite(args: argparse.Namespace) -> int:
    """run / pretrain / meta-train / evaluate."""
    from metahyper import runs  # imported here: `metahyper --help` stays fast

    if world_size() > 1 and args.command != "meta-train":
        raise ConfigError(f"`metahyper {args.command}` runs on one process; only `metahyper meta-train` runs "
                          "under torchrun (pretrain and evaluate first/after on one process)")
    launch_commands.check_options(args)
    ref, run, overrides = split_suite_args(args.args)
    overrides += ["logging.tensorboard=true"] if args.tensorboard else []
    launching = launch_commands.launching(args)
    if args.threads is not None and not launching:  # with a launcher: each job's threads
        import torch

        torch.set_num_threads(args.threads)
    if args.download:
        fetch_suite_data(ref, overrides, args.mirror)
    kind = load_yaml(suite_path(ref)).get("kind")
    if kind in WHOLE_SUITE_KINDS:
        return run_whole_suite(args, ref, overrides, kind)
    suite = load_suite(ref, overrides)
    out = args.out or default_out(ref, suite)
    selected = None if run is None else [run]
    if args.command != "run" and run is None:
        if len(suite.run_groups()) > 1:
            raise ConfigError(f"suite {suite.name!r} has runs {', '.join(suite.run_groups())}: name one after the "
                              "suite")
        selected = [suite.run_groups()[0]]
    if launching:
        return launch_commands.launch(args, suite, Path(out), selected)
    stages = runs.STAGES if args.command == "run" else (args.command.replace("-", "_"),)
    with distributed(args.command == "meta-train"):
        written = runs.run_suite(suite, out, runs=selected, stages=stages)
    if written:
        print(f"report: {Path(out) / 'report.md'}")
    return 0


WHOLE_SUITE_KINDS = {
    "classify": ("classification", "metahyper.classify.suite", "load_classify_suite", "run_classify_suite"),
    "language_model": ("language-model", "metahyper.lm.suite", "load_lm_suite", "run_lm_suite"),
}
"""Suite kinds that have no stages: ``kind -> (what it is, module, its loader, its runner)``."""


def run_whole_suite(args: argparse.Namespace, ref: str, overrides: list[str], kind: str) -> int:
    """``metahyper run`` of a suite without stages (``WHOLE_SUITE_KINDS``: classification,
    character language models); its module is imported only when such a suite is run."""
    what, module_name, loader, runner = WHOLE_SUITE_KINDS[kind]
    if args.command != "run":
        raise ConfigError(f"{ref} is a {what} suite: it has no stages; use `metahyper run {ref}`")
    if launch_commands.launching(args):
        raise ConfigError(f"{ref} is a {what} suite: --jobs, --devices and --launcher run the runs of meta-learning "
                          f"suites; run it with `metahyper run {ref}`")
    module = importlib.import_module(module_name)
    path = suite_path(ref)
    suite = getattr(module, loader)(path, overrides)
    out = args.out or Path("runs") / suite.name
    getattr(module, runner)(suite, out, where=str(path))
    print(f"report: {Path(out) / 'report.md'}")
    return 0


class distributed:
    """Initialise (and tear down) the torchrun process group when one is asked for."""

    def __init__(self, wanted: bool):
        self.active = wanted and world_size() > 1

    def __enter__(self) -> None:
        if self.active:
            import torch
            import torch.distributed as dist

            if torch.cuda.is_available():
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")

    def __exit__(self, *exc: object) -> None:
        if self.active:
            import torch.distributed as dist

            dist.destroy_process_group()


def cmd_report(args: argparse.Namespace) -> int:
    """report: rebuild a suite folder's report."""
    from metahyper.runs import rebuild_report

    folder = args.run_dir
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder")
    if folder.resolve().parent.name == "runs" and (folder / "config.yaml").is_file():
        folder = folder.resolve().parents[1]  # one run's folder: report its suite folder
    dest = args.out or folder
    hint = "choose another folder" if args.out else "pass --out DEST to write the report elsewhere"
    check_writable(dest, "report folder", hint)
    for path in rebuild_report(folder, dest):
        print(path)
    return 0


def fetch_suite_data(ref: str, overrides: list[str], mirror: str | None) -> None:
    """``--download``: fetch what each data root of the suite lacks (``metahyper.data.fetch``)."""
    from metahyper.classify.suite import load_classify_suite
    from metahyper.data.fetch import FetchError, fetch_for_spec

    if load_yaml(suite_path(ref)).get("kind") == "classify":
        suite = load_classify_suite(suite_path(ref), overrides)
        specs = {"data": suite.data}
    else:
        suite = load_suite(ref, overrides)
        specs = data_specs(suite)
    for where, spec in specs.items():
        try:
            fetch_for_spec(spec.dataset, spec.root, spec.options, mirror)
        except (FetchError, OSError) as error:
            raise ConfigError(f"suite {suite.name!r}: {where}: {error}") from None


def cmd_fetch(args: argparse.Namespace) -> int:
    """data fetch DATASET --root DIR: download, verify and place one data set."""
    from metahyper.data.fetch import fetch

    if not args.fetch_name or args.root is None:
        raise ConfigError("usage: metahyper data fetch DATASET --root DIR [--mirror URL] [--checksums FILE]")
    checksums = None
    if args.checksums is not None:
        checksums = load_checksums(args.checksums)
    try:
        fetch(args.fetch_name, args.root, args.mirror, checksums)
    except (ValueError, OSError) as error:
        raise ConfigError(str(error)) from None
    return 0


def load_checksums(path: Path) -> dict[str, str]:
    """``--checksums``: a JSON object {file name: md5 hex}; errors name the file."""
    import json

    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"--checksums {path}: not a readable JSON file ({error})") from None
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ConfigError(f"--checksums {path}: must be a JSON object {{file name: md5 hex string}}")
    return table


def cmd_data(args: argparse.Namespace) -> int:
    """data: load one split and print its summary (``data fetch``: download one data set)."""
    from metahyper.data import load_store
    from metahyper.data.episodes import FIXED_EPISODES

    if args.dataset == "fetch":
        return cmd_fetch(args)
    if args.fetch_name:
        raise ConfigError(f"unexpected argument {args.fetch_name!r} (only 'data fetch' takes a second name)")

    options = {}
    for item in args.option:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option {item!r} must look like KEY=VALUE")
        options[key] = parse_yaml(text, f"--option {item}")
    try:
        split = args.split or reader_split(args.dataset)
        store = load_store(args.dataset, args.root, split, image_size=args.image_size, **options)
        fixed = FIXED_EPISODES.get(args.dataset)(store) if args.dataset in FIXED_EPISODES else None
    except (ValueError, KeyError, TypeError, FileNotFoundError) as error:
        raise ConfigError(str(error).strip('"')) from None
    print(store.summary())
    if fixed is not None:
        print(f"  fixed evaluation episodes: {len(fixed)} ({fixed.way}-way {fixed.shot}-shot, "
              f"{fixed.way * fixed.query} queries each), hash {fixed.hash[:16]}")
    return 0


def reader_split(dataset: str) -> str:
    """The split ``metahyper data`` reads without ``--split``: the reader's default (a data set
    with one split, e.g. omniglot_lake_runs: test), else ``train``."""
    import inspect

    from metahyper.data import DATASETS

    split = inspect.signature(DATASETS.get(dataset)).parameters.get("split")
    return "train" if split is None or split.default is inspect.Parameter.empty else split.default


def cmd_bench(args: argparse.Namespace) -> int:
    """bench: run benchmarks/speed/NAME.py as a script with the remaining arguments (its folder
    first on ``sys.path``, as ``python NAME.py`` has it, so it imports its helper modules)."""
    script = BENCH_DIR / f"{args.name}.py"
    if not script.is_file():
        known = sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_"))
        raise ConfigError(f"unknown benchmark {args.name!r} (in {BENCH_DIR}){did_you_mean(args.name, known)}")
    sys.argv = [str(script), *args.rest]
    sys.path.insert(0, str(script.parent))
    runpy.run_path(str(script), run_name="__main__")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The parsed command line; a suite command takes its options and KEY=VALUE arguments in any
    order (``run smoke --out DIR meta_train.iterations=40``), which argparse's plain parsing
    refuses for a ``nargs="*"`` positional that an option interrupts."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args, extra = build_parser().parse_known_args(argv)
    if not extra:
        return args
    if args.handler is not cmd_suite:
        args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
    command = args.command
    args = args.parser.parse_intermixed_args(argv[argv.index(command) + 1:])
    args.command = command
    return args


def cmd_list(args: argparse.Namespace) -> int:
    """list: one name a line (suites with their descriptions)."""
    import metahyper

    if args.what == "suites":
        for name, description in metahyper.list_suites().items():
            print(f"{name:40s} {description}".rstrip())
    else:
        print("\n".join(metahyper.list_models() if args.what == "models" else metahyper.list_datasets()))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``metahyper`` console script; returns the exit status."""
    args = parse_args(argv)
    use_cli_logging()

    def command() -> int:
        import_user_code(getattr(args, "imports", ()))
        return args.handler(args)

    usage = f"{USAGE[args.command]}  (metahyper {args.command} --help: every option)"
    return guarded(args.parser.prog, command, usage)


if __name__ == "__main__":
    drop_working_directory()  # python -m: a suite's imports never come from the working directory
    sys.exit(main())
