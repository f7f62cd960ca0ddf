"""What refinement optimizes after the prediction: the Gaussians themselves (the default), or the encoder's
weights (``--pipeline.model.refine-encoder True``). The model holds one of the two and asks it, at each step,
for its parameters and for what to draw."""

from typing import Optional

import torch

from pixelsplat_ns.core.gaussians import Gaussians

from .prediction import SceneEncoder
from .splats import Splats, prediction_splats


class GaussianRefinement:
    """Refine the predicted Gaussians: splatfacto's parameters, with its learning rates."""

    def param_groups(self, model) -> dict[str, list[torch.nn.Parameter]]:
        return model.get_gaussian_param_groups()

    def training_splats(self, model) -> Optional[Splats]:
        """Nothing of its own: the model draws its parameters."""
        return None

    def after_step(self, model, step: int) -> None:
        pass


class EncoderRefinement(torch.nn.Module):
    """Refine the encoder's weights on the target views: the Gaussians are predicted anew at every step, and
    after each step the model keeps the prediction that step rendered (one update behind the weights), so the
    viewer, the checkpoints and the post-training tools see Gaussians as always. Batch norm keeps its
    statistics (two context views are no batch): the encoder stays in eval mode."""

    def __init__(self, scene_encoder: SceneEncoder) -> None:
        super().__init__()
        self.scene_encoder = scene_encoder.eval()
        self._latest: Optional[Gaussians] = None

    def train(self, mode: bool = True) -> "EncoderRefinement":
        super().train(mode)
        self.scene_encoder.eval()
        return self

    def param_groups(self, model) -> dict[str, list[torch.nn.Parameter]]:
        return {"encoder": list(self.scene_encoder.parameters())}

    def training_splats(self, model) -> Splats:
        """A fresh prediction, differentiable with respect to the encoder's weights."""
        predicted = self.scene_encoder()
        self._latest = predicted.detach()
        return prediction_splats(predicted, model.config.sh_degree)

    def after_step(self, model, step: int) -> None:
        if self._latest is not None:
            model.set_gaussians(self._latest)
            self._latest = None
