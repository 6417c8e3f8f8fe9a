"""`npoptim compare`, the main job: one directory with figures, results.json and report.md that agree."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from npoptim import cli
from npoptim.experiments import training
from numerics import assert_canvas

ARGS = ["--steps", "30", "--seeds", "2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same small compare run twice, into two directories."""
    outs = []
    for name in ("first", "second"):
        out = tmp_path_factory.mktemp("compare") / name
        assert cli.main(["compare", "--out", str(out), *ARGS]) == 0
        outs.append(out)
    return outs


def _num(cell: str) -> float:
    return float(re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", cell)[0])


def test_one_directory_with_everything(runs):
    out = runs[0]
    payload = json.loads((out / "results.json").read_text())
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload
    assert payload["command"] == "npoptim compare --out " + str(out) + " --seeds 2 --steps 30"
    assert set(payload["versions"]) >= {"python", "numpy", "npoptim", "scikit-learn", "matplotlib"}
    assert payload["training"]["config"]["seeds"] == [0, 1] and payload["training"]["config"]["steps"] == 30
    report = (out / "report.md").read_text()
    figures = {**payload["trajectories"]["figures"], "training_curves": "training_curves.png"}
    pngs = [f for f in figures.values() if f.endswith(".png")]
    assert len(pngs) >= 2
    for file in pngs:
        assert f"]({file})" in report  # every figure is shown in the report
        with Image.open(out / file) as im:
            pixels = np.asarray(im.convert("RGB"))
            size = im.size
        spec = payload["trajectories"]["figure_specs"].get(Path(file).stem) if file != "training_curves.png" else None
        if spec:
            assert_canvas(size, spec["figsize"], spec["dpi"])
        packed = (pixels[..., 0].astype(np.uint32) << 16) | (pixels[..., 1].astype(np.uint32) << 8) | pixels[..., 2]
        assert len(np.unique(packed)) > 50  # curves, contours, text: not a blank canvas
    from npoptim.plotting import DPI, TRAINING_FIGSIZE

    with Image.open(out / "training_curves.png") as im:
        assert im.size == (TRAINING_FIGSIZE[0] * DPI, TRAINING_FIGSIZE[1] * DPI)


def test_report_tables_match_results_json(runs, markdown_rows):
    payload = json.loads((runs[0] / "results.json").read_text())
    report = (runs[0] / "report.md").read_text()
    # Training table: every mean ± std as in the JSON.
    res = payload["training"]
    rows = markdown_rows(report, "| optimizer | lr | final training loss")
    assert [r[0].split(" ")[0] for r in rows] == [row["display_name"] for row in res["table"]]
    for cells, row in zip(rows, res["table"], strict=True):
        # the printing's tolerances: %.3g is within 5e-3 relative, %.2f within 0.005 (+ the parsed
        # decimal's binary rounding, < ulp(100)/2 = 7e-15), %.0f within 0.5
        assert _num(cells[2]) == pytest.approx(row["final_train_loss"]["mean"], rel=5e-3)
        assert _num(cells[3]) == pytest.approx(100 * row["held_out_accuracy"]["mean"], abs=0.005 + 1e-14)
        if row["steps_to_target"]["mean"] is None:
            assert cells[4].startswith("not reached")
        else:
            assert _num(cells[4]) == pytest.approx(row["steps_to_target"]["mean"], abs=0.5)
    # Trajectory table: distance to the minimum per optimizer.
    traj = payload["trajectories"]["optimizers"]
    header = "| optimizer | lr | final point |"
    rows = markdown_rows(report, header)
    assert len(rows) == len(traj)
    head = next(line for line in report.splitlines() if line.startswith(header))
    col = [c.strip() for c in head.strip("|").split("|")].index("distance to minimum")
    for cells, entry in zip(rows, traj.values(), strict=True):
        assert cells[0] == entry["display_name"], rows[0]
        assert _num(cells[col]) == pytest.approx(entry["distance_to_minimum"], rel=5e-3)  # printed %.3g


def test_interpretation_is_derived_from_the_numbers(runs):
    payload = json.loads((runs[0] / "results.json").read_text())
    report = (runs[0] / "report.md").read_text()
    table = payload["training"]["table"]
    best_loss = min(table, key=lambda r: r["final_train_loss"]["mean"])
    assert f"the lowest final training loss is {best_loss['display_name']}'s" in report
    accs = sorted(table, key=lambda r: -r["held_out_accuracy"]["mean"])
    assert f"{100 * accs[0]['held_out_accuracy']['mean']:.2f}% ({accs[0]['display_name']})" in report
    traj = payload["trajectories"]["optimizers"]
    closest = min(traj, key=lambda k: traj[k]["distance_to_minimum"])
    assert (f"Closest to the minimum after {payload['trajectories']['config']['steps']} updates: "
            f"{traj[closest]['display_name']}") in report


def test_rerun_gives_the_same_numbers(runs):
    a, b = (json.loads((out / "results.json").read_text()) for out in runs)
    for p in (a, b):
        p.pop("timing"), p["training"].pop("timing"), p.pop("command")
    # bit-exact: the same code on the same inputs in one process, BLAS pinned to one thread during
    # training, the same shapes: the same kernels in the same order
    assert a == b
    for name in a["training"]["config"]["optimizers"]:
        la, lb = (np.load(out / training.LOSSES_NAME)[f"raw_{name}"] for out in runs)
        np.testing.assert_array_equal(la, lb)


def test_bad_arguments_are_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli.main(["compare", "--out", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists and is not a directory" in err
    with pytest.raises(SystemExit):
        cli.main(["compare", "--steps", "-3"])
    assert "must be >= 1" in capsys.readouterr().err
