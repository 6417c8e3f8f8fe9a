"""Markdown reports written from the numbers, so their words stay true when the numbers change.

Every sentence of interpretation below is computed from ``results.json``
content: rankings, gaps compared with the seed-to-seed spread, who reached the
target and who did not.  Nothing here states a winner in advance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..optimizers import display_name

__all__ = [
    "format_mean_std",
    "training_table",
    "training_paragraph",
    "training_section",
    "training_report",
    "trajectory_section",
    "compare_report",
]


def _loss(x: float) -> str:
    return f"{x:.3g}"


def format_mean_std(entry: Mapping[str, Any], kind: str, n_seeds: int) -> str:
    """One table cell: ``mean ± std`` in the unit of ``kind`` ("loss", "accuracy", "steps")."""
    mean, std, n = entry["mean"], entry["std"], entry["n"]
    if mean is None:
        return f"not reached (0/{n_seeds})" if kind == "steps" else "—"
    if kind == "loss":
        cell = f"{_loss(mean)} ± {std:.2g}"
    elif kind == "accuracy":
        cell = f"{100 * mean:.2f} ± {100 * std:.2f}"
    else:
        cell = f"{mean:.0f} ± {std:.0f}"
    if n < n_seeds:
        cell += f" ({n}/{n_seeds})"
    return cell


def training_table(res: Mapping[str, Any]) -> str:
    """The training table: final loss, held-out accuracy, steps to target; mean ± std across seeds."""
    cfg = res["config"]
    n = len(cfg["seeds"])
    lines = [
        "| optimizer | lr | final training loss | held-out accuracy (%) | "
        f"steps to smoothed loss ≤ {cfg['target_loss']:g} |",
        "|---|---|---|---|---|",
    ]
    for row in res["table"]:
        name = display_name(row["optimizer"]) + (f" (diverged {row['diverged']}/{n})" if row["diverged"] else "")
        lines.append(
            f"| {name} | {row['lr']:g} | {format_mean_std(row['final_train_loss'], 'loss', n)} | "
            f"{format_mean_std(row['held_out_accuracy'], 'accuracy', n)} | "
            f"{format_mean_std(row['steps_to_target'], 'steps', n)} |"
        )
    return "\n".join(lines)


def _names(rows: Sequence[Mapping[str, Any]]) -> str:
    names = [display_name(r["optimizer"]) for r in rows]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _name(row: Mapping[str, Any]) -> str:
    return display_name(row["optimizer"])


def training_paragraph(res: Mapping[str, Any]) -> str:
    """One paragraph of interpretation, derived from the table only."""
    cfg, rows = res["config"], res["table"]
    n = len(cfg["seeds"])
    lrs = {r["lr"] for r in rows}
    rate = (f"one common, untuned learning rate ({next(iter(lrs)):g})" if len(lrs) == 1
            else "the learning rates in the table")
    ok = [r for r in rows if r["final_train_loss"]["mean"] is not None]
    out = []
    if not ok:
        return f"Every run diverged at {rate}; lower the learning rates."
    by_loss = sorted(ok, key=lambda r: r["final_train_loss"]["mean"])
    low, high = by_loss[0], by_loss[-1]
    out.append(
        f"From the same initial weights and the same mini-batches, after {cfg['steps']} steps at {rate}, "
        f"the lowest final training loss is {_name(low)}'s ({_loss(low['final_train_loss']['mean'])})"
        + (f" and the highest {_name(high)}'s ({_loss(high['final_train_loss']['mean'])})."
           if len(by_loss) > 1 else ".")
    )
    by_acc = sorted(ok, key=lambda r: -r["held_out_accuracy"]["mean"])
    one_image = 100.0 / cfg["data"]["n_held_out"]
    if len(by_acc) > 1:
        a, b, last = by_acc[0], by_acc[1], by_acc[-1]
        acc = {r["optimizer"]: 100 * r["held_out_accuracy"]["mean"] for r in by_acc}
        gap = acc[a["optimizer"]] - acc[b["optimizer"]]
        spread = 100 * (a["held_out_accuracy"]["std"] + b["held_out_accuracy"]["std"])
        out.append(
            f"Held-out accuracy runs from {acc[last['optimizer']]:.2f}% ({_name(last)}) to "
            f"{acc[a['optimizer']]:.2f}% ({_name(a)}); one held-out image is {one_image:.2f} points."
        )
        if n > 1 and gap <= spread:
            out.append(
                f"The top two, {_name(a)} and {_name(b)}, are {gap:.2f} points apart, within the sum of "
                f"their standard deviations across {n} seeds ({spread:.2f}), so this run does not separate them."
            )
        elif n > 1:
            out.append(
                f"{_name(a)} leads {_name(b)} by {gap:.2f} points, more than the sum of their standard "
                f"deviations across {n} seeds ({spread:.2f})."
            )
        else:
            out.append("With a single seed there is no measure of the spread; treat small gaps as noise.")
    else:
        r = by_acc[0]
        out.append(f"Held-out accuracy is {100 * r['held_out_accuracy']['mean']:.2f}%.")
    target = cfg["target_loss"]
    all_reached = [r for r in rows if r["steps_to_target"]["n"] == n]
    some = [r for r in rows if 0 < r["steps_to_target"]["n"] < n]
    never = [r for r in rows if r["steps_to_target"]["n"] == 0]
    if all_reached:
        fast = sorted(all_reached, key=lambda r: r["steps_to_target"]["mean"])
        sentence = (f"A smoothed training loss of {target:g} is reached first by {_name(fast[0])} "
                    f"(after {fast[0]['steps_to_target']['mean']:.0f} steps on average)")
        if len(fast) > 1:
            sentence += f", last by {_name(fast[-1])} ({fast[-1]['steps_to_target']['mean']:.0f})"
        out.append(sentence + ".")
    if some:
        out.append(f"{_names(some)} reached it in only some seeds.")
    if never:
        out.append(f"{_names(never)} did not reach it within {cfg['steps']} steps.")
    diverged = [r for r in rows if r["diverged"]]
    if diverged:
        out.append(f"{_names(diverged)} diverged in some runs (NaN or inf loss); their numbers cover the other seeds.")
    if len(lrs) == 1:
        out.append("The rate is the book's, not tuned per optimizer: with tuned rates the order can change, "
                   "and a small, easy data set separates the rules less than a large one.")
    far = [r for r in rows if r.get("default_lr") and not 0.1 <= r["lr"] / r["default_lr"] <= 10]
    if far:
        which = ", ".join(f"{_name(r)} (default {r['default_lr']:g})" for r in far)
        its = "its" if len(far) == 1 else "their"
        out.append(f"{which} ran at a learning rate more than ten times away from {its} own default, so {its} "
                   "numbers say more about that rate than about the rule; `--lr NAME=VALUE` sets one, "
                   "`npoptim sweep` tunes them.")
    return " ".join(out)


def training_section(res: Mapping[str, Any], *, figure: str | None = None, level: int = 2) -> str:
    """Heading, protocol, figure, table and paragraph of a training comparison."""
    cfg = res["config"]
    h = "#" * level
    figure = figure or res.get("files", {}).get("training_curves")
    n = len(cfg["seeds"])
    lines = [
        f"{h} Training: {cfg['data']['name']}",
        "",
        f"Data: {cfg['data']['description']}.",
        "",
        f"Protocol: network {'-'.join(map(str, cfg['layer_sizes']))} (ReLU, softmax cross-entropy, He init), "
        f"batch {cfg['batch_size']}, {cfg['steps']} steps, seeds {cfg['seeds']}; for each seed every optimizer "
        f"starts from the same weights and sees the same batches. "
        f"Smoothing: {cfg['smoothing']}. Table: mean ± standard deviation over {n} seed{'s' * (n > 1)}; "
        "final training loss on the whole training set; a count (k/n) where only k seeds have a value.",
        "",
    ]
    if figure:
        lines += [f"![training curves]({figure})", ""]
    lines += [training_table(res), "", training_paragraph(res), ""]
    return "\n".join(lines)


def _versions(versions: Mapping[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in versions.items())


def training_report(payload: Mapping[str, Any]) -> str:
    """report.md of ``npoptim train``."""
    res = payload["training"]
    return "\n".join([
        "# npoptim train",
        "",
        training_section(res),
        "## Reproducibility",
        "",
        f"Versions: {_versions(payload['versions'])}. Numbers are in `results.json`; per-step losses in "
        f"`{res.get('files', {}).get('losses', 'training_losses.npz')}`. Re-running the same command gives the "
        f"same numbers. Training took {res['timing']['training_seconds']:.1f} s.",
        "",
    ])


def trajectory_section(traj: Mapping[str, Any], *, level: int = 2) -> str:
    """Figures, tables and paragraph of the trajectory experiment (``run_trajectories``' result)."""
    h = "#" * level
    cfg = traj.get("config", {})
    lines = [f"{h} Trajectories: {cfg.get('function', '2-D test function')}", ""]
    if cfg.get("formula"):
        lines += [f"Function: {cfg['formula']}; start {tuple(cfg.get('start', ()))}, {cfg.get('steps')} updates "
                  "per optimizer.", ""]
    captions = traj.get("captions") or {}
    for name, file in (traj.get("figures") or {}).items():
        if str(file).lower().endswith((".png", ".gif")):
            lines += [f"![{name}]({file})", ""]
            if captions.get(name):
                lines += [f"*{captions[name]}*", ""]
    if traj.get("summary_markdown"):
        lines += [traj["summary_markdown"], ""]
    if traj.get("theory_markdown"):
        lines += ["Theory beside measurement:", "", traj["theory_markdown"], ""]
    if traj.get("optimizers"):
        lines += [trajectory_paragraph(traj), ""]
    return "\n".join(lines)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x and abs(x) != float("inf")


def trajectory_paragraph(traj: Mapping[str, Any]) -> str:
    """One paragraph from the trajectory numbers: closest, farthest, who reached the tolerance and how fast."""
    opts = traj.get("optimizers", {})
    cfg = traj.get("config", {})
    dist = {k: v.get("distance_to_minimum") for k, v in opts.items()}
    finite = {k: d for k, d in dist.items() if _finite(d) and not opts[k].get("stopped")}
    out = []
    after = f"after {cfg['steps']} updates" if cfg.get("steps") is not None else "at the end"
    if finite:
        order = sorted(finite, key=finite.get)
        out.append(f"Closest to the minimum {after}: {display_name(order[0])} (distance {finite[order[0]]:.3g})"
                   + (f"; farthest: {display_name(order[-1])} ({finite[order[-1]]:.3g})." if len(order) > 1 else "."))
    blown = sorted(set(dist) - set(finite))
    if blown:
        out.append(f"{', '.join(map(display_name, blown))} diverged (stopped on a non-finite or runaway iterate).")
    tol = {k: v.get("steps_to_tol") for k, v in opts.items()}
    reached = sorted((s, k) for k, s in tol.items() if isinstance(s, int))
    if reached:
        out.append(f"Within distance {cfg.get('tol', 'tol'):g} of the minimum: "
                   + ", ".join(f"{display_name(k)} after {s} steps" for s, k in reached) + ".")
    missed = sorted(k for k, s in tol.items() if not isinstance(s, int))
    if missed and not reached:
        out.append(f"None came within distance {cfg.get('tol', 0):g} of the minimum in the budget.")
    elif missed:
        out.append(f"Not within it in the budget: {', '.join(map(display_name, missed))}.")
    sources = {v.get("lr_source") for v in opts.values()}
    if sources == {"tuned"}:
        out.append("Every learning rate was tuned on the same grid with the same budget.")
    else:
        out.append("The learning rates are hand-picked (the book's figure), not tuned on a common grid, so this "
                   "shows how each rule moves, not which is best; `npoptim trajectories --tune` gives every rule "
                   "the same grid and budget.")
    return " ".join(out)


def compare_report(payload: Mapping[str, Any]) -> str:
    """report.md of ``npoptim compare``: trajectories, training, reproducibility."""
    parts = [
        "# npoptim compare",
        "",
        "Two experiments on the update rules of `npoptim`: how each moves on a 2-D test function, and how each "
        "trains the same network on real handwritten digits.",
        "",
    ]
    if payload.get("trajectories") is not None:
        parts.append(trajectory_section(payload["trajectories"]))
    parts.append(training_section(payload["training"]))
    timing = payload.get("timing", {})
    parts += [
        "## Reproducibility",
        "",
        f"Command: `{payload['command']}`. Versions: {_versions(payload['versions'])}. "
        f"Seeds: {payload['training']['config']['seeds']}. Every number above is in `results.json`; "
        "re-running the command gives the same numbers"
        + (f". This run took {timing['total_seconds']:.1f} s." if "total_seconds" in timing else "."),
        "",
    ]
    return "\n".join(parts)
