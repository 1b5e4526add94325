"""One self-contained HTML page about a search: trials, curves, best cells, controller.

`write_report(run_dir)` reads a search's files as they are on disk (finished, resumed, still
running, or damaged: what cannot be read is named in a notice on the page) and writes
`<run_dir>/report.html`: no network, no external script or style; pictures are PNG data URIs
drawn with matplotlib's Agg backend. The same files always give the same bytes.

Where it looks:

- the KerasTuner project: `run_dir` itself when it holds `oracle.json` or `trial_*` folders,
  else `run_dir/tuner` (the layout of `nasnet-tf search --output-dir run_dir`), else the one
  sub-folder that is a project;
- the CLI's `search.json` (settings) and `trials.json` (per-trial rows: parameters, entropy,
  and the trial's wall time when a row has `seconds`, its end as Unix time when it has
  `end_time`) in `run_dir`, or beside the project;
- a random-search baseline: `run_dir/baseline`, itself a run folder or KerasTuner project
  (e.g. the same search made with `keras_tuner.oracles.RandomSearchOracle`,
  `directory=run_dir, project_name="baseline"`); its best-so-far score is drawn beside the
  search's.

Trials' wall times are those of `trials.json`; without them the curves against time use the
trial start times KerasTuner keeps in `oracle.json` (searches run with `verbose >= 1`), and the
estimation cost column shows the epochs KerasTuner recorded for the trial ("-" if none).
"""

import base64
import dataclasses
import datetime
import html
import io
import json
import math
import os
import re
import tempfile

from nasnet_tf.io_utils import atomic_write
from tuners import tensorboard_log as tb
from tuners.nasnet_space import parse_hp_name

__all__ = ["BASELINE_DIR", "REPORT_FILE", "find_project", "natural_key", "render_report",
           "write_report"]

REPORT_FILE = "report.html"
BASELINE_DIR = "baseline"
_CLI_PROJECT = "tuner"
_NOT_PROJECTS = (BASELINE_DIR, "tensorboard", "cells")
_ENDED = ("COMPLETED", "FAILED", "INVALID")
_TRIAL_DIR = re.compile(r"^trial_(.+)$")
_CSS = """
body{font-family:sans-serif;margin:2em;max-width:70em;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:90%}
td,th{border:1px solid #bbb;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#eee}.num{text-align:right;font-family:monospace}.geno{font-family:monospace}
.notice{background:#fde2e1;border:1px solid #d33;padding:.5em 1em;margin:.5em 0}
.note{color:#555;font-style:italic}img{max-width:100%}figure{display:inline-block;margin:.5em}
"""


# ------------------------------------------------------------------------------ reading
@dataclasses.dataclass
class _Trial:
    trial_id: str
    status: str
    score: object = None
    values: dict = dataclasses.field(default_factory=dict)
    metrics: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class _Run:
    run_dir: str
    project_dir: str
    state: object = None  # the parsed oracle.json, None when missing or unreadable
    trials: list = dataclasses.field(default_factory=list)
    notices: list = dataclasses.field(default_factory=list)
    settings: object = None
    rows: dict = dataclasses.field(default_factory=dict)


def _is_project(path):
    if not os.path.isdir(path):
        return False
    return os.path.isfile(os.path.join(path, "oracle.json")) or any(
        _TRIAL_DIR.match(n) and os.path.isdir(os.path.join(path, n)) for n in os.listdir(path)
    )


def find_project(run_dir):
    """The KerasTuner project folder of a run folder (see the module docstring).

    Args:
        run_dir: a run folder (`nasnet-tf search --output-dir`) or a project folder.

    Returns:
        The project folder's path.

    Raises:
        ValueError: when no project is found there.

    Example:

    >>> import os, tempfile
    >>> run = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(run, "tuner", "trial_0"))
    >>> find_project(run) == os.path.join(run, "tuner")
    True
    """
    run_dir = os.fspath(run_dir)
    if _is_project(run_dir):
        return run_dir
    if _is_project(os.path.join(run_dir, _CLI_PROJECT)):
        return os.path.join(run_dir, _CLI_PROJECT)
    found = []
    if os.path.isdir(run_dir):
        found = [
            os.path.join(run_dir, n)
            for n in sorted(os.listdir(run_dir))
            if n not in _NOT_PROJECTS and _is_project(os.path.join(run_dir, n))
        ]
    if len(found) != 1:
        raise ValueError(
            "`run_dir` must be a KerasTuner project (holding oracle.json or trial_* folders) "
            f"or a folder holding exactly one (e.g. `{_CLI_PROJECT}/`); found "
            f"{len(found)}: {[os.path.basename(f) for f in found]}. Received: run_dir={run_dir!r}"
        )
    return found[0]


def _read_json(path, what, notices):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        notices.append(
            f"{what} ({path}) could not be read: {error}. It is damaged (e.g. cut short by a "
            "crash or a write in progress); this report shows what the other files hold."
        )
        return None


def natural_key(trial_id):
    """A sort key of trial ids, numbers in them compared as numbers: "2" before "10".

    Example:

    >>> sorted(["10", "2", "1b"], key=natural_key)
    ['1b', '2', '10']
    """
    parts = re.split(r"(\d+)", str(trial_id))
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts]


def _load_run(run_dir):
    project = find_project(run_dir)
    run = _Run(run_dir=os.fspath(run_dir), project_dir=project)
    state = _read_json(os.path.join(project, "oracle.json"), "The oracle state", run.notices)
    if state is not None and not isinstance(state, dict):
        run.notices.append("The oracle state (oracle.json) is not a JSON object; ignored.")
        state = None
    if state is None and not run.notices:
        run.notices.append(
            "No oracle.json yet: the search has not saved its state; trials are read from their "
            "own files."
        )
    run.state = state
    trials = {}
    for name in sorted(os.listdir(project)):
        match = _TRIAL_DIR.match(name)
        path = os.path.join(project, name, "trial.json")
        if match is None or not os.path.isfile(path):
            continue  # A trial folder whose trial.json is not written yet.
        data = _read_json(path, f"Trial {match.group(1)}'s file", run.notices)
        if not isinstance(data, dict):
            trials[match.group(1)] = _Trial(match.group(1), "UNREADABLE")
            continue
        trial_id = str(data.get("trial_id", match.group(1)))
        trials[trial_id] = _Trial(
            trial_id,
            str(data.get("status")),
            data.get("score"),
            dict((data.get("hyperparameters") or {}).get("values") or {}),
            dict((data.get("metrics") or {}).get("metrics") or {}),
        )
    order = [str(t) for t in (state or {}).get("start_order") or [] if str(t) in trials]
    order += sorted((t for t in trials if t not in order), key=natural_key)
    run.trials = [trials[t] for t in order]
    base = run.run_dir if run.run_dir != project else os.path.dirname(project)
    for directory in dict.fromkeys([run.run_dir, base]):
        if os.path.isfile(os.path.join(directory, "search.json")):
            run.settings = _read_json(
                os.path.join(directory, "search.json"), "The CLI settings", run.notices
            )
            rows = _read_json(os.path.join(directory, "trials.json"), "The CLI trials", run.notices)
            if isinstance(rows, list):
                run.rows = {str(r.get("trial")): r for r in rows if isinstance(r, dict)}
            break
    running = [t.trial_id for t in run.trials if t.status == "RUNNING"]
    if running:
        run.notices.append(
            f"Trial(s) {', '.join(running)} still running: this report shows the search so far."
        )
    return run


# ------------------------------------------------------------------------------ deriving
def _direction(trials):
    """`"min"` when the scores are those of a minimised metric, else `"max"`."""
    directions = set()
    for t in trials:
        if t.status != "COMPLETED" or not isinstance(t.score, (int, float)):
            continue
        for metric in t.metrics.values():
            values = [v for o in metric.get("observations", []) for v in o.get("value", [])]
            if any(math.isclose(v, t.score, rel_tol=1e-9, abs_tol=1e-12) for v in values):
                directions.add(metric.get("direction"))
    return "min" if directions == {"min"} else "max"


def _objective_name(trials):
    for t in trials:
        for name, metric in sorted(t.metrics.items()):
            values = [v for o in metric.get("observations", []) for v in o.get("value", [])]
            if t.status == "COMPLETED" and isinstance(t.score, (int, float)) and any(
                math.isclose(v, t.score, rel_tol=1e-9, abs_tol=1e-12) for v in values
            ):
                if name.startswith("val_"):
                    return name
    return "score"


def _scored(run):
    return [
        t for t in run.trials
        if t.status == "COMPLETED" and isinstance(t.score, (int, float)) and math.isfinite(t.score)
    ]


def _end_order(run):
    by_id = {t.trial_id: t for t in run.trials}
    order = [str(t) for t in (run.state or {}).get("end_order") or [] if str(t) in by_id]
    order += [t.trial_id for t in run.trials if t.status in _ENDED and t.trial_id not in order]
    return [by_id[t] for t in order]


def _elapsed(run, ended):
    """Seconds from the search's start to each ended trial's end, and how that was known."""
    seconds = {t.trial_id: _number(run.rows.get(t.trial_id, {}).get("seconds")) for t in ended}
    ends = {t.trial_id: _number(run.rows.get(t.trial_id, {}).get("end_time")) for t in ended}
    if ended and all(v is not None for v in ends.values()):
        start = min(ends[t] - (seconds[t] or 0.0) for t in ends)
        return {t: ends[t] - start for t in ends}, "trial end times (trials.json)"
    if ended and all(v is not None for v in seconds.values()):
        total, out = 0.0, {}
        for t in ended:
            total += seconds[t.trial_id]
            out[t.trial_id] = total
        return out, "cumulative trial wall times (trials.json)"
    display = (run.state or {}).get("display") or {}
    starts = display.get("trial_start") or {}
    if ended and all(t.trial_id in starts for t in ended):
        # KerasTuner keeps start times only (searches with verbose >= 1).
        try:
            times = {t.trial_id: datetime.datetime.fromisoformat(starts[t.trial_id])
                     for t in ended}
            first = display.get("search_start")
            first = datetime.datetime.fromisoformat(first) if first else min(times.values())
        except (TypeError, ValueError):
            return None, None
        return ({t: (v - first).total_seconds() for t, v in times.items()},
                "trial start times kept by KerasTuner")
    return None, None


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _genotype(values):
    from tuners.nasnet_space import decode

    try:
        return decode(values)
    except (ValueError, KeyError, TypeError):
        return None


def _readable(run, trial):
    genotype = _genotype(trial.values)
    if genotype is not None:
        return str(genotype)
    if run.rows.get(trial.trial_id, {}).get("genotype"):
        return str(run.rows[trial.trial_id]["genotype"])
    if not trial.values:
        return "-"
    return ", ".join(f"{k}={v}" for k, v in trial.values.items())


def _cost(run, trial):
    seconds = _number(run.rows.get(trial.trial_id, {}).get("seconds"))
    if seconds is not None:
        return f"{seconds:.1f} s"
    steps = {o.get("step") for m in trial.metrics.values() for o in m.get("observations", [])}
    steps.discard(None)
    if steps:
        return f"{len(steps)} epoch{'s' if len(steps) > 1 else ''}"
    return "-"


def _rewards(run):
    own = (run.state or {}).get(tb.STATE_KEY) or {}
    out = {}
    for entry in own.get("rewards") or []:
        if len(entry) >= 3 and entry[2] == "trial":
            out[str(entry[0])] = _number(entry[1])
    return out


def _update_positions(run, ended, history):
    """The x (trials ended) of each update: the end position of its batch's last trial."""
    position = {t.trial_id: i + 1 for i, t in enumerate(ended)}
    batches = tb.update_batches(run.state) if run.state else {}
    out, count = {}, 0
    for stats in history:
        update = int(stats["update"])
        count += int(stats.get("batch_size") or 0)
        places = [position[t] for t in batches.get(update, []) if t in position]
        out[update] = max(places) if places else (count or update)
    return out


def _trial_distributions(run, window):
    """Op frequencies among windows of trials in start order, for runs without controller."""
    groups = []
    sampled = [t for t in run.trials if _genotype(t.values) is not None]
    for start in range(0, len(sampled), window):
        chunk = sampled[start : start + window]
        dists = {}
        for t in chunk:
            for name, value in t.values.items():
                dist = dists.setdefault(name, {})
                dist[value] = dist.get(value, 0.0) + 1.0 / len(chunk)
        groups.append((f"{start + 1}-{start + len(chunk)}", dists))
    return groups


# ------------------------------------------------------------------------------ drawing
def _png(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _best_so_far(scores, direction):
    out, best = [], None
    for s in scores:
        best = s if best is None else (max(best, s) if direction == "max" else min(best, s))
        out.append(best)
    return out


def _curves(run, baseline, x_of, updates_x, xlabel, baseline_x=None):
    """Score and controller reward (top), entropy (bottom) against `x_of[trial_id]`."""
    direction = _direction(run.trials)
    fig = _figure(8, 6)
    top, bottom = fig.subplots(2, 1, sharex=True)
    scored = {t.trial_id for t in _scored(run)}
    points = [(x_of[t.trial_id], t.score) for t in _end_order(run)
              if t.trial_id in scored and t.trial_id in x_of]
    if points:
        xs, ys = zip(*points)
        top.plot(xs, ys, "o", color="C0", alpha=0.5, label="trial score")
        top.step(xs, _best_so_far(ys, direction), where="post", color="C0", label="best so far")
    if baseline is not None and baseline_x is not None:
        base_scored = {t.trial_id for t in _scored(baseline)}
        base = [(baseline_x[t.trial_id], t.score) for t in _end_order(baseline)
                if t.trial_id in base_scored and t.trial_id in baseline_x]
        if base:
            xs, ys = zip(*base)
            top.step(xs, _best_so_far(ys, _direction(baseline.trials)), where="post",
                     color="C3", linestyle="--", label="random search: best so far")
    history = tb.controller_history(run.state) if run.state else []
    rows = [(updates_x[int(h["update"])], h) for h in history if int(h["update"]) in updates_x]
    if rows:
        xs = [x for x, _ in rows]
        for key, style, label in (("reward_mean", "s-", "controller batch: mean reward"),
                                  ("reward_max", "^:", "controller batch: best reward"),
                                  ("baseline", "x-", "controller baseline")):
            top.plot(xs, [h.get(key, math.nan) for _, h in rows], style, label=label, alpha=0.8)
        bottom.plot(xs, [h.get("entropy", math.nan) for _, h in rows], "s-", color="C2",
                    label="controller entropy (batch mean)")
    entropies = [(x_of[t], _number(r.get("entropy"))) for t, r in run.rows.items() if t in x_of]
    entropies = sorted((x, e) for x, e in entropies if e is not None)
    if entropies:
        bottom.plot(*zip(*entropies), "o", color="C2", alpha=0.4, label="entropy of the trial")
    if xlabel == "trials ended":
        from matplotlib.ticker import MaxNLocator

        bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    top.set_ylabel(_objective_name(run.trials))
    bottom.set_ylabel("entropy (nats)")
    bottom.set_xlabel(xlabel)
    for ax in (top, bottom):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
    return _png(fig)


def _heatmap(columns, title):
    """`columns`: `[(label, {cell: {op: share}})]`; one panel per cell type."""
    from nasnet_tf import OP_NAMES

    cells = [c for c in ("normal", "reduction") if any(c in prefs for _, prefs in columns)]
    fig = _figure(max(5.0, 2.5 + 0.35 * len(columns)), 1.2 + 2.9 * len(cells))
    axes = fig.subplots(len(cells), 1, squeeze=False)[:, 0]
    for ax, cell in zip(axes, cells):
        seen = {op for _, prefs in columns for op in prefs.get(cell, {})}
        ops = [op for op in OP_NAMES if op in seen] + sorted(seen - set(OP_NAMES))
        grid = [[prefs.get(cell, {}).get(op, math.nan) for _, prefs in columns] for op in ops]
        image = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0.0, interpolation="nearest")
        ax.set_yticks(range(len(ops)), ops, fontsize=7)
        step = max(1, len(columns) // 15)
        ticks = list(range(0, len(columns), step))
        ax.set_xticks(ticks, [columns[i][0] for i in ticks], fontsize=7)
        ax.set_title(f"{cell} cell", fontsize=9)
        fig.colorbar(image, ax=ax, label="share of op decisions")
    axes[-1].set_xlabel(title)
    return _png(fig)


def _op_shares(dists):
    """`{cell: {op: share}}`: each op's probability summed over the cell's op decisions,
    divided by their number (so each column sums to 1)."""
    counts = {}
    for name in dists:
        parsed = parse_hp_name(name)
        if parsed and parsed[2] in ("op_a", "op_b"):
            counts[parsed[0]] = counts.get(parsed[0], 0) + 1
    prefs = tb.cell_preferences(dists)
    return {
        cell: {op: p / counts[cell] for op, p in kinds.get("op", {}).items()}
        for cell, kinds in prefs.items() if counts.get(cell)
    }


def _cell_images(genotype, caption):
    from nasnet_tf.diagram import draw_cell

    images = []
    with tempfile.TemporaryDirectory(prefix=".report-") as tmp:
        for kind in ("normal", "reduction"):
            title = f"{caption}: {kind} cell"
            path = draw_cell(getattr(genotype, kind), os.path.join(tmp, kind), formats=("png",),
                             title=title, engine="matplotlib")[-1]
            with open(path, "rb") as f:
                images.append((title, base64.b64encode(f.read()).decode("ascii")))
    return images


# ------------------------------------------------------------------------------ HTML
def _e(value):
    return html.escape(str(value), quote=True)


def _img(data, alt):
    return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{data}"></figure>'


def _fmt(value, spec=".4f"):
    value = _number(value)
    return "-" if value is None else format(value, spec)


def _table(header, rows, table_id=None):
    attr = f' id="{table_id}"' if table_id else ""
    out = [f"<table{attr}><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header)
           + "</tr></thead><tbody>"]
    for row in rows:
        cells = []
        for cell in row:
            cls, text = cell if isinstance(cell, tuple) else ("", cell)
            cells.append(f'<td class="{cls}">{_e(text)}</td>' if cls else f"<td>{_e(text)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _trial_section(run):
    rewards = _rewards(run)
    show_params = any(r.get("params") is not None for r in run.rows.values())
    header = ["trial", "status", "score", "reward"] + (["params"] if show_params else [])
    header += ["cost", "genotype"]
    rows = []
    for t in run.trials:
        row = [("num", t.trial_id), t.status, ("num", _fmt(t.score)),
               ("num", _fmt(rewards.get(t.trial_id)))]
        if show_params:
            row.append(("num", _fmt(run.rows.get(t.trial_id, {}).get("params"), ",.0f")))
        row += [("num", _cost(run, t)), ("geno", _readable(run, t))]
        rows.append(row)
    return "<h2>Trials</h2>\n" + _table(header, rows, "trials")


def _curve_section(run, baseline):
    ended = _end_order(run)
    parts = ["<h2>Curves</h2>"]
    if not ended:
        return parts[0] + '\n<p class="note">No trial has ended yet: nothing to plot.</p>'
    history = tb.controller_history(run.state) if run.state else []
    x_trial = {t.trial_id: i + 1 for i, t in enumerate(ended)}
    base_x = None
    if baseline is not None:
        base_x = {t.trial_id: i + 1 for i, t in enumerate(_end_order(baseline))}
    updates = _update_positions(run, ended, history)
    parts.append(_img(_curves(run, baseline, x_trial, updates, "trials ended", base_x),
                      "score, reward and entropy against trials"))
    elapsed, source = _elapsed(run, ended)
    if elapsed is None:
        parts.append('<p class="note">Wall times unknown: no trial of this run recorded its '
                     "wall time (trials.json `seconds` / `end_time`, or KerasTuner's start "
                     "times), so no curve against time.</p>")
    else:
        by_position = {x_trial[t]: s for t, s in elapsed.items()}
        updates_t = {u: by_position.get(x, math.nan) for u, x in updates.items()}
        base_t = None
        if baseline is not None:
            base_elapsed, _ = _elapsed(baseline, _end_order(baseline))
            base_t = base_elapsed
        parts.append(_img(_curves(run, baseline, elapsed, updates_t, f"seconds ({source})",
                                  base_t), "score, reward and entropy against wall time"))
    if baseline is None:
        parts.append(f'<p class="note">No random-search baseline: put a RandomSearch run or '
                     f"project in <code>{_e(os.path.join(run.run_dir, BASELINE_DIR))}</code> "
                     "to draw one.</p>")
    else:
        parts.append(f'<p class="note">Baseline: {len(_scored(baseline))} scored trial(s) of '
                     f"<code>{_e(baseline.project_dir)}</code>.</p>")
    return "\n".join(parts)


def _top_section(run, top_k):
    direction = _direction(run.trials)
    best = sorted(_scored(run), key=lambda t: (-t.score if direction == "max" else t.score,
                                               natural_key(t.trial_id)))[:top_k]
    parts = [f"<h2>Top {top_k} cells</h2>"]
    if not best:
        return parts[0] + '\n<p class="note">No trial has completed yet.</p>'
    for rank, t in enumerate(best, 1):
        genotype = _genotype(t.values)
        parts.append(f"<h3>#{rank}: trial {_e(t.trial_id)}, score {_fmt(t.score)}</h3>")
        parts.append(f'<p class="geno">{_e(_readable(run, t))}</p>')
        if genotype is not None:
            parts += [_img(data, title) for title, data in _cell_images(genotype, f"#{rank}")]
    return "\n".join(parts)


def _controller_section(run):
    parts = ["<h2>Controller</h2>"]
    history = tb.controller_history(run.state) if run.state else []
    if run.state is None:
        return parts[0] + '\n<p class="note">Unavailable: the oracle state could not be read.</p>'
    if tb.STATE_KEY not in run.state:
        return parts[0] + ('\n<p class="note">This run\'s oracle has no controller (e.g. '
                           "KerasTuner's RandomSearch or an evolution oracle): no controller "
                           "statistics.</p>")
    if not history:
        parts.append('<p class="note">No controller update yet.</p>')
    else:
        keys = [("update", "d"), ("batch_size", "d"), ("reward_mean", ".4f"),
                ("reward_max", ".4f"), ("baseline", ".4f"), ("entropy", ".3f"),
                ("approx_kl", ".2e"), ("clip_fraction", ".3f"), ("ppo_steps", "d"),
                ("num_failures", "d")]
        keys = [(k, f) for k, f in keys if any(k in h for h in history)]
        rows = [[("num", _fmt(h.get(k), f if f != "d" else ".0f")) for k, f in keys]
                for h in history]
        parts.append(_table([k for k, _ in keys], rows, "updates"))
    parts.append("<h3>Most probable cell</h3>")
    specs = tb.decision_specs(run.state)
    last = next((h for h in reversed(history) if h.get("decision_probs")), None)
    dists = tb.prob_distributions(specs, last.get("decision_probs")) if last else None
    genotype = None
    if dists is not None:
        values = {}
        for t in run.trials:
            values.update(t.values)  # non-decision entries (Fixed) of the space
        probability = 1.0
        for name, dist in dists.items():
            value, p = max(dist.items(), key=lambda item: item[1])
            values[name] = value
            probability *= p
        genotype = _genotype(values)
    if genotype is None:
        parts.append('<p class="note">Unavailable: this run\'s controller updates record no '
                     "decision_probs (an older oracle), or its decisions are not NASNet's.</p>")
    else:
        parts.append(f'<p>After update {int(last["update"])}, the controller\'s most likely '
                     f"choices (path probability {probability:.3g}):</p>")
        parts.append(f'<p class="geno">{_e(genotype)}</p>')
        parts += [_img(data, title) for title, data in _cell_images(genotype, "most probable")]
    return "\n".join(parts)


def _heatmap_section(run):
    parts = ["<h2>Op preference over time</h2>"]
    dists = tb.update_distributions(run.state) if run.state else {}
    columns = [(str(u), _op_shares(d)) for u, (_, d) in sorted(dists.items())]
    columns = [(label, prefs) for label, prefs in columns if prefs]
    sources = {source for source, _ in dists.values()}
    if columns:
        what = ("the controller's most likely path (decision_probs)" if sources == {"probs"}
                else "frequencies among each update's trials" if sources == {"sampled"}
                else "decision_probs where recorded, else each update's trial frequencies")
        parts.append(f'<p class="note">Per controller update: {what}.</p>')
        parts.append(_img(_heatmap(columns, "controller update"), "op preference heat map"))
        return "\n".join(parts)
    window = max(1, math.ceil(len(run.trials) / 20))
    columns = [(label, _op_shares(d)) for label, d in _trial_distributions(run, window)]
    columns = [(label, prefs) for label, prefs in columns if prefs]
    if not columns:
        return parts[0] + '\n<p class="note">No NASNet cell trials to count ops in.</p>'
    parts.append(f'<p class="note">Frequencies among windows of {window} trial(s), in start '
                 "order (no controller updates to read).</p>")
    parts.append(_img(_heatmap(columns, "trials"), "op preference heat map"))
    return "\n".join(parts)


def _summary_section(run):
    counts = {}
    for t in run.trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    lines = [f"<p>Project: <code>{_e(run.project_dir)}</code></p>",
             "<p>Trials: " + (", ".join(f"{n} {_e(s.lower())}" for s, n in sorted(counts.items()))
                              or "none") + "</p>"]
    if isinstance(run.settings, dict):
        rows = [[k, json.dumps(v)] for k, v in run.settings.items()]
        lines.append(_table(["setting", "value"], rows, "settings"))
    return "\n".join(lines)


def render_report(run_dir, top_k=3):
    """The report's HTML, as a string (see `write_report`)."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"`top_k` must be a positive int. Received: top_k={top_k!r}")
    run = _load_run(run_dir)
    baseline = None
    baseline_dir = os.path.join(run.run_dir, BASELINE_DIR)
    if os.path.isdir(baseline_dir):
        try:
            baseline = _load_run(baseline_dir)
        except ValueError as error:
            run.notices.append(f"The baseline folder holds no readable project: {error}")
    import matplotlib

    # Fixed ids should SVG ever be drawn; PNGs are written without a Software stamp.
    with matplotlib.rc_context({"svg.hashsalt": "nasnet_tf"}):
        sections = [
            _trial_section(run),
            _curve_section(run, baseline),
            _top_section(run, top_k),
            _controller_section(run),
            _heatmap_section(run),
        ]
    notices = "\n".join(f'<div class="notice">{_e(n)}</div>' for n in run.notices)
    title = f"Search report: {os.path.basename(os.path.abspath(run.run_dir))}"
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        notices,
        _summary_section(run),
        *sections,
        "</body></html>",
        "",
    ])


def write_report(run_dir, output_path=None, *, top_k=3):
    """Writes one self-contained HTML report of a search, whole or not at all.

    The page holds the trial table (id, status, score, reward, readable genotype, estimation
    cost), the score / reward / entropy curves against trials and, when times are recorded,
    against wall time (with a random-search baseline when `run_dir/baseline` holds one), the
    `top_k` best cells drawn as in the paper, the controller's statistics and most probable
    cell, and the op-preference heat map over time. A run still running, resumed or partly
    unreadable is reported as far as its files go, with a notice naming what is missing.

    Args:
        run_dir: a run folder (`nasnet-tf search --output-dir`) or a KerasTuner project
            folder; see the module docstring.
        output_path: where to write; defaults to `<run_dir>/report.html`.
        top_k: how many of the best cells to draw.

    Returns:
        The path written.

    Example:

    ```python
    tuner = NASNetTuner(num_blocks=1, num_cells=1, penultimate_filters=24,
                        input_shape=(8, 8, 3), classes=4, max_trials=4,
                        directory="/tmp/run", project_name="tuner", overwrite=True)
    tuner.search(x, y, validation_data=(x, y), epochs=1, verbose=0)
    write_report("/tmp/run")  # '/tmp/run/report.html'
    ```
    """
    text = render_report(run_dir, top_k=top_k)
    path = os.fspath(output_path) if output_path is not None else os.path.join(
        os.fspath(run_dir), REPORT_FILE)
    data = text.encode("utf-8")
    atomic_write(path, lambda f: f.write(data), binary=True, prefix=".report-", suffix=".html")
    return path
