"""Export a NASNet for serving and serve it: SavedModel (plain TensorFlow, no nasnet_tf needed
to load), TFLite, and the metadata to rebuild it.

    python examples/export_and_serve.py                          # a tiny untrained model
    python examples/export_and_serve.py --model nasnet_runs/train/model.keras

The SavedModel's `serving_default` signature takes `images` (batch, h, w, c) pixel values in
[0, 255] and returns `{"probabilities": ...}`; preprocessing is inside, the auxiliary head is
not. TensorFlow Serving serves the directory as is, e.g.
    docker run -p 8501:8501 -v $PWD/nasnet_runs/examples/served:/models/nasnet/1 \\
        -e MODEL_NAME=nasnet tensorflow/serving
"""

import argparse
import os

import numpy as np

from nasnet_tf import NASNET_A, build_nasnet
from nasnet_tf import serving as ex


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a .keras file (default: a tiny untrained NASNet-A)")
    parser.add_argument("--output-dir", default="nasnet_runs/examples/export")
    args = parser.parse_args()

    if args.model:
        model = ex.load_keras(args.model)
    else:
        model = build_nasnet(NASNET_A, preset="cifar", num_cells=1, penultimate_filters=48,
                             input_shape=(32, 32, 3), classes=10)
    saved = ex.export_saved_model(model, os.path.join(args.output_dir, "served"),
                                  input_dtype="uint8", overwrite=True)
    tflite = ex.export_tflite(saved, os.path.join(args.output_dir, "model.tflite"),
                              overwrite=True)
    print(f"SavedModel: {saved}\nTFLite: {tflite}\nmetadata: {ex.metadata_path(saved)}")

    # Serve: any TensorFlow program can do this, without nasnet_tf.
    import tensorflow as tf

    images = np.random.RandomState(0).randint(0, 256, (4, *model.image_shape), dtype="uint8")
    served = tf.saved_model.load(saved)
    probs = served.signatures["serving_default"](images=tf.constant(images))["probabilities"]
    lite = ex.load_tflite(tflite)(images)
    keras_probs = model.predict(images.astype("float32") / 127.5 - 1.0, verbose=0)
    print("SavedModel classes:", np.argmax(probs, -1).tolist())
    print(f"max |SavedModel - Keras| = {np.abs(probs.numpy() - keras_probs).max():.2e}, "
          f"max |TFLite - Keras| = {np.abs(lite - keras_probs).max():.2e}")
    rebuilt = ex.build_from_metadata(saved)  # same genotype and layout, fresh weights
    print(f"rebuilt from metadata: {rebuilt.count_params():,} parameters "
          f"(original {model.count_params():,}); retrain its genotype with `nasnet-tf train "
          f"{ex.metadata_path(saved)}`")


if __name__ == "__main__":
    main()
