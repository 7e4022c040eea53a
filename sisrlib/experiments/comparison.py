"""Several kinds of model on one test split (``notebooks/09_model_comparison``, ``params/*/09_*.yaml``).

The models, all opened through :func:`sisrlib.predictors.open_model` by the evaluation
(:mod:`sisrlib.experiments.evaluation`), on the test split of one training params file (``data_params``):

* the bicubic baseline;
* this project's runs (``runs``: training params files);
* an exported ONNX model in the EVOLAND contract (``onnx_model``: ``NAME.yaml`` beside ``NAME.onnx``, any
  producer; stage 06 writes one);
* a torchsisr checkpoint: with ``$TORCHSISR_SUPPORT_DATA`` set, the published one of ``published`` (dataset,
  variant; see :mod:`sisrlib.experiments.published`); without it, the generator of our run
  ``torchsisr_from`` written in torchsisr's exact layout (:mod:`sisrlib.interop.torchsisr.writer`) and
  imported back — the same code path as a published checkpoint, on weights we have.

One table (``metrics.csv``), the spectra of every model on one figure per dataset, the first test patches of
every model side by side; figures under ``figures_dir`` as ``09_<name>_*.png``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from sisrlib.atomic import atomic_directory, write_text_atomic
from sisrlib.checkpoint import checkpoint_params, load_generator, read_checkpoint
from sisrlib.experiments.evaluation.batches import resolve_path
from sisrlib.experiments.evaluation.params import EvaluationParams, RunSpec
from sisrlib.experiments.evaluation.runs import resolve_checkpoint, run_spec
from sisrlib.experiments.evaluation.writers import EvaluationResult, safe_name
from sisrlib.experiments.published import SUPPORT_DATA, VARIANTS, sr_checkpoint
from sisrlib.figures.evaluation import patch_figures
from sisrlib.figures.metrics import plot_fft_profiles
from sisrlib.interop.torchsisr import write_torchsisr_run
from sisrlib.metrics import fda
from sisrlib.params import to_mapping

#: ``variant`` column (and curve label) of the ONNX model and of the torchsisr checkpoint.
ONNX_VARIANT = "onnx (EVOLAND contract)"
TORCHSISR_VARIANT = "torchsisr checkpoint"
#: ``model`` label prefix of the torchsisr-layout copy of one of our runs.
COPY_PREFIX = "torchsisr_layout_"


@dataclass(frozen=True)
class ComparisonParams:
    """Parameters of ``notebooks/09_model_comparison`` (see the module docstring)."""

    #: Name of the comparison (file names of the figures).
    name: str
    #: Folder of metrics.csv, the per-model outputs and the torchsisr-layout copy of ``torchsisr_from``.
    output_dir: str
    #: This project's runs: training params files or checkpoints (``*.ckpt``, run folders).
    runs: list[str] = field(default_factory=list)
    #: Training params file giving the test split (data, seed, margin, registration channel) of the models
    #: that carry none (ONNX, torchsisr); null: the params stored in the checkpoint of ``torchsisr_from``,
    #: else of the first run.
    data_params: str | None = None
    #: An exported model (``NAME.yaml`` beside ``NAME.onnx``); null: none.
    onnx_model: str | None = None
    #: Our run (params file or checkpoint) whose generator is written in torchsisr's layout and imported back
    #: (without the support data).
    torchsisr_from: str | None = None
    #: With ``$TORCHSISR_SUPPORT_DATA`` set: the published checkpoint (``[dataset, variant]``, e.g.
    #: ``[s2v1x2, geomrad]``) used instead of ``torchsisr_from``.
    published: list[str] | None = None
    registration_checkpoint: str | None = None
    figures_dir: str | None = None
    #: Test batches evaluated (small: the comparison is a figure, the tables are notebook 04's).
    max_test_batches: int | None = 1
    test_batch_size: int | None = None
    mosaic_patches: int = 8
    figure_patches: int = 2
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.published is not None and (len(self.published) != 2 or self.published[1] not in VARIANTS):
            raise ValueError(
                f"published: expected [dataset, variant] with a variant in {list(VARIANTS)}, "
                f"found {self.published}"
            )

    def check_inputs(self, root: str | Path | None = None) -> list[str]:
        """Problems found before anything runs: training params files (``*.yaml``) that do not exist
        (relative paths relative to ``root``, default the working directory). Checkpoints and the ONNX model
        are not checked: earlier stages of the pipeline write them."""
        files = [("data_params", self.data_params), ("torchsisr_from", self.torchsisr_from)]
        files += [(f"runs[{k}]", run) for k, run in enumerate(self.runs)]
        return [
            f"{key} {path} does not exist"
            for key, path in files
            if path and Path(path).suffix in (".yaml", ".yml") and not resolve_path(path, root).is_file()
        ]


def _checkpoint(model: str) -> Path:
    """The checkpoint of one of our runs given by its training params file or as a checkpoint/run folder."""
    return resolve_checkpoint(run_spec(model))


def torchsisr_copy(model: str, folder: str | Path) -> tuple[Path, str]:
    """The best checkpoint of our run ``model`` (training params file or checkpoint) written as a torchsisr
    run in ``folder`` (``last.ckpt`` and ``.hydra/config.yaml``, replacing an earlier copy); returns the
    ``.ckpt`` and the run's name.

    torchsisr keeps one standardisation for inputs and outputs: refused when the run's differ."""
    ckpt = _checkpoint(model)
    loaded = load_generator(ckpt, map_location="cpu")
    stats = loaded.standardisation.select(loaded.input_bands + loaded.lr_bands)
    out_stats = loaded.target_standardisation
    if tuple(out_stats.bands) != tuple(stats.bands) or any(
        abs(a - b) > 1e-9 for a, b in zip(stats.mean + stats.std, out_stats.mean + out_stats.std, strict=True)
    ):
        raise ValueError(
            f"{ckpt}: its input standardisation {stats} and output standardisation {out_stats} differ; a "
            "torchsisr checkpoint holds one for both, so this run cannot be written in its layout"
        )
    target = Path(folder)
    with atomic_directory(target) as tmp:
        write_torchsisr_run(tmp / "last.ckpt", stats, loaded.model, global_step=loaded.global_step)
    return target / "last.ckpt", loaded.params.name


def data_params_file(params: ComparisonParams) -> str | None:
    """The training params file giving the test split of the models that carry none: ``data_params``, else
    the params of ``torchsisr_from`` (or of the first run): its params file, or the params stored in its
    checkpoint written to ``<output_dir>/data_params.yaml``. None when there is no run to take them from."""
    if params.data_params is not None:
        return params.data_params
    source = params.torchsisr_from or (params.runs[0] if params.runs else None)
    if source is None:
        return None
    spec = run_spec(source)
    if spec.params_file is not None:
        return spec.params_file
    ckpt = _checkpoint(source)
    stored = checkpoint_params(read_checkpoint(ckpt), ckpt)
    path = Path(params.output_dir) / "data_params.yaml"
    write_text_atomic(path, yaml.safe_dump(to_mapping(stored), sort_keys=False))
    return str(path)


def comparison_evaluation(params: ComparisonParams) -> EvaluationParams:
    """The evaluation of every model of ``params`` (writes the torchsisr-layout copy when one is needed)."""
    runs = [run_spec(run) for run in params.runs]
    data_params = data_params_file(params)
    if (params.onnx_model is not None or params.torchsisr_from is not None) and data_params is None:
        raise ValueError(
            "data_params: give the training params file of the test split (no run to take it from)"
        )
    if params.onnx_model is not None:
        runs.append(
            RunSpec(
                checkpoint=params.onnx_model,
                data_params=data_params,
                label=f"onnx_{Path(params.onnx_model).stem}",
                variant=ONNX_VARIANT,
            )
        )
    support = os.environ.get(SUPPORT_DATA)
    if params.published is not None and support and data_params is not None:
        dataset, variant = params.published
        runs.append(
            RunSpec(
                checkpoint=sr_checkpoint(dataset, variant, root=support),
                data_params=data_params,
                label=f"torchsisr_published_{dataset}_{variant}",
                variant=TORCHSISR_VARIANT,
            )
        )
    elif params.torchsisr_from is not None:
        copy, name = torchsisr_copy(params.torchsisr_from, Path(params.output_dir) / "torchsisr_layout")
        runs.append(
            RunSpec(
                checkpoint=str(copy),
                data_params=data_params,
                label=f"{COPY_PREFIX}{name}",
                variant=TORCHSISR_VARIANT,
            )
        )
    return EvaluationParams(
        runs=runs,
        output_dir=params.output_dir,
        name=params.name,
        registration_checkpoint=params.registration_checkpoint,
        max_test_batches=params.max_test_batches,
        test_batch_size=params.test_batch_size,
        mosaic_patches=params.mosaic_patches,
        figure_patches=params.figure_patches,
        mosaic_columns=min(4, params.mosaic_patches),
        device=params.device,
        figures=False,
    )


def spectra_figures(result: EvaluationResult, figures_dir: str | Path, name: str) -> list[Path]:
    """One figure per dataset, ``<figures_dir>/09_<name>_spectra_<dataset>.png``: the signal attenuation (dB
    per band) of the target, the bicubic input and every model's prediction, labelled by model."""
    paths = []
    for dataset in dict.fromkeys(m.dataset for m in result.models):
        members = [m for m in result.models if m.dataset == dataset and m.profiles is not None]
        if not members or members[0].freqs is None or members[0].profiles is None:
            continue
        first = members[0]
        assert first.profiles is not None and first.freqs is not None
        curves = {"target (HR sensor)": _db(first.profiles[1].T), "bicubic input": _db(first.profiles[0].T)}
        for m in members:
            if m.variant != "bicubic" and m.profiles is not None:
                curves[m.model] = _db(m.profiles[2].T)
        path = Path(figures_dir) / f"09_{safe_name(name)}_spectra_{safe_name(dataset)}.png"
        paths.append(
            plot_fft_profiles(first.freqs, curves, first.fda_bands, path, title=f"{dataset}: spectra")
        )
    return paths


def _db(profile: np.ndarray) -> np.ndarray:
    return fda.to_db(torch.from_numpy(np.asarray(profile, dtype=np.float64))).numpy()


def comparison_figures(result: EvaluationResult, params: ComparisonParams) -> list[Path]:
    """The spectra figure and the side-by-side patches (``09_<name>_patches_<dataset>.png``) of every
    dataset, under ``figures_dir`` (else ``output_dir``)."""
    folder = Path(params.figures_dir or params.output_dir)
    spectra = spectra_figures(result, folder, params.name)
    return spectra + patch_figures(result, folder, prefix=f"09_{safe_name(params.name)}")


def layout_copy_gap(table: pd.DataFrame) -> tuple[str, str, float] | None:
    """``(copy, source, largest |difference|)`` over the numeric columns of ``table`` (metrics.csv) between
    the torchsisr-layout copy of one of our runs and that run (0 when the import reproduces it); None when the
    table has no such pair (e.g. a published checkpoint was evaluated)."""
    rows = table.set_index("model")
    copies = [m for m in rows.index if str(m).startswith(COPY_PREFIX)]
    if not copies or copies[0].removeprefix(COPY_PREFIX) not in rows.index:
        return None
    copy, source = copies[0], copies[0].removeprefix(COPY_PREFIX)
    numeric = [c for c in rows.columns if rows[c].dtype.kind == "f"]
    gap = (rows.loc[copy, numeric] - rows.loc[source, numeric]).abs().max()
    return copy, source, float(gap)
