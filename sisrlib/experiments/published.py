"""The ``published`` profile: the paper's tables from torchsisr's published checkpoints, without training.

torchsisr's authors publish, in the paper's support data (Zenodo record 14734095), the pre-trained
registration networks and the trained SR checkpoint of every experiment of the paper (hal-04723225).
``params/published/04_evaluation_<dataset>.yaml`` evaluate them (baseline / geom / geom+rad for s2v1x2,
s2v2x2, s2v1x4, s2v2x4, wsx2, wsx4) on the real test sites with the paper's metric conventions; the test data,
seed, margin, registration channel and standardisation of each come from the paper profile's training params
(``data_params``), so the dataset variables are the paper profile's.

Where the files are inside the support data is :data:`LAYOUT`, the one place to change: the params files are
written from it (``python -m sisrlib.experiments.published write params/published``) and a test checks that
they agree. The assumed layout is torchsisr's own run layout (what its training writes):

* SR runs: ``xsensor_paper/checkpoints/<dataset>_esrgan_<N>x64x32/spat<geom>_rad<rad>/`` holding
  ``last.ckpt`` (the final weights; every torchsisr run folder has one) and ``.hydra/config.yaml`` (the run
  configuration hydra writes there: band names, factor, the 20 m branch);
* registration networks: ``pretrained_registration_models/<s2vx2|s2vx4|wsx2|wsx4>_registration_model.ckpt``
  (the names torchsisr's experiment files load from ``location.pretrained_registration_models_folder``).

:func:`published_problems` is what ``python -m sisrlib.pipeline check params/published`` adds (and so
``make paper PROFILE=published`` runs first): ``TORCHSISR_SUPPORT_DATA`` set and a folder, every checkpoint
present and a torch zip file, a run configuration beside every SR checkpoint, the dataset variables of the
``data_params`` files set and their test data usable. It reads no checkpoint (seconds, not minutes).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sisrlib.atomic import write_text_atomic
from sisrlib.data.checks import OpenedData, check_dataset
from sisrlib.data.params import DataParams
from sisrlib.experiments.evaluation.batches import resolve_path
from sisrlib.experiments.evaluation.params import EvaluationParams
from sisrlib.interop.torchsisr import RUN_CONFIG
from sisrlib.params import ParamsError, read_yaml
from sisrlib.run_params import load_experiment

#: The environment variable naming the unpacked support data.
SUPPORT_DATA = "TORCHSISR_SUPPORT_DATA"
#: How it appears in the params files.
SUPPORT_ROOT = "${" + SUPPORT_DATA + "}"
#: Where the support data comes from.
RECORD = "Zenodo record 14734095, torchsisr's support data of hal-04723225"


@dataclass(frozen=True)
class SupportLayout:
    """Paths inside the support data (``/``-separated, relative to ``$TORCHSISR_SUPPORT_DATA``).

    ``sr_run``: an SR run folder; fields ``dataset`` (s2v1x2 …), ``model`` (``esrgan_6x64x32``), ``geometric``
    and ``radiometric`` (``True``/``False``, torchsisr's ``spat…_rad…`` label). ``sr_checkpoint``: the file
    in it. ``registration``: a pre-trained registration network; field ``registration`` (s2vx2 …).
    """

    sr_run: str = "xsensor_paper/checkpoints/{dataset}_{model}/spat{geometric}_rad{radiometric}"
    sr_checkpoint: str = "last.ckpt"
    registration: str = "pretrained_registration_models/{registration}_registration_model.ckpt"


#: The support data's layout (see the module docstring); change it here, then rewrite params/published/.
LAYOUT = SupportLayout()

#: dataset -> (torchsisr model name of its runs, registration network).
DATASETS: dict[str, tuple[str, str]] = {
    "s2v1x2": ("esrgan_6x64x32", "s2vx2"),
    "s2v2x2": ("esrgan_6x64x32", "s2vx2"),
    "s2v1x4": ("esrgan_5x64x32", "s2vx4"),
    "s2v2x4": ("esrgan_5x64x32", "s2vx4"),
    "wsx2": ("esrgan_6x64x32", "wsx2"),
    "wsx4": ("esrgan_6x64x32", "wsx4"),
}
#: variant -> (geometric, radiometric) registration during training.
VARIANTS: dict[str, tuple[bool, bool]] = {
    "baseline": (False, False),
    "geom": (True, False),
    "geomrad": (True, True),
}


def sr_checkpoint(
    dataset: str, variant: str, root: str = SUPPORT_ROOT, layout: SupportLayout = LAYOUT
) -> str:
    """The published SR checkpoint of one experiment, under ``root``."""
    model, _ = DATASETS[dataset]
    geometric, radiometric = VARIANTS[variant]
    run = layout.sr_run.format(dataset=dataset, model=model, geometric=geometric, radiometric=radiometric)
    return f"{root}/{run}/{layout.sr_checkpoint}"


def registration_checkpoint(dataset: str, root: str = SUPPORT_ROOT, layout: SupportLayout = LAYOUT) -> str:
    """The published registration network used for the geometric metrics of ``dataset``, under ``root``."""
    return f"{root}/{layout.registration.format(registration=DATASETS[dataset][1])}"


def data_params_file(dataset: str) -> str:
    """The paper profile's training params giving the test data of ``dataset``."""
    return f"params/paper/03_training_{dataset}_baseline.yaml"


def published_params(dataset: str, layout: SupportLayout = LAYOUT) -> dict[str, Any]:
    """The mapping of ``params/published/04_evaluation_<dataset>.yaml``."""
    runs = [
        {
            "checkpoint": sr_checkpoint(dataset, variant, layout=layout),
            "data_params": data_params_file(dataset),
            "label": f"torchsisr_{dataset}_{variant}",
            "dataset": dataset,
            "variant": variant,
        }
        for variant in VARIANTS
    ]
    return {
        "extends": "base/04_evaluation.yaml",
        "name": dataset,
        "runs": runs,
        "registration_checkpoint": registration_checkpoint(dataset, layout=layout),
        "output_dir": f"build/published/evaluation/{dataset}",
    }


def render(dataset: str, layout: SupportLayout = LAYOUT) -> str:
    """The text of ``params/published/04_evaluation_<dataset>.yaml``."""
    header = (
        f"# torchsisr's published {dataset} checkpoints (baseline, geom, geom+rad) and the bicubic baseline\n"
        "# on the paper's test split, with the paper's conventions (base/04_evaluation.yaml). Needs\n"
        f"# ${SUPPORT_DATA} (the unpacked support data, Zenodo record 14734095) and the paper\n"
        "# profile's dataset variables. Written by\n"
        "# `python -m sisrlib.experiments.published write params/published` from LAYOUT in\n"
        "# sisrlib/experiments/published.py: edit that, not this file.\n"
    )
    return header + yaml.safe_dump(published_params(dataset, layout), sort_keys=False, width=200)


def write_params(folder: str | Path, layout: SupportLayout = LAYOUT) -> list[Path]:
    """Write ``04_evaluation_<dataset>.yaml`` of every dataset into ``folder``; returns the files."""
    out = Path(folder)
    return [write_text_atomic(out / f"04_evaluation_{d}.yaml", render(d, layout)) for d in DATASETS]


# ------------------------------------------------------------------------------------------- params check
def is_published(path: Path) -> bool:
    """Whether a params file evaluates published checkpoints (it names ``${TORCHSISR_SUPPORT_DATA}``)."""
    try:
        return SUPPORT_ROOT in path.read_text(encoding="utf-8")
    except OSError:
        return False


def _torch_file_problem(key: str, path: Path) -> str | None:
    """A problem with a published checkpoint that exists (None: a torch zip file). A missing one is named by
    the pipeline's own checkpoint check; :func:`_params_problems` adds where the support data comes from."""
    if path.is_file() and not zipfile.is_zipfile(path):
        return (
            f"{key} {path} is not a torch checkpoint (not a zip archive: incomplete download?); download it "
            f"again from {RECORD}"
        )
    return None


def _test_data(data: DataParams, test_batch_size: Any, data_root: Any) -> DataParams:
    """The test data of a run as the evaluation reads it (``data_root``, ``test_batch_size`` applied)."""
    changes: dict[str, Any] = {}
    if test_batch_size is not None:
        changes["test_batch_size"] = test_batch_size
    if data_root is not None:
        changes["root"] = data_root
    return dataclasses.replace(data, **changes) if changes else data


@dataclass
class _Cache:
    #: Where relative paths are looked up (None: the working directory).
    root: Path | None = None
    opened: OpenedData = dataclasses.field(default_factory=OpenedData)
    data: dict[str, list[str]] = dataclasses.field(default_factory=dict)


def _data_problems(key: str, file: str, evaluation: Mapping[str, Any], cache: _Cache) -> list[str]:
    """Problems with the test data a ``data_params`` file gives (variables, root, test split)."""
    resolved = resolve_path(file, cache.root)
    try:
        experiment = load_experiment(resolved)
    except (ParamsError, OSError) as exc:
        message = str(exc).removeprefix(str(resolved)).removeprefix(file)
        return [f"{key} {file}{message if message[:1] in '.:' else ': ' + message}"]
    data = _test_data(experiment.data, evaluation.get("test_batch_size"), evaluation.get("data_root"))
    signature = repr(data)
    if signature not in cache.data:
        root = Path(data.root)
        if not root.exists():
            what = "folder of Sen2Venµs sites" if data.dataset == "sen2venus" else "WorldStrat index.csv"
            cache.data[signature] = [f"data.root {root} does not exist (expected the {what})"]
        else:
            found = check_dataset(data, experiment.seed, cache.opened, needs=("test",))
            cache.data[signature] = list(found.problems)
    return [f"{key} {file}: {message}" for message in cache.data[signature]]


def _runs_data_problems(files: Sequence[Any], evaluation: Mapping[str, Any], cache: _Cache) -> list[str]:
    """:func:`_data_problems` of every distinct ``data_params`` of the runs (``files``: one per run)."""
    runs: dict[str, list[str]] = {}
    for k, file in enumerate(files):
        if isinstance(file, str) and "${" not in file:
            runs.setdefault(file, []).append(str(k))
    problems = []
    for file, ks in runs.items():
        problems += _data_problems(f"runs[{', '.join(ks)}].data_params", file, evaluation, cache)
    return problems


def _params_problems(params: EvaluationParams, cache: _Cache) -> list[str]:
    problems = []
    for k, run in enumerate(params.runs):
        if run.checkpoint is not None:
            ckpt = resolve_path(run.checkpoint, cache.root)
            problem = _torch_file_problem(f"runs[{k}].checkpoint", ckpt)
            if problem is not None:
                problems.append(problem)
            elif ckpt.is_file() and not (ckpt.parent / RUN_CONFIG).is_file():
                problems.append(
                    f"runs[{k}].checkpoint {ckpt}: no run configuration {ckpt.parent / RUN_CONFIG} beside it "
                    "(it gives the band names, which a torchsisr checkpoint does not store); keep the run "
                    "folder as the support data has it"
                )
        if run.registration_checkpoint is not None:
            problem = _torch_file_problem(
                f"runs[{k}].registration_checkpoint", resolve_path(run.registration_checkpoint, cache.root)
            )
            problems += [problem] if problem else []
    if params.registration_checkpoint not in (None, "none"):
        path = resolve_path(params.registration_checkpoint, cache.root)
        problem = _torch_file_problem("registration_checkpoint", path)
        problems += [problem] if problem else []
    named = [run.checkpoint for run in params.runs] + [run.registration_checkpoint for run in params.runs]
    named.append(params.registration_checkpoint)
    missing = [p for p in named if p not in (None, "none") and not resolve_path(p, cache.root).is_file()]
    if missing:
        problems.append(
            f"{len(missing)} of its checkpoints are not in the support data ({RECORD}; first missing: "
            f"{missing[0]}); if its files are laid out differently, change LAYOUT in "
            "sisrlib/experiments/published.py and rewrite params/published (docs/published.md)"
        )
    settings = {"test_batch_size": params.test_batch_size, "data_root": params.data_root}
    return problems + _runs_data_problems([run.data_params for run in params.runs], settings, cache)


def _raw_data_problems(path: Path, cache: _Cache) -> list[str]:
    """The test-data problems of a published params file that did not load, read from its raw YAML."""
    try:
        raw = read_yaml(path)
    except ParamsError:
        return []
    runs = raw.get("runs")
    files = [run.get("data_params") if isinstance(run, Mapping) else None for run in runs or []]
    return _runs_data_problems(files if isinstance(runs, list) else [], raw, cache)


def _support_root_problem() -> str | None:
    value = os.environ.get(SUPPORT_DATA, "")
    layout = "the layout this profile expects: LAYOUT in sisrlib/experiments/published.py, docs/published.md"
    if not value:
        return (
            f"environment variable {SUPPORT_DATA} is not set: the published profile evaluates torchsisr's "
            f"published checkpoints; download {RECORD}, unpack it and export {SUPPORT_DATA}=/path/to/it "
            f"({layout})"
        )
    if not Path(value).is_dir():
        return f"{SUPPORT_DATA}={value} is not a folder; point it to the unpacked support data ({layout})"
    return None


def published_problems(
    files: Sequence[Path], loaded: Mapping[Path, Any], root: Path | None = None
) -> list[tuple[Path, str]]:
    """``(file, ": message")`` for every problem of the published params among ``files`` (those naming
    ``${TORCHSISR_SUPPORT_DATA}``; ``loaded``: the params that loaded; relative paths relative to ``root``,
    default the working directory). Empty for other profiles."""
    published = [f for f in files if is_published(f)]
    if not published:
        return []
    found: list[tuple[Path, str]] = []
    support = _support_root_problem()
    if support is not None:
        found.append((published[0], f": {support}"))
    cache = _Cache(root)
    for f in published:
        params = loaded.get(f)
        if isinstance(params, EvaluationParams):
            found += [(f, f": {message}") for message in _params_problems(params, cache)]
        else:  # it did not load (the support data's variable?): its test data are checked all the same
            found += [(f, f": {message}") for message in _raw_data_problems(f, cache)]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sisrlib.experiments.published write FOLDER``: write the params files from LAYOUT."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "write":
        print("usage: python -m sisrlib.experiments.published write PARAMS_DIR", file=sys.stderr)
        return 2
    for path in write_params(args[1]):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
