"""Why a scene is left out of an epoch. A bad scene costs one logged line and a count, never the run."""

import logging
from collections import Counter
from enum import Enum

LOGGER = logging.getLogger("pixelsplat_ns.data")


class SkipReason(str, Enum):
    FOV_TOO_WIDE = "field of view too wide"
    TOO_FEW_FRAMES = "too few frames"
    NEAR_ZERO_BASELINE = "near-zero baseline"
    UNDECODABLE_FRAME = "undecodable frame"
    MISSING_INDEX_ENTRY = "missing index entry"
    INVALID_CAMERAS = "invalid cameras"
    UNREADABLE_CHUNK = "unreadable chunk"


class SkipScene(ValueError):
    """A scene that cannot be used; raised by samplers and loaders, caught by the dataset."""

    def __init__(self, reason: SkipReason, key: str, detail: str) -> None:
        super().__init__(f"scene {key!r}: {reason.value}: {detail}")
        self.reason = reason
        self.key = key
        self.detail = detail


class SkipCounter:
    """Counts skipped scenes by reason and logs each one."""

    def __init__(self) -> None:
        self.counts: Counter[SkipReason] = Counter()

    def record(self, skip: SkipScene) -> None:
        self.counts[skip.reason] += 1
        LOGGER.warning("skipped %s", skip)

    def summary(self) -> str:
        if not self.counts:
            return "no scenes skipped"
        return ", ".join(f"{count} x {reason.value}" for reason, count in sorted(self.counts.items()))
