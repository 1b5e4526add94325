"""What a search run writes as its trials end, as `SearchListener`s, and its best entries.

- `TrialTable`: the per-trial table, printed and kept in `trials.json` (one row per trial:
  genotype, params, score, the controller's reward and entropy, wall time);
- `EstimationRecord`: `estimation.json`, every architecture the estimator scored, with the
  search time it was known at;
- `HTMLReport`: `report.html` (`tuners.search_report.write_report`) after each trial and at the end;
- `TensorBoardScalars`: the controller's scalars for TensorBoard
  (`tuners.tensorboard_log.ControllerScalars`);
- `best_trials` and `best_entries`: the best trials, and the entries `best_genotype.json` and
  `best_genotypes.json` hold.

`tuners.SearchRun` gives a `NASTuner` these listeners; each also works on its own, passed
to `NASTuner(..., listeners=[...])`. Every file is written whole (`nasnet_tf.io_utils`).
"""

import math
import os
import time

from nasnet_tf.io_utils import read_json, write_json
from tuners.chief_worker import is_worker
from tuners.listeners import SearchListener
from tuners.search_report import REPORT_FILE, natural_key

__all__ = [
    "BEST_FILE",
    "ESTIMATION_FILE",
    "REPORT_FILE",
    "SEARCH_FILE",
    "TOP_FILE",
    "TRIALS_FILE",
    "EstimationRecord",
    "HTMLReport",
    "TensorBoardScalars",
    "TrialTable",
    "best_entries",
    "best_trials",
]

SEARCH_FILE = "search.json"
TRIALS_FILE = "trials.json"
BEST_FILE = "best_genotype.json"
TOP_FILE = "best_genotypes.json"
ESTIMATION_FILE = "estimation.json"
_TABLE = "{:>5}  {:<58}  {:>9}  {:>8}  {:>7}  {:>8}"


def _short(text, width=58):
    text = str(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def best_trials(oracle, num_trials):
    """The `num_trials` best COMPLETED trials of `oracle`, best first; ties break by trial id
    (natural order: "2" before "10"), so the same search always lists them in the same order.

    Example:

    >>> import types
    >>> oracle = types.SimpleNamespace(
    ...     objective=types.SimpleNamespace(direction="max"),
    ...     trials={i: types.SimpleNamespace(trial_id=i, status="COMPLETED", score=s)
    ...             for i, s in (("10", 0.5), ("2", 0.5), ("3", 0.9))})
    >>> [t.trial_id for t in best_trials(oracle, 3)]
    ['3', '2', '10']
    """
    sign = 1.0 if getattr(oracle.objective, "direction", "max") == "min" else -1.0
    done = [t for t in oracle.trials.values()
            if t.status == "COMPLETED" and t.score is not None and math.isfinite(float(t.score))]
    done.sort(key=lambda t: (sign * float(t.score), natural_key(t.trial_id)))
    return done[:num_trials]


class TrialTable(SearchListener):
    """The per-trial table: printed as the search goes and kept in `trials.json`.

    Each row holds the trial's id, status, genotype, the child's parameter count (None when
    no standalone child is built: the `fresh` / `shared` estimators), its score, the
    controller's reward and entropy (None under other oracles) and the trial's wall time in
    `seconds`. The header and the rows of earlier trials are printed when the search begins.

    Args:
        path: the `trials.json` to write after each trial.
        rows: the rows of a resumed search (its `trials.json`), or None.
        estimator: `"train"`, `"fresh"` or `"shared"`: names the score column.
        print_fn: called with each line to print (e.g. `print`); None prints nothing.
        final_selection: whether a final selection trains the best few standalone after
            the trials (`"fresh"` and `"shared"`; said in the header).
    """

    def __init__(self, path, rows=None, estimator="train", print_fn=None,
                 final_selection=True):
        self.path = os.fspath(path)
        self.rows = list(rows or [])
        self.estimator = estimator
        self.final_selection = bool(final_selection)
        self.print_fn = print_fn
        self.params = {}
        self._started = {}

    def _print(self, line):
        if self.print_fn is not None:
            self.print_fn(line)

    def search_began(self, tuner):
        label = {"shared": "ws_est", "fresh": "fresh"}.get(self.estimator, "accuracy")
        if self.estimator != "train":
            what = ("a weight-sharing estimate: the shared weights of the trial's epoch"
                    if self.estimator == "shared" else "the child trained from fresh weights "
                    "inside the super-network")
            then = ("; the final selection then trains the best few standalone"
                    if self.final_selection else "")
            self._print(f"({label}: the trial's validation accuracy, {what}{then})")
        self._print(_TABLE.format("trial", "genotype", "params", label, "reward", "entropy"))
        for row in self.rows:
            self._print_row(row)

    def _print_row(self, row):
        def num(value, fmt):
            return "-" if value is None else format(value, fmt)

        self._print(_TABLE.format(row["trial"], _short(row["genotype"]), num(row["params"], ","),
                                  num(row["accuracy"], ".4f"), num(row["reward"], ".4f"),
                                  num(row["entropy"], ".3f")))

    def trial_began(self, tuner, trial):
        self._started[trial.trial_id] = time.monotonic()

    def child_built(self, tuner, trial, model):
        self.params[trial.trial_id] = int(model.count_params())

    def trial_ended(self, tuner, trial):
        import numpy as np

        oracle = tuner.oracle
        reward = entropy = None
        for trial_id, value, *_ in getattr(oracle, "rewards", []):
            if trial_id == trial.trial_id:
                reward = value
        decisions = getattr(oracle, "trial_decisions", {}).get(trial.trial_id)
        if decisions is not None and getattr(oracle, "controller", None) is not None:
            entropy = float(oracle.controller.entropy(np.array([decisions]))[0])
        started = self._started.pop(trial.trial_id, None)
        row = {
            "trial": trial.trial_id,
            "status": trial.status,
            "genotype": str(tuner.hypermodel.decode(trial.hyperparameters)),
            "params": self.params.get(trial.trial_id),
            "accuracy": None if trial.score is None else float(trial.score),
            "reward": reward,
            "entropy": entropy,
            "seconds": None if started is None else round(time.monotonic() - started, 3),
        }
        self.rows = [r for r in self.rows if r["trial"] != trial.trial_id] + [row]
        write_json(self.path, self.rows)
        self._print_row(row)


def _stitched(entries, offset=0.0):
    """`[seconds, reward, source]` entries with their clock made continuous: the estimators
    count seconds from their first child in this process, so a resumed search's clock starts
    again at 0; each restart continues from the last time before it (plus `offset`)."""
    out, last_raw, last = [], None, float(offset)
    for seconds, reward, source in entries:
        if last_raw is not None and seconds < last_raw:
            offset = last
        last_raw = seconds
        last = round(float(seconds) + offset, 3)
        out.append([last, float(reward), source])
    return out


class EstimationRecord(SearchListener):
    """`estimation.json`: the estimator, how many architectures it scored, and each score with
    the search time (seconds) it was known at and its source (`"trial"`: a trial's own child,
    `"candidate"`: an architecture rewarded through weight sharing). Written after each trial
    and at the end; `num_scored` is the count last written.

    Args:
        path: the `estimation.json` to write.
        estimator: `"train"`, `"fresh"` or `"shared"`, the tuner's estimator.
        table: the search's `TrialTable` (under `"train"` the times are its rows' wall times).
        resume: whether the search resumes: what `path` holds is kept (an interrupted
            search's estimators start afresh).
    """

    def __init__(self, path, estimator, table, resume=False):
        self.path = os.fspath(path)
        self.estimator = estimator
        self.table = table
        self.num_scored = 0
        previous = read_json(self.path) if resume and os.path.isfile(self.path) else None
        previous = previous.get("scored") if isinstance(previous, dict) else None
        self.previous = previous if isinstance(previous, list) else []

    def scored(self, tuner):
        """The `[seconds, reward, source]` entries of the search so far."""
        if self.estimator == "train":
            out, elapsed = [], 0.0
            for row in self.table.rows:
                elapsed += row.get("seconds") or 0.0
                if row.get("accuracy") is not None:
                    out.append([round(elapsed, 3), float(row["accuracy"]), "trial"])
            return out
        record = tuner.estimator.scored
        if self.estimator == "fresh":  # FreshWeights keeps this process's children only
            offset = self.previous[-1][0] if self.previous else 0.0
            return self.previous + _stitched(record, offset)
        # SharedWeights restores its record with its weights (once it scores again).
        return _stitched(record) if record else self.previous

    def write(self, tuner):
        scored = self.scored(tuner)
        write_json(self.path, {"estimator": self.estimator, "num_scored": len(scored),
                               "scored": scored})
        self.num_scored = len(scored)
        return self.num_scored

    def trial_ended(self, tuner, trial):
        self.write(tuner)

    def search_ended(self, tuner):
        self.write(tuner)


class HTMLReport(SearchListener):
    """Writes `<run_dir>/report.html` (`tuners.search_report.write_report`) after each trial and at
    the end.

    Args:
        run_dir: the run folder: the search's files and its KerasTuner project folder.
    """

    def __init__(self, run_dir):
        self.run_dir = os.fspath(run_dir)
        self.path = os.path.join(self.run_dir, REPORT_FILE)

    def write(self):
        from tuners.search_report import write_report

        return write_report(self.run_dir, self.path)

    def trial_ended(self, tuner, trial):
        self.write()

    def search_ended(self, tuner):
        self.write()


class TensorBoardScalars(SearchListener):
    """Writes the controller's scalars (`tuners.tensorboard_log.ControllerScalars`) under the
    tuner's project folder at each trial end; KerasTuner workers write nothing (the chief's
    oracle is the record).

    Args:
        subdir: the event folder inside the project. Defaults to `"tensorboard/controller"`.
    """

    def __init__(self, subdir=None):
        self.subdir = subdir
        self.scalars = None

    def search_began(self, tuner):
        from tuners.tensorboard_log import DEFAULT_SUBDIR, ControllerScalars

        if self.scalars is None:
            self.scalars = ControllerScalars(tuner.project_dir, self.subdir or DEFAULT_SUBDIR)

    def trial_ended(self, tuner, trial):
        if is_worker():
            return
        self.search_began(tuner)
        self.scalars.write(tuner.oracle)


def best_entries(tuner, num, estimator, epochs):
    """`(genotype, entry)` of the `num` best, each entry as `best_genotype(s).json` hold it,
    every number labelled: the final selection's ranking (standalone score and the estimate it
    was picked by), or the best trials (children trained standalone by the search itself).

    Args:
        tuner: the searched `NASTuner`.
        num: how many entries at most.
        estimator: `"train"`, `"fresh"` or `"shared"`, the tuner's estimator.
        epochs: the epochs each trial's child trained for.
    """
    decode = tuner.hypermodel.decode
    if tuner.final_ranking:
        return [(decode(r["values"]), {
            "genotype": r["genotype"], "trial": None,
            "score": r["score"], "standalone_val_accuracy": r["standalone_val_accuracy"],
            "standalone": None if r["standalone_epochs"] is None else (
                f"trained from scratch for {r['standalone_epochs']} epoch"
                f"{'' if r['standalone_epochs'] == 1 else 's'}, scored on the validation "
                "data (final selection)"),
            "standalone_scores": r["standalone_scores"],
            "estimate": r["estimate"], "estimate_kind": r["estimate_kind"],
        }) for r in tuner.final_ranking[:num]]
    trained = estimator == "train"
    return [(decode(t.hyperparameters), {
        "genotype": decode(t.hyperparameters).to_dict(),
        "trial": t.trial_id, "score": float(t.score),
        "standalone_val_accuracy": float(t.score) if trained else None,
        "standalone": f"the trial's child trained from scratch for {epochs} epochs"
                      if trained else None,
        "estimate": None if trained else float(t.score),
        "estimate_kind": None if trained else f"trial val_accuracy ({estimator} estimator)",
    }) for t in best_trials(tuner.oracle, num)]
