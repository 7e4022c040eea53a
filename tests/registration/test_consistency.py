"""The consistency term of the registration pre-training loss follows ``composition``: the exact composition
of the forward and backward flows (ours), or their plain sum (torchsisr's)."""

from __future__ import annotations

import pytest
import torch

from sisrlib.flow import compose_flows
from sisrlib.registration.pretraining import penalty, pretraining_loss


class TwoFlows(torch.nn.Module):
    """A stand-in flow network: ``forward`` for (src, real), ``backward`` for (real, src)."""

    def __init__(self, src: torch.Tensor, forward: torch.Tensor, backward: torch.Tensor) -> None:
        super().__init__()
        self.src, self.f, self.b = src, forward, backward

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return self.f if torch.equal(left, self.src) else self.b


@pytest.mark.parametrize("composition", ["exact", "reference"])
def test_consistency_term_known_answer(composition: str) -> None:
    g = torch.Generator().manual_seed(0)
    src, real = torch.rand(2, 16, 16, generator=g), torch.rand(2, 16, 16, generator=g)
    forward = torch.randn(2, 2, 16, 16, generator=g)  # non-constant flows: exact and plain sum differ
    backward = -forward + 0.1 * torch.randn(2, 2, 16, 16, generator=g)
    net = TwoFlows(src, forward, backward)
    losses = pretraining_loss(net, src, real, composition=composition, weights=(0.0, 0.0, 1.0, 0.0))  # type: ignore[arg-type]
    composed = compose_flows(forward, backward, mode=composition)  # type: ignore[arg-type]
    assert losses.flow_consistency is not None
    assert torch.allclose(losses.flow_consistency, penalty(composed, torch.zeros_like(composed)))
    if composition == "reference":
        assert torch.allclose(composed, forward + backward)
    else:
        assert not torch.allclose(composed, forward + backward)
