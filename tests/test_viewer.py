"""nerfstudio's viewer end to end: ns-viewer serves a trained pixelSplat scene and headless Chromium draws it.

The viser web client asks the server to render its camera; the server renders through our CPU rasterizer and
sends the image back, which the client draws behind its three.js scene. The test reads a screenshot of the
render area and requires the sample room's colours over a large part of it: a blank render (the scene's black
background, with only the training cameras' thumbnails drawn on it) must fail the same check, and the second
test shows that it does.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pytest
from PIL import Image

from helpers.cli import BIN, SAMPLE, train

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RENDER_TIMEOUT_S = 90.0
LEVELS = 16  # colours are compared in 16 x 16 x 16 bins of 16 levels a channel


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Train the sample scene (feed-forward only), serve it with ns-viewer, and stop its process group after."""
    root = tmp_path_factory.mktemp("viewer")
    env = dict(os.environ, PYTHONWARNINGS="ignore", COLUMNS="200")
    config = train(SAMPLE, root / "outputs")  # at SMALL_CONTEXT: a fifth of the full size's cost

    port, log = free_port(), root / "ns-viewer.log"
    with log.open("w") as out:
        viewer = subprocess.Popen(
            [
                BIN / "ns-viewer",
                "--load-config",
                config,
                "--viewer.websocket-host",
                "127.0.0.1",
                "--viewer.websocket-port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=root,
            env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert viewer.poll() is None, f"ns-viewer exited with {viewer.returncode}:\n{log_tail(log)}"
            assert time.monotonic() < deadline, f"ns-viewer did not answer on {url}:\n{log_tail(log)}"
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                time.sleep(0.25)
        yield Served(url, log)
        assert viewer.poll() is None, f"ns-viewer died while the browser used it:\n{log_tail(log)}"
    finally:
        stop_group(viewer)


@dataclass
class Served:
    """Where ns-viewer answers, and its log (stdout and stderr): failures quote the log's tail."""

    url: str
    log: Path


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process's group, SIGKILL after 10 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:  # the whole group is gone
            break
        try:
            process.wait(timeout=10)
            break
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, driven by Playwright (which downloads no browser of its own here)."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/tools/setup.sh, which apt-installs Debian's chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: run scripts/tools/setup.sh, which installs the dev extra")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, served):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(served.url)
    yield page
    page.close()


def colour_bins(pixels: np.ndarray) -> np.ndarray:
    """[..., 3] uint8 RGB -> the index of each pixel's colour bin (16 levels a channel)."""
    q = pixels.reshape(-1, 3).astype(np.int64) // (256 // LEVELS)
    return (q[:, 0] * LEVELS + q[:, 1]) * LEVELS + q[:, 2]


@pytest.fixture(scope="module")
def scene_palette() -> np.ndarray:
    """The colour bins of the sample scene's images (each at least 0.01% of their pixels) that are colours,
    not greys: a chroma (max - min channel) of 32 or more keeps the room's greens, pinks, purples and teals
    (three quarters of its pixels) and leaves out the viewer's greys and its navy empty background."""
    images = [np.asarray(Image.open(path).convert("RGB")) for path in sorted((SAMPLE / "images").glob("*.jpg"))]
    counts = np.bincount(np.concatenate([colour_bins(image) for image in images]), minlength=LEVELS**3)
    centres = np.stack(np.unravel_index(np.arange(LEVELS**3), (LEVELS,) * 3), axis=-1) * (256 // LEVELS) + 8
    return (counts > 1e-4 * counts.sum()) & (np.ptp(centres, axis=-1) >= 32)


def scene_drawn(render: np.ndarray, palette: np.ndarray) -> tuple[bool, dict]:
    """Whether the render area shows the scene: much of it in the scene's colours, many distinct ones of them,
    with a large spread of values."""
    share = np.bincount(colour_bins(render), minlength=LEVELS**3) / (render.size // 3)
    stats = {
        "scene_fraction": float(share[palette].sum()),
        "scene_colours": int((share[palette] > 1e-3).sum()),
        "std": float((render / 255.0).std(axis=(0, 1)).mean()),
    }
    # Thresholds between what the viewer's first camera shows of the sample scene and what a blank render (all
    # Gaussians transparent, or output type "background") gives, with room on both sides (docs/benchmarks.md).
    drawn = stats["scene_fraction"] > 0.1 and stats["scene_colours"] >= 8 and stats["std"] > 0.03
    return drawn, stats


def screenshot(page: Page) -> tuple[Image.Image, np.ndarray]:
    """The page, and its render area: the three.js canvas the viser client draws the server's image into.
    While the panel slides in, the canvas still changes size: the box is read until it holds still."""
    canvas = page.locator("canvas[data-engine]")
    for _ in range(20):
        box = canvas.bounding_box()
        image = Image.open(BytesIO(page.screenshot())).convert("RGB")
        if box is not None and box == canvas.bounding_box():
            left, top = round(box["x"]), round(box["y"])
            return image, np.asarray(image)[top : top + round(box["height"]), left : left + round(box["width"])]
    pytest.fail(f"the viewer's canvas does not hold still: {box}")


def render_size(page: Page) -> tuple[int, int]:
    """The size of the last render, as the panel tells it ("Resolution: 512x356px"; (0, 0) before the first)."""
    found = re.search(r"Resolution: (\d+)\D(\d+)px", page.locator("body").inner_text())
    return (int(found[1]), int(found[2])) if found else (0, 0)


def poll(page: Page, palette: np.ndarray, until: Callable[[dict], bool]) -> tuple[Image.Image, dict]:
    """Screenshots until ``until(stats)``, or the time runs out: the last screenshot and its stats.

    ``stats["scene"]`` is ``scene_drawn``'s verdict; ``stats["still"]`` says that the panel announced the still
    render one poll earlier: the viewer first sends a 43 x 30 preview, then the still render at "Max res" (512
    pixels on the long side), and the panel names its size just before the image is on the canvas."""
    deadline, announced = time.monotonic() + RENDER_TIMEOUT_S, False
    while True:
        size = render_size(page)
        image, render = screenshot(page)
        scene, stats = scene_drawn(render, palette)
        stats.update(scene=scene, still=announced, render_size=size)
        if until(stats) or time.monotonic() > deadline:
            return image, stats
        announced = max(size) >= 256
        time.sleep(0.5)


def scene_in_still_render(stats: dict) -> bool:
    return stats["scene"] and stats["still"]


def test_viewer_draws_the_trained_scene(page, served, scene_palette, tmp_path):
    image, stats = poll(page, scene_palette, until=scene_in_still_render)
    image.save(tmp_path / "viewer.png")
    shutil.copy(tmp_path / "viewer.png", Path(tempfile.gettempdir()) / "viewer_screenshot.png")
    assert scene_in_still_render(stats), (
        f"no scene in the viewer after {RENDER_TIMEOUT_S:.0f} s: {stats} "
        f"({tmp_path / 'viewer.png'}); ns-viewer's log:\n{log_tail(served.log)}"
    )
    assert page.get_by_text("Connected").is_visible()


def test_the_check_fails_on_a_blank_render(page, served, scene_palette, tmp_path):
    """Output type "background" makes the server send the scene's background (black) in place of the render:
    the same check must then fail, although the page, its panel and the cameras' thumbnails are all drawn."""
    _, stats = poll(page, scene_palette, until=lambda stats: stats["scene"])  # the preview will do here
    assert stats["scene"], f"{stats}; ns-viewer's log:\n{log_tail(served.log)}"
    output_type = page.get_by_label("Output type")
    try:
        output_type.click()
        page.get_by_role("option", name="background", exact=True).click()
        image, stats = poll(page, scene_palette, until=lambda stats: not stats["scene"])
        image.save(tmp_path / "viewer_blank.png")
        assert not stats["scene"], f"the check passes on a blank render: {stats} ({tmp_path / 'viewer_blank.png'})"
        assert stats["scene_fraction"] < 0.02 and stats["std"] < 0.03, stats
    finally:  # the panel is the server's, shared by every client
        output_type.click()
        page.get_by_role("option", name="rgb", exact=True).click()
