"""Search YOUR OWN KerasTuner hypermodel with the RNN controller (NASNet's search strategy).

`ControllerOracle` is a drop-in KerasTuner Oracle: each `hp.Choice` / `hp.Boolean` / stepped
`hp.Int` is one decision of an LSTM controller trained by policy gradient (PPO) on the trials'
validation accuracy. Here it tunes a small CNN on scikit-learn's digits (offline, ~1-2 min).

    python examples/keras_tuner_controller_oracle.py --trials 6
"""

import argparse

import keras
import keras_tuner
import numpy as np
from sklearn.datasets import load_digits

from tuners.controller_oracle import ControllerOracle


def build_model(hp):
    """An ordinary KerasTuner hypermodel: nothing NAS-specific in it."""
    inputs = keras.Input((8, 8, 1))
    x = inputs
    for i in range(hp.Int("conv_layers", 1, 3, step=1)):
        x = keras.layers.Conv2D(hp.Choice(f"filters_{i}", [8, 16, 32]),
                                hp.Choice(f"kernel_{i}", [1, 3, 5]), padding="same",
                                activation="relu")(x)
    if hp.Boolean("batch_norm"):
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(hp.Choice("lr", [1e-3, 3e-3, 1e-2])),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--update-every", type=int, default=3,
                        help="rewards per controller update (the paper used 20)")
    parser.add_argument("--directory", default="nasnet_runs/examples/controller_oracle")
    args = parser.parse_args()

    digits = load_digits()
    x = (digits.images[..., None] / 16.0).astype("float32")
    y = digits.target
    order = np.random.RandomState(0).permutation(len(x))
    train, val = order[:1500], order[1500:]

    oracle = ControllerOracle(
        objective="val_accuracy", max_trials=args.trials, seed=0,
        update_every=args.update_every,
    )
    tuner = keras_tuner.Tuner(oracle=oracle, hypermodel=build_model,
                              directory=args.directory, project_name="digits_cnn",
                              overwrite=True)
    tuner.search(x[train], y[train], validation_data=(x[val], y[val]), epochs=args.epochs,
                 verbose=0)
    tuner.results_summary(3)
    for update in oracle.history:
        print("controller update:", {k: round(v, 4) if isinstance(v, float) else v
                                     for k, v in update.items()})
    best_hp = tuner.get_best_hyperparameters(1)[0]
    print("best hyperparameters:", best_hp.values)


if __name__ == "__main__":
    main()
