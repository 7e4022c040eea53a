"""The paper pipeline's bookkeeping: which notebook and which params dataclass each params file belongs to.

``params/<profile>/NN_<run>.yaml`` is executed by ``notebooks/NN_*.ipynb`` and validated by the dataclass of
stage ``NN``. ``python -m sisrlib.pipeline check params/<profile>`` validates every file of a profile before
``make paper`` starts anything: a misspelt key names the file and the key; a dataset that is not there (or an
environment variable that is not set) names the path or the variable. It takes seconds, so a paper run without
its data fails at once instead of hours later.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sisrlib.data.params import DataParams
from sisrlib.params import ParamsError, load

#: Stage prefix -> (notebook stem, "module:Class" of its params).
STAGES: dict[str, tuple[str, str]] = {
    "01": ("01_data_preparation", "sisrlib.data.embedded:PreparationParams"),
    "02": ("02_registration", "sisrlib.training.params:ExperimentParams"),
    "03": ("03_training", "sisrlib.training.params:ExperimentParams"),
    "04": ("04_evaluation_fda", "sisrlib.evaluation:EvaluationParams"),
    "05": ("05_metrics_benchmark", "sisrlib.metrics.benchmark:BenchmarkParams"),
    "06": ("06_export_inference", "sisrlib.export:ExportParams"),
    "07": ("07_report", "sisrlib.report:ReportParams"),
}


def params_class(stage: str) -> type[Any]:
    """The params dataclass of a stage prefix ("01" … "07")."""
    if stage not in STAGES:
        raise ParamsError(f"unknown stage {stage!r}: params files must start with one of {sorted(STAGES)}")
    module_name, class_name = STAGES[stage][1].split(":")
    return getattr(importlib.import_module(module_name), class_name)


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


def project_root_for_notebook() -> Path:
    """Move to the project root when a notebook runs from ``notebooks/`` (JupyterLab), so that the relative
    paths of the params files (``build/…``, ``data/…``, ``figures/…``) mean the same as under ``make paper``.
    Elsewhere (papermill from the root, or a test's temporary folder) the working directory is kept. Returns
    it."""
    import os

    cwd = Path.cwd()
    for candidate in (cwd.parent, cwd.parent.parent):
        if (
            cwd.name in ("notebooks", "tutorials")
            and (candidate / "params").is_dir()
            and (candidate / "sisrlib").is_dir()
        ):
            os.chdir(candidate)
            return candidate
    return cwd


def notebook_params(params_file: str | Path) -> Any:
    """What a notebook's first cell calls: resolve ``params_file`` (absolute, relative to the working
    directory, or relative to ``notebooks/``), move to the project root when run from JupyterLab, and return
    the validated params of its stage (a misspelt key is an error naming the file and the key)."""
    path = Path(params_file).resolve()
    project_root_for_notebook()
    return load_stage_params(path)


def _data_sections(obj: Any) -> Iterator[DataParams]:
    if isinstance(obj, DataParams):
        yield obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _data_sections(getattr(obj, f.name))
    elif isinstance(obj, list | tuple):
        for item in obj:
            yield from _data_sections(item)


def built_data_roots(params_by_file: dict[Path, Any]) -> list[Path]:
    """The folders that stage 01 of the profile builds: data under them may not exist yet."""
    roots = []
    for path, params in params_by_file.items():
        if path.name.startswith("01_") and getattr(params, "mode", None) == "embedded":
            roots.append(Path(params.out_dir))
    return roots


def _is_under(path: Path, folders: Sequence[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == f.resolve() or f.resolve() in resolved.parents for f in folders)


def check_inputs(path: Path, params: Any, built: Sequence[Path] = ()) -> list[str]:
    """Problems with the inputs a params object points to (datasets that are not there).

    Data roots under one of the ``built`` folders (what stage 01 of the same profile writes) are skipped.
    """
    problems = []
    for data in _data_sections(params):
        root = Path(data.root)
        if not root.exists() and not _is_under(root, built):
            what = "folder of Sen2Venµs sites" if data.dataset == "sen2venus" else "WorldStrat index.csv"
            problems.append(f"{path}: data.root {root} does not exist (expected the {what})")
    hook = getattr(params, "check_inputs", None)
    if callable(hook):
        problems.extend(f"{path}: {message}" for message in hook())
    return problems


def check(params_dir: str | Path, inputs: bool = True) -> list[str]:
    """Validate every ``*.yaml`` of ``params_dir``; returns the problems found (empty when all is well)."""
    folder = Path(params_dir)
    files = sorted(folder.glob("*.yaml"))
    if not files:
        return [f"{folder}: no params file (*.yaml) found"]
    problems: list[str] = []
    loaded: dict[Path, Any] = {}
    for f in files:
        try:
            loaded[f] = load_stage_params(f)
        except ParamsError as exc:
            problems.append(str(exc))
    if inputs:
        built = built_data_roots(loaded)
        for f, params in loaded.items():
            problems.extend(check_inputs(f, params, built))
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "check":
        print("usage: python -m sisrlib.pipeline check PARAMS_DIR", file=sys.stderr)
        return 2
    problems = check(args[1])
    if problems:
        print(f"params check failed for {args[1]}:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    print(f"params check: every file of {args[1]} is valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
