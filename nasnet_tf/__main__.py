"""`python -m nasnet_tf ...` runs the `nasnet-tf` command."""

import sys

from nasnet_tf.cli import main

if __name__ == "__main__":
    sys.exit(main())
