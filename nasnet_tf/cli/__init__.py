"""The `nasnet-tf` command line (`nasnet_tf.cli:main`), one module per command.

Importing it imports neither TensorFlow, JAX nor Keras.
"""

from nasnet_tf.cli.main import build_parser, main
from nasnet_tf.cli.utils import CLIError, bn_momentum

__all__ = ["CLIError", "bn_momentum", "build_parser", "main"]
