"""Where a unit counts as saturated or dead and a gradient as vanishing: one configurable object.

The diagrams, the diagnostics and the recorder all read these numbers (through
tinygraph.analysis, which applies them), so they agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._check import check_float, check_int


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
        # Every number finite and >= 0 (a share at most 1): decades <= 0 would divide the
        # colour scale by zero or flip it. A streak of 0 would call a unit dead before it was
        # ever seen off.
        for name in ("sigmoid_saturated", "sigmoid_warning", "tanh_saturated", "tanh_warning",
                     "vanishing"):
            check_float("Thresholds", name, getattr(self, name), lo=0.0)
        for name in ("exploding", "decades"):
            check_float("Thresholds", name, getattr(self, name), lo=0.0, lo_open=True)
        check_float("Thresholds", "saturated_share", self.saturated_share, lo=0.0, hi=1.0)
        check_int("Thresholds", "dead_snapshots", self.dead_snapshots, lo=1)


DEFAULT = Thresholds()
