"""The data module: site resolution, seeded splits, loaders, band/factor checks, WorldStrat splits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sisrlib.data.batch import Batch
from sisrlib.data.datamodule import SRDataModule, build_datamodule, resolve_sites
from sisrlib.data.params import DataParams
from sisrlib.data.sample import collate_batch
from sisrlib.errors import DataError
from sisrlib.params import ParamsError, from_mapping
from tests.helpers.fake_data import make_sen2venus_root, make_worldstrat_index

SITES = ["ARM", "NARYN", "ALSACE", "ES-IC3XG", "MAD-AMBO"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sen2venus_root(tmp_path_factory.mktemp("s2v"), SITES, rows=7)


def params(root: Path, **kw: object) -> DataParams:
    base: dict[str, object] = {
        "dataset": "sen2venus",
        "root": str(root),
        "batch_size": 4,
        "test_batch_size": 3,
    }
    base.update(kw)
    return DataParams(**base)  # type: ignore[arg-type]


def test_sites_default_to_every_folder_but_the_test_sites(root: Path) -> None:
    training, testing = resolve_sites(params(root))
    assert training == ["ALSACE", "ARM", "NARYN"] and testing == ["ES-IC3XG", "MAD-AMBO"]
    assert resolve_sites(params(root, sites=["ARM"], testing_sites=["NARYN"])) == (["ARM"], ["NARYN"])
    with pytest.raises(DataError, match=r"unknown Sen2Venµs training site\(s\) \['BAMBENW2', 'BENGA'"):
        resolve_sites(params(root, site_list="s2v1"))  # the fake root lacks the paper's sites
    with pytest.raises(DataError, match="both training and testing"):
        resolve_sites(params(root, sites=["ARM", "MAD-AMBO"]))
    with pytest.raises(DataError, match=r"unknown Sen2Venµs testing site\(s\) \['X'\]"):
        resolve_sites(params(root, sites=["ARM"], testing_sites=["X"]))


def test_embedded_site_lists_pick_their_test_site(tmp_path: Path) -> None:
    make_sen2venus_root(
        tmp_path, ["EMB-S2V1-N", "EMB-S2V1-S", "EMB-S2V2-N", "EMB-S2V2-S", "ES-IC3XG", "MAD-AMBO"], 1
    )
    assert resolve_sites(params(tmp_path, site_list="embedded-s2v1")) == (
        ["EMB-S2V1-N", "EMB-S2V1-S"], ["ES-IC3XG"]
    )  # fmt: skip
    assert resolve_sites(params(tmp_path, site_list="embedded-s2v2"))[1] == ["MAD-AMBO"]
    both = params(tmp_path, site_list="embedded-s2v2", testing_sites=["ES-IC3XG", "MAD-AMBO"])
    assert resolve_sites(both)[1] == ["ES-IC3XG", "MAD-AMBO"]


def test_split_sizes_and_seeded_reproducibility(root: Path) -> None:
    p = params(root, train_ratio=0.7, validation_ratio=0.2, max_patches_per_site=5)
    dm = SRDataModule(p, seed=1)
    dm.setup()
    assert dm.train_dataset is not None and dm.val_dataset is not None and dm.test_dataset is not None
    n_pool = 3 * 5
    assert len(dm.train_dataset) + len(dm.val_dataset) <= n_pool  # type: ignore[arg-type]
    assert len(dm.train_dataset) == round(0.7 * n_pool) or abs(len(dm.train_dataset) - 0.7 * n_pool) <= 1  # type: ignore[arg-type]
    assert len(dm.test_dataset) == 2 * 5  # type: ignore[arg-type]

    def ids(dm: SRDataModule) -> tuple[list[str], list[str]]:
        dm.setup()
        return [s.id for s in dm.train_dataset], [s.id for s in dm.val_dataset]  # type: ignore[union-attr]

    state = torch.random.get_rng_state()
    first = ids(SRDataModule(p, seed=1))
    torch.manual_seed(123)  # the global random state must not matter
    assert ids(SRDataModule(p, seed=1)) == first
    assert ids(SRDataModule(p, seed=2)) != first
    assert not set(first[0]) & set(first[1])
    torch.random.set_rng_state(state)


def test_loaders_train_shuffles_and_drops_last_eval_keeps_everything(root: Path) -> None:
    dm = build_datamodule(params(root, train_ratio=0.8, validation_ratio=0.2), seed=0)
    train = list(dm.train_dataloader())
    n_train = len(dm.train_dataset)  # type: ignore[arg-type]
    assert all(len(b) == 4 for b in train) and len(train) == n_train // 4
    assert isinstance(train[0], Batch) and train[0].inputs.shape == (4, 4, 16, 16)
    assert train[0].target.shape == (4, 4, 32, 32) and train[0].factor == 2.0
    order = [i for b in train for i in b.ids]
    assert order != sorted(order, key=lambda s: (s.split(":")[0], int(s.split(":")[1])))  # shuffled
    same = build_datamodule(params(root, train_ratio=0.8, validation_ratio=0.2), 0)
    again = [i for b in same.train_dataloader() for i in b.ids]
    assert again == order  # seeded shuffling
    test = list(dm.test_dataloader())
    assert sum(len(b) for b in test) == 14 and len(test[-1]) == 14 % 3  # the last incomplete batch is kept
    val = list(dm.val_dataloader())
    assert sum(len(b) for b in val) == len(dm.val_dataset)  # type: ignore[arg-type]
    dropped = build_datamodule(params(root, drop_last_eval=True), 0)
    assert sum(len(b) for b in dropped.test_dataloader()) == 12


def test_properties_factor_and_band_checks(root: Path) -> None:
    dm = build_datamodule(params(root, load_10m=True, load_20m=True, load_b11b12=True), 0)
    assert dm.factor == 2.0
    assert dm.input_bands == ("B2", "B3", "B4", "B8")
    assert dm.lr_bands == ("B5", "B6", "B7", "B8A", "B11", "B12")
    assert dm.target_bands == ("B2", "B3", "B4", "B8", "B5", "B6", "B7", "B8A")
    dm20 = build_datamodule(params(root, load_10m=False, load_20m=True), 0)
    assert dm20.factor == 4.0 and dm20.lr_bands == ()
    with pytest.raises(DataError, match=r"data\.factor is 2 but this sen2venus configuration has factor 4"):
        SRDataModule(params(root, load_10m=False, load_20m=True, factor=2.0))
    with pytest.raises(DataError, match=r"model's factor 4 does not match the data's \(2\)"):
        build_datamodule(params(root), 0, factor=4.0)
    with pytest.raises(DataError, match=r"data.bands \['B5'\] are not available.*\['B2', 'B3', 'B4', 'B8'\]"):
        SRDataModule(params(root, bands=["B2", "B5"]))
    with pytest.raises(ValueError, match="unknown Sentinel-2 band"):
        SRDataModule(params(root, bands=["B13"]))


def test_band_selection(root: Path) -> None:
    dm = build_datamodule(
        params(root, load_10m=False, load_20m=True, load_b11b12=True, bands=["B8A", "B5"]), 0
    )
    assert dm.target_bands == ("B8A", "B5") and dm.input_bands == ("B8A", "B5", "B11", "B12")
    batch = next(iter(dm.test_dataloader()))
    assert batch.target_bands == ("B8A", "B5") and batch.inputs.shape[1] == 4 and batch.target.shape[1] == 2
    full = build_datamodule(params(root, load_10m=False, load_20m=True, load_b11b12=True), 0)
    ref = next(iter(full.test_dataloader()))
    assert torch.equal(batch.target[:, 0], ref.target[:, 3]) and torch.equal(
        batch.inputs[:, 1], ref.inputs[:, 0]
    )


def test_cache_options_wrap_the_splits(root: Path) -> None:
    from sisrlib.data.datamodule import CachedDataset

    dm = build_datamodule(params(root, cache=True), 0)
    dm.setup()
    assert isinstance(dm.val_dataset, CachedDataset) and isinstance(dm.test_dataset, CachedDataset)
    assert not isinstance(dm.train_dataset, CachedDataset)
    assert dm.test_dataset[0] is dm.test_dataset[0]
    dm2 = build_datamodule(params(root, cache_train=True), 0)
    dm2.setup()
    assert isinstance(dm2.train_dataset, CachedDataset)


def test_worldstrat_datamodule(tmp_path: Path) -> None:
    index = make_worldstrat_index(tmp_path, ("train",) * 5 + ("val", "test", "test"), factor=4)
    dm = build_datamodule(
        DataParams(dataset="worldstrat", root=str(index), batch_size=2, test_batch_size=4), 0
    )
    assert dm.factor == 4.0 and dm.input_bands == dm.target_bands == ("B2", "B3", "B4", "B8")
    assert [len(b) for b in dm.train_dataloader()] == [2, 2]
    assert [len(b) for b in dm.val_dataloader()] == [1]
    batch = next(iter(dm.test_dataloader()))
    assert batch.inputs.shape == (2, 4, 8, 8) and batch.target.shape == (2, 4, 32, 32)
    with pytest.raises(DataError, match=r"data\.factor is 2"):
        SRDataModule(DataParams(dataset="worldstrat", root=str(index), factor=2.0))


def test_data_params_validation() -> None:
    with pytest.raises(ParamsError, match="train_ratio"):
        from_mapping(
            DataParams, {"dataset": "sen2venus", "root": "x", "train_ratio": 0.9, "validation_ratio": 0.2}
        )
    with pytest.raises(ParamsError, match="either sites or site_list"):
        from_mapping(DataParams, {"dataset": "sen2venus", "root": "x", "sites": ["A"], "site_list": "s2v1"})
    with pytest.raises(ParamsError, match="site_list"):
        from_mapping(DataParams, {"dataset": "sen2venus", "root": "x", "site_list": "s2v3"})
    p = from_mapping(DataParams, {"dataset": "sen2venus", "root": "x", "site_list": "embedded-s2v1"})
    assert p.testing_sites is None


def test_collate_rejects_mixed_samples(root: Path) -> None:
    dm = build_datamodule(params(root), 0)
    dm.setup()
    s = dm.test_dataset[0]  # type: ignore[index]
    other = build_datamodule(params(root, load_10m=False, load_20m=True), 0)
    other.setup()
    with pytest.raises(DataError, match="different bands"):
        collate_batch([s, other.test_dataset[0]])  # type: ignore[index]
    with pytest.raises(DataError, match="empty"):
        collate_batch([])
