"""A box's flags: saturated / near-saturation / dead / inactive units (from analysis.UnitStats)
and vanishing / exploding / non-finite gradients."""

from __future__ import annotations

from typing import Any

from ..analysis import (
    Activity,
    Thresholds,
    UnitStats,
    limits,
)
from .data import Flag
from .style import fmt
from .text import _count_nonfinite, _mean_abs


def _act_flags(vid: str, label: str, s: UnitStats, th: Thresholds,
               activity: Activity | None = None) -> list[Flag]:
    """The saturated / near-saturation / dead / inactive flags of a box's units."""
    flags: list[Flag] = []
    n = s.units
    sym = "/".join(s.symbols)
    lim, wl = limits("tanh" if s.names == ["tanh"] else "sigmoid", th)
    plural = "unit" if n == 1 else "units"
    mean = fmt(s.mean_derivative, 2)

    def why(fraction: float, word: str, limit: float) -> str:
        # On a batch a unit counts when most of its activations do (Thresholds.saturated_share),
        # so the text gives that share; the mean f'(z) may then sit above the limit.
        if s.values == 1:
            return f": f'(z) = {mean} < {limit:g}"
        return f" ({fraction:.0%} of activations {word}: f'(z) < {limit:g}); mean f'(z) = {mean}"

    if s.saturated:
        flags.append(Flag(vid, label, "saturated", s.mean_derivative, lim,
                          f"{s.saturated}/{n} {sym} {plural} {s.flat_word}"
                          + why(s.flagged_fraction, "saturated", lim), (s.saturated, n)))
    elif s.saturating:
        flags.append(Flag(vid, label, "saturating", s.mean_derivative, wl,
                          f"{s.saturating}/{n} {sym} {plural} near saturation"
                          + why(s.near_fraction, "near saturation", wl),
                          (s.saturating, n)))
    if s.dead:
        k = s.samples
        steps = "" if activity is None else (
            f" at each of the {activity.snapshots + 1} recorded steps"
            if activity.snapshots < th.dead_snapshots
            else f" at each of the last {th.dead_snapshots} recorded steps")
        flags.append(Flag(vid, label, "dead", s.dead / n, 0.0,
                          f"{s.dead}/{n} ReLU {plural} dead: z ≤ 0 on every sample "
                          f"({k} seen){steps}, so no gradient passes", (s.dead, n)))
    if s.inactive:
        k = s.inactive
        flags.append(Flag(vid, label, "inactive", k / n, 0.0,
                          f"{k}/{n} ReLU {'unit' if k == 1 else 'units'} inactive: z ≤ 0 on every "
                          "sample of this step, but not of each of the last "
                          f"{th.dead_snapshots} recorded steps, so not dead",
                          (k, n)))
    return flags


def _grad_flags(vid: str, label: str, data: Any, grad: Any, ref: float | None,
                th: Thresholds) -> list[Flag]:
    flags = []
    bad = _count_nonfinite(data) + _count_nonfinite(grad)
    if bad:
        where = "data" if _count_nonfinite(data) else "grad"
        flags.append(Flag(vid, label, "nonfinite", float(bad), 0.0,
                          f"{bad} non-finite value(s) (NaN/Inf) in {where}"))
        return flags
    if grad is None or ref is None:
        return flags
    g = _mean_abs(grad)
    if g > th.exploding:
        flags.append(Flag(vid, label, "exploding", g, th.exploding,
                          f"mean |grad| = {fmt(g)} > {th.exploding:g}"))
    elif ref > 0 and 0 < g < th.vanishing * ref:
        # Exactly zero is not "vanishing": it comes from a dead unit or a zero input, which
        # their own flags and the dotted edges already show.
        flags.append(Flag(vid, label, "vanishing", g / ref, th.vanishing,
                          f"mean |grad| = {fmt(g)} is {fmt(g / ref, 2)} of |dL/dL| "
                          f"(< {th.vanishing:g})"))
    return flags
