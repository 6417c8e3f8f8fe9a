"""Tables and the lr-sensitivity figure of docs/optimizers-2024.md, from the sweeps' results.json.

Usage: python docs/examples/optimizers_2024_tables.py OUTDIR [SENSITIVITY.png [CURVES.png]]
(OUTDIR as given to docs/examples/optimizers-2024.sh; it holds {digits,mnist}-{full,lr}/results.json.)
Prints Markdown; reads only what `npoptim sweep` wrote.
"""

from __future__ import annotations

import json
import math
import sqlite3
import sys
from pathlib import Path

#: A "good" rate: its held-out accuracy is within this many points of the best grid rate's.
ACC_POINTS = 1.0
#: A rate that fits: the final training loss is at most this (the initial loss is about 2.3).
LOSS_OK = 0.01


def load(out: Path, problem: str, kind: str) -> dict | None:
    path = out / f"{problem}-{kind}" / "results.json"
    return json.loads(path.read_text()) if path.exists() else None


def fmt(x: float | None, digits: int = 3) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def winners(res: dict, problem: str) -> str:
    rows = res["problems"][problem]["optimizers"]
    order = sorted(rows, key=lambda o: -(rows[o]["held_out_accuracy_mean"] or 0.0))
    best = rows[order[0]]["held_out_accuracy_mean"]
    lines = ["| rank | optimizer | best setting | held-out accuracy (5 seeds) | vs best | final training loss |",
             "|---|---|---|---|---|---|"]
    for i, o in enumerate(order, 1):
        r = rows[o]
        hp = ", ".join(f"{k}={v:.3g}" for k, v in r["best"].items())
        acc, sd = r["held_out_accuracy_mean"], r["held_out_accuracy_std"]
        lines.append(f"| {i} | {o} | {hp} | {100 * acc:.2f} ± {100 * sd:.2f} % | {100 * (acc - best):+.2f} pt | "
                     f"{fmt(r['final_mean'])} ± {fmt(r['final_std'], 2)} |")
    return "\n".join(lines)


def tuning_runs(out: Path, problem: str) -> dict[str, list[tuple[float, float, float | None]]]:
    """(lr, final training loss, held-out accuracy) of every tuning run of the lr-grid sweep, by optimizer."""
    db = sqlite3.connect(out / f"{problem}-lr.db")
    rows = db.execute("SELECT optimizer, config, final, metrics FROM runs WHERE seed < 1000 AND status = 'ok'")
    got: dict[str, list] = {}
    for opt, config, final, metrics in rows:
        acc = json.loads(metrics or "{}").get("held_out_accuracy")
        got.setdefault(opt, []).append((json.loads(config)["hyperparameters"]["lr"], final, acc))
    db.close()
    return {o: sorted(v) for o, v in got.items()}


def span(v: list[float]) -> str:
    return f"{len(v)} ({min(v):.2g} .. {max(v):.2g})" if v else "0"


def sensitivity(res: dict, runs: dict[str, list]) -> str:
    lines = [f"| optimizer | best grid lr (held-out) | its held-out accuracy | lrs within {ACC_POINTS:g} pt of it "
             f"| window (decades) | lrs with training loss <= {LOSS_OK:g} | diverged |",
             "|---|---|---|---|---|---|---|"]
    for o in res["spec"]["optimizers"]:
        pts = runs[o]
        lr_best, _, acc_best = max(pts, key=lambda p: p[2] or 0.0)
        good = [lr for lr, _, acc in pts if acc is not None and acc >= acc_best - ACC_POINTS / 100]
        fit = [lr for lr, loss, _ in pts if math.isfinite(loss) and loss <= LOSS_OK]
        bad = sum(1 for _, loss, _ in pts if not math.isfinite(loss))
        width = math.log10(max(good) / min(good)) if good else 0.0
        lines.append(f"| {o} | {lr_best:.3g} | {100 * acc_best:.2f} % | {span(good)} | {width:.2f} | {span(fit)} "
                     f"| {bad} |")
    return "\n".join(lines)


def figure(curves_by_problem: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves_by_problem), figsize=(5.2 * len(curves_by_problem), 3.8), squeeze=False)
    for ax, (problem, curves) in zip(axes[0], curves_by_problem.items(), strict=True):
        for o, pts in curves.items():
            lrs = [lr for lr, _, _ in pts]
            ys = [100 * acc if acc is not None else math.nan for _, _, acc in pts]
            ax.plot(lrs, ys, marker=".", lw=1.2, label=o, ls="-" if o in ("adamw", "muon+adamw") else "--")
        ax.set_xscale("log")
        ax.set_ylim(50, 100)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("held-out accuracy % (seed 0)")
        ax.set_title(f"{problem}: lr sensitivity, 500 steps")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=72)


def curves_figure(results: dict[str, dict], path: Path) -> None:
    """Mean training-loss curve over the 5 rerun seeds of each optimizer's best setting (the full sweeps)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 3.8), squeeze=False)
    for ax, (problem, res) in zip(axes[0], results.items(), strict=True):
        for o, r in res["problems"][problem]["optimizers"].items():
            c = r["curve"]
            ax.plot(c["steps"], c["mean"], lw=1.2, label=o, ls="-" if o in ("adamw", "muon+adamw") else "--")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss (mean of 5 seeds)")
        ax.set_title(f"{problem}: best setting of each (full sweep)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=72)


def main() -> None:
    out = Path(sys.argv[1])
    fig_path = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    curves_path = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    curves_by_problem, full = {}, {}
    for problem in ("digits", "mnist"):
        for kind, title in (("full", "tuned (lr + table, random search)"), ("lr", "tuned (lr only, grid)")):
            res = load(out, problem, kind)
            if res is None:
                continue
            if kind == "full":
                full[problem] = res
            print(f"\n### {problem}: {title}\n")
            print(winners(res, problem))
            if kind == "lr":
                runs = tuning_runs(out, problem)
                curves_by_problem[problem] = runs
                print(f"\n#### {problem}: lr sensitivity (the grid sweep's tuning runs, seed 0)\n")
                print(sensitivity(res, runs))
    if fig_path and curves_by_problem:
        figure(curves_by_problem, fig_path)
    if curves_path and full:
        curves_figure(full, curves_path)


if __name__ == "__main__":
    main()
