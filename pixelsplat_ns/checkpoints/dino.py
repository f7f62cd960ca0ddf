"""DINO initialization of the backbone for training from scratch, as the paper does (its code loads the
models from torch hub). Only on request, and only online: offline it fails with a message that says so."""

import re
import urllib.error

import torch

from pixelsplat_ns.encoder.backbone import Backbone

DINO_URLS = {
    "vit": "https://dl.fbaipublicfiles.com/dino/dino_vitbase8_pretrain/dino_vitbase8_pretrain.pth",
    "resnet": "https://dl.fbaipublicfiles.com/dino/dino_resnet50_pretrain/dino_resnet50_pretrain.pth",
}


class PretrainedWeightsUnavailable(RuntimeError):
    pass


def _download(url: str) -> dict:
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", weights_only=True, progress=False)
    except (urllib.error.URLError, OSError) as error:
        raise PretrainedWeightsUnavailable(
            f"could not download the DINO weights from {url} ({error}). Pretrained initialization needs the "
            "internet, or the file placed in torch hub's checkpoint folder "
            f"({torch.hub.get_dir()}/checkpoints); without it, train from random initialization."
        ) from error


def load_dino_weights(backbone: Backbone) -> None:
    """Copy DINO ViT-B/8 and DINO ResNet-50 weights into the paper-sized backbone (layer4 and fc unused)."""
    vit = {re.sub(r"^blocks\.(\d+)\.attn\.", r"blocks.\1.", k): v for k, v in _download(DINO_URLS["vit"]).items()}
    resnet = {k: v for k, v in _download(DINO_URLS["resnet"]).items() if not k.startswith(("layer4.", "fc."))}
    for module, weights, name in ((backbone.vit, vit, "ViT-B/8"), (backbone.resnet, resnet, "ResNet-50")):
        missing, unexpected = module.load_state_dict(weights, strict=False)
        missing = [k for k in missing if not k.startswith("projections.")]  # pixelSplat's own layers
        if missing or unexpected:
            raise PretrainedWeightsUnavailable(
                f"the DINO {name} weights do not fit this backbone (is it the paper preset?): "
                f"missing {missing[:10]}, unexpected {unexpected[:10]}"
            )
