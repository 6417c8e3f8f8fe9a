"""docs/notebooks/updating-weights.ipynb: kept without outputs, executed here, its key numbers checked.

The expected numbers are derived, not copied from a run: the first update of each rule from (-7, 2)
with gradient (-0.7, 4) (worked out below from the rules' formulas) and SGD's y <- (1 - 2 * 0.95) y.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from numerics import assert_within, unit_roundoff

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("dash")

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "notebooks" / "updating-weights.ipynb"
U = unit_roundoff()

pytestmark = pytest.mark.slow


def test_the_notebook_is_kept_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.fixture(scope="module")
def summary(tmp_path_factory) -> dict:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path_factory.mktemp("nb"))}})
    client.execute()
    (cell,) = [c for c in nb.cells if "summary" in c.metadata.get("tags", [])]
    text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
    return json.loads(text.strip().splitlines()[-1])


def test_the_first_update_of_each_rule(summary):
    got = summary["first_steps"]
    # g = (-0.7, 4).  SGD: w - 0.95 g.  Momentum: v = -0.1 g, w + v.  Nesterov (v0 = 0): w - (1 + 0.9) 0.1 g.
    # AdaGrad (h = g^2): w - 1.5 g / (|g| + 1e-7).  RMSprop (h = 0.01 g^2): w - 0.1 g / (0.1 |g| + 1e-7).
    # Adam (bias-corrected m = g, v = g^2): w - 0.3 g / (|g| + 1e-8).
    w, g = np.array([-7.0, 2.0]), np.array([-0.7, 4.0])
    expected = {"SGD": w - 0.95 * g, "Momentum": w - 0.1 * g, "Nesterov": w - 0.19 * g,
                "AdaGrad": w - 1.5 * g / (np.abs(g) + 1e-7), "RMSprop": w - 0.1 * g / (0.1 * np.abs(g) + 1e-7),
                "Adam": w - 0.3 * g / (np.abs(g) + 1e-8)}
    for name, want in expected.items():
        # The rules reach the same value by other operations (moments, square roots): a few roundings of |w|.
        assert_within(np.array(got[name]), want, 16 * U * np.abs(w), name)


def test_the_zig_zag_and_the_comparison(summary):
    assert summary["sgd_y_alternates"] is True
    y = np.array(summary["sgd_y"])
    assert_within(y, 2.0 * (-0.9) ** np.arange(4), 8 * U * np.abs(y), "SGD's y")  # y <- -0.9 y, one rounding a step
    assert set(summary["digits"]) == {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"}
    for name, d in summary["digits"].items():
        assert d["final_loss"] < d["first_loss"], name  # training lowered the loss
        assert d["accuracy"] > 0.5, name  # far above chance (0.1) on the held-out digits
    assert summary["explorer_serves"] is True
