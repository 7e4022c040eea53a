"""``sisr prepare-data``: build (or reuse) the embedded cross-sensor sites, as notebook 01 does.

Examples::

    sisr prepare-data                         # quick sizes into data/embedded, seed 0
    sisr prepare-data --profile smoke --out /tmp/embedded --seed 3
    sisr prepare-data --params params/quick/01_data_preparation.yaml   # also writes the figures and table
    sisr prepare-data --check-real            # check SEN2VENUS_DATASET_PATH, WORLDSTRATX{2,4}_DATASET_PATH
"""

from __future__ import annotations

import argparse
import dataclasses


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, help="output folder (default data/embedded)")
    parser.add_argument("--seed", type=int, default=None, help="random seed of the simulation (default 0)")
    parser.add_argument(
        "--profile",
        choices=("smoke", "quick"),
        default=None,
        help="sizes: quick (default, CPU training) or smoke",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if a complete build with the same "
                        "parameters exists")  # fmt: skip
    parser.add_argument(
        "--params", default=None, help="a 01_data_preparation params file: also write its figures and table"
    )
    parser.add_argument(
        "--check-real",
        action="store_true",
        help="only check that the real datasets of the paper profile exist",
    )


def run(args: argparse.Namespace) -> int:
    from sisrlib.data.embedded import build_embedded
    from sisrlib.data.preparation_params import PreparationParams
    from sisrlib.data.real_datasets import check_real_datasets
    from sisrlib.experiments.data_preparation import prepare
    from sisrlib.params import load

    if args.check_real:
        paths = check_real_datasets(PreparationParams().real_datasets)
        for var, path in paths.items():
            print(f"{var} = {path}")
        return 0
    if args.params is not None:
        params = load(PreparationParams, args.params)
        overrides = {
            k: v
            for k, v in (("out_dir", args.out), ("seed", args.seed), ("profile", args.profile))
            if v is not None
        }
        params = dataclasses.replace(params, force=params.force or args.force, **overrides)
        result = prepare(params)
        for path in result.figures:
            print(f"wrote {path}")
        return 0
    build = build_embedded(
        args.out or "data/embedded",
        args.seed if args.seed is not None else 0,
        args.profile or "quick",
        args.force,
        log=print,
    )
    state = "built" if build.built else "already complete, nothing to do"
    print(f"{build.out_dir}: {state} ({build.seconds:.1f} s)")
    print(f"  sen2venus sites: {build.sen2venus_root}")
    print(f"  worldstrat x4:   {build.worldstrat_index(4)}")
    print(f"  worldstrat x2:   {build.worldstrat_index(2)}")
    return 0
