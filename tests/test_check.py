"""``npoptim check``: every finding code from a class written to have exactly that defect; correct classes in
other correct conventions pass; classes that cannot be graded give one clear error and exit status 2.

The fixtures are in ``tests/check_fixtures/``: ``buggy.py`` (one defect per class, two classes with two),
``conventions.py`` (correct in other forms), ``book.py`` (the book's six as it writes them),
``optimizers.ipynb`` (several classes in a notebook), ``errors.py`` and friends (ungradable).  Each module's
``EXPECTED`` states the rule and the exact codes; the codes are facts about how the class was written
(its docstring says which line is wrong), not values read from the grader's output.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from npoptim.cli import main
from npoptim.grading import CODES, CheckError, check_optimizer, infer_rule, plan_arguments
from npoptim.grading.runner import Worker, decode, parse_target

FIXTURES = Path(__file__).parent / "check_fixtures"


def _expected(name: str) -> dict[str, tuple[str, list[str]]]:
    spec = importlib.util.spec_from_file_location(f"check_fixture_{name}", FIXTURES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the fixtures define classes only; the table is read, not the classes run
    return module.EXPECTED


BUGGY = _expected("buggy")
CONVENTIONS = _expected("conventions")
QA = _expected("qa")


@pytest.mark.parametrize("name", sorted(BUGGY))
def test_each_defect_gets_exactly_its_codes(name):
    rule, codes = BUGGY[name]
    report = check_optimizer(f"{FIXTURES / 'buggy.py'}:{name}", rule=rule)
    assert report.verdict == "fail"
    assert sorted(report.codes) == sorted(codes), [f.message for f in report.findings]
    for f in report.findings:
        assert f.message and (f.severity == "note" or f.fix), f  # every defect says how to fix it


def test_every_code_of_the_issue_has_a_buggy_class():
    table = {
        "constructor-error",
        "state-missing",
        "not-in-place",
        "mutates-grads",
        "state-shared-across-keys",
        "step-counted-per-key",
        "eps-inside-root",
        "nesterov-updated-velocity",
        "no-bias-correction",
        "wrong-update",
    }
    assert table <= {c for _, codes in BUGGY.values() for c in codes}


@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_other_correct_conventions_pass(name):
    rule, codes = CONVENTIONS[name]
    report = check_optimizer(f"{FIXTURES / 'conventions.py'}:{name}", rule=rule)
    assert report.verdict == "pass", [f.message for f in report.findings]
    assert sorted(report.codes) == sorted(codes), [f.message for f in report.findings]


@pytest.mark.parametrize(
    ("name", "verdict", "codes"),
    [
        ("SGD", "pass", []),
        ("Momentum", "pass", []),
        ("AdaGrad", "pass", []),
        ("RMSprop", "pass", []),
        ("Adam", "pass", ["eps-hat"]),  # the book's ε̂ order: a convention
        ("Nesterov", "fail", ["nesterov-updated-velocity"]),
    ],  # the book's defect
)
def test_the_books_own_classes(name, verdict, codes):
    report = check_optimizer(f"{FIXTURES / 'book.py'}:{name}")  # rule read from the class name
    assert (report.verdict, report.codes) == (verdict, codes), [f.message for f in report.findings]


def test_book_eps_is_measured_and_eps_hat_says_how_large_the_difference_is():
    report = check_optimizer(f"{FIXTURES / 'book.py'}:Adam")
    assert math.isclose(report.measured["eps"], 1e-7, rel_tol=1e-9)  # the literal in book.py
    note = report.findings[0]
    # Algorithm 1 with eps_t = eps / sqrt(1 - b2^t): at step 1, sqrt(1 / 0.001) = 31.6 times eps
    assert "31.6ε at step 1" in note.message and "at |g| = 1" in note.message


def test_a_notebook_with_several_classes():
    nb = FIXTURES / "optimizers.ipynb"
    got = {name: check_optimizer(f"{nb}:{name}") for name in ("SGD", "Nesterov", "Adam")}
    assert (got["SGD"].verdict, got["SGD"].codes) == ("pass", [])
    assert (got["Nesterov"].verdict, got["Nesterov"].codes) == ("fail", ["nesterov-updated-velocity"])
    assert (got["Adam"].verdict, got["Adam"].codes) == ("fail", ["no-bias-correction"])


def test_a_notebook_cell_that_raises_is_named(tmp_path):
    nb = json.loads((FIXTURES / "optimizers.ipynb").read_text())
    nb["cells"].insert(
        2,
        {
            "cell_type": "code",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": ["x = 1\n", "raise ValueError('data not found')\n"],
        },
    )
    (tmp_path / "broken.ipynb").write_text(json.dumps(nb))
    with pytest.raises(CheckError, match=r"ValueError: data not found at <notebook code cell 2>:2"):
        check_optimizer(f"{tmp_path / 'broken.ipynb'}:SGD")


def test_a_module_target_imports_from_the_current_directory(monkeypatch):
    monkeypatch.chdir(FIXTURES)
    report = check_optimizer("mypkg.optim:SGD")  # its print() goes to stderr, not into the protocol
    assert (report.verdict, report.codes) == ("pass", [])


def test_the_users_code_never_runs_in_the_graders_process(tmp_path):
    marker = tmp_path / "pid"
    src = (
        f"import os\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\n"
        "class SGD:\n    def __init__(self, lr=0.01):\n        self.lr = lr\n"
        "    def update(self, params, grads):\n        for k in params:\n            params[k] -= self.lr * grads[k]\n"
    )
    (tmp_path / "mine.py").write_text(src)
    before = set(sys.modules)
    assert check_optimizer(f"{tmp_path / 'mine.py'}:SGD").verdict == "pass"
    assert int(marker.read_text()) != os.getpid()
    assert "__npoptim_check__" not in set(sys.modules) - before


@pytest.mark.parametrize(
    ("target", "kwargs", "message"),
    [
        ("errors.py:NoUpdate", {}, "has no update(params, grads) method"),
        ("errors.py:sgd", {"rule": "sgd"}, "is a function, not a class"),
        ("errors.py:Missing", {"rule": "sgd"}, "no class 'Missing' in errors.py; classes there: NoUpdate"),
        ("syntax_error.py:SGD", {}, "SyntaxError: expected ':' (syntax_error.py, line 4)"),
        ("import_error.py:SGD", {}, "ModuleNotFoundError: No module named 'no_such_module_for_npoptim_check'"),
        ("nofile.py:SGD", {}, "no such file 'nofile.py'"),
        ("errors.py:SGDExits", {}, "process ended (status 3) while running probe 'ladder'"),
        ("book.py:SGD", {"rule": "lion"}, "unknown --rule 'lion' (check grades the book's six rules)"),
        ("book.py", {}, "target 'book.py' names no class: write book.py:ClassName"),
        ("mypkg", {}, "target 'mypkg' is a directory: name a file and a class"),
        ("mypkg:SGD", {}, "'mypkg' is a directory, not a .py or .ipynb file"),
        ("mypkg/__init__.py:SGD", {"kwargs": {"lr": 0.0}}, "--kwargs lr=0.0: must be > 0"),
        ("book.py:SGD", {"kwargs": {"lr": -0.1}}, "--kwargs lr=-0.1: must be > 0"),
        ("book.py:Momentum", {"kwargs": {"momentum": 1.5}}, "--kwargs momentum=1.5: must be in [0, 1)"),
        ("book.py:Adam", {"kwargs": {"eps": -1.0}}, "--kwargs eps=-1.0: must be >= 0"),
        ("book.py:SGD", {"timeout": math.inf}, "invalid timeout inf: must be a finite number of seconds > 0"),
        ("book.py:SGD", {"kwargs": {"decay_rate": 0.9}}, "decay_rate not modelled for sgd"),
    ],
)
def test_ungradable_classes_give_clear_errors(monkeypatch, target, kwargs, message):
    monkeypatch.chdir(FIXTURES)
    with pytest.raises(CheckError) as info:
        check_optimizer(target, **kwargs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", sorted(QA))
def test_qa_cases_get_exactly_their_codes(name):
    """Defects and correct styles from the QA pass (tests/check_fixtures/qa.py: each docstring says why)."""
    rule, codes = QA[name]
    report = check_optimizer(f"{FIXTURES / 'qa.py'}:{name}", rule=rule)
    assert sorted(report.codes) == sorted(codes), [f.message for f in report.findings]
    assert report.verdict == ("fail" if any(CODES[c][0] == "defect" for c in codes) else "pass")


def test_a_notebook_with_magics_shell_lines_and_matplotlib_grades_its_last_definition(tmp_path, monkeypatch):
    """magics.ipynb: line and cell magics (%%writefile's body is skipped, %%time's runs), `files = !ls`,
    `np.zeros?`, an indented %time, display(), get_ipython(), matplotlib; SGD is defined twice, the second
    time with the sign flipped, and the later definition is graded (as Jupyter would use it)."""
    monkeypatch.chdir(tmp_path)  # %%writefile must write nothing, here or beside the notebook
    nb = FIXTURES / "magics.ipynb"
    report = check_optimizer(f"{nb}:SGD")
    assert (report.verdict, report.codes) == ("fail", ["wrong-update"])
    assert check_optimizer(f"{nb}:Momentum").verdict == "pass"
    assert not (tmp_path / "notes.txt").exists() and not (FIXTURES / "notes.txt").exists()


def test_a_script_exported_from_a_notebook_may_call_get_ipython(tmp_path):
    src = (
        "get_ipython().run_line_magic('matplotlib', 'inline')\nimport numpy as np\n"
        "class SGD:\n    def __init__(self, lr=0.01):\n        self.lr = lr\n"
        "    def update(self, params, grads):\n        for k in params:\n            params[k] -= self.lr * grads[k]\n"
    )
    (tmp_path / "exported.py").write_text(src)
    assert check_optimizer(f"{tmp_path / 'exported.py'}:SGD").verdict == "pass"


def test_load_errors_name_no_place_in_the_graders_or_pythons_code(tmp_path, monkeypatch):
    (tmp_path / "bad.ipynb").write_text("{not json")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(CheckError) as info:
        check_optimizer(f"{tmp_path / 'bad.ipynb'}:SGD")
    assert "bad.ipynb is not a Jupyter notebook (.ipynb JSON)" in str(info.value)
    assert " at " not in str(info.value)
    with pytest.raises(CheckError, match=r"is not a \.py or \.ipynb file"):
        check_optimizer(f"{tmp_path / 'notes.txt'}:SGD")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckError) as info:
        check_optimizer("no_such_module_for_npoptim_check:SGD")
    assert str(info.value).endswith("No module named 'no_such_module_for_npoptim_check'")  # no importlib frame


def test_time_limit_kills_an_endless_loop():
    target = parse_target(f"{FIXTURES / 'errors.py'}:SGDLoopsForever")
    worker = Worker(target, timeout=4.0)  # loading (python + NumPy) takes well under 4 s even on a loaded machine
    from npoptim.grading.diagnosis import Diagnosis

    with pytest.raises(CheckError, match=r"time limit of 4 s reached while running probe 'ladder'"):
        Diagnosis(worker, "sgd", {"lr": 0.01}, {"lr": 0.01}).run()
    assert worker.proc.poll() is not None  # the child is gone, not left spinning


def test_rule_from_the_class_name():
    assert infer_rule("MyAdam") == "adam"
    assert infer_rule("NesterovMomentum") == "nesterov"
    assert infer_rule("SGDWithMomentum") == "momentum"
    assert infer_rule("rmsProp2") == "rmsprop"
    with pytest.raises(CheckError, match="looks like 'adamw'"):
        infer_rule("MyAdamW")
    with pytest.raises(CheckError, match="cannot tell the rule from the class name 'Optimizer'; pass --rule"):
        infer_rule("Optimizer")


def test_arguments_follow_the_books_names_and_note_other_defaults():
    sig = {"inspectable": True, "var_keyword": False, "params": [{"name": "lr", "default": 0.01, "has_default": True}]}
    kwargs, hyper, notes = plan_arguments("adam", sig, {})
    assert kwargs == {"lr": 0.001} and hyper == {"lr": 0.001, "beta1": 0.9, "beta2": 0.999}
    assert sorted(n.code for n in notes) == [
        "default-differs",
        "hyperparameter-not-accepted",
        "hyperparameter-not-accepted",
    ]


def test_replies_carry_only_float_arrays():
    assert decode({"dtype": "|O", "shape": [1], "data": ""}) is None
    assert decode({"dtype": "<f8", "shape": [2], "data": "AAAA"}) is None  # 3 bytes are not two float64
    assert decode({"dtype": "<f8", "shape": [1], "data": "AAAAAAAA8D8="})[0] == 1.0


# -- the command line ---------------------------------------------------------------------------------------


def test_cli_fail_prints_expected_measured_fix_and_exits_1(capsys):
    assert main(["check", f"{FIXTURES / 'buggy.py'}:AdamTwoDefects"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL  ") and "graded as adam" in out and "2 defects" in out
    for text in ("[defect] no-bias-correction", "[defect] eps-inside-root", "expected:", "measured:", "fix:"):
        assert text in out


def test_cli_json_schema_and_exit_0(capsys):
    assert main(["check", f"{FIXTURES / 'book.py'}:Adam", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "pass" and report["rule"] == "adam"
    assert [(f["code"], f["severity"]) for f in report["findings"]] == [("eps-hat", "note")]
    assert all(isinstance(f["message"], str) for f in report["findings"])


def test_cli_kwargs_are_the_hyperparameters(capsys):
    assert main(["check", f"{FIXTURES / 'book.py'}:Momentum", "--kwargs", "lr=0.1,momentum=0.5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hyperparameters"] == {"lr": 0.1, "momentum": 0.5}
    # at mu = 0.5 the book's Nesterov is (1 + 0.5 + 0.25) / 1.5 = 1.1667 times too large at the first step
    assert main(["check", f"{FIXTURES / 'book.py'}:Nesterov", "--kwargs", "momentum=0.5"]) == 1
    assert "1.16667 times" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["book.py:Foo"],
        ["book.py:SGD", "--rule", "nope"],
        ["nofile.py:SGD"],
        ["errors.py:NoUpdate"],
        ["book.py:SGD", "--kwargs", "lr"],
        ["book.py:SGD", "--kwargs", "lr=abc"],
        ["book.py:SGD", "--timeout", "0"],
        ["book.py:SGD", "--timeout", "inf"],  # once an OverflowError traceback with exit 1
        ["book.py:SGD", "--kwargs", "lr=0"],
        ["book.py:RMSprop", "--kwargs", "decay_rate=1"],
        ["book.py"],
        ["mypkg"],
        ["errors.py:SGDLoopsForever", "--timeout", "1.5"],
    ],
)
def test_cli_usage_errors_exit_2(monkeypatch, capsys, argv):
    monkeypatch.chdir(FIXTURES)
    assert main(["check", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("npoptim check: error: ") and err.count("\n") == 1


def test_defect_factors_the_checks_rely_on():
    """The first-step factors quoted in the findings, from the variants' models against closed forms."""
    from npoptim.grading.models import Probe, Variant, simulate

    g = np.array([1.0])
    probe = Probe("one", {"w": np.zeros(1)}, [{"grads": {"w": g}}])
    mu, lr = 0.9, 0.01
    nag = {"lr": lr, "momentum": mu}
    ratio = simulate("nesterov", Variant(updated_velocity=True), nag, probe)[0]["w"][0] / (-(1 + mu) * lr)
    assert math.isclose(ratio, (1 + mu + mu * mu) / (1 + mu), rel_tol=1e-15)
    adam = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 0.0}
    step = simulate("adam", Variant(correction="none"), adam, probe)[0]["w"][0]
    assert math.isclose(step / -1e-3, (1 - 0.9) / math.sqrt(1 - 0.999), rel_tol=1e-12)


@pytest.mark.parametrize("rule", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_the_written_out_reference_is_npoptims_within_the_derived_bound(rule):
    """models.simulate's reference form against npoptim's optimizer on every probe: the bound of
    grading.tolerance must hold for two honest implementations (else correct classes would fail)."""
    from npoptim.grading import probes
    from npoptim.grading.findings import BOOK_DEFAULTS
    from npoptim.grading.models import Variant, reference_run, simulate
    from npoptim.grading.tolerance import bound, kappa

    hyper = {**BOOK_DEFAULTS[rule], "eps": 1e-7}
    for probe in (probes.ladder(), probes.single(), probes.shapes(), probes.keys(), probes.lr_change(0.01)):
        ours, written = reference_run(rule, hyper, probe), simulate(rule, Variant(), hyper, probe)
        scale = simulate(rule, Variant(), hyper, probe.with_abs_grads())
        for t, (a, b, s) in enumerate(zip(ours, written, scale, strict=True), start=1):
            for k in a:
                assert np.all(np.abs(a[k] - b[k]) <= bound(t, kappa(hyper), s[k], a[k], False)), (probe.name, t, k)


@pytest.mark.parametrize(
    ("rule", "variant"), [("adagrad", {}), ("adam", {"correction": "hat"}), ("rmsprop", {"eps_inside": True})]
)
@pytest.mark.parametrize("eps", [1e-7, 1e-10, 3e-8])
def test_eps_is_recovered_from_the_ladder(rule, variant, eps):
    from npoptim.grading import probes
    from npoptim.grading.diagnosis import fit_eps
    from npoptim.grading.findings import BOOK_DEFAULTS
    from npoptim.grading.models import Variant, simulate

    v = Variant(**variant)
    hyper = {**BOOK_DEFAULTS[rule], "eps": eps}
    w1 = simulate(rule, v, hyper, probes.ladder())[0]["w"]
    # the solve's error: within FIT x the one-step rounding bound (grading/tolerance.py), far below 1e-12
    assert math.isclose(fit_eps(rule, v, BOOK_DEFAULTS[rule], w1), eps, rel_tol=1e-12)


def test_the_worked_example_of_docs_check_md(tmp_path):
    """docs/check.md: the faulty Adam gets exactly its two codes; with the page's two fixes it passes."""
    src = (Path(__file__).parents[1] / "docs" / "examples" / "faulty_adam.py").read_text()
    report = check_optimizer(f"{Path(__file__).parents[1] / 'docs' / 'examples' / 'faulty_adam.py'}:MyAdam")
    assert (report.verdict, sorted(report.codes)) == ("fail", ["eps-inside-root", "step-counted-per-key"])
    page = (Path(__file__).parents[1] / "docs" / "check.md").read_text()
    for f in report.findings:
        # the page shows this run's output; the digits may differ in the last place elsewhere (libm's pow)
        assert f"[defect] {f.code}: {f.message[:15]}" in page and f.fix in page
    fixed = (
        src.replace("            self.iter += 1 ", "            pass ")
        .replace("        for key in params:", "        self.iter += 1\n        for key in params:")
        .replace("np.sqrt(v_hat + 1e-8)", "(np.sqrt(v_hat) + 1e-8)")
    )
    assert fixed.count("self.iter += 1") == 1 and "np.sqrt(v_hat) + 1e-8" in fixed
    (tmp_path / "fixed.py").write_text(fixed)
    fixed_report = check_optimizer(f"{tmp_path / 'fixed.py'}:MyAdam")
    assert (fixed_report.verdict, fixed_report.codes) == ("pass", [])


def test_arrays_of_any_rank_travel_both_ways_with_their_shape():
    """0-d, 3-d and 4-d (a conv layer's W) arrays keep their shapes through the pipe, and are compared
    element-wise (np.ascontiguousarray once turned a 0-d array into shape (1,))."""
    from npoptim.grading.measure import compare, measure
    from npoptim.grading.models import Probe, Variant

    rng = np.random.default_rng(7)
    shapes = {"s": (), "c": (2, 2, 2), "W": (2, 1, 2, 2)}
    p0 = {k: np.asarray(rng.standard_normal(sh)) for k, sh in shapes.items()}
    calls = [{"grads": {k: np.asarray(rng.standard_normal(sh)) for k, sh in shapes.items()}} for _ in range(2)]
    probe = Probe("ranks", p0, calls)
    hyper = {"lr": 0.01, "momentum": 0.9}
    with Worker(parse_target(f"{FIXTURES / 'qa.py'}:MomentumKwargs"), 20) as worker:
        m = measure(worker, probe, hyper, ["lr"])
    assert m.error is None and [s["s"].shape for s in m.steps] == [(), ()]
    assert {k: a.shape for k, a in m.steps[-1].items()} == shapes
    assert compare("momentum", Variant(), hyper, m, False) is None
    assert compare("momentum", Variant(), {**hyper, "momentum": 0.5}, m, False) is not None
