"""The paper's evaluation: encode each scene's context views, render its target views, score them.

Follows the official test loop: the context pair sets the scale (its baseline becomes 1) and the near/far
planes (the paper's rule, applied to the context views and used for the targets too); depth bins are drawn
stochastically as in the paper's numbers; the background is black; the official renderer used SH degrees
0-3; metrics are the paper's (``pixelsplat_ns.metrics``), averaged over all target images.
"""

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

import torch

from pixelsplat_ns.core.crop import CropIntrinsics
from pixelsplat_ns.core.process_memory import peak_resident_bytes
from pixelsplat_ns.core.views import Views
from pixelsplat_ns.data.samplers import EvaluationViewSampler
from pixelsplat_ns.data.scene import read_scene, scene_views
from pixelsplat_ns.encoder import PixelSplatEncoder
from pixelsplat_ns.metrics import lpips_distance, psnr, ssim
from pixelsplat_ns.render import render_gaussians


@dataclass
class EvaluationConfig:
    image_shape: tuple[int, int] = (256, 256)
    split: str = "test"
    crop_intrinsics: CropIntrinsics = "official"
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


def load_index_scene(
    root: Path, key: str, sampler: EvaluationViewSampler, config: EvaluationConfig
) -> tuple[Views, int]:
    """A scene's indexed views (context first, then targets) as the encoder sees them, and the context count."""
    scene = read_scene(root, config.split, key)
    context, target = sampler.sample(key, len(scene))
    n = len(context)
    views = scene_views(
        scene,
        context.tolist() + target.tolist(),
        config.image_shape,
        make_baseline_1=True,
        crop_intrinsics=config.crop_intrinsics,
        context=range(n),
    )
    return views, n


def evaluate_scene(
    encoder: PixelSplatEncoder,
    views: Views,
    n: int,
    config: EvaluationConfig,
    lpips_model: Optional[torch.nn.Module],
    device: torch.device,
) -> SceneResult:
    """Encode the first ``n`` of one scene's views (made by ``prepare_views``, as ``load_index_scene`` makes
    them: their values are not checked again), render the others and score them."""
    views = views.to(device).batched()
    context, target = views.select((slice(None), slice(0, n))), views.select((slice(None), slice(n, None)))
    result = SceneResult()
    synchronize(device)
    start = time.perf_counter()
    with torch.no_grad():
        gaussians = encoder.encode_prepared(context, deterministic=config.deterministic)
        synchronize(device)
        result.encode_seconds = time.perf_counter() - start
        start = time.perf_counter()
        rendered = render_gaussians(gaussians, target.extrinsics, target.intrinsics, target.near, config.image_shape)[
            0
        ].clamp(0, 1)
        synchronize(device)
        result.render_seconds = (time.perf_counter() - start) / rendered.shape[0]
    truth = target.images[0]
    result.psnr = psnr(truth, rendered).tolist()
    result.ssim = ssim(truth, rendered).tolist()
    if lpips_model is not None:
        result.lpips = lpips_distance(lpips_model, truth, rendered).tolist()
    return result


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def evaluate(
    encoder: PixelSplatEncoder,
    root: Path,
    index_path: Path,
    config: EvaluationConfig,
    lpips_model: Optional[torch.nn.Module] = None,
    progress: Optional[Callable[[list[str]], Iterable[str]]] = None,
) -> dict:
    """Per-scene and mean metrics over the evaluation index (scenes mapped to null are skipped, as officially)."""
    device = next(encoder.parameters()).device
    torch.manual_seed(config.seed)
    sampler = EvaluationViewSampler(index_path, encoder.config.num_context_views)
    keys = [k for k, entry in sampler.index.items() if entry is not None][: config.limit]
    scenes: dict[str, dict] = {}
    iterator: Iterable = progress(keys) if progress else keys
    for key in iterator:
        views, n = load_index_scene(root, key, sampler, config)
        result = evaluate_scene(encoder, views, n, config, lpips_model, device)
        scenes[key] = {name: value for name, value in vars(result).items()}
    return {"scenes": scenes, "mean": summarize(scenes), "peak_memory_gb": peak_memory_gb(device)}


def nearest_view_baseline(root: Path, index_path: Path, config: EvaluationConfig) -> dict:
    """The "copy the nearest context view" baseline: each target is predicted by the context image whose
    camera centre is closest to the target's. Scored like ``evaluate`` (LPIPS not computed)."""
    sampler = EvaluationViewSampler(index_path)
    scenes: dict[str, dict] = {}
    for key in [k for k, entry in sampler.index.items() if entry is not None][: config.limit]:
        views, n = load_index_scene(root, key, sampler, config)
        centres = views.extrinsics[:, :3, 3]
        nearest = torch.cdist(centres[n:], centres[:n]).argmin(dim=1)
        predicted, truth = views.images[:n][nearest], views.images[n:]
        scenes[key] = {
            "psnr": psnr(truth, predicted).tolist(),
            "ssim": ssim(truth, predicted).tolist(),
            "lpips": [],
            "encode_seconds": 0.0,
            "render_seconds": 0.0,
        }
    return {"scenes": scenes, "mean": summarize(scenes)}


def summarize(scenes: dict[str, dict]) -> dict[str, Optional[float]]:
    """Means over all target images (metrics) and over scenes (times)."""

    def image_mean(name):
        values = [v for scene in scenes.values() for v in scene[name]]
        return sum(values) / len(values) if values else None

    def scene_mean(name):
        return sum(scene[name] for scene in scenes.values()) / len(scenes) if scenes else None

    return {
        "psnr": image_mean("psnr"),
        "ssim": image_mean("ssim"),
        "lpips": image_mean("lpips"),
        "encode_seconds": scene_mean("encode_seconds"),
        "render_seconds": scene_mean("render_seconds"),
        "scenes": len(scenes),
        "images": sum(len(s["psnr"]) for s in scenes.values()),
    }


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return peak_resident_bytes() / 2**30
