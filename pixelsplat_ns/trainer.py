"""nerfstudio's trainer with two fixes the plugin's methods need (nerfstudio 1.1.5).

- A run of 0 iterations (the per-scene method's pure feed-forward mode) finishes: the terminal writer divides
  by the iteration count and reads a step that only a training iteration sets.
- A run stopped early (``stop_training``, e.g. pretraining's time budget) saves the step it last trained:
  nerfstudio's loop advances ``step`` before it sees the flag, so its final checkpoint was labelled one step
  late and a resumed run skipped a batch.
"""

from typing import Optional

from nerfstudio.engine.trainer import Trainer
from nerfstudio.utils import writer


class PixelSplatTrainer(Trainer):
    last_trained_step: Optional[int] = None

    def setup(self, test_mode="val") -> None:
        super().setup(test_mode)
        if self.config.max_num_iterations == 0:
            writer.GLOBAL_BUFFER.update(max_iter=1, step=0)

    def train_iteration(self, step: int):
        result = super().train_iteration(step)
        self.last_trained_step = step
        return result

    def _after_train(self) -> None:
        if self.last_trained_step is not None:
            self.step = self.last_trained_step
        super()._after_train()
