"""`nasnet-tf report`: one self-contained HTML page about a search (`tuners.search_report`).

The run directory is checked before anything heavy is imported: `--help`, argument errors and
a missing run directory import neither TensorFlow, JAX nor Keras.
"""

import os

from nasnet_tf.cli import args as cli_args
from nasnet_tf.cli import utils

REPORT_FILE = "report.html"  # tuners.search_report.REPORT_FILE


def register(subparsers):
    p = subparsers.add_parser(
        "report", help="write an HTML report of a search (trials, curves, best cells)",
        description="Write one self-contained HTML page about a search, finished or still "
        "running: the trial table, score / reward / entropy curves, the best cells drawn, the "
        "controller's statistics and op preferences over time. No network, no external files.")
    p.add_argument("run_dir", metavar="RUN_DIR",
                   help="a search's --output-dir (or a KerasTuner project folder)")
    p.add_argument("-o", "--output", metavar="OUT.html",
                   help=f"where to write the page (default: RUN_DIR/{REPORT_FILE})")
    p.add_argument("--top-k", type=cli_args.positive_int, default=3,
                   help="best cells to draw (default: %(default)s)")
    p.set_defaults(func=run, needs_backend=False)


def run(args):
    run_dir = os.path.abspath(args.run_dir)
    if not os.path.isdir(run_dir):
        raise utils.CLIError(f"run directory not found: {args.run_dir!r} (give a search's "
                             "--output-dir)")
    output = os.path.abspath(args.output) if args.output else os.path.join(run_dir, REPORT_FILE)
    if os.path.isdir(output):
        raise utils.CLIError(f"cannot write the report {args.output!r}: it is a directory")
    utils.check_writable(os.path.dirname(output), "report")
    utils.prepare_backend()  # tuners imports Keras: quietly
    from tuners.search_report import write_report

    path = write_report(run_dir, output, top_k=args.top_k)
    print(path)
    return 0
