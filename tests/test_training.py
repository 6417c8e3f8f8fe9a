"""`npoptim train`: fairness (same weights, same batches), determinism, accuracy, outputs, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from npoptim import cli, nn
from npoptim.data import load_digits
from npoptim.experiments import training
from npoptim.experiments.training import batch_order, moving_average, run_training
from numerics import assert_canvas, assert_within, gamma


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_moving_average_is_the_trailing_mean():
    rng = np.random.default_rng(0)
    x = rng.random(37)
    # Not bit-exact: moving_average differences a running sum (csum[t] - csum[t-w]), the reference
    # sums each window (np.mean, pairwise).  Each prefix sum of <= 37 non-negative terms is within
    # gamma_37 of its value and the window sum within gamma_w of its own, so (Higham 3.5) the two
    # differ by <= (gamma_37 (csum[t] + csum[lo]) + gamma_50 window sum) / m, plus 2 roundings of the
    # quotient -- relative to a single small x[t] (w = 1) that is up to csum/x[t] times u, not u.
    csum = np.concatenate([[0.0], np.cumsum(x)])
    for w in (1, 5, 50):
        t = np.arange(1, len(x) + 1)
        lo = np.maximum(t - w, 0)
        expected = np.array([x[max(0, i - w + 1) : i + 1].mean() for i in range(len(x))])
        bound = (gamma(len(x)) * (csum[t] + csum[lo]) + gamma(w) * expected * (t - lo)) / (t - lo) + gamma(2) * expected
        assert_within(moving_average(x, w), expected, bound, f"window {w}")


def test_batch_order_is_a_permutation_per_epoch():
    order = batch_order(10, 3, 7, np.random.default_rng(0))
    assert order.shape == (7, 3)
    for epoch in range(2):  # 3 full batches per epoch; the partial one is dropped
        rows = order[3 * epoch : 3 * epoch + 3].ravel()
        assert len(set(rows)) == 9 and set(rows) <= set(range(10))
    with pytest.raises(ValueError, match="batch size must be in"):
        batch_order(10, 11, 1, np.random.default_rng(0))


def test_every_optimizer_starts_from_the_same_weights_and_sees_the_same_batches(digits, monkeypatch):
    calls: list[tuple[dict, bytes]] = []
    real = nn.loss_and_grads

    def spy(params, x, y, *, weight_decay_lambda=0.0):
        calls.append(({k: v.copy() for k, v in params.items()}, x.tobytes() + y.tobytes()))
        return real(params, x, y, weight_decay_lambda=weight_decay_lambda)

    monkeypatch.setattr(nn, "loss_and_grads", spy)
    names = ["sgd", "momentum", "adagrad", "adam"]
    steps = 12
    res = run_training(digits, optimizers=names, steps=steps, seeds=[0, 5], batch_size=32).results
    assert len(calls) == 2 * 4 * steps  # seed-major: for each seed, each optimizer's run in turn
    seen = [(calls[i][0], [b for _, b in calls[i : i + steps]]) for i in range(0, len(calls), steps)]
    for s in range(2):
        runs = seen[4 * s : 4 * s + 4]
        first, batches = runs[0]
        for other, other_batches in runs[1:]:
            for key in first:
                np.testing.assert_array_equal(other[key], first[key])
            assert other_batches == batches
        assert batches[0] != batches[1]  # consecutive batches differ
    assert not np.array_equal(seen[0][0]["W1"], seen[4][0]["W1"])  # seeds differ
    assert not np.array_equal(calls[1][0]["W1"], calls[2 * steps + 1][0]["W1"])  # sgd and adagrad part ways
    assert seen[0][1] != seen[4][1]
    for seed in ("0", "5"):
        assert len({res["runs"][n][seed]["initial_params_sha256"] for n in names}) == 1


def test_same_seed_same_numbers(digits):
    kw = dict(optimizers=["momentum", "rmsprop"], steps=60, seeds=2, eval_every=20)
    a, b = run_training(digits, **kw), run_training(digits, **kw)
    a.results.pop("timing"), b.results.pop("timing")
    # bit-exact: the same code on the same inputs in one process, BLAS pinned to one thread by
    # run_training (threadpool_limits), the same shapes, so the same kernels in the same order
    assert json.dumps(a.results, sort_keys=True) == json.dumps(b.results, sort_keys=True)
    for name in a.raw_loss:
        np.testing.assert_array_equal(a.raw_loss[name], b.raw_loss[name])
    c = run_training(digits, **{**kw, "seeds": [7, 8]})
    assert c.results["runs"]["momentum"]["7"]["final_train_loss"] != a.results["runs"]["momentum"]["0"][
        "final_train_loss"
    ]


def test_adam_beats_90_percent_on_digits_at_the_default_budget(digits):
    res = run_training(digits, optimizers=["adam"]).results  # default steps, seeds, batch, lr
    assert res["config"]["steps"] == training.DEFAULT_STEPS and len(res["config"]["seeds"]) == 3
    accuracies = [run["held_out_accuracy"] for run in res["runs"]["adam"].values()]
    assert min(accuracies) > 0.90, accuracies
    # The network learns the training set: the loss falls far below the uniform guess log(10) = 2.30.
    assert res["table"][0]["final_train_loss"]["mean"] < 0.05


def test_adam_beats_90_percent_on_the_mnist_test_set_split(mnist_dir):
    """Stated budget: Adam, lr 0.01, batch 128, 300 steps, seed 0, on 8,000 of the 10,000 test images."""
    from npoptim.data import load_mnist

    res = run_training(load_mnist(mnist_dir), optimizers=["adam"], seeds=1, steps=300).results
    assert res["config"]["data"]["n_held_out"] == 2000
    assert res["runs"]["adam"]["0"]["held_out_accuracy"] > 0.90


def test_divergence_is_recorded_not_raised(digits):
    res = run_training(digits, optimizers=["sgd", "adam"], lrs={"sgd": 1e6}, steps=30, seeds=2).results
    row = {r["optimizer"]: r for r in res["table"]}
    assert row["sgd"]["diverged"] == 2 and row["sgd"]["final_train_loss"]["mean"] is None
    assert row["adam"]["diverged"] == 0 and row["adam"]["final_train_loss"]["mean"] is not None
    json.dumps(res, allow_nan=False)  # no NaN leaks into the JSON


def test_report_names_the_optimizers_run_far_from_their_own_default_lr(digits):
    """Lion's default lr is 1e-4 (its paper: 3-10x below AdamW's): at the book's common 0.01 it is 100x
    off, and the report says so; Adam (default 1e-3, 10x) and SGD (0.01, its own) are not named."""
    from npoptim import Lion
    from npoptim.report.markdown import training_paragraph

    res = run_training(digits, optimizers=["sgd", "adam", "lion"], steps=5, seeds=1).results
    assert {r["optimizer"]: r["default_lr"] for r in res["table"]} == {"sgd": 0.01, "adam": 1e-3, "lion": Lion().lr}
    text = training_paragraph(res)
    assert "Lion (default 0.0001) ran at a learning rate more than ten times away from its own default" in text
    assert "Adam (default" not in text and "SGD (default" not in text
    res = run_training(digits, optimizers=["lion"], lrs={"lion": 1e-4}, steps=5, seeds=1).results
    assert "ten times away" not in training_paragraph(res)


def test_default_selection_is_the_books_six_and_all_is_the_registry():
    from npoptim import ALL_OPTIMIZERS, BOOK_OPTIMIZERS

    chosen = training._resolve_optimizers(None, None)
    assert list(chosen) == list(BOOK_OPTIMIZERS) == ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]
    assert list(training._resolve_optimizers("all", None)) == list(ALL_OPTIMIZERS)
    assert all(lr == training.DEFAULT_LR == 0.01 for lr in chosen.values())


# --- the command line ---------------------------------------------------------------


def _numbers(cell: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", cell)]


def check_training_table_matches_json(rows: list[list[str]], res: dict) -> None:
    assert [r[0].split(" ")[0] for r in rows] == [row["display_name"] for row in res["table"]]
    for cells, row in zip(rows, res["table"], strict=True):
        assert float(cells[1]) == pytest.approx(row["lr"])
        loss, acc, steps = _numbers(cells[2]), _numbers(cells[3]), cells[4]
        # The tolerances are the printing's: %.3g is within half a unit of the 3rd significant digit
        # (<= 5e-3 relative), %.2g of the 2nd (5e-2; a zero std prints as 0), %.2f within 0.005 of
        # 100 x -- plus the parsed decimal's own rounding to binary (< ulp(100)/2 = 7e-15), %.0f 0.5.
        assert loss[0] == pytest.approx(row["final_train_loss"]["mean"], rel=5e-3)
        assert loss[1] == pytest.approx(row["final_train_loss"]["std"], rel=5e-2, abs=1e-12)
        assert acc[0] == pytest.approx(100 * row["held_out_accuracy"]["mean"], abs=0.005 + 1e-14)
        assert acc[1] == pytest.approx(100 * row["held_out_accuracy"]["std"], abs=0.005 + 1e-14)
        if row["steps_to_target"]["mean"] is None:
            assert steps.startswith("not reached")
        else:
            assert _numbers(steps)[0] == pytest.approx(row["steps_to_target"]["mean"], abs=0.5)


def check_png(path: Path, figsize: tuple[float, float], dpi: int = 100) -> None:
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert_canvas(im.size, figsize, dpi)
        pixels = np.asarray(im.convert("RGB"))
    rgb = pixels.astype(np.uint32)
    colours = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])
    assert len(colours) > 50  # curves, bands, text: far from a blank canvas
    assert (pixels < 250).any(axis=2).mean() > 0.02


def test_cli_train_writes_consistent_outputs(tmp_path, capsys, markdown_rows):
    from npoptim.plotting import TRAINING_FIGSIZE

    out = tmp_path / "run"
    argv = ["train", "--steps", "40", "--seeds", "2", "--optimizers", "sgd,adam", "momentum",
            "--lr", "sgd=0.05", "--batch-size", "64", "--hidden", "30,20", "--out", str(out)]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""  # not a terminal: no progress bar, and nothing printed
    payload = json.loads((out / "results.json").read_text())
    assert json.loads(json.dumps(payload)) == payload
    res = payload["training"]
    cfg = res["config"]
    assert cfg["optimizers"] == ["sgd", "adam", "momentum"]
    assert cfg["lrs"] == {"sgd": 0.05, "adam": 0.01, "momentum": 0.01}
    assert cfg["layer_sizes"] == [64, 30, 20, 10] and cfg["batch_size"] == 64 and cfg["seeds"] == [0, 1]
    assert set(payload["versions"]) >= {"python", "numpy", "npoptim"}
    report = (out / "report.md").read_text()
    check_training_table_matches_json(markdown_rows(report, "| optimizer | lr | final training loss"), res)
    assert "![training curves](training_curves.png)" in report
    check_png(out / "training_curves.png", TRAINING_FIGSIZE)
    losses = np.load(out / "training_losses.npz")
    assert losses["raw_adam"].shape == (2, 40)
    for name in cfg["optimizers"]:
        per_seed = [r["final_smoothed_loss"] for r in res["runs"][name].values()]
        # bit-exact: both are moving_average of the same raw row in the same process (JSON and .npz
        # keep float64 exactly)
        np.testing.assert_array_equal(losses[f"smoothed_{name}"][:, -1], per_seed)
    # Re-running writes the same numbers (bit-exact: same process, same shapes, BLAS on one thread).
    assert cli.main([*argv[:-1], str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    res.pop("timing"), again["training"].pop("timing")
    assert again["training"] == res


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--optimizers", "adam", "shampoo"], "unknown optimizer 'shampoo'"),
        (["--lr", "adam=-0.1"], "--lr 'adam=-0.1': the learning rate must be a finite number > 0"),
        (["--lr", "adam0.1"], "expected NAME=VALUE"),
        (["--optimizers", "sgd", "--lr", "adam=0.1"], "learning rate given for adam, which is not among"),
        (["--data", "mnist", "--mnist-dir", "/no/such/mnist"], "'/no/such/mnist' does not exist"),
        (["--weight-decay", "-1"], "--weight-decay must be a finite number >= 0"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, argv, message):
    assert cli.main(["train", *argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("npoptim train: error:")
    assert not (tmp_path / "x").exists()


def test_cli_mnist_needs_a_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(training.MNIST_ENV, raising=False)
    assert cli.main(["train", "--data", "mnist", "--out", str(tmp_path)]) == 2
    assert "--data mnist needs --mnist-dir DIR" in capsys.readouterr().err


def test_cli_train_on_mnist(tmp_path, mnist_dir):
    out = tmp_path / "m"
    assert cli.main(["train", "--data", "mnist", "--mnist-dir", str(mnist_dir), "--optimizers", "sgd",
                     "--steps", "5", "--seeds", "1", "--quiet", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())["training"]
    assert res["config"]["layer_sizes"][0] == 784 and res["config"]["data"]["name"] == "mnist"
