"""``metahyper data``: a summary of one split of a data set, and ``data fetch``."""

from __future__ import annotations

import argparse
from pathlib import Path

from metahyper.cli.common import USAGE, import_option
from metahyper.config import ConfigError, parse_yaml
from metahyper.resources import MIRROR_ENV


def add_data_command(commands: argparse._SubParsersAction) -> None:
    """``data DATASET ...`` and ``data fetch DATASET ...``."""
    data = commands.add_parser("data", help="print a summary of one split of a data set",
                               description="Load one split of a data set and print a summary.", usage=USAGE["data"])
    data.add_argument("dataset", metavar="DATASET",
                      help="miniimagenet, fc100, omniglot, omniglot_full, omniglot_lake_runs, cifar10, cifar100, "
                           "mnist, synthetic; or 'fetch'")
    data.add_argument("fetch_name", nargs="?", metavar="FETCHED",
                      help="after 'fetch': omniglot, omniglot_lake_runs, cifar10, cifar100, mnist or fc100")
    data.add_argument("--mirror", help=f"fetch: URL prefix replacing the original hosts (or ${MIRROR_ENV})")
    data.add_argument("--checksums", type=Path, help="fetch: JSON {file name: md5} replacing torchvision's")
    data.add_argument("--root", type=Path, help="the data folder (default: $METAHYPER_DATA/DATASET; not needed for "
                      "synthetic)")
    data.add_argument("--split", help="train, val or test (default: train, or the data set's only split)")
    data.add_argument("--image-size", type=int, help="resize to this square size")
    data.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                      help="a reader option, e.g. family=target (synthetic), images_per_class=20")
    import_option(data)
    data.set_defaults(handler=cmd_data, parser=data)


def cmd_fetch(args: argparse.Namespace) -> int:
    """data fetch DATASET --root DIR: download, verify and place one data set."""
    from metahyper.data.fetch import fetch
    from metahyper.data.load import default_root

    if not args.fetch_name:
        raise ConfigError("usage: metahyper data fetch DATASET [--root DIR] [--mirror URL] [--checksums FILE]")
    checksums = None
    if args.checksums is not None:
        checksums = load_checksums(args.checksums)
    try:
        fetch(args.fetch_name, args.root or default_root(args.fetch_name), args.mirror, checksums)
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
    """The split ``metahyper data`` reads without ``--split``: the reader's default (e.g.
    omniglot_lake_runs: test), else the only split with classes in ``data_splits/<dataset>.json``
    (mnist: test, its ten digits a target domain), else ``train``."""
    import inspect

    from metahyper.data import DATASETS
    from metahyper.data.splits import SPLIT_NAMES, split_info, split_path

    split = inspect.signature(DATASETS.get(dataset)).parameters.get("split")
    if split is not None and split.default is not inspect.Parameter.empty:
        return split.default
    filled = [name for name in SPLIT_NAMES if split_info(dataset)[name]] if split_path(dataset).is_file() else []
    return filled[0] if len(filled) == 1 else "train"
