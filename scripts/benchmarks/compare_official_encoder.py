"""Faithfulness check: the official pixelSplat encoder and ours, with the same random weights and inputs.

    python scripts/benchmarks/compare_official_encoder.py --official-repo PATH --dino-repo PATH \
        [--rasterizer-repo PATH] [--size 128] [--views 2] [--float64]

The official checkout decides the architecture: dcharatan/pixelsplat at 32b1b66 is the camera-ready one, at
787a889 the original codebase's (``EncoderConfig.architecture``, read by our conversion from the official
weights' names, as for a downloaded checkpoint). With ``--views 3`` (camera-ready only) both add their learned
view embeddings in a random order: every order is compared, given to both.

Prints, for deterministic and stochastic encoding, the fraction of Gaussians whose means and covariances
agree to 1e-4 (relative), the largest opacity difference, and the largest difference of the SH colours
(degrees 0-3, after the renderer's +0.5 and clamp) over random directions: the official Gaussians' colours as
the official renderer computes them against ours through gsplat's basis. With --rasterizer-repo (a checkout
of dcharatan/diff-gaussian-rasterization-modified) the official colours come from its forward kernel's
``computeColorFromSH``, compiled for the CPU, and ours are shown with both conventions of SH coefficient 14
(``EncoderConfig.sh_coefficient_14``); without it, from the consistent 3DGS formula at (d.z, d.x, d.y). With
--float64 both run in double precision as well, which separates implementation differences from float32
rounding: the official code's own float32 results are compared with its float64 results as a yardstick.
The official code needs its own requirements (e3nn, omegaconf, dacite) in the environment.
"""

import argparse
import contextlib
import copy
import itertools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from official_encoder import (  # noqa: E402
    as_views,
    example_inputs,
    import_official,
    official_kernel_colours,
    ours_from,
    randomize_batch_norm,
)

from pixelsplat_ns.encoder.config import with_sh_convention  # noqa: E402
from pixelsplat_ns.render.spherical_harmonics import sh_basis  # noqa: E402

DIRECTIONS = torch.nn.functional.normalize(torch.randn(64, 3, generator=torch.Generator().manual_seed(2)), dim=-1)
OFFICIAL_KERNEL = None
"""``official_kernel_colours(--rasterizer-repo)``, when given."""


def relative_error(ours: torch.Tensor, official: torch.Tensor) -> torch.Tensor:
    ours, official = ours.double().flatten(2), official.double().flatten(2)
    return (ours - official).norm(dim=-1) / official.norm(dim=-1).clamp(min=1e-30)


def colour(harmonics, directions, official_layout: bool):
    """SH colours (degrees 0-3, + 0.5, clamped at 0) over directions [b, g, d, 3]: the official renderer's way
    (its forward kernel, or the 3DGS basis at (d.z, d.x, d.y); harmonics [b, g, 3, 25]) or gsplat's
    ([b, g, 25, 3] at d)."""
    if not official_layout:
        values = torch.einsum("dk,bgkc->bgdc", sh_basis(3, directions).to(harmonics), harmonics[:, :, :16])
        return (values + 0.5).clamp(min=0)
    if OFFICIAL_KERNEL is None:
        basis = sh_basis(3, directions[:, [2, 0, 1]]).to(harmonics)
        return (torch.einsum("dk,bgck->bgdc", basis, harmonics[..., :16]) + 0.5).clamp(min=0)
    shs = harmonics.transpose(-1, -2).flatten(0, 1)  # [b g, 25, 3]: the kernel's layout
    per_direction = [OFFICIAL_KERNEL(d.expand(len(shs), 3), torch.zeros(3), shs, 3) for d in directions.float()]
    return torch.stack(per_direction, dim=1).unflatten(0, harmonics.shape[:2]).to(harmonics)


@contextlib.contextmanager
def view_order(order):
    """``torch.randperm`` answers ``order`` (both encoders draw their view embeddings' order with it)."""
    if order is None:
        yield
        return
    randperm = torch.randperm
    torch.randperm = lambda n, *args, device=None, **kwargs: torch.tensor(order, device=device)  # type: ignore
    try:
        yield
    finally:
        torch.randperm = randperm


def encode_both(official, ours, inputs, deterministic: bool, order=None):
    with torch.no_grad(), view_order(order):
        torch.manual_seed(1)  # both draw their depth bins from the global generator, in the same order
        g_official = official(inputs, 0, deterministic=deterministic)
        torch.manual_seed(1)
        g_ours = ours.encode(as_views(inputs), deterministic=deterministic)
    return g_official, g_ours


def report(label: str, g_official, g_other, other_is_official: bool = False) -> None:
    means = relative_error(g_other.means, g_official.means)
    covariances = relative_error(g_other.covariances, g_official.covariances)
    opacity = (g_other.opacities - g_official.opacities).abs().max()
    directions = DIRECTIONS.to(g_official.means)
    difference = colour(g_other.harmonics, directions, other_is_official) - colour(
        g_official.harmonics, directions, True
    )
    print(
        f"{label:<30} means {float((means < 1e-4).float().mean()):.5f}  covariances "
        f"{float((covariances < 1e-4).float().mean()):.5f}  opacity {float(opacity):.1e}  "
        f"SH colour {float(difference.abs().max()):.1e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official-repo", type=Path, required=True, help="checkout of dcharatan/pixelsplat")
    parser.add_argument("--dino-repo", type=Path, required=True, help="checkout of facebookresearch/dino")
    parser.add_argument(
        "--rasterizer-repo",
        type=Path,
        default=None,
        help="checkout of dcharatan/diff-gaussian-rasterization-modified: colours from its kernel",
    )
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--views", type=int, default=2, help="context views (3: the 3-view model, camera-ready)")
    parser.add_argument("--float64", action="store_true", help="also compare in double precision")
    args = parser.parse_args()
    global OFFICIAL_KERNEL
    if args.rasterizer_repo is not None:
        OFFICIAL_KERNEL = official_kernel_colours(args.rasterizer_repo)

    torch.manual_seed(0)
    official = import_official(args.official_repo, args.dino_repo, args.views)()
    randomize_batch_norm(official)
    official.eval()
    ours = ours_from(official)
    inputs = example_inputs(args.size, args.views)
    print(
        f"ours: architecture {ours.config.architecture}, {ours.config.num_context_views} context views "
        f"(read from the official weights' names)"
    )
    print(
        f"fractions of Gaussians within 1e-4 relative, largest absolute differences; "
        f"{args.views} x {args.size} x {args.size}"
    )
    kernel = "the official forward kernel" if OFFICIAL_KERNEL else "the consistent 3DGS formula (no --rasterizer-repo)"
    print(f"official colours from {kernel}; ours with SH coefficient 14 = {ours.config.sh_coefficient_14}")
    orders = list(itertools.permutations(range(args.views - 1))) if args.views > 2 else [None]
    for order in orders:
        suffix = f", views {list(order)}" if order is not None else ""
        for deterministic in (True, False):
            report(
                f"float32, {'det.' if deterministic else 'stoch.'}{suffix}",
                *encode_both(official, ours, inputs, deterministic, order),
            )
    consistent = copy.deepcopy(ours)
    consistent.config = with_sh_convention(ours.config, coefficient_14="consistent")
    report("float32, det., consistent 14", *encode_both(official, consistent, inputs, True, orders[0]))
    if not args.float64:
        return

    official32, ours32 = encode_both(official, ours, inputs, True, orders[0])
    # The official code creates some float32 constants explicitly: run it with float64 as the default.
    torch.set_default_dtype(torch.float64)
    make_tensor = torch.tensor
    torch.tensor = lambda data, *a, dtype=None, **k: make_tensor(  # noqa: E731
        data, *a, dtype=torch.float64 if dtype == torch.float32 else dtype, **k
    )
    official64, ours64 = copy.deepcopy(official).double(), copy.deepcopy(ours).double()
    inputs64 = {k: v.double() for k, v in inputs.items()}
    for order in orders:
        suffix = f", views {list(order)}" if order is not None else ""
        report(f"float64, det.{suffix}", *encode_both(official64, ours64, inputs64, True, order))
    g_official64, _ = encode_both(official64, ours64, inputs64, True, orders[0])
    report("official float32 vs float64", g_official64, official32, other_is_official=True)
    report("ours float32 vs official f64", g_official64, ours32)


if __name__ == "__main__":
    main()
