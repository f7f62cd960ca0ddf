"""The workarounds for nerfstudio are checked against one version: a different one must be re-checked."""

from importlib.metadata import version
from pathlib import Path

from pixelsplat_ns.nerfstudio_workarounds import PINNED_NERFSTUDIO

ROOT = Path(__file__).resolve().parents[1]


def test_nerfstudio_is_the_version_the_workarounds_were_checked_against():
    installed = version("nerfstudio")
    assert installed == PINNED_NERFSTUDIO, (
        f"nerfstudio {installed} is installed, but pixelsplat_ns/nerfstudio_workarounds.py was checked against "
        f"{PINNED_NERFSTUDIO}: re-check each workaround there against the new version (each docstring says what "
        "nerfstudio does and where), drop those it made unnecessary, then update PINNED_NERFSTUDIO")
    assert f'"nerfstudio=={PINNED_NERFSTUDIO}"' in (ROOT / "pyproject.toml").read_text(), \
        "pyproject.toml must pin the nerfstudio version the workarounds were checked against"
