"""The training recipe: presets, loss, aux head / drop path / label smoothing in training only,
checkpoints written whole, resumption (a SIGKILLed process restarted ends with the weights of
an uninterrupted run), and clear errors before training starts."""

import hashlib
import json
import logging
import os
import pathlib
import shutil

import keras
import numpy as np
import pytest

pytest.importorskip("tensorflow")

from nasnet_tf import NASNetCell, build_nasnet  # noqa: E402
from nasnet_tf.data import load_dataset  # noqa: E402
from nasnet_tf.io_utils import CorruptFileError, verify  # noqa: E402
from nasnet_tf.training import (  # noqa: E402
    CheckpointError,
    EpochCheckpoint,
    LabelSmoothingCrossentropy,
    TrainConfig,
    latest_checkpoint,
    train,
)

BACKEND = keras.backend.backend()
# `train` is backend-neutral Keras; under JAX (minutes per tiny run on this CPU) it is exercised
# by the arrays test, tests/test_placement.py and tests/test_multihost.py (whose kill-and-resume
# test checks a resumed run against an uninterrupted one); the kill at every write boundary is
# tests/test_kill_boundaries.py.
TINY = dict(num_cells=1, penultimate_filters=24, auxiliary_head=False, drop_path_keep_prob=1.0)


def _config(**overrides):
    # Eager: a few steps of a tiny model run faster than tracing its graph (the graph path
    # runs in tests/test_placement.py and in the command line's end-to-end tests).
    base = dict(epochs=1, batch_size=16, steps_per_epoch=2, jit_compile=False, verbose=0,
                run_eagerly=True, tensorboard=False, model_kwargs=dict(TINY))
    base.update(overrides)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", batch_size=16, seed=0)


class CountSteps(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1


# -- settings -------------------------------------------------------------------------------------
def test_presets_carry_the_papers_recipe():
    cifar = TrainConfig.for_preset("cifar")
    assert (cifar.optimizer, cifar.lr_schedule, cifar.learning_rate) == ("sgd", "cosine", 0.025)
    assert (cifar.epochs, cifar.batch_size, cifar.weight_decay) == (600, 32, 5e-4)
    for name in ("cifar", "mobile", "large"):
        config = TrainConfig.for_preset(name)
        assert config.label_smoothing == 0.1 and config.aux_loss_weight == 0.4
        assert config.drop_path
        config.validate()
    mobile = TrainConfig.for_preset("mobile", epochs=3)
    assert (mobile.optimizer, mobile.lr_schedule, mobile.ema, mobile.epochs) == (
        "rmsprop", "exponential", True, 3)
    assert mobile.rmsprop_epsilon == 1.0


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(optimizer="adam"), r"`optimizer` must be one of \['sgd', 'rmsprop'\]"),
        (dict(lr_schedule="step"), "lr_schedule"),
        (dict(epochs=0), r"Received: epochs=0"),
        (dict(label_smoothing=1.5), "label_smoothing"),
        (dict(learning_rate=-1.0), "learning_rate"),
        (dict(preset="tiny"), "Unknown preset"),
        (dict(jit_compile="yes"), "jit_compile"),
    ],
)
def test_bad_settings_are_clear_errors(overrides, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**overrides).validate()


def test_for_preset_rejects_unknown_fields():
    with pytest.raises(ValueError, match=r"Unknown TrainConfig fields \['epoch'\]"):
        TrainConfig.for_preset("cifar", epoch=3)


def test_label_smoothing_loss_takes_integer_or_one_hot_labels():
    rng = np.random.RandomState(0)
    probs = keras.ops.softmax(rng.normal(size=(6, 5)).astype("float32"))
    labels = np.array([0, 1, 2, 3, 4, 0])
    one_hot = np.eye(5, dtype="float32")[labels]
    expected = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(one_hot, probs)
    loss = LabelSmoothingCrossentropy(0.1)
    np.testing.assert_allclose(loss(labels, probs), expected, rtol=1e-6)
    np.testing.assert_allclose(loss(one_hot, probs), expected, rtol=1e-6)
    np.testing.assert_allclose(loss(labels[:, None], probs), expected, rtol=1e-6)
    restored = LabelSmoothingCrossentropy.from_config(loss.get_config())
    assert restored.label_smoothing == 0.1


# -- a run, its files, and the recipe's parts ----------------------------------------------------
@pytest.mark.tf_only  # backend-neutral code; JAX resumes in test_multihost's kill test
def test_train_writes_whole_outputs_and_resumes_a_finished_run(digits, tmp_path):
    history = train(None, digits, _config(epochs=2, tensorboard=True), tmp_path)
    assert len(history.history["loss"]) == 2
    assert list((tmp_path / "logs" / "train").glob("events.out.tfevents.*"))
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.history)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"checkpoints", "config.json", "history.json", "model.keras"} <= names
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    state = latest_checkpoint(tmp_path)
    assert state["epoch"] == 2 and os.path.isfile(state["weights"])
    assert json.loads((tmp_path / "history.json").read_text()) == history.history

    # the saved model reloads and predicts as the trained one
    x = next(iter(digits.validation))[0].numpy()
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0),
                               history.model.predict(x, verbose=0), atol=1e-5)

    # a finished run started again trains nothing and reports the same history
    counter = CountSteps()
    again = train(None, digits, _config(epochs=2), tmp_path, callbacks=[counter])
    assert counter.steps == 0
    assert again.history == history.history
    for a, b in zip(again.model.get_weights(), history.model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.tf_only  # the settings check is plain Python, before any backend work
def test_resume_with_other_settings_is_refused(digits, tmp_path):
    train(None, digits, _config(), tmp_path)
    with pytest.raises(ValueError, match=r"other settings.*learning_rate"):
        train(None, digits, _config(learning_rate=0.5), tmp_path)


@pytest.mark.tf_only  # backend-neutral code; JAX resumes in test_multihost's kill test
def test_a_stray_temporary_file_does_not_break_resumption(digits, tmp_path):
    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        train(None, digits, _config(epochs=2), tmp_path, callbacks=[Crash()])
    # what a kill in the middle of writing epoch 2's checkpoint leaves behind
    (tmp_path / "checkpoints" / ".tmp-epoch-00002.weights.h5").write_bytes(b"\x89HDF partial")
    (tmp_path / "checkpoints" / ".state.json.tmp").write_text('{"epoch": 2, "weig')
    counter = CountSteps()
    history = train(None, digits, _config(epochs=2), tmp_path, callbacks=[counter])
    assert counter.steps == 2  # epoch 2 only
    assert len(history.history["loss"]) == 2


@pytest.mark.tf_only  # backend-neutral code; JAX resumes in test_multihost's kill test
def test_aux_head_drop_path_and_label_smoothing_act_in_training_only(digits):
    config = _config(epochs=2, steps_per_epoch=2, model_kwargs=dict(
        num_cells=1, penultimate_filters=24, auxiliary_head=True, drop_path_keep_prob=0.5))
    history = train(None, digits, config)
    model = history.model
    assert model.aux_loss_weight == 0.4
    # ScheduledDropPath progress was driven by the optimizer's steps: 3 of 4 at the last batch
    progress = [float(keras.ops.convert_to_numpy(c.drop_path_progress))
                for c in model.layers if isinstance(c, NASNetCell)]
    assert progress and all(p == pytest.approx(3 / 4) for p in progress)

    x, y = (t.numpy() for t in next(iter(digits.validation)))
    train_out = model(x, training=True)
    assert isinstance(train_out, (list, tuple)) and len(train_out) == 2
    infer = model(x, training=False)
    assert not isinstance(infer, (list, tuple)) and infer.shape == (16, 10)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    # drop path makes two training passes differ
    again = model(x, training=True)
    assert np.abs(keras.ops.convert_to_numpy(train_out[0] - again[0])).max() > 1e-6
    # the training loss is smoothed CE on the main output + 0.4 x on the aux output
    main, aux = (keras.ops.convert_to_numpy(t) for t in train_out)
    loss = LabelSmoothingCrossentropy(0.1)
    expected = float(loss(y, main)) + 0.4 * float(loss(y, aux))
    got = float(model.compute_loss(x, y, [main, aux]))
    assert got == pytest.approx(expected, rel=1e-5)
    def plain(p):
        return float(keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, p)))

    assert got != pytest.approx(plain(main) + 0.4 * plain(aux), rel=1e-3)  # smoothing is on


def test_lr_schedule_and_weight_decay_reach_the_optimizer():
    from nasnet_tf.recipe import make_optimizer as _optimizer

    opt = _optimizer(_config(epochs=2, weight_decay=1e-3, clipnorm=1.0), 2, 1)
    assert isinstance(opt, keras.optimizers.SGD) and opt.nesterov
    assert opt.weight_decay == pytest.approx(1e-3) and opt.clipnorm == 1.0
    schedule = opt._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert schedule.decay_steps == 4
    assert float(schedule(4)) == pytest.approx(0.0, abs=1e-9)
    # the learning rate scales with the replicas, as the global batch does
    two = _optimizer(_config(epochs=2), 2, 2)._learning_rate
    assert float(two(0)) == pytest.approx(2 * 0.025)
    rms = _optimizer(_config(optimizer="rmsprop", lr_schedule="exponential", ema=True,
                             lr_decay_epochs=2.0, lr_decay_rate=0.5), 3, 1)
    assert isinstance(rms, keras.optimizers.RMSprop) and rms.use_ema
    exp = rms._learning_rate
    assert isinstance(exp, keras.optimizers.schedules.ExponentialDecay)
    assert float(exp(5)) == pytest.approx(0.025) and float(exp(6)) == pytest.approx(0.0125)


# -- clear errors before training ----------------------------------------------------------------
def test_model_and_data_that_do_not_fit_are_refused(digits):
    wrong_shape = build_nasnet(preset="cifar", input_shape=(8, 8, 3), classes=10, **TINY)
    with pytest.raises(ValueError, match=r"images have shape \(8, 8, 1\).*\(8, 8, 3\)"):
        train(wrong_shape, digits, _config())
    wrong_classes = build_nasnet(preset="cifar", input_shape=(8, 8, 1), classes=3, **TINY)
    with pytest.raises(ValueError, match="10 classes but the model predicts 3"):
        train(wrong_classes, digits, _config())
    float_model = build_nasnet(preset="cifar", input_shape=(8, 8, 1), classes=10, **TINY)
    with pytest.raises(ValueError, match="mixed_precision"):
        train(float_model, digits, _config(mixed_precision="mixed_bfloat16"))


def test_bad_data_is_refused():
    with pytest.raises(ValueError, match="`train` needs `data`"):
        train(None, None, _config())
    with pytest.raises(ValueError, match=r"Received: images of shape \(4, 8, 8\)"):
        train(None, (np.zeros((4, 8, 8)), np.zeros(4, int)), _config())
    with pytest.raises(ValueError, match="`data` must be"):
        train(None, "digits", _config())


def test_arrays_train_without_tf_data():
    rng = np.random.RandomState(0)
    x = rng.uniform(-1, 1, (32, 8, 8, 3)).astype("float32")
    y = np.arange(32) % 4
    history = train(None, (x, y), _config(model_kwargs=dict(TINY, classes=4)))
    assert len(history.history["loss"]) == 1


@pytest.mark.parametrize("keep", [1, 2])
def test_epoch_checkpoint_keeps_the_last_checkpoints(tmp_path, keep):
    model = build_nasnet(preset="cifar", input_shape=(8, 8, 1), classes=10, **TINY)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    callback = EpochCheckpoint(tmp_path, keep=keep)
    callback.set_model(model)
    for epoch in range(3):
        callback.on_epoch_end(epoch, {"loss": float(epoch)})
    files = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    kept = [f"epoch-{e:05d}.{kind}{sidecar}" for e in range(4 - keep, 4)
            for kind in ("state.json", "weights.h5") for sidecar in ("", ".sha256")]
    assert files == sorted(kept + ["state.json", "state.json.sha256"])
    assert latest_checkpoint(tmp_path)["history"] == {"loss": [0.0, 1.0, 2.0]}
    # every file is checked by its sidecar (the `sha256sum -c` format)
    for name in files:
        if not name.endswith(".sha256"):
            assert verify(tmp_path / "checkpoints" / name, required=True), name
    with pytest.raises(ValueError, match=r"Received: keep=0"):
        EpochCheckpoint(tmp_path, keep=0)
    with pytest.raises(ValueError, match=r"Received: keep_checkpoints=0"):
        _config(keep_checkpoints=0).validate()


# -- damaged files -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(digits, tmp_path_factory):
    """A finished 2-epoch run (checkpoints of epochs 1 and 2 kept), written under umask 022."""
    out = tmp_path_factory.mktemp("finished") / "run"
    old = os.umask(0o022)
    try:
        history = train(None, digits, _config(epochs=2), out)
    finally:
        os.umask(old)
    return out, history.history


def _copy(run, tmp_path):
    return pathlib.Path(shutil.copytree(run, tmp_path / "run"))


def _truncate(path, keep=0.5):
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(int(size * keep))


def _snapshot(directory):
    """Every file under `directory` with its contents' digest (and its modification time: a
    file rewritten with the same bytes was still written)."""
    return {p.relative_to(directory): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                       p.stat().st_mtime_ns)
            for p in directory.rglob("*") if p.is_file()}


def _unchanged_except(before, after, changed):
    """The contents' digests of the files of `before` that are not in `changed` (relative
    paths, as strings), and of what each became in `after`: equal unless a file's contents
    changed (a rerun may write a file again with the same bytes)."""
    kept = {k: v[0] for k, v in before.items() if str(k) not in changed}
    return kept, {k: (after[k][0] if k in after else None) for k in kept}


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.name == "nasnet_tf.training" and r.levelno == logging.WARNING]


def test_every_file_training_writes_is_readable_by_others_under_umask_022(finished_run):
    out, _ = finished_run
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"model.keras", "model.keras.sha256", "config.json", "history.json", "state.json",
            "state.json.sha256", "epoch-00002.weights.h5", "epoch-00002.weights.h5.sha256",
            "epoch-00001.state.json.sha256"} <= names
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o644, path
    assert verify(out / "model.keras", required=True)


def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_one(
        digits, finished_run, tmp_path, caplog):
    run, history = finished_run
    out = _copy(run, tmp_path)
    newest = out / "checkpoints" / "epoch-00002.weights.h5"
    _truncate(newest)
    truncated_size = newest.stat().st_size
    # The killed run's interrupted writes left their temporary files (mode 0600) behind.
    left = [out / ".tmp-k1l2m3-model.keras", out / "checkpoints" / ".tmp-x9y8-epoch-00003.h5"]
    for path in left:
        path.write_bytes(b"partial")
        path.chmod(0o600)
    before = _snapshot(out)
    caplog.set_level(logging.INFO, logger="nasnet_tf.training")
    counter = CountSteps()
    resumed = train(None, digits, _config(epochs=2), out, callbacks=[counter])
    # Epoch 1's checkpoint, fallen back to, is untouched; what epoch 2 wrote is written again.
    kept, now = _unchanged_except(before, _snapshot(out), {
        "checkpoints/epoch-00002.weights.h5", "checkpoints/epoch-00002.weights.h5.sha256",
        "checkpoints/epoch-00002.state.json", "checkpoints/epoch-00002.state.json.sha256",
        "checkpoints/state.json", "checkpoints/state.json.sha256", "history.json",
        "history.json.sha256", "model.keras", "model.keras.sha256",
        *(str(p.relative_to(out)) for p in left)})
    assert now == kept
    assert counter.steps == 2  # epoch 2 again, from epoch 1's checkpoint
    assert len(resumed.history["loss"]) == 2
    assert resumed.history["loss"][0] == history["loss"][0]
    # one warning line, naming the damaged file and the one fallen back to
    (warning,) = _warnings(caplog)
    assert "\n" not in warning
    assert str(newest) in warning and str(out / "checkpoints" / "epoch-00001.weights.h5") in warning
    assert "does not match" in warning and "epoch-00002.weights.h5.corrupt" in warning
    assert f"Resuming from epoch 1 (checkpoint {out / 'checkpoints' / 'epoch-00001.weights.h5'})" \
        in caplog.messages
    # set aside, not deleted; the new epoch 2 checkpoint is whole
    aside = out / "checkpoints" / "epoch-00002.weights.h5.corrupt"
    assert aside.stat().st_size == truncated_size
    assert (out / "checkpoints" / "epoch-00002.state.json.corrupt").is_file()
    assert verify(newest, required=True)
    assert latest_checkpoint(out)["epoch"] == 2
    assert not any(path.exists() for path in left)  # cleared by the rerun
    assert not [p for p in out.rglob(".tmp-*")]


def test_two_truncated_checkpoints_are_a_one_line_error_that_changes_nothing(
        digits, finished_run, tmp_path):
    out = _copy(finished_run[0], tmp_path)
    for epoch in (1, 2):
        _truncate(out / "checkpoints" / f"epoch-{epoch:05d}.weights.h5")
    before = _snapshot(out)
    with pytest.raises(CheckpointError) as error:
        train(None, digits, _config(epochs=2), out)
    message = str(error.value)
    assert isinstance(error.value, ValueError)  # the command line: one line, exit status 2
    assert "\n" not in message
    assert str(out / "checkpoints" / "epoch-00002.weights.h5") in message
    assert "epoch-00001.weights.h5" in message and "--overwrite" in message
    assert _snapshot(out) == before
    with pytest.raises(CheckpointError):
        latest_checkpoint(out)


@pytest.mark.tf_only  # backend-neutral code; JAX runs the checksum fallback above
def test_an_unloadable_checkpoint_without_checksums_falls_back(
        digits, finished_run, tmp_path, caplog):
    # A run written before checksums: no sidecars, no digest in the state. The weights file is
    # checked by loading it.
    out = _copy(finished_run[0], tmp_path)
    checkpoints = out / "checkpoints"
    for sidecar in checkpoints.glob("*.sha256"):
        sidecar.unlink()
    for name in ("state.json", "epoch-00002.state.json", "epoch-00001.state.json"):
        state = json.loads((checkpoints / name).read_text())
        del state["weights_sha256"]
        (checkpoints / name).write_text(json.dumps(state))
    _truncate(checkpoints / "epoch-00002.weights.h5", 0.9)
    caplog.set_level(logging.INFO, logger="nasnet_tf.training")
    counter = CountSteps()
    train(None, digits, _config(epochs=2), out, callbacks=[counter])
    assert counter.steps == 2
    (warning,) = _warnings(caplog)
    assert "cannot be loaded" in warning and "epoch-00001.weights.h5" in warning
    assert (checkpoints / "epoch-00002.weights.h5.corrupt").is_file()


def test_a_truncated_state_file_falls_back_to_the_epochs_own_state(
        digits, finished_run, tmp_path, caplog, capsys):
    run, history = finished_run
    out = _copy(run, tmp_path)
    _truncate(out / "checkpoints" / "state.json")
    before = _snapshot(out)
    caplog.set_level(logging.INFO, logger="nasnet_tf.training")
    counter = CountSteps()
    resumed = train(None, digits, _config(epochs=2, verbose=1), out, callbacks=[counter])
    assert counter.steps == 0 and resumed.history == history  # the run was finished
    # Only the damaged state was set aside (and rebuilt): every other file is as it was.
    kept, now = _unchanged_except(before, _snapshot(out), {
        "checkpoints/state.json", "checkpoints/state.json.sha256",
        "model.keras", "model.keras.sha256",  # the final model is exported again
        "config.json", "config.json.sha256"})  # this run's settings (verbose=1)
    assert now == kept
    (warning,) = _warnings(caplog)
    assert str(out / "checkpoints" / "state.json") in warning
    assert str(out / "checkpoints" / "epoch-00002.weights.h5") in warning
    assert (out / "checkpoints" / "state.json.corrupt").is_file()
    weights = out / "checkpoints" / "epoch-00002.weights.h5"
    assert f"Resuming from epoch 2 (checkpoint {weights})\n" in capsys.readouterr().out


def test_a_damaged_state_and_weights_of_one_epoch_are_set_aside_together(
        digits, finished_run, tmp_path, caplog):
    out = _copy(finished_run[0], tmp_path)
    checkpoints = out / "checkpoints"
    _truncate(checkpoints / "epoch-00002.state.json")
    _truncate(checkpoints / "epoch-00002.weights.h5")
    before = _snapshot(out)
    caplog.set_level(logging.INFO, logger="nasnet_tf.training")
    counter = CountSteps()
    train(None, digits, _config(epochs=2), out, callbacks=[counter])
    assert counter.steps == 2
    kept, now = _unchanged_except(before, _snapshot(out), {
        str(k) for k in before if not str(k).startswith("checkpoints/epoch-00001")})
    assert kept and now == kept  # the checkpoint fallen back to
    (warning,) = _warnings(caplog)
    assert "epoch-00002.state.json" in warning and "epoch-00002.weights.h5" in warning
    assert str(checkpoints / "epoch-00001.weights.h5") in warning
    aside = sorted(p.name for p in checkpoints.glob("*.corrupt*"))
    assert aside == ["epoch-00002.state.json.corrupt", "epoch-00002.state.json.corrupt.sha256",
                     "epoch-00002.weights.h5.corrupt", "epoch-00002.weights.h5.corrupt.sha256"]


@pytest.mark.parametrize("damage", ["truncate", "empty"])
def test_a_damaged_state_file_that_cannot_be_rebuilt_is_a_one_line_error(
        digits, finished_run, tmp_path, damage):
    # A run written before per-epoch states: `state.json` is the only state.
    out = _copy(finished_run[0], tmp_path)
    for path in (out / "checkpoints").glob("epoch-*.state.json*"):
        path.unlink()
    state = out / "checkpoints" / "state.json"
    _truncate(state, 0.5 if damage == "truncate" else 0)
    before = _snapshot(out)
    with pytest.raises(CheckpointError) as error:
        train(None, digits, _config(epochs=2), out)
    message = str(error.value)
    assert "\n" not in message and str(state) in message
    assert ("is empty" if damage == "empty" else "does not match its checksum") in message
    assert _snapshot(out) == before
    # without a sidecar, the JSON check names the file (no bare decoder message)
    (out / "checkpoints" / "state.json.sha256").unlink()
    if damage == "truncate":
        with pytest.raises(CorruptFileError, match=r"state\.json' is not valid JSON"):
            latest_checkpoint(out)


def test_weights_without_a_state_are_an_unfinished_epoch_not_damage(
        digits, finished_run, tmp_path, caplog):
    # A kill between writing epoch 3's weights and its state leaves them without a state.
    run, history = finished_run
    out = _copy(run, tmp_path)
    orphan = out / "checkpoints" / "epoch-00003.weights.h5"
    shutil.copy(out / "checkpoints" / "epoch-00002.weights.h5", orphan)
    _truncate(orphan)
    before = _snapshot(out)
    caplog.set_level(logging.INFO, logger="nasnet_tf.training")
    resumed = train(None, digits, _config(epochs=2), out)
    assert resumed.history == history
    assert not _warnings(caplog)
    assert {k: v for k, v in _snapshot(out).items() if "checkpoints" in str(k)} == {
        k: v for k, v in before.items() if "checkpoints" in str(k)}


