"""DINO initialization: copied into the right places when available, a clear error when offline."""

import re
import urllib.error

import pytest
import torch
import torchvision

from pixelsplat_ns.checkpoints.dino import DINO_URLS, PretrainedWeightsUnavailable, load_dino_weights
from pixelsplat_ns.encoder import paper
from pixelsplat_ns.encoder.backbone import Backbone


def test_offline_download_fails_with_a_clear_message(monkeypatch):
    def offline(url, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(
        PretrainedWeightsUnavailable, match="could not download the DINO weights.*random initialization"
    ):
        load_dino_weights(Backbone(paper().backbone))


def test_dino_weights_land_in_the_backbone(monkeypatch):
    torch.manual_seed(0)
    source = Backbone(paper().backbone)
    vit = {
        re.sub(r"^blocks\.(\d+)\.", r"blocks.\1.attn.", k) if re.match(r"blocks\.\d+\.(qkv|proj)\.", k) else k: v
        for k, v in source.vit.state_dict().items()
    }
    resnet = torchvision.models.resnet50().state_dict()  # DINO's ResNet-50 is torchvision's, fc and layer4 included
    files = {DINO_URLS["vit"]: vit, DINO_URLS["resnet"]: resnet}
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda url, **kwargs: files[url])

    target = Backbone(paper().backbone)
    projection_before = target.resnet.projections[0].weight.clone()
    load_dino_weights(target)
    for key, value in source.vit.state_dict().items():
        assert torch.equal(target.vit.state_dict()[key], value), key
    assert torch.equal(target.resnet.layer3[0].conv2.weight, resnet["layer3.0.conv2.weight"])
    assert torch.equal(target.resnet.projections[0].weight, projection_before), (
        "pixelSplat's own layers stay as they were"
    )
