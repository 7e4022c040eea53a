"""The Lightning data module of every run: Sen2Venµs (real or embedded sites) or WorldStrat-derived pairs.

Splits (torchsisr's intended behaviour):

* Sen2Venµs: **test** = every patch of the testing sites (each capped at ``max_patches_per_site``); the
  training sites (capped the same way, seeded subset per site) are concatenated and split at random into
  ``[train_ratio, validation_ratio]`` (plus an unused remainder) with a ``torch.Generator`` seeded by ``seed``
  — the global random state is never used;
* WorldStrat: train / val / test from the index's ``split`` column, pairs with
  ``correlation > min_correlation``.

Loaders: train shuffles with a seeded generator and drops its last incomplete batch; validation and test keep
every patch in order (the reference dropped the last incomplete test batch, [QUIRK]; ``drop_last_eval``
restores that). Batches are :class:`~sisrlib.data.batch.Batch` es in DN, built by :func:`collate_batch`.

The training loader is a :class:`ResumableDataLoader`: Lightning saves its state (the shuffling generator's
state at the start of the current epoch's permutation and the number of batches already trained in that
epoch) in every checkpoint, and a resumed run draws the same permutation and skips the trained batches, so
that it sees the same batches in the same order as an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler, Subset, random_split

from sisrlib.bands import validate_bands
from sisrlib.data.params import DataParams
from sisrlib.data.sample import Sample, collate_batch, select_bands
from sisrlib.data.sen2venus import (
    DEFAULT_TESTING_SITES,
    SITE_LISTS,
    Sen2VenusLayout,
    available_sites,
    check_sites,
    open_sites,
    sen2venus_layout,
)
from sisrlib.data.worldstrat import WORLDSTRAT_BANDS, WorldStratDataset
from sisrlib.errors import DataError

__all__ = [
    "CachedDataset",
    "ResumableDataLoader",
    "SRDataModule",
    "build_datamodule",
    "collate_batch",
    "resolve_sites",
]


class CachedDataset(Dataset[Sample]):
    """Keeps every item of ``dataset`` in memory after its first read (per process; the reference's
    CacheDataset)."""

    def __init__(self, dataset: Dataset[Sample]) -> None:
        self.dataset = dataset
        self._cache: dict[int, Sample] = {}

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> Sample:
        if i not in self._cache:
            self._cache[i] = self.dataset[i]
        return self._cache[i]


class MappedDataset(Dataset[Sample]):
    """Applies ``fn`` to every sample of ``dataset`` (band selection)."""

    def __init__(self, dataset: Dataset[Sample], fn: Callable[[Sample], Sample]) -> None:
        self.dataset = dataset
        self.fn = fn

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> Sample:
        return self.fn(self.dataset[i])


class _SelectBands:
    """Picklable band selection (DataLoader workers pickle the datasets)."""

    def __init__(self, bands: Sequence[str]) -> None:
        self.bands = tuple(bands)

    def __call__(self, sample: Sample) -> Sample:
        return select_bands(sample, self.bands)


class _SkippingBatches(Sampler[list[int]]):
    """The loader's batch sampler, which records the shuffling generator's state just before each epoch's
    permutation and, once after a resume, restores a recorded state and skips the batches already trained.

    The epoch's permutation is drawn at the first ``next`` (as by ``RandomSampler``), after the DataLoader
    iterator drew its workers' base seed from the same generator: the draws, and so the batches of an
    uninterrupted run, are those of a plain ``DataLoader(shuffle=True, generator=g)``.
    """

    def __init__(self, batches: Any, generator: torch.Generator | None) -> None:
        self.batches = batches
        self.generator = generator
        self.epoch_state: torch.Tensor | None = None
        self.pending: tuple[torch.Tensor | None, int] | None = None
        #: Batches of the current epoch skipped on resuming (trained before the checkpoint).
        self.skipped = 0
        #: Whether the current epoch's iteration has begun (its permutation drawn).
        self.started = False

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        skip = 0
        if self.pending is not None:
            state, skip = self.pending
            self.pending = None
            if state is not None and self.generator is not None:
                self.generator.set_state(state)
        self.epoch_state = self.generator.get_state() if self.generator is not None else None
        self.skipped = skip
        self.started = True
        batches = iter(self.batches)
        for _ in range(skip):
            if next(batches, None) is None:
                return
        if skip and skip >= len(self.batches):
            # the epoch was complete: stop without asking for one more batch (that would draw one more
            # permutation, which the uninterrupted run, stopped by the loader's length, did not)
            return
        yield from batches


class ResumableDataLoader(DataLoader[Any]):
    """A ``DataLoader`` whose position Lightning saves in checkpoints and restores on resume (the
    ``state_dict`` / ``load_state_dict`` protocol of Lightning's stateful loaders).

    ``batches_done``: returns how many batches of the current epoch were trained (set by the data module
    from the trainer's progress, which is what Lightning's resume counts). Without it (e.g. in the copy of
    the loader Lightning makes under DDP to insert its distributed sampler) the batches this loader skipped
    and yielded in its current epoch are counted: the same at step boundaries, where Lightning saves
    checkpoints (it does not fetch ahead from a loader with a length).
    Only the order of the batches is restored; the DataLoader worker processes of the resumed epoch get
    other seeds (nothing in this project's datasets draws random numbers in workers).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        generator = getattr(self.sampler, "generator", None) or self.generator
        self._batches = _SkippingBatches(self.batch_sampler, generator)
        self._yielded = 0
        self.batches_done: Callable[[], int] | None = None

    @property
    def _index_sampler(self) -> Any:
        batches = self.__dict__.get("_batches")
        if self.batch_sampler is None:
            return self.sampler
        return batches if batches is not None else self.batch_sampler

    def __iter__(self) -> Any:
        self._yielded = 0
        self._batches.started = False
        iterator = super().__iter__()  # draws the workers' base seed (and, with workers, the permutation)
        batches = self._batches
        if not batches.started and batches.pending is None and batches.generator is not None:
            # the epoch's permutation comes at the first batch: a state taken before it is this epoch's
            batches.epoch_state = batches.generator.get_state()
            batches.skipped = 0
        if self.batches_done is not None:
            return iterator
        return self._counting(iterator)

    def _counting(self, iterator: Iterator[Any]) -> Iterator[Any]:
        for batch in iterator:
            self._yielded += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """The generator state before the current epoch's permutation, and the batches trained since."""
        counted = self._batches.skipped + self._yielded
        done = self.batches_done() if self.batches_done is not None else counted
        return {"epoch_generator_state": self._batches.epoch_state, "batches_done": int(done)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at :meth:`state_dict`'s position: the next iteration replays that epoch's permutation
        without its trained batches."""
        generator_state = state.get("epoch_generator_state")
        if generator_state is not None and not isinstance(generator_state, torch.Tensor):
            raise DataError(
                f"the checkpoint's training-loader state is not a generator state ({type(generator_state)})"
            )
        self._batches.pending = (generator_state, int(state.get("batches_done", 0)))


def resolve_sites(params: DataParams) -> tuple[list[str], list[str]]:
    """``(training sites, testing sites)`` of a Sen2Venµs configuration, checked against the root's
    folders."""
    testing = (
        list(params.testing_sites)
        if params.testing_sites is not None
        else list(DEFAULT_TESTING_SITES[params.site_list])
    )
    if params.sites is not None:
        training = list(params.sites)
    elif params.site_list is not None:
        training = list(SITE_LISTS[params.site_list])
    else:
        training = [s for s in available_sites(params.root) if s not in testing]
    if not training:
        raise DataError(f"no training site under {params.root} (testing sites: {testing})")
    both = sorted(set(training) & set(testing))
    if both:
        raise DataError(f"site(s) {both} are both training and testing sites; a test site must stay unseen")
    check_sites(params.root, training, "training site")
    check_sites(params.root, testing, "testing site")
    return training, testing


def _split_lengths(params: DataParams) -> list[float]:
    lengths = [params.train_ratio, params.validation_ratio]
    rest = 1.0 - params.train_ratio - params.validation_ratio
    if rest > 1e-9:
        lengths.append(rest)
    else:
        # absorb floating-point slack so that random_split accepts the fractions
        lengths[0] = 1.0 - params.validation_ratio
    return lengths


class SRDataModule(pl.LightningDataModule):
    """Datasets and loaders of one run (see the module docstring). Construction checks the configuration
    (sites, columns, factor, bands) so that errors come before training; ``setup`` builds the datasets."""

    def __init__(self, params: DataParams, seed: int = 0) -> None:
        super().__init__()
        self.params = params
        self.seed = int(seed)
        self.layout: Sen2VenusLayout | None = None
        self.train_dataset: Dataset[Sample] | None = None
        self.val_dataset: Dataset[Sample] | None = None
        self.test_dataset: Dataset[Sample] | None = None
        self.training_sites: list[str] = []
        self.testing_sites: list[str] = []
        if params.bands is not None:
            validate_bands(params.bands, "data.bands")
        if params.dataset == "sen2venus":
            self.layout = sen2venus_layout(params.load_10m, params.load_20m, params.load_b11b12)
            self.training_sites, self.testing_sites = resolve_sites(params)
            self._factor = self.layout.factor
            self._input_bands = self.layout.input_bands
            self._target_bands = self.layout.target_bands
            self._lr_bands = self.layout.lr_bands
        elif params.dataset == "worldstrat":
            probe = WorldStratDataset(params.root, "train", params.min_correlation, load_truth=False)
            self._factor = probe.factor
            self._input_bands = WORLDSTRAT_BANDS
            self._target_bands = WORLDSTRAT_BANDS
            self._lr_bands = ()
        else:  # pragma: no cover - Literal-checked by the params loader
            raise DataError(f"unknown dataset {params.dataset!r}; valid ones are sen2venus, worldstrat")
        if params.factor is not None and abs(params.factor - self._factor) > 1e-6:
            raise DataError(
                f"data.factor is {params.factor:g} but this {params.dataset} configuration has factor "
                f"{self._factor:g} (sen2venus: load_10m only → 2, load_20m only → 4; worldstrat: the index's "
                "HR/LR size ratio)"
            )
        if params.bands is not None:
            missing = [b for b in params.bands if b not in self._target_bands]
            if missing:
                raise DataError(
                    f"data.bands {missing} are not available in this {params.dataset} configuration; "
                    f"available target bands are {list(self._target_bands)}"
                )
            extra = [b for b in self._input_bands if b not in self._target_bands]
            self._input_bands = tuple(b for b in params.bands if b in self._input_bands) + tuple(extra)
            lr_extra = [b for b in self._lr_bands if b not in self._target_bands]
            self._lr_bands = tuple(b for b in params.bands if b in self._lr_bands) + tuple(lr_extra)
            self._target_bands = tuple(params.bands)

    # -- what the model needs to know
    # -------------------------------------------------------------------------
    @property
    def factor(self) -> float:
        """Input pixel size / target pixel size."""
        return self._factor

    @property
    def input_bands(self) -> tuple[str, ...]:
        return self._input_bands

    @property
    def target_bands(self) -> tuple[str, ...]:
        return self._target_bands

    @property
    def lr_bands(self) -> tuple[str, ...]:
        """Bands of ``Batch.lr_inputs`` (20 m bands of a joint 10 m + 20 m configuration), else ()."""
        return self._lr_bands

    # -- datasets
    # ---------------------------------------------------------------------------------------------
    def _wrap(self, dataset: Dataset[Sample], cache: bool) -> Dataset[Sample]:
        if self.params.bands is not None:
            dataset = MappedDataset(dataset, _SelectBands(self.params.bands))
        return CachedDataset(dataset) if cache else dataset

    def setup(self, stage: str | None = None) -> None:
        if self.train_dataset is not None:
            return
        p = self.params
        if p.dataset == "sen2venus":
            assert self.layout is not None
            train_sites = open_sites(
                p.root,
                self.training_sites,
                self.layout,
                p.max_patches_per_site,
                self.seed,
                load_truth=p.load_truth,
            )
            test_sites = open_sites(
                p.root,
                self.testing_sites,
                self.layout,
                p.max_patches_per_site,
                self.seed,
                load_truth=p.load_truth,
                role="testing site",
            )
            pool: ConcatDataset[Sample] = ConcatDataset(train_sites)
            parts = random_split(pool, _split_lengths(p), generator=torch.Generator().manual_seed(self.seed))
            train: Dataset[Sample] = Subset(pool, sorted(parts[0].indices))
            val: Dataset[Sample] = Subset(pool, sorted(parts[1].indices))
            test: Dataset[Sample] = ConcatDataset(test_sites)
        else:
            train = WorldStratDataset(p.root, "train", p.min_correlation, load_truth=p.load_truth)
            val = WorldStratDataset(p.root, "val", p.min_correlation, load_truth=p.load_truth)
            test = WorldStratDataset(p.root, "test", p.min_correlation, load_truth=p.load_truth)
            for name, ds in (("val", val), ("test", test)):
                if abs(ds.factor - train.factor) > 1e-6:
                    raise DataError(
                        f"WorldStrat {name} pairs have factor {ds.factor:g}, train has {train.factor:g}"
                    )
        if len(train) == 0:  # type: ignore[arg-type]
            raise DataError(f"no training patch (train_ratio={p.train_ratio}, data under {p.root})")
        self.train_dataset = self._wrap(train, p.cache_train)
        self.val_dataset = self._wrap(val, p.cache)
        self.test_dataset = self._wrap(test, p.cache)

    # -- loaders
    # ----------------------------------------------------------------------------------------------
    def _loader(self, dataset: Dataset[Sample] | None, train: bool) -> DataLoader[Any]:
        if dataset is None:
            raise DataError("the data module is not set up (call setup() first)")
        p = self.params
        return (ResumableDataLoader if train else DataLoader)(
            dataset,
            batch_size=p.batch_size if train else p.test_batch_size,
            shuffle=train,
            drop_last=True if train else p.drop_last_eval,
            num_workers=p.num_workers,
            collate_fn=collate_batch,
            generator=torch.Generator().manual_seed(self.seed) if train else None,
            persistent_workers=p.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader[Any]:
        self.setup()
        loader = self._loader(self.train_dataset, True)
        trainer = self.trainer
        if trainer is not None and isinstance(loader, ResumableDataLoader):
            # batches of the current epoch the trainer has trained: what a resume must skip
            loader.batches_done = lambda: _processed(trainer)
        return loader

    def val_dataloader(self) -> DataLoader[Any]:
        self.setup()
        return self._loader(self.val_dataset, False)

    def test_dataloader(self) -> DataLoader[Any]:
        self.setup()
        return self._loader(self.test_dataset, False)


def _processed(trainer: pl.Trainer) -> int:
    """Batches of the current epoch the trainer has trained (what a resume must skip)."""
    progress = trainer.fit_loop.epoch_loop.batch_progress.current
    return int(getattr(progress, "processed", progress.completed))


def build_datamodule(params: DataParams, seed: int = 0, factor: float | None = None) -> SRDataModule:
    """The data module of ``params``; ``factor`` (e.g. the model's) must match the data's when given."""
    dm = SRDataModule(params, seed)
    if factor is not None and abs(factor - dm.factor) > 1e-6:
        raise DataError(
            f"the model's factor {factor:g} does not match the data's ({dm.factor:g}) for {params.dataset} "
            f"(root {params.root})"
        )
    return dm
