"""Configuration of ``ns-train pixelsplat``: its datamanager, model and pipeline (tyro turns them into flags).

Imported by every ``ns-*`` command through ``pixelsplat_ns.methods``: dataclasses, and the light datamanager
class; the model and the pipeline are imported when nerfstudio instantiates them (``lazy_target``).
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Literal, Optional, Tuple, Type, Union

from nerfstudio.data.datamanagers.full_images_datamanager import FullImageDatamanagerConfig
from nerfstudio.models.splatfacto import SplatfactoModelConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from tyro.conf import Suppress

from pixelsplat_ns.encoder.compute import ComputeOptions
from pixelsplat_ns.nerfstudio_compat.lazy_targets import lazy_target
from pixelsplat_ns.per_scene.datamanager import PixelSplatDataManager


@dataclass
class PixelSplatDataManagerConfig(FullImageDatamanagerConfig):
    """Full images from any nerfstudio dataparser; some of the training images are the encoder's context."""

    # The class itself, not a lazy_target: ns-render patches setup_train on it (_disable_datamanager_setup).
    _target: Type = field(default_factory=lambda: PixelSplatDataManager)
    context_views: Optional[Tuple[int, ...]] = None
    """Indices (into the training images, in the dataparser's order) of the context views; default: the pair
    with the widest baseline among pairs whose viewing directions differ by at most max-context-angle."""
    max_context_angle: float = 30.0
    """Largest angle in degrees between the viewing directions of automatically chosen context views."""
    context_pairs: Union[int, Literal["auto"]] = 1
    """Context groups the scene is predicted from: 1, the paper's single pair (or the given context views); N,
    pairs (triples, for a 3-view model) along the capture, each encoded on its own and fused into one scene
    (--pipeline.model.context-fusion); auto, the fewest groups along the capture whose views are within
    max-context-angle and max-baseline-to-depth of each other."""
    max_baseline_to_depth: float = 0.3
    """With context-pairs auto: the largest distance between a group's views, as a share of the scene's median
    depth: triangulated from the features matched between the end views of 8 equal stretches of the capture
    (OpenCV SIFT, the given cameras), or predicted by the encoder from the automatic pair where fewer than 10 features
    triangulate (pixelSplat's training pairs overlap at such baselines)."""


@dataclass
class PixelSplatModelConfig(SplatfactoModelConfig):
    """A splatfacto model holding pixelSplat's predicted Gaussians; refinement is plain gradient descent on the
    target views, without densification or culling."""

    _target: Type = field(default_factory=lambda: lazy_target("pixelsplat_ns.per_scene.model:PixelSplatModel"))
    encoder_checkpoint: Optional[Path] = None
    """Encoder weights: an official .ckpt, a converted .pt, or a pixelsplat-pretrain run's config.yml or
    step-*.ckpt. Default: the bundled tiny encoder (trained on synthetic rooms at 144 x 256: a demo, not the
    paper's quality; use the official re10k.ckpt for real scenes)."""
    context_short_side: Optional[int] = None
    """Shorter side in pixels (a multiple of 16) of the context images the encoder sees; the other side keeps
    the aspect ratio. Default: the size the encoder was trained at (official checkpoints: 256)."""
    deterministic: bool = False
    """Take each pixel's most likely depth bin (1 Gaussian per pixel) instead of drawing bins as the paper does."""
    prediction_seed: int = 0
    """Seed of the depth-bin draws."""
    sh_rotation: Literal["official", "frame_independent"] = "frame_independent"
    """How view-dependent colour is rotated from each context camera to the world: exactly, so that it depends
    only on the direction relative to the camera, whatever frame the dataparser chose; or "official", as the
    official code does it, which makes it depend on that frame (docs/faithfulness.md)."""
    sh_coefficient_14: Optional[Literal["official_forward_kernel", "consistent"]] = None
    """Degree-3 SH coefficient 14: as the official renderer's forward kernel draws it ("official_forward_kernel",
    the default for official checkpoints) or the consistent basis function. Default: the encoder's own."""
    encoder_compute: ComputeOptions = ComputeOptions()
    """How the encoder computes (the same function with other arithmetic; not saved with its weights)."""
    refine_encoder: bool = False
    """Refine the encoder's weights on the target views instead of the Gaussians: they are predicted anew at
    every step, and the scene keeps the prediction the last step rendered (one update behind the weights)."""
    background_color: Literal["random", "black", "white"] = "black"
    """Background of renders and of RGBA images (pixelSplat is trained on black)."""
    sh_degree: int = 3
    """SH degrees kept from the prediction (the paper renders degrees 0-3 of the predicted 0-4)."""
    context_fusion: Literal["deduplicate", "concatenate"] = "deduplicate"
    """With several context groups: of two pixel rays (their Gaussians) of different groups that describe the
    same surface keep the more opaque, whole (pixelsplat_ns/per_scene/fusion.py), or concatenate all of them
    (the paper's rule within one group)."""
    fusion_depth_tolerance: float = 1.0
    """Two groups' pixel rays describe the same surface when their depths agree within a factor 1 + this,
    either way (pixelsplat_ns/per_scene/fusion.py). The default, 1.0 (a factor 2), is chosen for the bundled
    encoder, whose depth of one pixel varies a lot between partner views (docs/captures.md); a more
    consistent encoder can take less."""
    output_depth_during_training: bool = False
    """Also render depth during refinement (it is always rendered for evaluation and the viewer)."""
    cpu_allocator_tuning: bool = True
    """On the CPU, let glibc keep freed blocks of up to 64 MB for the next step or frame instead of returning
    them to the system (pixelsplat_ns/per_scene/cpu_allocator.py): a step reuses the last step's pages instead
    of faulting fresh ones in, for more resident memory (docs/benchmarks.md). Set for the whole process at its
    first CPU render (False cannot undo it there); no effect on any result, nor elsewhere than on Linux's glibc."""

    # splatfacto's schedules, densification, culling and extra losses do not apply to a predicted scene:
    # fixed here (and hidden from the CLI) so that every inherited method reads a value. num_downscales 0:
    # refinement renders at full resolution from the first step.
    num_downscales: Suppress[int] = 0
    warmup_length: Suppress[int] = 500
    refine_every: Suppress[int] = 100
    resolution_schedule: Suppress[int] = 3000
    cull_alpha_thresh: Suppress[float] = 0.1
    cull_scale_thresh: Suppress[float] = 0.5
    reset_alpha_every: Suppress[int] = 30
    densify_grad_thresh: Suppress[float] = 0.0008
    use_absgrad: Suppress[bool] = True
    densify_size_thresh: Suppress[float] = 0.01
    n_split_samples: Suppress[int] = 2
    sh_degree_interval: Suppress[int] = 1000
    cull_screen_size: Suppress[float] = 0.15
    split_screen_size: Suppress[float] = 0.05
    stop_screen_size_at: Suppress[int] = 4000
    random_init: Suppress[bool] = False
    num_random: Suppress[int] = 50000
    random_scale: Suppress[float] = 10.0
    ssim_lambda: Suppress[float] = 0.0
    stop_split_at: Suppress[int] = 15000
    use_scale_regularization: Suppress[bool] = False
    max_gauss_ratio: Suppress[float] = 10.0
    rasterize_mode: Suppress[Literal["classic", "antialiased"]] = "classic"
    use_bilateral_grid: Suppress[bool] = False
    grid_shape: Suppress[Tuple[int, int, int]] = (16, 16, 8)
    color_corrected_metrics: Suppress[bool] = False
    # nerfstudio's ray-based models' options, which a splat model does not read.
    enable_collider: Suppress[bool] = False
    collider_params: Suppress[Optional[Dict[str, float]]] = None
    loss_coefficients: Suppress[Dict[str, float]] = field(default_factory=dict)
    eval_num_rays_per_chunk: Suppress[int] = 4096
    prompt: Suppress[Optional[str]] = None


@dataclass
class PixelSplatPipelineConfig(VanillaPipelineConfig):
    """Predicts the scene when training starts, then refines it like any nerfstudio method."""

    _target: Type = field(default_factory=lambda: lazy_target("pixelsplat_ns.per_scene.pipeline:PixelSplatPipeline"))
    datamanager: PixelSplatDataManagerConfig = field(default_factory=PixelSplatDataManagerConfig)
    model: PixelSplatModelConfig = field(default_factory=PixelSplatModelConfig)
