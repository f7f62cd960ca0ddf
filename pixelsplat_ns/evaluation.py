"""The paper's evaluation: encode each scene's context views, render its target views, score them.

Follows the official test loop: the context pair sets the scale (its baseline becomes 1) and the near/far
planes (the paper's rule, applied to the context views and used for the targets too); depth bins are drawn
stochastically as in the paper's numbers; the background is black; the official renderer used SH degrees
0-3; metrics are the paper's (``pixelsplat_ns.metrics``), averaged over all target images.
"""

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import torch
from jaxtyping import Float
from torch import Tensor

from pixelsplat_ns.data.cameras import denormalize_intrinsics
from pixelsplat_ns.data.samplers import read_evaluation_index
from pixelsplat_ns.data.scene import load_scene
from pixelsplat_ns.encoder import Gaussians, PixelSplatEncoder
from pixelsplat_ns.metrics import lpips_distance, psnr, ssim
from pixelsplat_ns.render import rasterize

RENDERED_SH_DEGREE = 3  # the official (Inria-based) renderer evaluates degrees 0-3 of the predicted 4


def render_gaussians(
    gaussians: Gaussians,
    extrinsics: Float[Tensor, "b v 4 4"],
    intrinsics: Float[Tensor, "b v 3 3"],
    near: Float[Tensor, "b v"],
    image_shape: tuple[int, int],
    background: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> Float[Tensor, "b v 3 h w"]:
    """Render encoder output into views given in the encoder's conventions (camera-to-world OpenCV,
    normalized intrinsics). Gaussians closer than 0.2 x near are culled, as the official renderer's frustum
    test does after it rescales the scene so that near is 1."""
    h, w = image_shape
    images = []
    for i in range(extrinsics.shape[0]):
        views = extrinsics.shape[1]
        color, _, _ = rasterize(
            gaussians.means[i], None, None, gaussians.opacities[i], gaussians.harmonics[i],
            torch.linalg.inv(extrinsics[i]), denormalize_intrinsics(intrinsics[i], w, h), w, h,
            near_plane=0.2 * float(near[i].min()), sh_degree=RENDERED_SH_DEGREE,
            backgrounds=torch.tensor(background, device=extrinsics.device).expand(views, 3),
            covars=gaussians.covariances[i],
        )
        images.append(color.permute(0, 3, 1, 2))
    return torch.stack(images)


@dataclass
class EvaluationConfig:
    image_shape: tuple[int, int] = (256, 256)
    split: str = "test"
    crop_intrinsics: str = "official"
    """'official' reproduces the official crop (fx, fy rescaled, cx, cy kept); 'exact' is geometrically exact."""
    deterministic: bool = False
    """The paper's numbers draw depth bins stochastically; True takes each pixel's most likely bin."""
    limit: Optional[int] = None
    """Evaluate only the first N scenes of the index."""
    seed: int = 0


@dataclass
class SceneResult:
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    lpips: list[float] = field(default_factory=list)
    encode_seconds: float = 0.0
    render_seconds: float = 0.0  # per target view


def evaluate_scene(
    encoder: PixelSplatEncoder, root: Path, key: str, context: tuple[int, ...], target: tuple[int, ...],
    config: EvaluationConfig, lpips_model: Optional[torch.nn.Module], device: torch.device,
) -> SceneResult:
    n = len(context)
    views = load_scene(root, config.split, key, list(context) + list(target), config.image_shape,
                       make_baseline_1=True, crop_intrinsics=config.crop_intrinsics, context=range(n))
    batch = {name: views[name][None].to(device) for name in ("image", "extrinsics", "intrinsics", "near", "far")}

    result = SceneResult()
    synchronize(device)
    start = time.perf_counter()
    with torch.no_grad():
        gaussians = encoder.encode(*(batch[name][:, :n] for name in ("image", "extrinsics", "intrinsics", "near", "far")),
                                   deterministic=config.deterministic)
        synchronize(device)
        result.encode_seconds = time.perf_counter() - start
        start = time.perf_counter()
        rendered = render_gaussians(gaussians, batch["extrinsics"][:, n:], batch["intrinsics"][:, n:],
                                    batch["near"][:, n:], config.image_shape)[0].clamp(0, 1)
        synchronize(device)
        result.render_seconds = (time.perf_counter() - start) / len(target)
    truth = views["image"][n:].to(device)
    result.psnr = psnr(truth, rendered).tolist()
    result.ssim = ssim(truth, rendered).tolist()
    if lpips_model is not None:
        result.lpips = lpips_distance(lpips_model, truth, rendered).tolist()
    return result


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def evaluate(
    encoder: PixelSplatEncoder, root: Path, index_path: Path, config: EvaluationConfig,
    lpips_model: Optional[torch.nn.Module] = None, progress: Optional[callable] = None,
) -> dict:
    """Per-scene and mean metrics over the evaluation index (scenes mapped to null are skipped, as officially)."""
    device = next(encoder.parameters()).device
    torch.manual_seed(config.seed)
    entries = [(k, e) for k, e in read_evaluation_index(index_path).items() if e is not None][: config.limit]
    scenes: dict[str, dict] = {}
    iterator: Iterable = progress(entries) if progress else entries
    for key, entry in iterator:
        result = evaluate_scene(encoder, root, key, entry.context, entry.target, config, lpips_model, device)
        scenes[key] = {name: value for name, value in vars(result).items()}
    return {"scenes": scenes, "mean": summarize(scenes), "peak_memory_gb": peak_memory_gb(device)}


def nearest_view_baseline(root: Path, index_path: Path, config: EvaluationConfig) -> dict:
    """The "copy the nearest context view" baseline: each target is predicted by the context image whose
    camera centre is closest to the target's. Scored like ``evaluate`` (LPIPS not computed)."""
    scenes: dict[str, dict] = {}
    entries = [(k, e) for k, e in read_evaluation_index(index_path).items() if e is not None][: config.limit]
    for key, entry in entries:
        n = len(entry.context)
        views = load_scene(root, config.split, key, list(entry.context) + list(entry.target), config.image_shape,
                           crop_intrinsics=config.crop_intrinsics)
        centres = views["extrinsics"][:, :3, 3]
        nearest = torch.cdist(centres[n:], centres[:n]).argmin(dim=1)
        predicted, truth = views["image"][:n][nearest], views["image"][n:]
        scenes[key] = {"psnr": psnr(truth, predicted).tolist(), "ssim": ssim(truth, predicted).tolist(), "lpips": [],
                       "encode_seconds": 0.0, "render_seconds": 0.0}
    return {"scenes": scenes, "mean": summarize(scenes)}


def summarize(scenes: dict[str, dict]) -> dict[str, Optional[float]]:
    """Means over all target images (metrics) and over scenes (times)."""
    def image_mean(name):
        values = [v for scene in scenes.values() for v in scene[name]]
        return sum(values) / len(values) if values else None

    def scene_mean(name):
        return sum(scene[name] for scene in scenes.values()) / len(scenes) if scenes else None

    return {"psnr": image_mean("psnr"), "ssim": image_mean("ssim"), "lpips": image_mean("lpips"),
            "encode_seconds": scene_mean("encode_seconds"), "render_seconds": scene_mean("render_seconds"),
            "scenes": len(scenes), "images": sum(len(s["psnr"]) for s in scenes.values())}


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
