"""PSNR, SSIM and LPIPS exactly as the paper computes them (official ``src/evaluation/metrics.py``).

Each returns one value per image; the paper's table averages them over all target images. nerfstudio's own
metrics (torchmetrics, AlexNet LPIPS, batch PSNR) give different numbers and must not be mixed in.
"""

from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor

VGG16_WEIGHTS = "vgg16-397923af.pth"
"""torchvision's ImageNet VGG-16 weights, which LPIPS(net="vgg") loads as its trunk."""


@torch.no_grad()
def psnr(
    ground_truth: Float[Tensor, "batch 3 height width"], predicted: Float[Tensor, "batch 3 height width"]
) -> Float[Tensor, " batch"]:
    """Per-image PSNR on images clipped to [0, 1] (identical images give +inf, as in the official code)."""
    error = (ground_truth.clip(0, 1) - predicted.clip(0, 1)) ** 2
    return -10 * error.flatten(1).mean(dim=1).log10()


@torch.no_grad()
def ssim(
    ground_truth: Float[Tensor, "batch 3 height width"], predicted: Float[Tensor, "batch 3 height width"]
) -> Float[Tensor, " batch"]:
    """Per-image SSIM from scikit-image with an 11x11 Gaussian window (sigma 1.5), data range 1."""
    from skimage.metrics import structural_similarity

    values = [
        structural_similarity(
            gt.detach().cpu().numpy(),
            hat.detach().cpu().numpy(),
            win_size=11,
            gaussian_weights=True,
            channel_axis=0,
            data_range=1.0,
        )
        for gt, hat in zip(ground_truth, predicted)
    ]
    return torch.tensor(values, dtype=predicted.dtype, device=predicted.device)


def load_lpips_vgg(device: torch.device | str = "cpu") -> torch.nn.Module:
    """The paper's LPIPS: ``lpips.LPIPS(net="vgg")``. Its linear layers ship with the ``lpips`` package;
    the VGG-16 trunk comes from torchvision, which downloads it on first use. Without network access, put
    ``vgg16-397923af.pth`` into torch hub's checkpoint folder (the error names it)."""
    try:
        import lpips
    except ImportError as error:
        raise ImportError("LPIPS needs the `lpips` package: pip install lpips==0.1.4") from error
    try:
        model = lpips.LPIPS(net="vgg", verbose=False)
    except OSError as error:  # urllib's URLError and HTTPError are OSErrors
        target = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_WEIGHTS
        raise RuntimeError(
            f"LPIPS(net='vgg') needs torchvision's ImageNet VGG-16 weights, which could not be downloaded "
            f"({error}). Copy {VGG16_WEIGHTS} (from https://download.pytorch.org/models/{VGG16_WEIGHTS}) "
            f"to {target} (set TORCH_HOME to use another folder) and run again."
        ) from error
    return model.to(device).eval()


@torch.no_grad()
def lpips_distance(
    model: torch.nn.Module,
    ground_truth: Float[Tensor, "batch 3 height width"],
    predicted: Float[Tensor, "batch 3 height width"],
) -> Float[Tensor, " batch"]:
    """Per-image LPIPS for images in [0, 1] (``normalize=True`` maps them to [-1, 1] inside LPIPS)."""
    return model(ground_truth, predicted, normalize=True)[:, 0, 0, 0]
