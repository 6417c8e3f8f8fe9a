"""One display name per optimizer in every report: the class name, except a composite's registry spelling."""

import json

import pytest

from npoptim.optimizers import ALL_OPTIMIZERS, COMPOSITES, display_name, get_optimizer


def test_class_names_and_composite_spellings():
    assert display_name("adam") == "Adam" and display_name("SGD") == "SGD"
    assert display_name("schedulefree-adamw") == display_name("schedulefreeadamw") == "ScheduleFreeAdamW"
    assert display_name("lamb") == "LAMB" and display_name("muon") == "Muon"
    assert display_name("Muon+AdamW") == "muon+adamw"  # what the user selected, not the class MuonAdamW
    for name in ALL_OPTIMIZERS:
        expect = name if name in COMPOSITES else get_optimizer(name).__name__
        assert display_name(name) == expect
    with pytest.raises(ValueError, match=r"unknown optimizer 'muon\+adam'"):
        display_name("muon+adam")


def test_compare_report_names_the_composite_as_selected(tmp_path):
    """The real compare experiment, small: both tables, the paragraphs and results.json use one name."""
    from npoptim.experiments.compare import run_compare

    payload = run_compare(tmp_path, seeds=1, steps=5, optimizers=["adam", "muon+adamw"])
    report = (tmp_path / "report.md").read_text()
    traj_md = (tmp_path / "trajectories.md").read_text()
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["trajectories"]["optimizers"]["muon+adamw"]["display_name"] == "muon+adamw"
    assert [r["display_name"] for r in results["training"]["table"]] == ["Adam", "muon+adamw"]
    for text in (report, traj_md):
        assert "MuonAdamW" not in text
        assert "| muon+adamw | " in text and "| Adam | " in text  # the trajectory table's rows
    training_rows = [line.split("|")[1].strip() for line in report.splitlines()
                     if line.startswith("| ") and " | 0.01 | " in line]
    assert [r.split(" ")[0] for r in training_rows] == ["Adam", "muon+adamw"]
    assert "adam" not in {w.strip(".,;:()'s") for w in report.split()}  # no registry spelling of a class left
    assert payload["training"]["config"]["optimizers"] == ["adam", "muon+adamw"]  # keys stay registry names
