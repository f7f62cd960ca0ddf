"""The order of a capture's views along the path its cameras took, found from the cameras themselves.

Dataparsers give the training views in the order of their image names (nerfstudio-data sorts them as strings):
``train_1, train_10, train_11, ..., train_2`` is not the order the photos were taken in, and context groups cut
from that order pair views that do not overlap. Here the capture's order is the shortest open path through
the views, where a step costs its camera distance in units of the capture's typical step plus its turn in
units of ``TURN_PER_STEP_DEGREES`` (so that the frames of a walk and of its way back, at the same places but
looking opposite ways, are not neighbours). The path is a greedy nearest-neighbour walk from one end of the
capture, shortened by 2-opt moves. The dataparser's order is kept when it is (nearly) as short as that path:
a video's own frame order wins ties.
"""

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float
from torch import Tensor

TURN_PER_STEP_DEGREES = 10.0
"""A turn of this many degrees between two views costs as much as one typical step between neighbouring
cameras."""
KEEP_GIVEN_WITHIN = 1.1
"""The given order is kept when its path costs at most this many times the path found."""
TWO_OPT_PASSES = 50
"""At most this many sweeps of 2-opt moves (each sweep tries every move; it stops early when none helps)."""


@dataclass(frozen=True)
class CaptureOrder:
    """The training views in the order of the capture's path."""

    order: tuple[int, ...]
    """Indices of the views (the dataparser's order) along the path."""
    given_cost: float
    """Cost of the path in the dataparser's order (typical steps)."""
    path_cost: float
    """Cost of ``order``'s path; equals ``given_cost`` when the given order is kept."""

    @property
    def follows_given(self) -> bool:
        """Whether the path is the dataparser's own order."""
        return self.order == tuple(range(len(self.order)))


def step_costs(camera_to_worlds: Float[Tensor, "n 3 4"]) -> np.ndarray:
    """[n, n] cost of a step between two views: camera distance over the median nearest-neighbour distance
    (the typical step; 1 where the cameras do not move), plus the angle between the viewing directions over
    ``TURN_PER_STEP_DEGREES`` (nerfstudio's OpenGL cameras look along -z)."""
    c2w = camera_to_worlds.detach().double().cpu().numpy()
    centres = c2w[:, :3, 3]
    distances = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    nearest = np.where(np.eye(len(c2w), dtype=bool), np.inf, distances).min(axis=1)
    moving = nearest[np.isfinite(nearest) & (nearest > 0)]
    typical_step = float(np.median(moving)) if len(moving) else 1.0
    forward = -c2w[:, :3, 2] / np.linalg.norm(c2w[:, :3, 2], axis=-1, keepdims=True)
    turns = np.degrees(np.arccos(np.clip(forward @ forward.T, -1.0, 1.0)))
    return distances / typical_step + turns / TURN_PER_STEP_DEGREES


def path_cost(costs: np.ndarray, order) -> float:
    """Cost of visiting the views in ``order``."""
    order = np.asarray(order)
    return float(costs[order[:-1], order[1:]].sum()) if len(order) > 1 else 0.0


def shortest_open_path(costs: np.ndarray) -> list[int]:
    """A short open path through all views (an approximate shortest Hamiltonian path): nearest-neighbour from an
    end of the capture (a view of the costliest pair), then 2-opt on the tour closed through a free depot."""
    n = len(costs)
    if n < 3:
        return list(range(n))
    start = int(np.unravel_index(np.argmax(costs), costs.shape)[0])
    visited = np.zeros(n, dtype=bool)
    path = [start]
    visited[start] = True
    for _ in range(n - 1):
        row = np.where(visited, np.inf, costs[path[-1]])
        path.append(int(np.argmin(row)))
        visited[path[-1]] = True
    # An open path is a closed tour through a depot that costs nothing to reach: 2-opt on that tour.
    with_depot = np.zeros((n + 1, n + 1))
    with_depot[:n, :n] = costs
    tour = np.array([n, *path])
    for _ in range(TWO_OPT_PASSES):
        improved = False
        for i in range(len(tour) - 2):
            a, b = tour[i], tour[i + 1]
            c, d = tour[i + 2 :], np.roll(tour, -1)[i + 2 :]  # every later edge (c, d), the closing one included
            gain = with_depot[a, b] + with_depot[c, d] - with_depot[a, c] - with_depot[b, d]
            j = int(np.argmax(gain))
            if gain[j] > 1e-9:
                tour[i + 1 : i + 3 + j] = tour[i + 1 : i + 3 + j][::-1]
                improved = True
        if not improved:
            break
    depot = int(np.flatnonzero(tour == n)[0])
    return [int(v) for v in np.roll(tour, -depot)[1:]]


def capture_order(camera_to_worlds: Float[Tensor, "n 3 4"]) -> CaptureOrder:
    """The views' order along the capture's path: the dataparser's order where its path costs at most
    ``KEEP_GIVEN_WITHIN`` times the path found from the cameras (read forwards, as given), else that path."""
    n = len(camera_to_worlds)
    costs = step_costs(camera_to_worlds)
    given = path_cost(costs, range(n))
    found = shortest_open_path(costs)
    found_cost = path_cost(costs, found)
    if given <= KEEP_GIVEN_WITHIN * found_cost:
        return CaptureOrder(tuple(range(n)), given, given)
    if found[0] > found[-1]:  # read in the direction the given order mostly runs
        found = found[::-1]
    return CaptureOrder(tuple(found), given, found_cost)
