"""nerfstudio's image dataset, reading every image through ``pixelsplat_ns.core.images``: as displayed (EXIF
orientation applied) and in 8 bits without losing the picture (nerfstudio's own reader keeps the low byte
of 16-bit images and ignores EXIF orientation)."""

import numpy as np
import numpy.typing as npt
from nerfstudio.data.datasets.base_dataset import InputDataset
from PIL import Image

from pixelsplat_ns.core.images import open_image


class PixelSplatDataset(InputDataset):
    def get_numpy_image(self, image_idx: int) -> npt.NDArray[np.uint8]:
        """The image [h, w, 3 or 4] (uint8) as the user sees it, at the dataparser's scale factor."""
        image = open_image(self._dataparser_outputs.image_filenames[image_idx])
        if self.scale_factor != 1.0:
            width, height = image.size
            size = (int(width * self.scale_factor), int(height * self.scale_factor))
            image = image.resize(size, resample=Image.Resampling.BILINEAR)  # as nerfstudio's reader does
        return np.asarray(image)
