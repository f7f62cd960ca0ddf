"""Build the official pixelSplat encoder from a checkout the user provides, next to ours with the same weights.

Nothing of the official code is part of this project: it is imported at run time from ``--official-repo``
(a checkout of dcharatan/pixelsplat: at 32b1b66 for the camera-ready architecture, at 787a889 for the
original codebase's) and ``--dino-repo`` (facebookresearch/dino, for its
``vision_transformer.py``, since torch hub is offline here). Their training-only imports (Lightning, wandb,
...) are replaced by empty stand-ins. Used by compare_official_encoder.py and benchmark_encoder.py.
"""

import sys
import types
from pathlib import Path

import torch
import torchvision

from pixelsplat_ns.checkpoints import convert_official
from pixelsplat_ns.core.views import Views, prepare_views
from pixelsplat_ns.encoder import PixelSplatEncoder

TRAINING_ONLY_MODULES = [
    "lightning",
    "lightning.pytorch",
    "lightning.pytorch.loggers",
    "lightning.pytorch.loggers.wandb",
    "lightning.pytorch.utilities",
    "lightning.pytorch.utilities.types",
    "lightning_fabric",
    "lightning_fabric.utilities",
    "lightning_fabric.utilities.apply_func",
    "pytorch_lightning",  # the original codebase (787a889) imports Lightning under its older name
    "pytorch_lightning.callbacks",
    "pytorch_lightning.loggers",
    "pytorch_lightning.loggers.logger",
    "pytorch_lightning.loggers.wandb",
    "pytorch_lightning.utilities",
    "wandb",
    "moviepy",
    "moviepy.editor",
    "colorspacious",
    "svg",
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
        name="epipolar",
        d_feature=128,
        num_monocular_samples=32,
        num_surfaces=1,
        predict_opacity=False,
        backbone=BackboneDinoCfg("dino", "dino_vitb8", 512),
        visualizer=EncoderVisualizerEpipolarCfg(8, 256, False),
        near_disparity=3.0,
        gaussian_adapter=GaussianAdapterCfg(0.5, 15.0, 4),
        apply_bounds_shim=True,
        epipolar_transformer=EpipolarTransformerCfg(
            ImageSelfAttentionCfg(4, 10, 2, 4, 128, 128, 256), 10, 2, 4, 32, 128, 256, 4
        ),
        opacity_mapping=OpacityMappingCfg(0.0, 0.0, 1),
        gaussians_per_pixel=3,
        use_epipolar_transformer=True,
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
    return {
        "image": context.images,
        "extrinsics": context.extrinsics,
        "intrinsics": context.intrinsics,
        "near": context.near,
        "far": context.far,
    }


def as_views(inputs: dict) -> Views:
    """The official code's context batch (a dict) as the ``Views`` our encoder takes."""
    return Views(inputs["image"], inputs["extrinsics"], inputs["intrinsics"], inputs["near"], inputs["far"])


_KERNEL_HARNESS = r"""
#include <torch/extension.h>
#include <algorithm>
#include <cmath>
#define __device__
#define __forceinline__ inline
namespace glm {
struct vec3 {
    float x, y, z;
    vec3() : x(0), y(0), z(0) {}
    vec3(float a, float b, float c) : x(a), y(b), z(c) {}
};
inline vec3 operator+(vec3 a, vec3 b) { return vec3(a.x + b.x, a.y + b.y, a.z + b.z); }
inline vec3 operator-(vec3 a, vec3 b) { return vec3(a.x - b.x, a.y - b.y, a.z - b.z); }
inline vec3 operator*(float s, vec3 a) { return vec3(s * a.x, s * a.y, s * a.z); }
inline vec3 operator*(vec3 a, float s) { return s * a; }
inline vec3 operator/(vec3 a, float s) { return vec3(a.x / s, a.y / s, a.z / s); }
inline vec3& operator+=(vec3& a, float s) { a.x += s; a.y += s; a.z += s; return a; }
inline float length(vec3 a) { return std::sqrt(a.x * a.x + a.y * a.y + a.z * a.z); }
inline vec3 max(vec3 a, float s) { return vec3(std::max(a.x, s), std::max(a.y, s), std::max(a.z, s)); }
}  // namespace glm
// ---- SH constants and computeColorFromSH, taken at run time from the official checkout ----
%s
%s
// ----
torch::Tensor colours(torch::Tensor means, torch::Tensor campos, torch::Tensor shs, int64_t degree) {
    const int64_t n = means.size(0), max_coeffs = shs.size(1);
    auto out = torch::empty({n, 3}, means.options());
    std::vector<char> clamped(3 * n);
    const auto* m = reinterpret_cast<const glm::vec3*>(means.data_ptr<float>());
    const float* c = campos.data_ptr<float>();
    float* o = out.data_ptr<float>();
    for (int64_t i = 0; i < n; ++i) {
        glm::vec3 rgb = computeColorFromSH((int)i, (int)degree, (int)max_coeffs, m, glm::vec3(c[0], c[1], c[2]),
                                           shs.data_ptr<float>(), reinterpret_cast<bool*>(clamped.data()));
        o[3 * i] = rgb.x; o[3 * i + 1] = rgb.y; o[3 * i + 2] = rgb.z;
    }
    return out;
}
"""


def official_kernel_colours(rasterizer_repo: Path):
    """The official renderer's ``computeColorFromSH`` (``cuda_rasterizer/forward.cu`` of a checkout of
    dcharatan/diff-gaussian-rasterization-modified), compiled for the CPU: nothing of it is part of this
    project; it is read from the user's checkout at run time.

    Returns ``colours(means [n, 3], campos [3], shs [n, k, 3], degree) -> [n, 3]``, float32, with the
    kernel's +0.5 and clamp at 0, each Gaussian seen from ``campos``."""
    import re

    from torch.utils.cpp_extension import load_inline

    source = Path(rasterizer_repo, "cuda_rasterizer")
    constants = "\n".join(
        re.findall(
            r"__device__ const float SH_C\d\s*(?:\[\])?\s*=.*?;", (source / "auxiliary.h").read_text(), flags=re.S
        )
    )
    forward = (source / "forward.cu").read_text()
    start = forward.index("__device__ glm::vec3 computeColorFromSH(")
    body = forward.index("{", start)
    depth, end = 0, body
    for end in range(body, len(forward)):  # the function's text, to its matching brace
        depth += {"{": 1, "}": -1}.get(forward[end], 0)
        if depth == 0:
            break
    function = forward[start : end + 1]
    module = load_inline(
        "official_sh_kernel",
        _KERNEL_HARNESS % (constants, function),
        functions=["colours"],
        extra_cflags=["-O2"],
        verbose=False,
    )
    return lambda means, campos, shs, degree: module.colours(
        means.float().contiguous(), campos.float().contiguous(), shs.float().contiguous(), degree
    )
