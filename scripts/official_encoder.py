"""Build the official pixelSplat encoder from a checkout the user provides, next to ours with the same weights.

Nothing of the official code is part of this project: it is imported at run time from ``--official-repo``
(a checkout of dcharatan/pixelsplat at 32b1b66) and ``--dino-repo`` (facebookresearch/dino, for its
``vision_transformer.py``, since torch hub is offline here). Their training-only imports (Lightning, wandb,
...) are replaced by empty stand-ins. Used by compare_official_encoder.py and benchmark_encoder.py.
"""

import sys
import types
from pathlib import Path

import torch
import torchvision

from pixelsplat_ns.encoder import PixelSplatEncoder, Views, prepare_views
from pixelsplat_ns.encoder.checkpoints import convert_official

TRAINING_ONLY_MODULES = [
    "lightning", "lightning.pytorch", "lightning.pytorch.loggers", "lightning.pytorch.loggers.wandb",
    "lightning.pytorch.utilities", "lightning.pytorch.utilities.types", "wandb", "moviepy", "moviepy.editor",
    "colorspacious", "svg",
]


class _StandIn(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (torch.nn.Module,), {})


def import_official(official_repo: Path, dino_repo: Path, num_views: int):
    """A builder of the official EncoderEpipolar (paper configuration), with DINO models built locally."""
    for name in TRAINING_ONLY_MODULES:
        sys.modules.setdefault(name, _StandIn(name))
    sys.path[:0] = [str(official_repo), str(dino_repo)]
    import src.global_cfg as global_cfg  # noqa: E402  (from the user's checkout)
    import vision_transformer as dino_vit  # noqa: E402

    view_sampler = types.SimpleNamespace(num_context_views=num_views)
    global_cfg.set_cfg(types.SimpleNamespace(dataset=types.SimpleNamespace(view_sampler=view_sampler)))

    def hub_load(repo, model, **kwargs):
        if model == "dino_vitb8":
            return dino_vit.vit_base(patch_size=8)
        if model == "dino_resnet50":
            resnet = torchvision.models.resnet50()
            resnet.fc = torch.nn.Identity()
            return resnet
        raise ValueError(f"unexpected hub model {model}")

    torch.hub.load = hub_load
    from src.model.encoder.backbone.backbone_dino import BackboneDinoCfg  # noqa: E402
    from src.model.encoder.common.gaussian_adapter import GaussianAdapterCfg  # noqa: E402
    from src.model.encoder.encoder_epipolar import EncoderEpipolar, EncoderEpipolarCfg, OpacityMappingCfg  # noqa: E402
    from src.model.encoder.epipolar.epipolar_transformer import EpipolarTransformerCfg  # noqa: E402
    from src.model.encoder.epipolar.image_self_attention import ImageSelfAttentionCfg  # noqa: E402
    from src.model.encoder.visualization.encoder_visualizer_epipolar_cfg import EncoderVisualizerEpipolarCfg  # noqa: E402

    # config/model/encoder/epipolar.yaml with backbone/dino.yaml: the paper's configuration.
    config = EncoderEpipolarCfg(
        name="epipolar", d_feature=128, num_monocular_samples=32, num_surfaces=1, predict_opacity=False,
        backbone=BackboneDinoCfg("dino", "dino_vitb8", 512), visualizer=EncoderVisualizerEpipolarCfg(8, 256, False),
        near_disparity=3.0, gaussian_adapter=GaussianAdapterCfg(0.5, 15.0, 4), apply_bounds_shim=True,
        epipolar_transformer=EpipolarTransformerCfg(
            ImageSelfAttentionCfg(4, 10, 2, 4, 128, 128, 256), 10, 2, 4, 32, 128, 256, 4
        ),
        opacity_mapping=OpacityMappingCfg(0.0, 0.0, 1), gaussians_per_pixel=3, use_epipolar_transformer=True,
        use_transmittance=False,
    )
    return lambda: EncoderEpipolar(config)


def randomize_batch_norm(module: torch.nn.Module) -> None:
    """Random running statistics and affine terms, so that eval-mode batch norm is not an identity."""
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)


def ours_from(official: torch.nn.Module) -> PixelSplatEncoder:
    config, state_dict = convert_official({"state_dict": {"encoder." + k: v for k, v in official.state_dict().items()}})
    encoder = PixelSplatEncoder(config)
    encoder.load_state_dict(state_dict)
    return encoder.eval()


def example_inputs(size: int, views: int, seed: int = 0) -> dict:
    """Random images and RealEstate10k-like cameras (a sideways baseline with a little rotation), with the
    paper's near/far rule."""
    generator = torch.Generator().manual_seed(seed)
    extrinsics = torch.eye(4).repeat(1, views, 1, 1)
    for i, angle in enumerate(torch.linspace(-0.1, 0.1, views)):
        c, s = torch.cos(angle), torch.sin(angle)
        extrinsics[0, i, :3, :3] = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        extrinsics[0, i, :3, 3] = torch.tensor([0.5 * i - 0.25 * (views - 1), 0.05 * i, 0.1 * i])
    intrinsics = torch.tensor([[0.86, 0, 0.52], [0, 0.9, 0.47], [0, 0, 1.0]]).repeat(1, views, 1, 1)
    images = torch.rand(1, views, 3, size, size, generator=generator)
    context, _ = prepare_views(images[0], extrinsics[0], intrinsics[0], range(views), make_baseline_1=False)
    context = context.batched()
    return {"image": context.images, "extrinsics": context.extrinsics, "intrinsics": context.intrinsics,
            "near": context.near, "far": context.far}


def as_views(inputs: dict) -> Views:
    """The official code's context batch (a dict) as the ``Views`` our encoder takes."""
    return Views(inputs["image"], inputs["extrinsics"], inputs["intrinsics"], inputs["near"], inputs["far"])
