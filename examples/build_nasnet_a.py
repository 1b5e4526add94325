"""Build NASNet-A Mobile (4@1056, 224x224) and Large (6@4032, 331x331) and check their size
against the paper and `keras.applications`.

    python examples/build_nasnet_a.py               # both (Large takes ~20 s to build)
    python examples/build_nasnet_a.py --preset mobile
    python examples/build_nasnet_a.py --weights NASNet-mobile.h5   # Keras' file, read offline
"""

import argparse

from nasnet_tf import NASNET_A, build_nasnet

# keras.applications' counts (no auxiliary head, 1000-class top); the paper: 5.3M and 88.9M.
KERAS_PARAMS = {"mobile": 5_326_716, "large": 88_949_818}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=["mobile", "large"], nargs="+",
                        default=["mobile", "large"])
    parser.add_argument("--weights", help="a local Keras applications .h5 file to load "
                        "(only with a single --preset)")
    args = parser.parse_args()
    print(f"NASNet-A genotype: {NASNET_A}")
    for preset in args.preset:
        # The served / ImageNet-evaluation form: no auxiliary head (it only helps training).
        model = build_nasnet(NASNET_A, preset=preset, auxiliary_head=False,
                             weights=args.weights if len(args.preset) == 1 else None)
        params = model.count_params()
        print(f"NASNet-A {preset}: {model.num_cells}@{model.penultimate_filters}, input "
              f"{model.image_shape}, {params:,} parameters "
              f"(keras.applications: {KERAS_PARAMS[preset]:,}; "
              f"{'equal' if params == KERAS_PARAMS[preset] else 'DIFFERENT'})")
        with_aux = build_nasnet(NASNET_A, preset=preset)  # the training form
        print(f"  with the auxiliary head for training: {with_aux.count_params():,} parameters")


if __name__ == "__main__":
    main()
