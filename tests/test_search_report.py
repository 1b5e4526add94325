"""Watching a search: controller scalars in TensorBoard, and the one-file HTML report."""

import html.parser
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import warnings

import keras
import keras_tuner
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from tuners.estimation import PerformanceEstimator
from tuners.nas_tuner import NASNetTuner
from tuners.search_report import find_project, write_report
from tuners.tensorboard_log import (
    ControllerScalars,
    cell_preferences,
    controller_scalars,
    read_scalars,
    write_controller_scalars,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]

CHEAP_OPS = ("identity", "conv_1x1", "max_pool_3x3", "sep_conv_3x3")
# Eager children are cheaper under TensorFlow (no graph tracing for one step); under JAX the
# jitted ones are (measured: 37 s of CPU for two trials, against 48 s eagerly).
CHILD = dict(num_blocks=1, ops=CHEAP_OPS, num_cells=1, penultimate_filters=24,
             input_shape=(8, 8, 3), classes=4,
             compile_kwargs={"run_eagerly": keras.backend.backend() == "tensorflow"})


class NoTraining(PerformanceEstimator):
    """Scores a child without training it: the baseline's curve only needs scores."""

    def estimate(self, child, *fit_args, **fit_kwargs):
        ops = {b.op_a for b in child.architecture.normal.blocks}
        return {"val_accuracy": len(ops) / 4.0}


class WatchedTuner(NASNetTuner):
    """The tuner hook the CLI wires in: controller scalars at each trial end."""

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        if not hasattr(self, "scalars"):
            self.scalars = ControllerScalars(self.project_dir)
        self.scalars.write(self.oracle)


def _data():
    rng = np.random.default_rng(0)
    x = rng.random((16, 8, 8, 3)).astype("float32")
    return x, rng.integers(0, 4, 16)


def _search(directory, project, overwrite, tuner_cls=WatchedTuner, **kwargs):
    x, y = _data()
    tuner = tuner_cls(**CHILD, **kwargs, directory=directory, project_name=project,
                      overwrite=overwrite)
    tuner.search(x[:12], y[:12], validation_data=(x[12:], y[12:]), epochs=1, batch_size=12,
                 verbose=0)
    return tuner


# The tests that use it are marked slow: a real search (~15 s of CPU, more on a busy machine).
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished search (2 trials), the same search resumed to 3 trials with a RandomSearch
    baseline beside it, and a copy of that one whose last trial is still running.

    One controller update per trial keeps the real search short while the resumed leg still
    adds one; the baseline's children are scored without training (its curve needs scores).
    """
    root = tmp_path_factory.mktemp("runs")
    controller = dict(seed=3, oracle_kwargs={"units": 8, "update_every": 1})
    resumed = root / "resumed"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*too few to move it off uniform")
        _search(resumed, "tuner", True, max_trials=2, **controller)
        finished = root / "finished"
        shutil.copytree(resumed, finished)
        _search(resumed, "tuner", False, max_trials=3, **controller)
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective="val_accuracy", max_trials=3, seed=1)
    _search(resumed, "baseline", True, tuner_cls=NASNetTuner, oracle=oracle,
            estimator=NoTraining())

    running = root / "running"
    shutil.copytree(resumed, running)
    project = running / "tuner"
    state = json.loads((project / "oracle.json").read_text())
    last = state["end_order"].pop()
    state["ongoing_trials"] = {"tuner0": last}
    (project / "oracle.json").write_text(json.dumps(state))
    trial_path = project / f"trial_{last}" / "trial.json"
    trial = json.loads(trial_path.read_text())
    trial.update(status="RUNNING", score=None, best_step=0)
    trial_path.write_text(json.dumps(trial))
    return {"finished": finished, "resumed": resumed, "running": running}


class _Page(html.parser.HTMLParser):
    """Counts the rows of the trial table and collects image sources and notices."""

    def __init__(self):
        super().__init__()
        self.table, self.in_body, self.rows, self.images = None, False, 0, []
        self.notices, self._notice, self.external = [], None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        # Every reference a browser would follow: only inline data and in-page anchors pass.
        for name in ("src", "href", "action", "data", "poster", "srcset", "background"):
            value = attrs.get(name)
            if value is not None and not value.startswith(("data:", "#")):
                self.external.append(f"<{tag} {name}={value!r}>")
        if tag in ("script", "iframe", "object", "embed", "link", "base"):
            self.external.append(f"<{tag}>")
        if tag == "table":
            self.table = attrs.get("id")
        elif tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body and self.table == "trials":
            self.rows += 1
        elif tag == "img":
            self.images.append((attrs.get("alt"), attrs.get("src")))
        elif tag == "div" and attrs.get("class") == "notice":
            self._notice = ""

    def handle_endtag(self, tag):
        if tag == "tbody":
            self.in_body = False
        elif tag == "div" and self._notice is not None:
            self.notices.append(self._notice)
            self._notice = None

    def handle_data(self, data):
        if self._notice is not None:
            self._notice += data


def _parse(path):
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def _num_trials(run_dir):
    return len([n for n in os.listdir(run_dir / "tuner") if n.startswith("trial_")])


@pytest.mark.slow
def test_controller_scalars_reach_tensorboard_once_per_update(runs):
    logdir = runs["resumed"] / "tuner" / "tensorboard" / "controller"
    accumulator = event_accumulator.EventAccumulator(str(logdir))
    accumulator.Reload()
    tags = accumulator.Tags()["scalars"]
    state = json.loads((runs["resumed"] / "tuner" / "oracle.json").read_text())
    history = state["controller_oracle"]["controller"]["history"]
    assert [h["update"] for h in history] == [1, 2, 3]
    for tag, key in (("reward/mean", "reward_mean"), ("reward/best", "reward_max"),
                     ("reward/baseline", "baseline"), ("controller/entropy", "entropy"),
                     ("ppo/approx_kl", "approx_kl")):
        events = accumulator.Scalars(tag)
        # Two writers (the first leg's, then the resumed one's) wrote each update exactly once.
        assert [e.step for e in events] == [1, 2, 3], tag
        np.testing.assert_allclose([e.value for e in events], [h[key] for h in history],
                                   rtol=1e-6)
    assert [e.value for e in accumulator.Scalars("trials/failures")] == [0.0, 0.0, 0.0]
    assert len(os.listdir(logdir)) == 2  # one event file per writer
    # Per cell type, the ops' probabilities (or, from an oracle that records no
    # decision_probs, their frequencies among each update's trials) sum to the 2 op decisions
    # of the one block.
    prefix = "normal/op/" if "decision_probs" in history[0] else "normal/op_sampled/"
    ops = [t for t in tags if t.startswith(prefix)]
    assert sorted(t.rsplit("/", 1)[1] for t in ops) == sorted(CHEAP_OPS)
    for step in (0, 1, 2):
        assert math.isclose(sum(accumulator.Scalars(t)[step].value for t in ops), 2.0,
                            rel_tol=1e-3)
    # Writing again, from the hook or from the files, adds nothing.
    assert write_controller_scalars(runs["resumed"] / "tuner") == 0
    assert read_scalars(str(logdir))["reward/mean"] == [
        (e.step, e.value) for e in accumulator.Scalars("reward/mean")]


def test_decision_probs_give_per_cell_probability_sums(tmp_path):
    specs_state = {
        "hyperparameters": _space_config({"normal_b0_op_a": ["identity", "conv_1x1"],
                                          "normal_b0_op_b": ["identity", "conv_1x1"],
                                          "normal_b1_input_a": [0, 1, 2]}),
        "controller_oracle": {
            "decision_names": ["normal_b0_op_a", "normal_b0_op_b", "normal_b1_input_a"],
            "controller": {"history": [{
                "update": 1, "reward_mean": 0.5, "reward_max": 0.75, "reward_min": 0.25,
                "baseline": 0.4, "entropy": 2.0, "approx_kl": 0.01, "loss": 0.1,
                "clip_fraction": 0.25, "ppo_steps": 4, "num_failures": 1,
                "decision_probs": [[0.75, 0.25], [0.5, 0.5], [0.2, 0.3, 0.5]],
            }]},
            "rewards": [], "trial_decisions": {},
        },
    }
    (step, scalars), = controller_scalars(specs_state)
    assert step == 1
    assert scalars["normal/op/identity"] == pytest.approx(1.25)
    assert scalars["normal/op/conv_1x1"] == pytest.approx(0.75)
    assert scalars["normal/input/2"] == pytest.approx(0.5)
    assert scalars["ppo/clip_fraction"] == 0.25 and scalars["trials/failures"] == 1.0
    assert not any("sampled" in tag for tag in scalars)
    scalars_writer = ControllerScalars(tmp_path)
    assert scalars_writer.write(specs_state) == 1 and scalars_writer.write(specs_state) == 0
    accumulator = event_accumulator.EventAccumulator(str(tmp_path / "tensorboard/controller"))
    accumulator.Reload()
    assert accumulator.Scalars("ppo/clip_fraction")[0].value == 0.25
    assert cell_preferences({"x": {"a": 1.0}}) == {}


def test_without_decision_probs_the_batch_frequencies_stand_in(tmp_path):
    state = {
        "hyperparameters": _space_config({"reduction_b0_op_a": ["identity", "conv_1x1"]}),
        "controller_oracle": {
            "signature": [["reduction_b0_op_a", 2]],  # older states: no decision_names
            "controller": {"history": [
                {"update": 1, "batch_size": 2, "reward_mean": 0.5, "reward_max": 1.0,
                 "reward_min": 0.0, "baseline": 0.5, "entropy": 0.7, "approx_kl": 0.0},
                {"update": 2, "batch_size": 2, "reward_mean": 0.5, "reward_max": 0.5,
                 "reward_min": 0.5, "baseline": 0.5, "entropy": 0.6, "approx_kl": 0.0},
            ]},
            "trial_decisions": {"0": [0], "1": [1], "2": [1], "3": [1]},
            "rewards": [["0", 1.0, "trial"], ["1", 0.0, "trial"], ["2", 0.5, "trial"],
                        ["3", 0.5, "trial"]],
            "pending": [],
        },
    }
    rows = controller_scalars(state, statuses={"0": "COMPLETED", "1": "FAILED"})
    assert [step for step, _ in rows] == [1, 2]
    assert rows[0][1]["reduction/op_sampled/identity"] == 0.5
    assert rows[1][1]["reduction/op_sampled/conv_1x1"] == 1.0
    # Failures so far: trial 1 failed in the first batch.
    assert [r["trials/failures"] for _, r in rows] == [1.0, 1.0]
    assert "ppo/clip_fraction" not in rows[0][1]


def _space_config(choices):
    hp = keras_tuner.HyperParameters()
    for name, values in choices.items():
        hp.Choice(name, values)
    return hp.get_config()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["finished", "resumed", "running"])
def test_report_of_a_search_is_one_deterministic_self_contained_page(runs, kind, tmp_path):
    run_dir = runs[kind]
    path = write_report(run_dir)
    assert path == os.path.join(run_dir, "report.html")
    first = open(path, "rb").read()
    page = _parse(run_dir / "report.html")
    assert page.rows == _num_trials(run_dir) == (2 if kind == "finished" else 3)
    alts = [alt for alt, _ in page.images]
    assert all(src.startswith("data:image/png;base64,") for _, src in page.images)
    assert "score, reward and entropy against trials" in alts
    assert "op preference heat map" in alts
    assert "#1: normal cell" in alts and "#1: reduction cell" in alts
    text = first.decode()
    # Self-contained: no external reference of any kind, in the markup or the style sheet.
    assert page.external == []
    assert "@import" not in text
    assert re.findall(r"url\(\s*['\"]?(?!data:)", text) == []
    assert "http://" not in text and "https://" not in text
    assert ("still running" in " ".join(page.notices)) == (kind == "running")
    # The resumed run has a RandomSearch project in `baseline/`; the finished copy has none.
    assert ("Baseline: 3 scored trial(s)" in text) == (kind != "finished")
    assert ("No random-search baseline" in text) == (kind == "finished")
    # Same files, same bytes: again here, and in another process (another hash seed: no set
    # or dict order, time or process state in the page).
    assert open(write_report(run_dir), "rb").read() == first
    if kind == "finished":
        os.remove(path)
        done = subprocess.run(
            [sys.executable, "-c", "import sys; from tuners.search_report import write_report; "
             "write_report(sys.argv[1])", str(run_dir)],
            capture_output=True, text=True, timeout=300, cwd=ROOT,
            env=dict(os.environ, PYTHONHASHSEED="12345", TF_CPP_MIN_LOG_LEVEL="3"))
        assert done.returncode == 0, done.stderr[-3000:]
        assert open(path, "rb").read() == first


@pytest.mark.slow
def test_report_of_a_random_search_has_no_controller_section(runs, tmp_path):
    path = write_report(runs["resumed"] / "baseline", tmp_path / "baseline.html")
    page = _parse(tmp_path / "baseline.html")
    text = open(path).read()
    assert page.rows == 3 and "has no controller" in text
    assert "op preference heat map" in [alt for alt, _ in page.images]


@pytest.mark.slow
def test_report_shows_the_most_probable_cell_from_decision_probs(runs, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(runs["finished"], run_dir)
    state_path = run_dir / "tuner" / "oracle.json"
    state = json.loads(state_path.read_text())
    own = state["controller_oracle"]
    own["decision_names"] = [name for name, _ in own["signature"]]
    probs = []
    for name, n in own["signature"]:
        p = [0.1 / (n - 1)] * n
        p[n - 1 if name.endswith("op_a") else 0] = 0.9  # op_a: the last op; others: the first
        probs.append(p)
    own["controller"]["history"][-1]["decision_probs"] = probs
    state_path.write_text(json.dumps(state))
    page = _parse(run_dir / os.path.basename(write_report(run_dir)))
    text = (run_dir / "report.html").read_text()
    assert "most probable: normal cell" in [alt for alt, _ in page.images]
    assert "normal: 2=sep3(0)+id(0) -&gt; 1,2 ; reduction: 2=sep3(0)+id(0) -&gt; 1,2" in text
    assert "most likely path (decision_probs)" in text


@pytest.mark.slow
def test_report_of_an_older_oracle_without_decision_probs(runs, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(runs["resumed"], run_dir)
    state_path = run_dir / "tuner" / "oracle.json"
    state = json.loads(state_path.read_text())
    own = state["controller_oracle"]
    own.pop("decision_names", None)
    for stats in own["controller"]["history"]:
        for key in ("decision_probs", "clip_fraction", "ppo_steps", "num_failures"):
            stats.pop(key, None)
    # What KerasTuner keeps of times when a search runs with verbose=1: start times.
    state["display"]["search_start"] = "2024-01-01T10:00:00"
    state["display"]["trial_start"] = {
        t: f"2024-01-01T10:0{i}:30" for i, t in enumerate(state["start_order"])}
    state_path.write_text(json.dumps(state))
    page = _parse(run_dir / os.path.basename(write_report(run_dir)))
    text = (run_dir / "report.html").read_text()
    assert "record no decision_probs" in text
    assert "frequencies among each update's trials" in text
    alts = [alt for alt, _ in page.images]
    assert "op preference heat map" in alts
    assert "score, reward and entropy against wall time" in alts
    assert "Wall times unknown" not in text
    assert page.rows == 3 and not page.notices


@pytest.mark.slow
def test_report_of_a_damaged_state_says_so(runs, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(runs["resumed"], run_dir)
    state_path = run_dir / "tuner" / "oracle.json"
    state_path.write_text(state_path.read_text()[:200])  # cut short, as by a crash
    (run_dir / "tuner" / "trial_1" / "trial.json").write_text('{"trial_id": "1", "sta')
    page = _parse(run_dir / os.path.basename(write_report(run_dir)))
    notices = " ".join(page.notices)
    assert "oracle state" in notices and "could not be read" in notices
    assert "Trial 1's file" in notices
    assert page.rows == 3  # the unreadable trial keeps its row
    assert "UNREADABLE" in (run_dir / "report.html").read_text()


@pytest.mark.slow
def test_report_uses_recorded_wall_times_and_cli_files(runs, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(runs["finished"], run_dir)
    (run_dir / "search.json").write_text(json.dumps({"space": "nasnet", "trials": 2}))
    rows = [{"trial": "0", "params": 1234, "entropy": 1.5, "seconds": 12.0},
            {"trial": "1", "params": 2345, "entropy": 1.4, "seconds": 8.5}]
    (run_dir / "trials.json").write_text(json.dumps(rows))
    # The project folder itself is accepted too; the CLI files beside it are found.
    path = write_report(run_dir / "tuner", tmp_path / "page.html")
    page, text = _parse(tmp_path / "page.html"), open(path).read()
    assert "score, reward and entropy against wall time" in [alt for alt, _ in page.images]
    assert "12.0 s" in text and "8.5 s" in text and "2,345" in text
    assert '<table id="settings">' in text and "Wall times unknown" not in text


@pytest.mark.slow
def test_find_project_and_bad_arguments(runs, tmp_path):
    assert find_project(runs["finished"]) == os.path.join(runs["finished"], "tuner")
    with pytest.raises(ValueError, match="run_dir="):
        find_project(tmp_path)
    with pytest.raises(ValueError, match="top_k=0"):
        write_report(runs["finished"], top_k=0)
    with pytest.raises(ValueError, match="oracle="):
        ControllerScalars(tmp_path).write("oracle.json")
    with pytest.raises(ValueError, match="project_dir="):
        write_controller_scalars(tmp_path)
