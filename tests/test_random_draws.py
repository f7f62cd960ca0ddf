"""The encoder's random draws per example: an example's Gaussians do not depend on the batch it shares, which
is what makes training on N devices with batch b equal to one device with batch N x b (tests/test_ddp.py checks
that through ns-train)."""

from dataclasses import replace

import pytest
import torch

from helpers.scenes import cameras
from pixelsplat_ns.core.views import Views
from pixelsplat_ns.encoder import PixelSplatEncoder, tiny
from pixelsplat_ns.encoder.random_draws import per_example_generators, permutations, uniform


@pytest.mark.parametrize("num_views", [2, 3])  # 3: the other views' embeddings in a random order too
def test_an_examples_gaussians_do_not_depend_on_its_batch(num_views):
    torch.manual_seed(0)
    encoder = PixelSplatEncoder(replace(tiny(), num_context_views=num_views)).eval()
    context = Views(torch.rand(3, num_views, 3, 32, 32), *cameras(3, num_views))
    step = 7
    with torch.no_grad():
        together = encoder.encode(context, generator=per_example_generators(step, 0, 3, "cpu"))
        # Examples 1 and 2 of the step, alone in the batch of a second process.
        apart = encoder.encode(
            Views(*(None if t is None else t[1:] for t in context)), generator=per_example_generators(step, 1, 2, "cpu")
        )
        shared = encoder.encode(context, generator=torch.Generator().manual_seed(step))
    for name in ("means", "covariances", "opacities", "harmonics"):
        torch.testing.assert_close(getattr(apart, name), getattr(together, name)[1:], rtol=1e-5, atol=1e-6)
    # The draws are real: another step, or one stream for the batch, draw other depths.
    assert (shared.means[1:] - together.means[1:]).abs().max() > 1e-3


def test_draws_differ_between_examples_and_steps():
    a, b = per_example_generators(3, 0, 2, "cpu")
    first, second = uniform((2, 1000), torch.device("cpu"), [a, b])
    assert (first - second).abs().max() > 0.5
    again = uniform((1, 1000), torch.device("cpu"), per_example_generators(3, 1, 1, "cpu"))[0]
    assert torch.equal(again, second)
    later = uniform((1, 1000), torch.device("cpu"), per_example_generators(4, 1, 1, "cpu"))[0]
    assert (later - second).abs().max() > 0.5


def test_one_generator_draws_one_order_for_the_batch_and_counts_are_checked():
    order = permutations(4, 5, torch.device("cpu"), torch.Generator().manual_seed(1))
    assert all(torch.equal(row, order[0]) for row in order) and sorted(order[0].tolist()) == list(range(5))
    with pytest.raises(ValueError, match="2 per-example generators for a batch of 3"):
        uniform((3, 4), torch.device("cpu"), per_example_generators(0, 0, 2, "cpu"))
