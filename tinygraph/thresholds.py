"""Where a unit counts as saturated or dead and a gradient as vanishing: one configurable object.

The diagrams, the diagnostics and the recorder all read these numbers, so they agree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    """Flag thresholds (defaults from the rendering spec)."""

    sigmoid_saturated: float = 0.01  # σ'(z) = s(1-s) below this: saturated (|z| > 4.6)
    sigmoid_warning: float = 0.05  # below this: warning (|z| > 2.94); the maximum is 0.25
    tanh_saturated: float = 0.01  # 1 - t² below this: saturated (|z| > 2.99)
    tanh_warning: float = 0.1
    vanishing: float = 1e-6  # |grad| below this times |dL/dL|
    exploding: float = 1e3  # |grad| above this
    decades: float = 6.0  # edge colour/width scale spans this many powers of ten


DEFAULT = Thresholds()
