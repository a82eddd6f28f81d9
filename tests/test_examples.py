"""Every example in examples/ runs in its fast mode, and what it printed is checked.

Each example prints markdown tables; these tests parse them and check the numbers the notes' claims
rest on (parameter counts 26 and 41, a whitened covariance equal to the identity, ...) and that the
measured numbers are sane. The selected examples run as subprocesses, as many at a time as there
are CPUs, started together when the first test needs them; each test then waits for its own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygraph as tg

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))

import _common  # noqa: E402

SCRIPTS = sorted(p.stem for p in EXAMPLES.glob("c[0-9][0-9]_*.py"))
TIMEOUT = 300  # seconds per example; a fast run takes a few seconds on an idle machine


def test_every_claim_has_an_example() -> None:
    """C1..C16 each appear in the name of exactly one script (several claims may share one)."""
    covered = [int(c) for s in SCRIPTS for c in re.findall(r"c(\d\d)", s)]
    assert sorted(covered) == list(range(1, 17)), SCRIPTS


# ---------------------------------------------------------------------------------------------
# Running the examples
# ---------------------------------------------------------------------------------------------


def parse_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """'### title' followed by a markdown table -> {title: [{column: cell}, ...]}."""
    tables: dict[str, list[dict[str, str]]] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("### "):
            continue
        j = i + 1
        while j < len(lines) and not lines[j].startswith("|"):
            j += 1
        header = [c.strip() for c in lines[j].strip().strip("|").split("|")]
        rows = []
        for row in lines[j + 2:]:
            if not row.startswith("|"):
                break
            cells = [c.strip() for c in row.strip().strip("|").split("|")]
            assert len(cells) == len(header), row
            rows.append(dict(zip(header, cells, strict=True)))
        tables[line[4:].strip()] = rows
    return tables


class Run:
    """One finished fast run: its output, its tables and its output folder."""

    def __init__(self, script: str, out: Path, proc: subprocess.CompletedProcess) -> None:
        self.script, self.out, self.stdout = script, out, proc.stdout
        assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
        self.tables = parse_tables(proc.stdout)

    def table(self, prefix: str) -> list[dict[str, str]]:
        """The rows of the table whose title starts with prefix."""
        found = [t for t in self.tables if t.startswith(prefix)]
        assert len(found) == 1, f"{self.script}: no single table {prefix!r} in {list(self.tables)}"
        return self.tables[found[0]]

    def row(self, prefix: str, **match: str) -> dict[str, str]:
        """The one row of a table whose cells equal match."""
        rows = [r for r in self.table(prefix) if all(r[k] == v for k, v in match.items())]
        assert len(rows) == 1, f"{self.script}: {prefix!r} has {len(rows)} rows like {match}"
        return rows[0]


def num(cell: str) -> float:
    """A numeric table cell."""
    return float(cell)


def _run(script: str, out: Path) -> Run:
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0")
    proc = subprocess.run([sys.executable, str(EXAMPLES / f"{script}.py"), "--fast", "--out",
                           str(out)], capture_output=True, text=True, timeout=TIMEOUT, env=env,
                          cwd=str(out))
    return Run(script, out, proc)


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """script -> Future[Run], for the examples whose tests were selected, run concurrently."""
    mine = [item.name for item in request.session.items
            if getattr(item, "module", None) is sys.modules[__name__]]
    wanted = [s for s in SCRIPTS if f"test_{s}" in mine]
    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2)
    futures: dict[str, Future] = {s: pool.submit(_run, s, tmp_path_factory.mktemp(s))
                                  for s in wanted}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def get(runs: dict[str, Future], script: str) -> Run:
    run = runs[script].result()
    if _has_matplotlib():
        assert list(run.out.glob("*.png")), f"{script} saved no figure"
    assert (run.out / "results.md").read_text(encoding="utf-8").count("### ") == len(run.tables)
    return run


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# One test per example
# ---------------------------------------------------------------------------------------------


def test_c01_parameter_counts(runs) -> None:
    r = get(runs, "c01_parameter_counts")
    for level in ("scalar", "tensor"):
        small = r.row("parameter counts", net="3-4-2", level=level)
        big = r.row("parameter counts", net="3-4-4-1", level=level)
        assert (small["neurons"], small["weights"], small["biases"], small["parameters"]) == (
            "6", "20", "6", "26")
        assert (big["neurons"], big["weights"], big["biases"], big["parameters"]) == (
            "9", "32", "9", "41")
    assert r.row("parameter counts", net="3-4-4-1", level="scalar")["parameter nodes"] == "41"
    assert r.row("parameter counts", net="3-4-4-1", level="tensor")["parameter nodes"] == "6"


def test_c02_forward_pass(runs) -> None:
    r = get(runs, "c02_forward_pass")
    rows = r.table("max |difference|")
    assert len(rows) == 5
    assert all(num(row["max abs diff"]) < 1e-12 for row in rows)
    ops = {row["op"]: int(row["count"]) for row in r.table("ops in the batched graph")}
    assert ops == {"matmul": 3, "add": 3, "sigmoid": 2}


def test_c03_single_neuron(runs) -> None:
    r = get(runs, "c03_single_neuron")
    for row in r.table("single neuron"):
        assert num(row["train acc"]) >= 0.97 and num(row["test acc"]) >= 0.95
        assert num(row["σ(z)>0.5 agrees with z>0"]) == 1
    if "reference: scikit-learn" in " ".join(r.tables):
        logistic = r.row("reference", classifier="logistic (sigmoid + cross-entropy)")
        assert num(logistic["angle to tinygraph line (deg)"]) < 5


def test_c04_l2_forgetting(runs) -> None:
    r = get(runs, "c04_l2_forgetting")
    rows = r.table("‖w‖ of a logistic neuron")
    last = list(rows[0])[3]  # the "step N" column of the last step
    norms = [num(row[last]) for row in rows]
    assert norms[0] > norms[1] > norms[2]  # λ = 0, 0.01, 0.1: stronger L2, smaller weights
    assert num(rows[0]["change over last 20 steps"]) > 0  # without L2 they keep growing
    assert num(r.table("L2 as a loss term")[0]["max abs difference in ‖w‖ over all steps"]) < 1e-12
    for row in r.table("L2 alone"):
        assert num(row["max rel. error"]) < 1e-10
        assert row["every weight shrank every step"] == "yes"


def test_c05_saturation(runs) -> None:
    r = get(runs, "c05_saturation")
    rows = r.table("sigmoid 64-100-100-10")
    scales = [num(row["init scale"]) for row in rows]
    assert scales == sorted(scales)
    sat = [num(row["L1 saturated"]) for row in rows]
    dsig = [num(row["mean σ'(z) in L1"]) for row in rows]
    assert sat == sorted(sat) and sat[0] < 0.05 and sat[-1] > 0.8
    assert dsig == sorted(dsig, reverse=True) and dsig[0] > 0.2 and dsig[-1] < 0.02
    loss = [num(row[next(k for k in row if k.startswith("loss after"))]) for row in rows]
    assert loss[-1] > 5 * loss[0]  # the saturated net barely learned
    assert num(rows[-1]["test acc"]) < num(rows[0]["test acc"])
    flow = {row["layer"]: row for row in r.table("3-4-4-1 sigmoid net")}
    assert num(flow["L1"]["mean abs dL/dz"]) < num(flow["L3"]["mean abs dL/dz"]) / 100


def test_c06_zigzag(runs) -> None:
    r = get(runs, "c06_zigzag")
    t = "second-layer weight gradients"
    key = "neurons whose gradient is all one sign"
    assert num(r.row(t, **{"hidden activation": "sigmoid", "batch size": "1"})[key]) == 1
    assert num(r.row(t, **{"hidden activation": "sigmoid", "batch size": "64"})[key]) < 1
    assert num(r.row(t, **{"hidden activation": "tanh", "batch size": "1"})[key]) < 0.2
    rows = r.table("per-example SGD")
    pos = [row for row in rows if row["inputs"].startswith("sigmoid") and row["learning rate"]
           != "best"]
    cen = [row for row in rows if row["inputs"].startswith("zero") and row["learning rate"]
           != "best"]
    assert all(num(row["steps with same-sign gradient"]) == 1 for row in pos)
    assert all(0.2 < num(row["steps with same-sign gradient"]) < 0.8 for row in cen)
    best = {row["inputs"]: row["steps to within 0.05 of w*"] for row in rows
            if row["learning rate"] == "best"}
    assert num(best["zero-centred (x - mean)"]) < num(best["sigmoid outputs (x > 0)"])


def test_c07_tanh(runs) -> None:
    r = get(runs, "c07_tanh")
    for row in r.table("tanh(x) vs 2σ(2x) - 1"):
        assert num(row["max abs difference"]) < 1e-12
    rows = {row["hidden activation"]: row for row in r.table("64-64-64-10 on digits")}
    assert 0.3 < num(rows["sigmoid"]["mean hidden output"]) < 0.7  # not zero-centred
    assert abs(num(rows["tanh"]["mean hidden output"])) < 0.1  # zero-centred
    assert num(rows["tanh"]["final train loss"]) < num(rows["sigmoid"]["final train loss"])


@given(st.floats(-40, 40, allow_nan=False))
def test_c07_tanh_identity_property(x: float) -> None:
    """tanh(x) = 2σ(2x) - 1, values and derivatives, with tinygraph's ops."""
    a, b = tg.Node(x), tg.Node(x)
    lhs, rhs = tg.tanh(a), 2 * tg.sigmoid(2 * b) - 1
    lhs.backward()
    rhs.backward()
    assert abs(lhs.data - rhs.data) <= 1e-15 + 1e-12 * abs(lhs.data)
    assert abs(a.grad - b.grad) <= 1e-12
    assert abs(a.grad - (1 - np.tanh(x) ** 2)) <= 1e-12


def test_c08_relu_speed(runs) -> None:
    r = get(runs, "c08_relu_speed")
    rows = r.table("SGD steps")
    assert rows and all(row["seeds with both"] == "1/1" for row in rows)
    for row in rows:
        relu, tanh, factor = num(row["ReLU steps"]), num(row["tanh steps"]), num(
            row["factor tanh/ReLU"])
        assert relu > 0 and tanh > 0 and abs(factor - tanh / relu) < 1e-3 * factor
        assert 0.1 < factor < 20  # a measurement, not the notes' 6: only sanity here


def test_c09_c10_dead_units(runs) -> None:
    r = get(runs, "c09_c10_dead_units")
    t = "hidden units of 64-100-100-10"
    low = r.row(t, activation="relu", lr="0.01")
    high = r.row(t, activation="relu", lr="0.3")
    assert num(low["dead"]) == 0 and num(low["train acc"]) > 0.9
    assert num(high["dead"]) >= 0.3  # a too-high rate kills a large part of the net
    leaky = r.row(t, activation="leaky_relu", lr="0.1")
    assert leaky["diverged"] == "1/1" or num(leaky["dead"]) == 0
    relu_p = int(r.row(t, activation="relu", lr="0.01")["parameters"])
    maxout_p = int(r.row(t, activation="maxout", lr="0.1")["parameters"])
    out_layer = 100 * 10 + 10  # the linear output layer is not maxout
    assert maxout_p - out_layer == 2 * (relu_p - out_layer)  # maxout doubles hidden parameters


def test_c11_capacity(runs) -> None:
    r = get(runs, "c11_capacity")
    rows = {row["hidden neurons"]: row for row in r.table("2-H-1 tanh nets")}
    assert [rows[w]["parameters"] for w in ("3", "6", "20")] == ["13", "25", "81"]
    assert num(rows["20"]["train loss"]) < num(rows["3"]["train loss"])
    assert num(rows["20"]["train acc"]) >= num(rows["3"]["train acc"])
    assert all(num(row["decision regions"]) >= 2 for row in rows.values())
    assert all(num(row["test acc"]) > 0.7 for row in rows.values())


def test_c12_regularization(runs) -> None:
    r = get(runs, "c12_regularization")
    rows = r.table("2-20-1 tanh net")
    norms = [num(row["weight norm"]) for row in rows]
    assert norms == sorted(norms, reverse=True)  # λ grows down the table
    assert num(rows[0]["train acc"]) >= num(rows[-1]["train acc"])
    assert num(rows[-1]["decision regions"]) == 2  # λ = 0.1: one boundary
    assert num(rows[0]["decision regions"]) >= num(rows[-1]["decision regions"])


def test_c13_seed_variance(runs) -> None:
    r = get(runs, "c13_seed_variance")
    rows = {row["hidden neurons"]: row for row in r.table("final training loss")}
    assert num(rows["100"]["std"]) < num(rows["3"]["std"])
    assert num(rows["100"]["std / mean"]) < num(rows["3"]["std / mean"])
    assert num(rows["100"]["mean"]) < num(rows["3"]["mean"])
    assert all(num(row["min"]) <= num(row["mean"]) <= num(row["max"]) for row in rows.values())


def test_c14_approximation(runs) -> None:
    r = get(runs, "c14_approximation")
    rows = r.table("sigmoid nets g(x)")
    err = [num(row["max error"]) for row in rows]
    assert err[-1] < err[0] / 5
    assert num(rows[-1]["RMS error"]) < 0.1


def test_c15_depth(runs) -> None:
    r = get(runs, "c15_depth")
    rows = r.table("ReLU MLPs on digits")
    assert len(rows) >= 3
    for row in rows:
        assert abs(num(row["parameters"]) - 6000) < 0.05 * 6000  # the same budget
        assert num(row["test acc"]) > 0.85


def test_c16_preprocessing(runs) -> None:
    r = get(runs, "c16_preprocessing")
    toy = "correlated 2-D Gaussian"
    assert num(r.row(toy, step="zero-centred", split="train")["max abs mean"]) < 1e-10
    std = r.row(toy, step="standardized", split="train")
    assert num(std["min var"]) == 1 and num(std["max var"]) == 1
    assert num(r.row(toy, step="PCA (decorrelated)", split="train")["max abs off-diag cov"]) < 1e-10
    assert num(r.row(toy, step="whitened", split="train")["max abs (cov - I)"]) < 1e-10
    assert 1e-10 < num(r.row(toy, step="whitened", split="test")["max abs (cov - I)"]) < 0.3
    digits = {(row["step"].split(" (")[0], row["split"]): row for row in r.table("digits")}
    assert num(digits[("whitened", "train")]["max abs (cov - I)"]) < 1e-10
    assert num(digits[("PCA", "train")]["max abs off-diag cov"]) < 1e-10
    assert r.table("whitening all 64")[0]["refused with a clear error"].startswith("yes")
    img = r.table("400 train")
    mean_image = [row for row in img if row["step"] == "minus mean image"]
    assert num(next(x for x in mean_image if x["split"] == "train")["max abs mean pixel"]) < 1e-9
    per_ch = next(x for x in img if x["step"] == "minus per-channel mean" and x["split"] == "train")
    assert all(abs(num(per_ch[c])) < 1e-9 for c in ("mean R", "mean G", "mean B"))


# ---------------------------------------------------------------------------------------------
# The shared helpers
# ---------------------------------------------------------------------------------------------


def test_table_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _common.table("demo", ["a", "b"], [(1, 0.5), ("x", 1e-7)], str(tmp_path))
    printed = capsys.readouterr().out
    assert parse_tables(printed) == {"demo": [{"a": "1", "b": "0.5"}, {"a": "x", "b": "1.000e-07"}]}
    assert parse_tables((tmp_path / "results.md").read_text(encoding="utf-8")) == parse_tables(
        printed)
    with pytest.raises(ValueError, match="contains '|'"):
        _common.table("bad", ["‖w‖", "|w|"], [(1, 2)])


def test_count_regions() -> None:
    m = np.zeros((6, 6), dtype=int)
    assert _common.count_regions(m) == 1
    m[1:3, 1:3] = 1  # an island
    m[4:, 4:] = 1  # a corner piece, not touching the island
    assert _common.count_regions(m) == 3
    m[3, 3] = 1  # diagonal contact does not join regions (4-connectivity)
    assert _common.count_regions(m) == 4
