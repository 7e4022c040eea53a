"""The paper pipeline's bookkeeping: which notebook and which params dataclass each params file belongs to.

``params/<profile>/NN_<run>.yaml`` is executed by ``notebooks/NN_*.ipynb`` and validated by the dataclass of
stage ``NN``. ``python -m sisrlib.pipeline check params/<profile>`` validates every file of a profile before
``make paper`` starts anything: a misspelt key names the file and the key; an environment variable that is not
set names the variable. Then it checks what the files point to, as the stages would use it:

* every dataset a ``data:`` section names is opened (:mod:`sisrlib.data.checks`): the index's columns, at
  least one row per split the stage needs (a training batch, a validation patch, the test sites or split),
  no patch listed twice, and the first patch of every site or split read and validated;
* the LPIPS weight files of every SR run with ``training.losses.lpips > 0`` are found (in
  ``training.losses.lpips_weights`` or ``$TORCH_HOME/hub/checkpoints``), and the metrics a benchmark names
  have their weights;
* the checkpoints the files read (``registration.checkpoint``, the evaluation's and the export's) exist.

What an earlier stage of the same profile writes is skipped: the data under stage 01's ``out_dir`` (embedded
profiles) and the checkpoints under the ``output_dir`` of its 02/03 runs. Every problem names the params
file, the key, the path, what was expected and what was found; a problem shared by several files (one dataset
for many runs) is one line naming them all. It takes seconds (one patch per site and split is read), so a
paper run without usable data or weights fails at once instead of after hours of GPU time.

The bases under ``params/<profile>/base/`` (``extends:``) are not runs: they are validated through the files
that extend them. Relative paths mean what they mean to the stages: relative to the working directory, the
project root under ``make``; ``--root DIR`` (``check(..., root=DIR)``) names another project root, against
which the checkpoints and params files named by the evaluation, export and comparison stages are resolved.
Nothing here changes the working directory.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import glob
import inspect
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sisrlib.data.checks import DatasetCheck, OpenedData, check_dataset
from sisrlib.data.params import DataParams
from sisrlib.data.preparation_params import PreparationParams
from sisrlib.errors import MissingDependencyError
from sisrlib.experiments.comparison import ComparisonParams
from sisrlib.experiments.evaluation.params import EvaluationParams
from sisrlib.experiments.evoland import EvolandParams
from sisrlib.experiments.metrics_benchmark.dependencies import unavailable_reason
from sisrlib.experiments.metrics_benchmark.params import BenchmarkParams
from sisrlib.experiments.metrics_benchmark.registry import METRICS
from sisrlib.experiments.published import published_problems
from sisrlib.experiments.report import ReportParams
from sisrlib.export import ExportParams
from sisrlib.metrics.lpips import find_lpips_weights
from sisrlib.params import ParamsError, load, read_yaml
from sisrlib.run_params import ExperimentParams

#: Stage prefix -> (notebook stem, params dataclass). A new stage NN needs its notebook
#: ``notebooks/NN_*.ipynb`` (with its jupytext pair) and a ``params/smoke/NN_*.yaml`` (``make test`` runs it).
STAGES: dict[str, tuple[str, type[Any]]] = {
    "01": ("01_data_preparation", PreparationParams),
    "02": ("02_registration", ExperimentParams),
    "03": ("03_training", ExperimentParams),
    "04": ("04_evaluation_fda", EvaluationParams),
    "05": ("05_metrics_benchmark", BenchmarkParams),
    "06": ("06_export_inference", ExportParams),
    "07": ("07_report", ReportParams),
    "08": ("08_evoland_model", EvolandParams),
    "09": ("09_model_comparison", ComparisonParams),
}


def params_class(stage: str) -> type[Any]:
    """The params dataclass of a stage prefix (a key of :data:`STAGES`, e.g. ``"03"``)."""
    if stage not in STAGES:
        raise ParamsError(f"unknown stage {stage!r}: params files must start with one of {sorted(STAGES)}")
    return STAGES[stage][1]


def stage_of(path: Path) -> str:
    """Stage prefix of a params file name (``03_training_x.yaml`` -> ``"03"``)."""
    prefix = path.name.split("_", 1)[0]
    if prefix not in STAGES:
        raise ParamsError(
            f"{path}: the file name must start with a stage prefix {sorted(STAGES)} followed by '_' "
            "(it selects the notebook that runs it)"
        )
    return prefix


def load_stage_params(path: str | Path) -> Any:
    """Load and validate one params file with the dataclass of its stage."""
    p = Path(path)
    return load(params_class(stage_of(p)), p)


def _inside_notebooks_folder(folder: Path) -> bool:
    """Whether ``folder`` is the ``notebooks/`` (or ``notebooks/tutorials/``) folder of a checkout."""
    for root in (folder.parent, folder.parent.parent):
        if (
            folder.name in ("notebooks", "tutorials")
            and (root / "params").is_dir()
            and (root / "notebooks").is_dir()
        ):
            return True
    return False


def notebook_params(params_file: str | Path, root: str | Path | None = None) -> Any:
    """What a notebook's first cell calls: the validated params of the stage of ``params_file`` (a misspelt
    key is an error naming the file and the key).

    The relative paths of the params (``build/…``, ``data/…``, ``figures/…``) are relative to ``root``, the
    project root: by default the working directory, where ``make paper`` (papermill ``--cwd``) and
    ``make lab`` (its kernels) run the notebooks. ``params_file`` is absolute, relative to ``root``, or
    relative to ``root/notebooks`` (the default of the notebooks' parameters cell, ``../params/…``). A kernel
    started inside ``notebooks/`` is an error naming the fix (it would write ``build/`` there).
    """
    base = Path.cwd() if root is None else Path(root)
    if root is None and _inside_notebooks_folder(base.resolve()):
        raise ParamsError(
            f"the notebook runs in {base.resolve()}, inside the notebooks folder: the relative paths of "
            f"{params_file} (build/, data/, figures/) would be resolved there. Start JupyterLab with "
            "`make lab` (its kernels start in the project root), or run papermill with --cwd set to the "
            "project root"
        )
    path = Path(params_file)
    if not path.is_absolute():
        candidates = [base / path, base / "notebooks" / path]
        path = next((c for c in candidates if c.is_file()), candidates[0])
    return load_stage_params(path)


def _data_sections(obj: Any, key: str = "") -> Iterator[tuple[str, DataParams]]:
    """``(dotted key, section)`` of every DataParams in a params tree (``("data", …)`` for a run)."""
    if isinstance(obj, DataParams):
        yield key, obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _data_sections(getattr(obj, f.name), f"{key}.{f.name}" if key else f.name)
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            yield from _data_sections(item, f"{key}[{i}]")


def built_data_roots(params_by_file: dict[Path, Any]) -> list[Path]:
    """The folders that stage 01 of the profile builds: data under them may not exist yet."""
    roots = []
    for path, params in params_by_file.items():
        if path.name.startswith("01_") and getattr(params, "mode", None) == "embedded":
            roots.append(Path(params.out_dir))
    return roots


def produced_run_dirs(files: Sequence[Path], params_by_file: dict[Path, Any]) -> list[Path]:
    """The run folders (``output_dir``) of the profile's training and registration runs (stages 02, 03):
    the checkpoints under them are written by the pipeline and may not exist yet. A file that does not load
    (e.g. an unset dataset variable) still names its run folder."""
    dirs = []
    for f in files:
        if f.name[:2] not in ("02", "03"):
            continue
        params = params_by_file.get(f)
        if params is not None:
            dirs.append(Path(params.output_dir))
            continue
        try:
            value = read_yaml(f).get("output_dir")
        except ParamsError:
            continue
        if isinstance(value, str) and "${" not in value:
            dirs.append(Path(value))
    return dirs


def _is_under(path: Path, folders: Sequence[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == f.resolve() or f.resolve() in resolved.parents for f in folders)


def _has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _is_produced(path: str, run_dirs: Sequence[Path]) -> bool:
    """Whether a checkpoint path (or glob pattern) names what one of ``run_dirs`` will hold."""
    if not _has_glob(path):
        return _is_under(Path(path), run_dirs)
    pattern = str(Path(path).resolve())
    return any(
        fnmatch.fnmatchcase(str((d / sub).resolve()), pattern)
        for d in run_dirs
        for sub in ("checkpoints/best.ckpt", "checkpoints/last.ckpt", "")
    )


def _exists(path: str, root: Path | None) -> bool:
    """Whether ``path`` (a file, folder or glob pattern) names something on disk, relative to the working
    directory or, with ``root`` (how the evaluation and export stages resolve paths), to the project root."""
    candidates = [Path(path)]
    if root is not None and not Path(path).is_absolute():
        candidates.append(root / path)
    if _has_glob(path):
        return any(glob.glob(str(c)) for c in candidates)
    return any(c.exists() for c in candidates)


@dataclass
class InputChecker:
    """What the params check knows about a profile: the folders stage 01 builds (``built``), the run folders
    of stages 02/03 (``produced``), the project root the relative paths of the evaluation and export stages
    are also looked up in (``root``, default: the working directory), and the results of the checks already
    made (a dataset or weight folder shared by several params files is opened once)."""

    built: Sequence[Path] = ()
    produced: Sequence[Path] = ()
    root: Path = field(default_factory=Path.cwd)
    _datasets: dict[str, DatasetCheck] = field(default_factory=dict)
    _opened: OpenedData = field(default_factory=OpenedData)
    _lpips: dict[str | None, str | None] = field(default_factory=dict)

    def dataset(self, data: DataParams, needs: Sequence[str]) -> DatasetCheck:
        key = f"{data!r} needs={list(needs)}"
        if key not in self._datasets:
            self._datasets[key] = check_dataset(data, opened=self._opened, needs=needs)
        return self._datasets[key]

    def lpips(self, folder: str | None) -> str | None:
        """None when the LPIPS weight files are found in ``folder`` (null: the torch hub cache)."""
        if folder not in self._lpips:
            try:
                find_lpips_weights(folder)
                self._lpips[folder] = None
            except MissingDependencyError as exc:
                self._lpips[folder] = str(exc)
        return self._lpips[folder]

    def checkpoint(
        self, key: str, path: str | None, produced_by: str, project_root: bool = False
    ) -> list[str]:
        """A checkpoint named by ``key`` must exist unless a stage of the profile writes it."""
        if path is None or path == "none" or _is_produced(path, self.produced):
            return []
        if _exists(path, self.root if project_root else None):
            return []
        return [
            f"{key} {path} does not exist and no training or registration run of this profile writes it "
            f"(their output_dir: {[str(d) for d in self.produced] or 'none'}); {produced_by}, or fix the path"
        ]


def _splits_needed(params: Any) -> tuple[str, ...]:
    """The splits a stage iterates: the metrics benchmark (05) its ``split``, runs (02, 03) all three."""
    if isinstance(params, BenchmarkParams):
        return (params.split,)
    return ("train", "val", "test")


def _data_problems(params: Any, checker: InputChecker) -> tuple[list[str], dict[str, float]]:
    problems = []
    factors: dict[str, float] = {}
    for key, data in _data_sections(params):
        root = Path(data.root)
        if _is_under(root, checker.built):
            continue
        if not root.exists():
            what = "folder of Sen2Venµs sites" if data.dataset == "sen2venus" else "WorldStrat index.csv"
            problems.append(f"{key}.root {root} does not exist (expected the {what})")
            continue
        result = checker.dataset(data, _splits_needed(params))
        prefix = key.removesuffix("data")
        problems.extend(prefix + message for message in result.problems)
        if result.factor is not None:
            factors[key] = result.factor
    return problems, factors


def _experiment_problems(params: Any, factors: dict[str, float], checker: InputChecker) -> list[str]:
    if not isinstance(params, ExperimentParams):
        return []
    problems = []
    tp, reg = params.training, params.registration
    if tp.mode == "sr" and tp.losses.lpips > 0:
        missing = checker.lpips(tp.losses.lpips_weights)
        if missing is not None:
            problems.append(f"training.losses.lpips is {tp.losses.lpips:g} (> 0): {missing}")
    if tp.mode == "sr" and "data" in factors and abs(params.model.factor - factors["data"]) > 1e-6:
        problems.append(
            f"model.factor {params.model.factor:g} does not match the data's factor {factors['data']:g} "
            f"({params.data.dataset}, data.root {params.data.root}); set model.factor to "
            f"{factors['data']:g} or choose the matching data"
        )
    if tp.mode == "pretrain_registration" or reg.enabled:
        problems += checker.checkpoint(
            "registration.checkpoint",
            reg.checkpoint,
            "run the registration pre-training first (params/<profile>/02_registration_*.yaml)",
        )
    if tp.resume_from not in (None, "last"):
        problems += checker.checkpoint("training.resume_from", tp.resume_from, "give an existing checkpoint")
    return problems


def _checkpoint_problems(params: Any, checker: InputChecker) -> list[str]:
    """Checkpoints named by evaluation (04) and export (06) params."""
    problems = []
    hint = "train it first (params/<profile>/03_training_*.yaml)"
    registration_hint = "run the registration pre-training first (params/<profile>/02_registration_*.yaml)"
    if isinstance(params, EvaluationParams):
        problems += checker.checkpoint(
            "registration_checkpoint", params.registration_checkpoint, registration_hint, True
        )
        for k, run in enumerate(params.runs):
            problems += checker.checkpoint(f"runs[{k}].checkpoint", run.checkpoint, hint, True)
            problems += checker.checkpoint(
                f"runs[{k}].registration_checkpoint",
                run.registration_checkpoint,
                registration_hint,
                True,
            )
    elif isinstance(params, ExportParams):
        problems += checker.checkpoint("checkpoint", params.checkpoint, hint, True)
    return problems


def _metric_problems(params: Any) -> list[str]:
    """Metrics a benchmark (05) names explicitly must run here (weights present)."""
    names = params.metrics if isinstance(params, BenchmarkParams) else None
    if not names:
        return []

    problems = []
    for k, name in enumerate(names):
        reason = unavailable_reason(METRICS[name]) if name in METRICS else None
        if reason is not None:
            problems.append(
                f"metrics[{k}] {name}: {reason}; or remove it from metrics (null: every usable one)"
            )
    return problems


def check_inputs(
    path: Path, params: Any, built: Sequence[Path] = (), checker: InputChecker | None = None
) -> list[str]:
    """Problems with the inputs a params object points to, each prefixed with ``path``: the datasets it names
    (opened: columns, rows per split, first patches), the LPIPS weights of an SR run with
    ``training.losses.lpips > 0``, the checkpoints it reads, the metrics it requests, and the stage's own
    ``check_inputs`` hook.

    Data roots under one of the ``built`` folders (what stage 01 of the same profile writes) are skipped, and
    so are checkpoints under the run folders of the profile (``checker.produced``).
    """
    checker = checker or InputChecker(built=built)
    problems, factors = _data_problems(params, checker)
    problems += _experiment_problems(params, factors, checker)
    problems += _checkpoint_problems(params, checker)
    problems += _metric_problems(params)
    hook = getattr(params, "check_inputs", None)
    if callable(hook):
        # a stage's own checks; ``root``: where its relative paths (other params files) are looked up
        takes_root = "root" in inspect.signature(hook).parameters
        problems.extend(hook(root=checker.root) if takes_root else hook())
    return [f"{path}: {message}" for message in problems]


def _grouped(problems: Sequence[tuple[Path, str]]) -> list[str]:
    """One line per distinct problem, ``FILE<message>`` (``message`` starts with ``": "`` or with the dotted
    key, e.g. ``".data.root: …"``); the other files with the same problem are named at its end (many params
    files of a profile share one dataset)."""
    files: dict[str, list[Path]] = {}
    for path, message in problems:
        files.setdefault(message, []).append(path)
    out = []
    for message, paths in files.items():
        also = f" (same problem in {', '.join(p.name for p in paths[1:])})" if len(paths) > 1 else ""
        out.append(f"{paths[0]}{message}{also}")
    return out


def check(params_dir: str | Path, inputs: bool = True, root: str | Path | None = None) -> list[str]:
    """Validate every ``*.yaml`` of ``params_dir`` (not the bases under ``params_dir/base/``, which are
    validated through the files that extend them); returns the problems found (empty when all is well).

    ``inputs``: also check what the files point to (see :func:`check_inputs`), in seconds. Relative paths are
    relative to the working directory (as the stages read them; ``make`` runs from the project root); ``root``
    is where the evaluation and export stages also look for a relative checkpoint (default: the working
    directory).
    """
    folder = Path(params_dir)
    files = sorted(folder.glob("*.yaml"))
    if not files:
        return [f"{folder}: no params file (*.yaml) found"]
    found: list[tuple[Path, str]] = []
    loaded: dict[Path, Any] = {}
    for f in files:
        try:
            loaded[f] = load_stage_params(f)
        except ParamsError as exc:
            found.append((f, str(exc).removeprefix(str(f))))
    if inputs:
        checker = InputChecker(
            built_data_roots(loaded),
            produced_run_dirs(files, loaded),
            Path.cwd() if root is None else Path(root),
        )
        for f, params in loaded.items():
            found += [(f, m.removeprefix(str(f))) for m in check_inputs(f, params, checker.built, checker)]
        found += published_problems(files, loaded, checker.root)
    return _grouped(found)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sisrlib.pipeline check PARAMS_DIR [--root DIR]`` (the project root, default: the working
    directory); exit status 2 with one line per problem."""
    args = list(sys.argv[1:] if argv is None else argv)
    root: str | None = None
    if len(args) == 4 and args[2] == "--root":
        root = args.pop(3)
        args.pop(2)
    if len(args) != 2 or args[0] != "check":
        print("usage: python -m sisrlib.pipeline check PARAMS_DIR [--root DIR]", file=sys.stderr)
        return 2
    problems = check(args[1], root=root)
    if problems:
        print(f"params check failed for {args[1]}:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    print(f"params check: every file of {args[1]} is valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
