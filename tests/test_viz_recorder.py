"""The training recorder's data (per-step figures, flags) against a run replayed by hand in numpy,
and its frames: one shared layout, drawn at fixed positions."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from browser import cases

import tinygraph as tg
from tinygraph import nn, optim
from tinygraph.errors import GraphError, InputError
from tinygraph.thresholds import DEFAULT, Thresholds
from tinygraph.viz.recorder import Recorder

SVG = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` not installed")


@pytest.fixture(scope="module")
def rec() -> Recorder:
    return cases.record()


def test_snapshots_every_k_steps() -> None:
    r = cases.record(every=3, steps=10)
    assert r.steps == [0, 3, 6, 9]
    assert r.steps_run == 10


def test_per_layer_gradient_flow_matches_hand_computation(rec: Recorder) -> None:
    sim = cases.simulate()
    flow = rec.grad_flow("preact")
    assert list(flow) == ["L1", "L2"]
    np.testing.assert_allclose(flow["L1"], [f["dz1"] for f in sim], rtol=1e-12)
    np.testing.assert_allclose(flow["L2"], [f["dz2"] for f in sim], rtol=1e-12)
    np.testing.assert_allclose([s.loss for s in rec.snapshots], [f["loss"] for f in sim],
                               rtol=1e-12)


def test_param_gradient_flow_is_mean_abs_of_parameter_grads(rec: Recorder) -> None:
    sim = cases.simulate()
    # L1's parameters w1, b1 both get dL/dz1 · 1 (x = 1); L2's get s and 1.
    np.testing.assert_allclose(rec.grad_flow("params")["L1"], [f["dz1"] for f in sim],
                               rtol=1e-12)
    np.testing.assert_allclose(rec.grad_flow("params")["L2"], [(f["s"] + 1) / 2 for f in sim],
                               rtol=1e-12)


def test_saturation_flags_appear_at_the_step_the_thresholds_say(rec: Recorder) -> None:
    sat = cases.first_step(lambda f: f["deriv"] < DEFAULT.sigmoid_saturated)
    near = cases.first_step(lambda f: f["deriv"] < DEFAULT.sigmoid_warning)
    assert 0 < near < sat < cases.STEPS - 1  # the run crosses both thresholds
    assert rec.first_flagged("L1.n0.act", "saturated") == sat
    assert rec.first_flagged("L1.n0.act", "saturating") == near
    for s in rec.snapshots:  # saturated from then on, and never before
        kinds = {f["kind"] for f in s.flags if f["node"] == "L1.n0.act"}
        assert ("saturated" in kinds) == (s.step >= sat)


def test_stats_are_plain_json(rec: Recorder, tmp_path) -> None:
    path = rec.save_stats(tmp_path / "stats.json")
    back = json.loads(path.read_text(encoding="utf-8"))
    assert back["every"] == 1
    assert back["snapshots"] == json.loads(json.dumps(rec.stats()))
    assert back["snapshots"][0]["grad_preact"]["L2"] == 1.0
    assert back["snapshots"][0]["saturated"]["L1"] == 0.0
    assert back["snapshots"][-1]["saturated"]["L1"] == 1.0


def test_a_changed_graph_structure_is_refused_naming_the_step() -> None:
    model = nn.MLP(2, [3, 1], "tanh", seed=0)
    batches = [np.ones((4, 2)), np.ones((4, 2)), np.ones((5, 2))]  # the batch size changes

    def loss() -> tg.Node:
        L = model(batches[min(rec.steps_run, 2)]).sum()
        L.name = "loss"
        return L

    rec = Recorder(model, loss)
    rec.step()
    rec.step()
    with pytest.raises(GraphError, match=r"step 2 does not match"):
        rec.step()
    assert rec.steps == [0, 1]  # the refused step left nothing behind


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"every": 0}, "every must be a positive int"),
     ({"every": 1.5}, "every must be a positive int"),
     ({"loss_fn": 3}, "loss_fn must be callable"),
     ({"model": object()}, "model must be a tinygraph.nn Module")],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    model, loss = cases.chain()
    args = {"model": model, "loss_fn": loss, **kwargs}
    with pytest.raises(InputError, match=match):
        Recorder(args.pop("model"), args.pop("loss_fn"), **args)


def test_a_loss_that_is_not_a_scalar_node_is_refused() -> None:
    model = nn.TensorMLP(2, [2], seed=0)
    rec = Recorder(model, lambda: model(np.ones((3, 2))))
    with pytest.raises(InputError, match=r"scalar Node.*shape \(3, 2\)"):
        rec.step()


def test_snapshot_needs_backward_first() -> None:
    model, loss = cases.chain()
    rec = Recorder(model, loss)
    with pytest.raises(GraphError, match="call loss.backward"):
        rec.snapshot(loss(), 0)


def test_drawing_before_recording_is_an_error() -> None:
    model, loss = cases.chain()
    with pytest.raises(GraphError, match="nothing recorded"):
        Recorder(model, loss).svgs()


def _node_geometry(svg: str) -> dict[str, str]:
    """Node title -> the outline of its shape (polygon points or path d); the legend, a
    plaintext table whose rows change, is left out."""
    out = {}
    for g in ET.fromstring(svg.encode()).iter(f"{SVG}g"):
        classes = g.get("class", "").split()
        if classes[:1] == ["node"] and "legend" not in classes:
            title = g.find(f"{SVG}title").text
            shape = next(e for e in g.iter() if e.tag in (f"{SVG}polygon", f"{SVG}path"))
            out[title] = shape.get("points") or shape.get("d")
    return out


def _edge_widths(svg: str) -> dict[str, str]:
    out = {}
    for g in ET.fromstring(svg.encode()).iter(f"{SVG}g"):
        if "edge" in g.get("class", "").split():
            path = next(g.iter(f"{SVG}path"))
            out[g.get("id")] = path.get("stroke-width", "1")
    return out


@needs_dot
def test_frames_share_one_layout_while_styles_change(rec: Recorder) -> None:
    frames = rec.svgs()
    assert len(frames) == len(rec.snapshots)
    geometry = [_node_geometry(s) for s in frames]
    assert set(geometry[0]) >= {n.id for n in rec.views[0].nodes}
    assert all(g == geometry[0] for g in geometry[1:])  # nodes stay still
    widths = [_edge_widths(s) for s in frames]
    assert set(widths[0]) == {e.id for e in rec.views[0].edges}  # edges keep their view ids
    assert widths[0] != widths[-1]  # while the gradient flow restyles them
    classes = [ET.fromstring(s.encode()).find(f".//{SVG}g[@id='n7_L1_n0_act']").get("class")
               for s in frames]
    assert "saturated" not in classes[0].split() and "saturated" in classes[-1].split()


@needs_dot
def test_save_svgs_writes_one_file_per_recorded_step(tmp_path) -> None:
    r = cases.record(every=5, steps=12)
    paths = r.save_svgs(tmp_path / "frames")
    assert [p.name for p in paths] == [  # every 5th step, and the last one (11)
        "step_000000.svg", "step_000005.svg", "step_000010.svg", "step_000011.svg"]
    for p in paths:
        ET.parse(p)  # well-formed SVG


def test_fit_runs_the_optimizer_between_snapshots() -> None:
    model, loss = cases.chain()
    rec = Recorder(model, loss, every=2)
    hist = rec.fit(optim.SGD(model.parameters(), lr=cases.LR), 5)
    np.testing.assert_allclose(hist, [f["loss"] for f in cases.simulate(5)], rtol=1e-12)
    assert rec.steps == [0, 2, 4]


def _relu_flip(inputs: list[float], steps: int, thresholds: Thresholds = DEFAULT) -> Recorder:
    """A one-sample ReLU chain x -> L1.n0 (relu, w = 1, b = 0) -> L2.n0 -> loss = -out, fed
    inputs[step % len(inputs)] at each step with no update: z = x, so the unit is off exactly
    when x <= 0."""
    model = nn.MLP(1, [1, 1], "relu", seed=0)
    model.load_state_dict({"L1.n0.w0": np.array(1.0), "L1.n0.b": np.array(0.0),
                           "L2.n0.w0": np.array(1.0), "L2.n0.b": np.array(0.0)})

    def loss() -> tg.Node:
        out = model([inputs[rec.steps_run % len(inputs)]])
        with tg.scope("loss"):
            L = -out
        L.name = "loss"
        return L

    rec = Recorder(model, loss, thresholds=thresholds)
    for _ in range(steps):
        rec.step()
    return rec


def _kinds(snap, label: str = "L1.n0.act") -> set[str]:
    return {f["kind"] for f in snap.flags if f["node"] == label}


def test_a_relu_off_on_one_frame_reads_inactive_and_never_flickers_dead() -> None:
    rec = _relu_flip([1.0, -1.0], steps=6)  # on, off, on, off, ...
    assert [_kinds(s) for s in rec.snapshots] == [set(), {"inactive"}] * 3
    assert [s.inactive_units for s in rec.snapshots] == [0, 1] * 3
    assert all(s.dead_units == 0 for s in rec.snapshots)
    assert rec.activity.snapshots == 6 and rec.activity.off == {"L1.n0": 1}  # a streak of 1


def test_a_relu_off_in_every_snapshot_is_dead_until_it_fires() -> None:
    rec = _relu_flip([-1.0, -2.0, -3.0, 0.5, -1.0], steps=5)
    assert [_kinds(s) for s in rec.snapshots] == [{"dead"}] * 3 + [set(), {"inactive"}]
    assert [s.dead_units for s in rec.snapshots] == [1, 1, 1, 0, 0]
    dead = next(f for f in rec.snapshots[2].flags if f["kind"] == "dead")
    assert "at each of the 3 recorded steps" in dead["text"]


@pytest.mark.parametrize(("k", "n"), [(1, 1), (2, 3), (3, DEFAULT.dead_snapshots)])
def test_a_relu_that_dies_partway_is_dead_after_n_snapshots_off(k: int, n: int) -> None:
    # on for the first k snapshots, then off for good: inactive until the streak reaches n
    steps = k + n + 3
    rec = _relu_flip([1.0] * k + [-1.0] * (n + 3), steps, Thresholds(dead_snapshots=n))
    first_dead = k + n - 1
    assert [_kinds(s) for s in rec.snapshots] == (
        [set()] * k + [{"inactive"}] * (first_dead - k) + [{"dead"}] * (steps - first_dead))
    assert [s.dead_units for s in rec.snapshots] == [0] * first_dead + [1] * (steps - first_dead)
    assert rec.activity.off == {"L1.n0": steps - k}
    dead = next(f for f in rec.snapshots[-1].flags if f["kind"] == "dead")
    assert f"at each of the last {n} recorded steps" in dead["text"]


def test_a_relu_off_for_one_snapshot_less_than_the_streak_is_never_dead() -> None:
    n = DEFAULT.dead_snapshots
    rec = _relu_flip([1.0] + [-1.0] * (n - 1), steps=3 * n)  # on once, off n - 1 times, again
    assert all(s.dead_units == 0 for s in rec.snapshots)
    assert [s.inactive_units for s in rec.snapshots] == ([0] + [1] * (n - 1)) * 3


def test_recorder_rejects_thresholds_of_the_wrong_type() -> None:
    model, loss = cases.chain()
    with pytest.raises(InputError, match="thresholds must be"):
        Recorder(model, loss, thresholds={"dead_snapshots": 3})  # type: ignore[arg-type]


@needs_dot
def test_frames_carry_edge_labels_at_the_layouts_positions(rec: Recorder) -> None:
    lay = rec.layout()
    assert all("lp" in lay[e.id] for e in rec.views[0].edges)
    for view, svg in zip(rec.views[:3], rec.svgs()[:3], strict=True):
        root = ET.fromstring(svg.encode())
        labels = {g.get("id"): [t.text for t in g.findall(f"{SVG}text")]
                  for g in root.iter(f"{SVG}g") if "edge" in g.get("class", "").split()}
        # graphviz writes "-" as a true minus sign in text: compare as numbers
        assert {k: float(v[0].replace("\u2212", "-")) for k, v in labels.items()} == {
            e.id: float(e.label) for e in view.edges}
