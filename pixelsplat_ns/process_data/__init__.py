"""Your own data as nerfstudio scenes: the logic of ``pixelsplat-process-data``.

pair (two photos without cameras -> their cameras, from the pixels: ``pixelsplat-process-data pair``), cameras
(photos with known cameras: ``pixelsplat-process-data cameras``), scene_folder (the nerfstudio-data folder both
write: photos copied, never modified, and ``transforms.json``).
"""
