"""The cell benchmark and the shared-weights ranks on one accelerator, in one bounded call.

Starts `--workers` processes of `cell_bench.py --recipe long --shard I/K` (small children leave
an accelerator mostly idle, so several share it) and, beside them, one `estimator_rank.py
--arms shared` run that scores the benchmark's architectures after several epochs of shared
training. Every `--every` seconds the shards' files are merged into
`OUT/cell_bench_long.json` (written whole), and the workers' logs into `OUT/device_bench.log`;
at `--deadline` seconds every process is stopped and the files merged a last time, so a call
cut short still returns every finished run. Each worker's file is resumable, so a second call
with the merged file in `--resume` goes on where the first stopped.

The JAX compilation cache is shared by the workers: the seeds of one architecture compile
once.

    KERAS_BACKEND=jax python benchmarks/device_bench.py --data .device_data/splits.npz \\
        --out-dir $OUT --deadline 540

The call prepared for the next lent GPU (tried on this CPU with `--try-small`): the six
architectures the benchmark still lacks, on two workers, beside two shared-weights runs, one at
the recipe's width and one five times wider (ENAS' 20 filters per branch), each scored at the
ends of the learning rate's cosine periods:

    KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false python benchmarks/device_bench.py \\
        --data .device_data/splits.npz --out-dir $OUT --resume benchmarks/cell_bench_long.json \\
        --workers 2 --shared-epochs 3 10 30 70 150 --shared-filters 96 480 \\
        --shared-modes batch recalibrate --deadline 470
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
for _path in (str(HERE.parent), str(HERE)):  # cell_bench, and the package it imports
    if _path not in sys.path:
        sys.path.insert(0, _path)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="an .npz file of cell_recipe.export_splits")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--workers", type=int, default=6)
    p.add_argument("--archs", type=int, default=30)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--shared-epochs", type=int, nargs="*", default=[5, 10, 20, 40],
                   help="score the shared weights after these epochs (none: no rank run)")
    p.add_argument("--shared-filters", type=int, nargs="+", default=[None], metavar="N",
                   help="one shared-weights rank run per super-network width (penultimate "
                        "filters; default: the recipe's)")
    p.add_argument("--shared-modes", nargs="+", default=None,
                   help="estimator_rank.py's --shared-modes (default: all)")
    p.add_argument("--deadline", type=float, default=540.0, help="seconds until every stop")
    p.add_argument("--every", type=float, default=20.0)
    p.add_argument("--resume", default=None, help="a merged file of an earlier call")
    p.add_argument("--try-small", type=int, default=None, metavar="N",
                   help="a quick try: N images per split, 1 epoch (passed to every process)")
    return p.parse_args(argv)


def merge(shard_files, out, base=None):
    """One benchmark file of the shards' records (and `base`'s), written whole."""
    from cell_bench import write

    merged, seen = None, set()
    for path in ([base] if base else []) + list(shard_files):
        try:
            with open(path) as f:
                bench = json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            continue
        if merged is None:
            merged = dict(bench, records=[])
        merged["seeds"] = sorted(set(merged["seeds"]) | set(bench["seeds"]))
        for record in bench["records"]:
            key = (json.dumps(record["genotype"], sort_keys=True), record["seed"])
            if key not in seen:
                seen.add(key)
                merged["records"].append(record)
    if merged is not None:
        merged["records"].sort(key=lambda r: (r["index"], r["seed"]))
        write(out, merged)
    return merged


def resume_shard(shard, resume):
    """Starts `shard` from the merged file `resume` of an earlier call, joined with the runs
    `shard` already holds: a warm machine keeps an earlier call's shards, whose split of the
    architectures may differ, and no finished run is trained again."""
    merge([shard], shard, base=resume)


def main(argv=None):
    args = parse_args(argv)
    start = time.monotonic()
    out_dir = pathlib.Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / "device_bench"
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("JAX_COMPILATION_CACHE_DIR", str(work / "jax_cache"))
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    small = ["--try-small", str(args.try_small)] if args.try_small else []
    merged_file = out_dir / "cell_bench_long.json"
    shards, procs, logs = [], [], []
    for i in range(args.workers):
        shard = work / f"shard_{i}.json"
        if args.resume:
            resume_shard(shard, args.resume)
        shards.append(shard)
        log = work / f"shard_{i}.log"
        logs.append(log)
        cmd = [sys.executable, str(HERE / "cell_bench.py"), "--recipe", "long", "--archs",
               str(args.archs), "--seeds", *map(str, args.seeds), "--data-dir", args.data,
               "--out", str(shard), "--shard", f"{i}/{args.workers}", *small]
        procs.append(subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                      env=env))
    for filters in args.shared_filters if args.shared_epochs else []:
        name = "rank" if filters is None else f"rank_w{filters}"
        log = work / f"{name}.log"
        logs.append(log)
        cmd = [sys.executable, str(HERE / "estimator_rank.py"), "--arms", "shared",
               "--archs", str(args.archs), "--shared-epochs", *map(str, args.shared_epochs),
               "--data-dir", args.data, "--out",
               str(out_dir / f"estimator_{name}_device.json"),
               "--workdir", str(work / name), "--bench", str(merged_file), *small]
        if filters is not None:
            cmd += ["--shared-filters", str(filters)]
        if args.shared_modes:
            cmd += ["--shared-modes", *args.shared_modes]
        procs.append(subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                      env=env))

    def report(final=False):
        merged = merge(shards, merged_file, base=args.resume)
        lines = [f"== {time.monotonic() - start:.0f} s"
                 + (f" | {json.dumps(merged['summary'])}" if merged else "")]
        for log in logs:
            if log.stem.startswith("rank"):  # the shared training's progress: its trials
                trials = len(list((work / log.stem).glob("*/trial_*")))
                lines.append(f"-- {log.stem}: {trials} trials (epochs of shared training)")
            text = log.read_text() if log.exists() else ""
            keep = text.splitlines()[-(400 if final else 3):]
            lines += [f"-- {log.name}"] + keep
        (out_dir / "device_bench.log").write_text("\n".join(lines) + "\n")
        print(lines[0], flush=True)

    while time.monotonic() - start < args.deadline:
        if all(p.poll() is not None for p in procs):
            break
        time.sleep(min(args.every, max(0.1, args.deadline - (time.monotonic() - start))))
        report()
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    report(final=True)
    print(f"exit codes: {[p.returncode for p in procs]}")


if __name__ == "__main__":
    main()
