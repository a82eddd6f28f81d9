"""Where a unit counts as saturated or dead and a gradient as vanishing: one configurable object.

The diagrams, the diagnostics and the recorder all read these numbers, so they agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError


@dataclass(frozen=True)
class Thresholds:
    """Flag thresholds (defaults from the rendering spec)."""

    sigmoid_saturated: float = 0.01  # σ'(z) = s(1-s) below this: saturated (|z| > 4.6)
    sigmoid_warning: float = 0.05  # below this: warning (|z| > 2.89); the maximum is 0.25
    tanh_saturated: float = 0.01  # 1 - t² below this: saturated (|z| > 2.99)
    tanh_warning: float = 0.1
    # A sigmoid/tanh unit seen on several samples counts as saturated (or near saturation) when
    # at least this share of its activations are: "saturated on every sample" almost never
    # holds on a real batch, even when 87% of a layer's activations sit in the flat tails.
    saturated_share: float = 0.5
    vanishing: float = 1e-6  # |grad| below this times |dL/dL|
    exploding: float = 1e3  # |grad| above this
    decades: float = 6.0  # edge colour/width scale spans this many powers of ten
    # In a recording a ReLU unit is dead once it has been off (z <= 0 on every sample) in this
    # many consecutive snapshots, or in every one so far when fewer were taken: a unit that dies
    # partway through training is then called dead, while one that fires again sooner is not.
    dead_snapshots: int = 5

    def __post_init__(self) -> None:
        # A streak of 0 would call a unit dead before it was ever seen off.
        n = self.dead_snapshots
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InputError(f"Thresholds: dead_snapshots must be a positive int, got {n!r}")


DEFAULT = Thresholds()
