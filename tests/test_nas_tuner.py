"""NASTuner (and its NASNetTuner / LayerwiseTuner conveniences): real searches on tiny children,
failures, pluggable estimation, the HyperModel.fit hook, seeded children."""

import json
import warnings

import keras
import keras_tuner
import numpy as np
import pytest

from nasnet_tf import Genotype, build_nasnet
from nasnet_tf.layerwise import LayerwiseGenotype
from tuners.controller_oracle import ControllerOracle
from tuners.estimation import Child, PerformanceEstimator, TrainAndEvaluate
from tuners.nas_tuner import (
    LayerwiseHyperModel,
    LayerwiseTuner,
    NASNetHyperModel,
    NASNetTuner,
    NASTuner,
)

# The tiny searches give the controller too few updates on purpose (cost); the warning itself
# is tests/test_search_state.py's.
pytestmark = pytest.mark.filterwarnings("ignore:.*too few to move it off uniform")
CHEAP_OPS = ("identity", "conv_1x1", "max_pool_3x3", "sep_conv_3x3")
TINY_CHILD = dict(num_cells=1, penultimate_filters=24, input_shape=(8, 8, 3), classes=3)


def tiny_data(n=48, seed=0, nan=False):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, n)
    if nan:
        x[0, 0, 0, 0] = np.nan
    return x[:32], y[:32], x[32:], y[32:]


def test_nasnet_search_with_the_controller(tmp_path, capsys):
    x, y, x_val, y_val = tiny_data()
    tuner = NASNetTuner(
        num_blocks=1,
        ops=CHEAP_OPS,
        **TINY_CHILD,
        max_trials=2,
        seed=1,
        oracle_kwargs={"units": 16, "update_every": 1},
        directory=tmp_path,
        overwrite=True,
    )
    assert isinstance(tuner.oracle, ControllerOracle)
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=1, batch_size=16, verbose=0)

    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 2
    assert all(t.status == "COMPLETED" and 0.0 <= t.score <= 1.0 for t in trials)
    # Every score reached the controller as its reward, and it learned from each.
    assert sorted(r[:2] for r in tuner.oracle.rewards) == sorted(
        [t.trial_id, t.score] for t in trials
    )
    assert len(tuner.oracle.history) == 2

    best = tuner.get_best_genotypes(3)
    assert len(best) == 2 and all(isinstance(g, Genotype) for g in best)
    scores = [t.score for t in tuner.oracle.get_best_trials(3)]
    assert scores == sorted(scores, reverse=True)
    assert best[0] == tuner.hypermodel.decode(tuner.oracle.get_best_trials(1)[0].hyperparameters)

    capsys.readouterr()
    tuner.results_summary()
    out = capsys.readouterr().out
    assert "Objective: val_accuracy (max)" in out and "Trials: 2 completed" in out
    for g in best:
        assert str(g) in out
    assert f"val_accuracy = {scores[0]:.4f}" in out

    exported = tuner.export_best_genotype(tmp_path / "best.json")
    assert Genotype.from_json((tmp_path / "best.json").read_text()) == exported == best[0]
    model = build_nasnet(best[0], preset="cifar", num_cells=1, penultimate_filters=24,
                         input_shape=(16, 16, 3), auxiliary_head=False)
    assert model.genotype == best[0] and model.output_shape == (None, 10)


class FlakyHyperModel(NASNetHyperModel):
    """Its first child fails to build, as an out-of-memory child would."""

    builds = 0
    momenta = []

    def build_child(self, architecture):
        type(self).builds += 1
        if type(self).builds == 1:
            raise RuntimeError(f"simulated failure building {architecture}")
        model = super().build_child(architecture)
        type(self).momenta.append(model.batch_norm_momentum)
        return model


def test_a_child_that_raises_becomes_a_penalised_trial_and_the_search_goes_on(tmp_path, capsys):
    x, y, x_val, y_val = tiny_data()
    FlakyHyperModel.builds = 0
    FlakyHyperModel.momenta = []
    tuner = NASTuner(
        FlakyHyperModel(num_blocks=1, ops=CHEAP_OPS, **TINY_CHILD),
        max_trials=2,
        seed=2,
        oracle_kwargs={"units": 8, "update_every": 5, "failure_reward": -1.0},
        directory=tmp_path,
        overwrite=True,
    )
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=1, batch_size=16, verbose=0)
    statuses = {t.trial_id: t.status for t in tuner.oracle.trials.values()}
    assert sorted(statuses.values()) == ["COMPLETED", "FAILED"]
    failed = next(i for i, s in statuses.items() if s == "FAILED")
    assert "simulated failure" in tuner.oracle.trials[failed].message
    rewards = {r[0]: r[1] for r in tuner.oracle.rewards}
    assert rewards[failed] == -1.0
    assert all(rewards[i] >= 0.0 for i, s in statuses.items() if s == "COMPLETED")
    assert len(tuner.get_best_genotypes(5)) == 1  # failed trials are never "best"
    capsys.readouterr()
    tuner.results_summary()
    out = capsys.readouterr().out
    assert "1 failed" in out and "simulated failure" in out
    assert FlakyHyperModel.momenta == [0.9]  # children's batch norm suits brief training


def test_a_child_whose_loss_goes_nan_becomes_a_penalised_trial(tmp_path):
    x, y, x_val, y_val = tiny_data(nan=True)
    tuner = NASTuner(
        LayerwiseHyperModel(num_layers=2, input_shape=(8, 8, 3), classes=3),
        max_trials=2,
        seed=0,
        oracle_kwargs={"units": 8, "failure_reward": -0.5},
        max_consecutive_failed_trials=3,
        directory=tmp_path,
        overwrite=True,
    )
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=3, batch_size=16, verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 2
    for trial in trials:
        assert trial.status == "FAILED"
        assert "training loss is not finite" in trial.message
    assert [r[1] for r in tuner.oracle.rewards] == [-0.5, -0.5]
    assert tuner.get_best_genotypes(1) == []
    with pytest.raises(ValueError, match="No trial has completed"):
        tuner.export_best_genotype(tmp_path / "best.json")


def test_train_and_evaluate_stops_a_diverging_child_and_fails_its_trial(tmp_path):
    x, y, _, _ = tiny_data(nan=True)
    hypermodel = LayerwiseHyperModel(num_layers=1, input_shape=(8, 8, 3), classes=3)
    genotype = hypermodel.space.decode(hypermodel.space.hyperparameters())
    histories = []

    class Record(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            histories.append(self.model.history.epoch)

    def build():
        return hypermodel.build(keras_tuner.HyperParameters())

    child = Child(genotype, None, build, "7", str(tmp_path), callbacks=[Record()])
    with pytest.raises(keras_tuner.errors.FailedTrialError, match="Trial 7.*not finite"):
        TrainAndEvaluate().estimate(child, x, y, epochs=5, batch_size=8, verbose=0)
    assert histories == [[0]]  # TerminateOnNaN ended training in its first epoch


class ProxyEstimator(PerformanceEstimator):
    """Scores an architecture without training (as a weight-sharing estimator would not
    rebuild each child): the fraction of parameter-free ops."""

    def __init__(self):
        self.seen = []
        self.saved_to = None

    def estimate(self, child, *fit_args, **fit_kwargs):
        self.seen.append((child.trial_id, child.architecture, sorted(fit_kwargs)))
        blocks = child.architecture.normal.blocks + child.architecture.reduction.blocks
        free = sum(op in ("identity", "max_pool_3x3") for b in blocks for op in (b.op_a, b.op_b))
        return {"val_accuracy": free / (2 * len(blocks))}

    def save(self, directory):
        self.saved_to = directory


def test_the_estimator_is_the_one_pluggable_part_that_scores_children(tmp_path):
    estimator = ProxyEstimator()
    tuner = NASTuner(
        NASNetHyperModel(num_blocks=2, ops=CHEAP_OPS, **TINY_CHILD),
        keras_tuner.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=6, seed=0),
        estimator=estimator,
        directory=tmp_path,
        overwrite=True,
    )
    tuner.search(epochs=1, validation_data="unused by this estimator")
    assert [s[0] for s in estimator.seen] == sorted(tuner.oracle.trials)
    assert all(isinstance(s[1], Genotype) for s in estimator.seen)
    assert estimator.seen[0][2] == ["epochs", "validation_data"]
    assert estimator.saved_to == tuner.project_dir
    best = tuner.get_best_genotypes(1)[0]
    expected = max(
        (t for t in tuner.oracle.trials.values()), key=lambda t: t.score
    )
    assert best == tuner.hypermodel.decode(expected.hyperparameters)


def test_held_out_evaluation_data_scores_the_child(tmp_path):
    x, y, x_val, y_val = tiny_data()
    tuner = LayerwiseTuner(
        num_layers=2,
        input_shape=(8, 8, 3),
        classes=3,
        oracle=keras_tuner.oracles.RandomSearchOracle(
            objective="val_accuracy", max_trials=1, seed=0
        ),
        estimator=TrainAndEvaluate(fit_overrides={"epochs": 1}, evaluation_data=(x_val, y_val)),
        directory=tmp_path,
        overwrite=True,
    )
    tuner.search(x, y, epochs=50, batch_size=16, verbose=0)
    (trial,) = tuner.oracle.trials.values()
    assert trial.status == "COMPLETED"
    model = tuner.get_best_models(1)[0]
    _, accuracy = model.evaluate(x_val, y_val, verbose=0)
    assert trial.score == pytest.approx(accuracy, abs=1e-6)
    assert trial.metrics.get_history("loss")[0].step == 0  # one epoch, not 50


@pytest.mark.tf_only
def test_search_accepts_tf_data_datasets(tmp_path):
    import tensorflow as tf

    x, y, x_val, y_val = tiny_data()
    tuner = NASNetTuner(
        num_blocks=1,
        ops=CHEAP_OPS,
        **TINY_CHILD,
        oracle=keras_tuner.oracles.RandomSearchOracle(
            objective="val_accuracy", max_trials=1, seed=0
        ),
        directory=tmp_path,
        overwrite=True,
    )
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    val = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tuner.search(train, validation_data=val, epochs=1, verbose=0)
    (trial,) = tuner.oracle.trials.values()
    assert trial.status == "COMPLETED" and 0.0 <= trial.score <= 1.0
    # The pipeline shuffles itself: no "shuffle=True ... will be ignored" from fit.
    assert not [w for w in caught if "shuffle" in str(w.message)], [str(w.message) for w in caught]


def test_each_child_gets_a_fresh_copy_of_an_optimizer_instance():
    hypermodel = LayerwiseHyperModel(
        num_layers=1, input_shape=(8, 8, 3), classes=3,
        optimizer=keras.optimizers.SGD(learning_rate=0.25, momentum=0.5),
        compile_kwargs={"steps_per_execution": 2},
    )
    a = hypermodel.build(keras_tuner.HyperParameters())
    b = hypermodel.build(keras_tuner.HyperParameters())
    assert a.optimizer is not b.optimizer and a.optimizer is not hypermodel.optimizer
    assert float(keras.ops.convert_to_numpy(b.optimizer.learning_rate)) == 0.25
    assert b.optimizer.momentum == 0.5
    assert b.steps_per_execution == 2


def test_children_batch_norm_momentum_suits_brief_training():
    def momenta(hypermodel):
        model = hypermodel.build(keras_tuner.HyperParameters())
        return {
            layer.momentum for layer in model.layers
            if isinstance(layer, keras.layers.BatchNormalization)
        }

    small = dict(num_layers=2, input_shape=(8, 8, 3), classes=3)
    assert momenta(LayerwiseHyperModel(**small)) == {0.9}
    assert momenta(LayerwiseHyperModel(**small, batch_norm_momentum=0.5)) == {0.5}
    assert momenta(LayerwiseHyperModel(**small, batch_norm_momentum=None)) == {0.99}
    with pytest.raises(ValueError, match="batch_norm_momentum=1.0"):
        LayerwiseHyperModel(batch_norm_momentum=1.0)


def test_bad_arguments_raise_clear_errors(tmp_path):
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=1)
    with pytest.raises(ValueError, match="`hypermodel` must be a `NASNetHyperModel` or a "
                       "`LayerwiseHyperModel`.*Received: hypermodel=None"):
        NASTuner(None, oracle, directory=tmp_path)
    with pytest.raises(ValueError, match="With `oracle` given.*seed"):
        NASTuner(LayerwiseHyperModel(), oracle, seed=1, directory=tmp_path)
    with pytest.raises(ValueError, match="With `oracle` given.*max_trials"):
        NASNetTuner(oracle=oracle, max_trials=3, directory=tmp_path)
    with pytest.raises(ValueError, match="With `hypermodel` given.*num_blocks"):
        NASNetTuner(NASNetHyperModel(), num_blocks=2, oracle=oracle, directory=tmp_path)
    with pytest.raises(ValueError, match="must be a `NASNetHyperModel`"):
        NASNetTuner(LayerwiseHyperModel(), oracle=oracle, directory=tmp_path)
    with pytest.raises(ValueError, match="PerformanceEstimator.*Received: estimator='fit'"):
        NASNetTuner(oracle=oracle, estimator="fit", directory=tmp_path)
    with pytest.raises(ValueError, match="Pass either `space` or its arguments"):
        LayerwiseHyperModel(LayerwiseHyperModel().space, num_layers=2)
    with pytest.raises(ValueError, match="classes=0"):
        NASNetHyperModel(classes=0)
    with pytest.raises(ValueError, match="build_kwargs.*num_cells"):
        NASNetHyperModel(build_kwargs={"num_cells": 3})
    with pytest.raises(ValueError, match="compile_kwargs.*\\['loss'\\]"):
        NASNetHyperModel(compile_kwargs={"loss": "mse"})
    with pytest.raises(ValueError, match="must not replace `callbacks`"):
        TrainAndEvaluate(fit_overrides={"callbacks": []})
    tuner = NASNetTuner(oracle=oracle, directory=tmp_path, overwrite=True)
    x, y, _, _ = tiny_data()
    with pytest.raises(ValueError, match="'val_accuracy' is a validation metric"):
        tuner.search(x, y, epochs=1)
    assert tuner.oracle.trials == {}


def test_results_are_plain_json_genotypes(tmp_path):
    tuner = LayerwiseTuner(
        num_layers=3,
        oracle=keras_tuner.oracles.RandomSearchOracle(
            objective="val_accuracy", max_trials=2, seed=4
        ),
        estimator=_LayerCount(),
        directory=tmp_path,
        overwrite=True,
    )
    tuner.search()
    best = tuner.export_best_genotype(tmp_path / "best.json")
    assert isinstance(best, LayerwiseGenotype)
    data = json.loads((tmp_path / "best.json").read_text())
    assert LayerwiseGenotype.from_dict(data) == best
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


class _LayerCount(PerformanceEstimator):
    def estimate(self, child, *fit_args, **fit_kwargs):
        return sum(len(layer.inputs) for layer in child.architecture.layers) / 10.0


class FitHookHyperModel(LayerwiseHyperModel):
    """Trains its children its own way, through KerasTuner's public `HyperModel.fit` hook."""

    calls = []

    def fit(self, hp, model, *args, **kwargs):
        type(self).calls.append((sorted(hp.values) == sorted(self.space.names), kwargs["epochs"]))
        return super().fit(hp, model, *args, **{**kwargs, "epochs": 2})


def test_same_seed_same_scores_and_training_goes_through_the_fit_hook(tmp_path):
    x, y, x_val, y_val = tiny_data()
    FitHookHyperModel.calls = []

    def scores(name, oracle_seed=None):
        hypermodel = FitHookHyperModel(num_layers=2, input_shape=(8, 8, 3), classes=3)
        if oracle_seed is None:  # the default ControllerOracle, seeded by the tuner
            tuner = NASTuner(hypermodel, max_trials=2, seed=7, directory=tmp_path,
                             project_name=name, oracle_kwargs={"units": 8})
        else:  # the children's seed is the given oracle's
            tuner = NASTuner(hypermodel, keras_tuner.oracles.RandomSearchOracle(
                objective="val_accuracy", max_trials=2, seed=oracle_seed),
                directory=tmp_path, project_name=name)
        assert tuner.estimator.seed == (7 if oracle_seed is None else oracle_seed)
        tuner.search(x, y, validation_data=(x_val, y_val), epochs=1, batch_size=16, verbose=0)
        trials = tuner.oracle.trials.values()
        assert [len(t.metrics.get_history("loss")) for t in trials] == [2, 2]  # the hook's
        return [(t.trial_id, t.score, t.metrics.get_last_value("loss")) for t in trials]

    assert scores("first") == scores("second")
    assert FitHookHyperModel.calls == [(True, 1)] * 4
    assert scores("third", oracle_seed=5) == scores("fourth", oracle_seed=5)
