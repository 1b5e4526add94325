"""A weight-sharing (ENAS) search as one process, for the kill-and-resume test.

    python tests/_shared_search.py --directory D --max-trials 3 [--cifar DIR]

Reads a small subset of a CIFAR-10 image folder when `--cifar` is given, else makes random
images. On resume it writes `restored.json` in D: checksums of the shared weights and of the
controller state right after they were reloaded, for the test to compare with what was saved.
"""

import argparse
import hashlib
import json
import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from tuners import NASNetTuner  # noqa: E402
from tuners.weight_sharing import SharedWeights, weights_digest  # noqa: E402

OPS = ("identity", "sep_conv_3x3", "max_pool_3x3")


def checksum(arrays):
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


class RecordingSharedWeights(SharedWeights):
    def _maybe_restore(self, child):
        pending = getattr(self, "_pending_restore", False)
        super()._maybe_restore(child)
        if pending:
            state = child.oracle.controller.get_state() if getattr(
                child.oracle, "controller", None) is not None else None
            record = {
                "weights": weights_digest(self.supernet),
                "controller": None if state is None else checksum(state["weights"]),
                "epochs_done": self.epochs_done,
            }
            with open(os.path.join(self._directory, "..", "restored.json"), "w") as f:
                json.dump(record, f)


def load_data(cifar, size=16):
    if cifar:
        from nasnet_tf.data import load_dataset

        data = load_dataset(cifar, class_names=["airplane", "automobile", "bird", "cat"],
                            image_size=size, batch_size=16, augment="none", seed=0,
                            validation_split=0.25)
        xs, ys = [], []
        for x, y in data.train.take(6):
            xs.append(np.asarray(x)), ys.append(np.asarray(y))
        vx, vy = [], []
        for x, y in data.validation.take(2):
            vx.append(np.asarray(x)), vy.append(np.asarray(y))
        return np.concatenate(xs), np.concatenate(ys), np.concatenate(vx), np.concatenate(vy)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (128, size, size, 3)).astype("float32")
    y = rng.integers(0, 4, 128)
    return x[:96], y[:96], x[96:], y[96:]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--directory", required=True)
    parser.add_argument("--max-trials", type=int, default=3)
    parser.add_argument("--cifar")
    args = parser.parse_args()
    x, y, vx, vy = load_data(args.cifar)
    tuner = NASNetTuner(
        num_blocks=1, ops=OPS, num_cells=1, penultimate_filters=48,
        input_shape=x.shape[1:], classes=4, max_trials=args.max_trials, seed=3,
        oracle_kwargs={"update_every": 2, "units": 16},
        estimator=RecordingSharedWeights(candidates_per_trial=3, seed=1),
        final_selection=None,  # its resumption is test_shared_scoring.py's
        directory=args.directory, project_name="shared",
    )
    tuner.search(x, y, validation_data=(vx, vy), batch_size=16, verbose=0)
    est = tuner.estimator
    with open(os.path.join(args.directory, "finished.json"), "w") as f:
        json.dump({"weights": weights_digest(est.supernet), "num_scored": est.num_scored,
                   "trials": sorted(tuner.oracle.trials)}, f)


if __name__ == "__main__":
    main()
