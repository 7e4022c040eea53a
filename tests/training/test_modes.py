"""End-to-end tiny runs of every training mode on CPU, resume and reproducibility (fake data module)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from sisrlib.checkpoint import load_generator, load_registration, read_checkpoint
from sisrlib.errors import SisrError
from sisrlib.registration.network import FlowEstimator
from sisrlib.training.fit import fit
from sisrlib.training.module import SISRModule
from tests.helpers.training_fakes import BANDS, FakeDataModule, tiny_params

LOG_EVERY = {"log_every_n_steps": 1}


@pytest.fixture(scope="module")
def registration_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("reg")
    params = tiny_params(
        tmp,
        registration={"crop_size": 12, "data_weight": 2.0},
        training={"mode": "pretrain_registration", "max_steps": 3, **LOG_EVERY},
    )
    result = fit(params, FakeDataModule())
    assert result.global_step == 3
    return result.best_checkpoint


def test_pretraining_run(registration_ckpt: Path) -> None:
    run = registration_ckpt.parent.parent
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / "params.yaml").is_file()
    log = pd.read_csv(run / "logs" / "csv" / "metrics.csv")
    for key in ("flow", "flow_bias", "flow_consistency", "data", "total"):
        assert log[f"training/registration_{key}_loss"].notna().sum() == 3
        assert log[f"validation/registration_{key}_loss"].notna().any()
    assert log["validation/flow_epe"].notna().any()
    assert any((run / "logs" / "tensorboard").iterdir())
    net = load_registration(registration_ckpt)
    assert isinstance(net, FlowEstimator) and not net.training
    assert not any(p.requires_grad for p in net.parameters())
    assert net(torch.rand(1, 16, 16), torch.rand(1, 16, 16)).shape == (1, 2, 16, 16)


@pytest.mark.parametrize(
    ("variant", "registration"),
    [
        ("baseline", {}),
        ("geom", {"geometric": True}),
        ("geomrad", {"geometric": True, "radiometric": True}),
    ],
)
def test_sr_variants_end_to_end(
    tmp_path: Path, registration_ckpt: Path, variant: str, registration: dict[str, Any]
) -> None:
    params = tiny_params(
        tmp_path,
        name=variant,
        registration={"checkpoint": str(registration_ckpt), **registration},
        training={"test_after_fit": True, **LOG_EVERY},
    )
    result = fit(params, FakeDataModule())
    assert result.global_step == 2 and result.best_checkpoint.is_file() and result.last_checkpoint.is_file()
    log = pd.read_csv(result.metrics_csv)
    assert log["training/total_loss"].notna().sum() == 2
    assert {"training/mse_B2", "training/l1_B8", "validation/total_loss", "validation/rmse_B4"} <= set(log)
    # test-time geometric metric (flow between the downscaled prediction / target and the input)
    for key in ("average_pred_warp", "std_pred_warp", "average_target_warp", "std_target_warp"):
        assert result.test_metrics[f"test/{key}"] >= 0
    loaded = load_generator(result.best_checkpoint)
    assert loaded.input_bands == ("B2", "B3", "B4", "B8") and loaded.factor == 2.0
    assert not loaded.model.training
    x = loaded.standardisation.standardise(torch.rand(1, 4, 16, 16) * 0.3)
    assert loaded.model(x).shape == (1, 4, 32, 32)
    assert loaded.params.registration.geometric == registration.get("geometric", False)
    # skip_if_done: a finished run is not trained again
    assert fit(params, FakeDataModule()).skipped


@pytest.mark.parametrize("start_step", [0, 5])
def test_adversarial_term(tmp_path: Path, start_step: int) -> None:
    params = tiny_params(
        tmp_path,
        training={
            "max_steps": 3,
            **LOG_EVERY,
            "adversarial": {
                "enabled": True,
                "start_step": start_step,
                "weight": 0.1,
                "discriminator": {"num_feat": 4},
            },
        },
    )
    result = fit(params, FakeDataModule())
    assert result.global_step == 3  # discriminator steps do not count as training steps
    log = pd.read_csv(result.metrics_csv)
    assert log["training/generator_dra"].notna().sum() == 3
    trained = log["training/discriminator_dra"].notna().sum() if "training/discriminator_dra" in log else 0
    assert trained == (3 if start_step == 0 else 0)
    ckpt = read_checkpoint(result.last_checkpoint)
    assert len(ckpt["optimizer_states"]) == 2 and len(ckpt["lr_schedulers"]) == 2
    assert any(k.startswith("discriminator.") for k in ckpt["state_dict"])


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in read_checkpoint(path)["state_dict"].items() if k.startswith("generator.")}


def test_resume_continues_at_the_saved_step_with_the_same_optimiser_state(tmp_path: Path) -> None:
    dm = {"n": 4, "batch_size": 2, "shuffle": False}  # 2 batches per epoch, fixed order: step 2 ends an epoch
    common = {
        **LOG_EVERY,
        "val_check_interval": 2,
        "adversarial": {"enabled": True, "start_step": 0, "discriminator": {"num_feat": 4}},
    }
    full = fit(tiny_params(tmp_path / "full", training={**common, "max_steps": 4}), FakeDataModule(**dm))
    first = fit(tiny_params(tmp_path / "cut", training={**common, "max_steps": 2}), FakeDataModule(**dm))
    assert first.global_step == 2
    step_saved = read_checkpoint(first.last_checkpoint)["global_step"]
    assert step_saved == 2
    resumed = fit(
        tiny_params(tmp_path / "cut", training={**common, "max_steps": 4, "resume_from": "last"}),
        FakeDataModule(**dm),
    )
    assert resumed.global_step == 4
    a, b = _weights(full.last_checkpoint), _weights(resumed.last_checkpoint)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)
    ca, cb = read_checkpoint(full.last_checkpoint), read_checkpoint(resumed.last_checkpoint)
    assert ca["lr_schedulers"][0]["last_epoch"] == cb["lr_schedulers"][0]["last_epoch"] == 4
    sa, sb = ca["optimizer_states"][0]["state"], cb["optimizer_states"][0]["state"]
    assert sa[0]["step"] == sb[0]["step"]
    torch.testing.assert_close(sa[0]["exp_avg"], sb[0]["exp_avg"], atol=1e-6, rtol=1e-4)
    log = pd.read_csv(resumed.metrics_csv)
    assert sorted(log.dropna(subset=["training/total_loss"])["step"].tolist())[-2:] == [3, 4]


def test_same_seed_same_losses(tmp_path: Path) -> None:
    losses = []
    for run in ("a", "b"):
        params = tiny_params(tmp_path / run, training={"max_steps": 3, **LOG_EVERY})
        log = pd.read_csv(fit(params, FakeDataModule()).metrics_csv)
        losses.append(log["training/total_loss"].dropna().tolist())
    assert len(losses[0]) == 3
    assert losses[0] == losses[1]


def test_true_flow_registration_trains_on_simulated_batches_and_refuses_others(
    tmp_path: Path, registration_ckpt: Path
) -> None:
    registration = {"checkpoint": str(registration_ckpt), "geometric": True, "flow_source": "true_flow"}
    params = tiny_params(tmp_path, name="trueflow", registration=registration)
    assert fit(params, FakeDataModule()).global_step == 2
    module = SISRModule(params.to_mapping(), list(BANDS), list(BANDS), 2.0)
    module.registration = load_registration(registration_ckpt)
    with pytest.raises(
        SisrError, match="flow_source: true_flow registers the target with the batch's stored"
    ):
        module._registered_target(torch.rand(1, 4, 8, 8), torch.rand(1, 4, 16, 16), None, None)
    with pytest.raises(
        ValueError, match=r"registration\.flow_source: expected one of \['network', 'true_flow'\]"
    ):
        tiny_params(tmp_path, registration={"flow_source": "oracle"})
