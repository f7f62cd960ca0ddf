"""The ground floor: the types and conventions every other part uses, importing nothing else of the package.

views (``Views``, ``prepare_views``: posed images in the project's convention), conventions (every camera,
quaternion and activation convention conversion), geometry (rays, projection, epipolar segments), gaussians
(``Gaussians``), bounds (the context baseline and near/far), crop (the crop shim), camera_checks (plausible
cameras), images (reading what users give), errors (``InputError``).
"""
