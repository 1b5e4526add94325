"""The `nasnet-tf` package itself: parsing, `show` and `report`'s errors stay free of
TensorFlow, JAX and Keras, the new search flags are checked at parse time, and TensorFlow's
start-up log is filtered."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from nasnet_tf.cli import export as cli_export
from nasnet_tf.cli import main
from nasnet_tf.cli import show as cli_show
from nasnet_tf.cli.utils import filter_native_log

HEAVY = ("tensorflow", "jax", "keras", "keras_tuner")

# `python -m nasnet_tf ARGS` for each ARGS in one interpreter, reporting after each which
# heavy modules it had imported.
_PROBE = textwrap.dedent("""
    import contextlib, io, json, runpy, sys
    cases, heavy_names = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
    report = []
    for argv in cases:
        sys.argv = ["nasnet-tf", *argv]
        out, err = io.StringIO(), io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_module("nasnet_tf", run_name="__main__")
            except SystemExit as e:
                code = e.code
        heavy = sorted({m.split(".")[0] for m in sys.modules} & heavy_names)
        report.append({"argv": argv, "code": code, "heavy": heavy, "out": out.getvalue(),
                       "err": err.getvalue()})
    print(json.dumps(report))
""")


def test_parsing_and_show_import_no_backend(tmp_path):
    cases = [
        ["--help"],
        *[[command, "--help"] for command in ("search", "train", "demo", "show", "export",
                                               "predict", "report")],
        ["search", "--strategy", "bayesian"],
        ["search", "--max-minutes", "0"],
        ["search", "--estimator", "bayes"],
        ["search", "--ops", "conv_9x9"],
        ["train", "nasnet_a", "--preset", "huge"],
        ["export", "m.keras"],
        ["predict", "m.keras", "a.png", "--top-k", "0"],
        ["report", str(tmp_path), "--top-k", "0"],
        ["report", str(tmp_path / "missing")],  # checked before anything heavy is imported
        ["show", "nasnet_a", "--no-draw"],
        ["show", str(tmp_path / "missing.json")],
    ]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(cases), json.dumps(HEAVY)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [r["argv"] for r in report] == cases
    for r in report:
        assert r["heavy"] == [], (r["argv"], r["heavy"])
    codes = [r["code"] for r in report]
    assert codes == [0] * 8 + [2] * 9 + [0, 2], codes
    assert "2 = sep_conv_5x5(h_i) + sep_conv_3x3(h_{i-1})" in report[-2]["out"]
    assert "genotype file not found" in report[-1]["err"]
    assert "run directory not found" in report[-3]["err"]
    search_help = report[1]["out"]
    assert "--strategy {controller,evolution,random}" in search_help
    for flag in ("--max-minutes", "--estimator {train,fresh,shared}", "--candidates-per-trial",
                 "--tensorboard", "--report", "--ops", "--combine-ops"):
        assert flag in search_help, flag
    assert "--overwrite" in report[2]["out"]  # train
    assert "usage: nasnet-tf report" in report[7]["out"] and "RUN_DIR" in report[7]["out"]


def test_choices_mirror_the_library():
    from nasnet_tf import diagram
    from nasnet_tf import serving as ex

    assert cli_show.FORMATS == diagram.FORMATS and cli_show.ENGINES == diagram.ENGINES
    assert cli_export.FORMATS == ex.EXPORT_FORMATS
    assert cli_export.INPUT_DTYPES == ex.INPUT_DTYPES


def _error(capsys, *argv):
    try:
        status = main(list(argv))
    except SystemExit as e:
        status = e.code
    out, err = capsys.readouterr()
    assert status == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nasnet-tf {argv[0]}: error: "), err
    return lines[0]


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_max_minutes_must_be_positive(capsys, value):
    line = _error(capsys, "search", "--max-minutes", value)
    assert f"expected a number > 0, got '{value}'" in line


def test_unknown_strategy(capsys):
    line = _error(capsys, "search", "--strategy", "bayesian")
    assert "invalid choice: 'bayesian'" in line and "random" in line


def test_evolution_options_need_the_evolution_strategy(capsys, tmp_path):
    out = tmp_path / "run"
    line = _error(capsys, "search", "--population-size", "4", "--output-dir", str(out))
    assert "--population-size apply to --strategy evolution only" in line
    assert not out.exists()  # refused before anything is written


def test_the_demo_has_no_search_strategy_flag(capsys):
    # Its --strategy is the training's distribution strategy, as before.
    line = _error(capsys, "demo", "--strategy", "random")
    assert "invalid choice: 'random'" in line and "mirrored" in line


# What TensorFlow 2.21 wrote to stderr during a search before this filter (TF_CPP_MIN_LOG_LEVEL
# unset), with a Python warning after it.
_NATIVE = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1795855559.918251    4653 port.cc:153] oneDNN custom operations are on.
I0000 00:00:1795855559.918589    4653 cudart_stub.cc:31] Could not find cuda drivers.
I0000 00:00:1795855559.964821    4653 cpu_feature_guard.cc:227] This TensorFlow binary is optimized.
To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild.
W0000 00:00:1795855560.1    4653 gpu_device.cc:2344] Cannot dlopen some GPU libraries.
E0000 00:00:1795855563.225758    4653 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR
F0000 00:00:1795855563.3    4653 status.cc:9] Check failed: x
/a/b.py:74: UserWarning: a warning from Python
  self.data_adapter = data_adapters.get_data_adapter(
"""


def test_native_log_filter_keeps_errors_and_everything_else():
    lines = _NATIVE.splitlines(keepends=True)
    kept = filter_native_log(_NATIVE, 3)
    assert kept == "".join(lines[6:])  # errors, fatal messages and Python's own output
    assert filter_native_log(_NATIVE, 2) == kept
    assert filter_native_log(_NATIVE, 1) == "".join(lines[5:])  # warnings too
    assert filter_native_log(_NATIVE, 0) == _NATIVE
    assert filter_native_log("", 3) == ""


def _imports(path):
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update([node.module] + [f"{node.module}.{a.name}" for a in node.names])
    return names


def test_the_cli_sits_above_both_packages():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    for package in ("nasnet_tf", "tuners"):
        for path in (root / package).rglob("*.py"):
            rel = path.relative_to(root).as_posix()
            if rel.startswith("nasnet_tf/cli/") or rel == "nasnet_tf/__main__.py":
                continue
            names = _imports(path)
            assert not any(n.startswith("nasnet_tf.cli") for n in names), rel
            if package == "nasnet_tf":  # only the CLI imports the search package
                assert not any(n == "tuners" or n.startswith("tuners.") for n in names), rel
