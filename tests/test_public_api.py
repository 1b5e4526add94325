"""The library code uses Keras' and KerasTuner's public API, and KerasTuner's private members
only as listed (with why) in `tuners/kt_private.py`.

Private names break without notice between releases. This parses `nasnet_tf/` and `tuners/`
(not the tests) with `ast` and finds:

- every private KerasTuner member the library touches: in a class derived from a KerasTuner
  class (directly, through a library class, or as a mixin combined with one), `self._x`,
  `cls._x`, `super()._x` and `def _x` where `_x` is a private member of those KerasTuner classes
  (their class attributes and the `self._x` their source sets or reads); anywhere, `obj._x` on
  another object where `_x` is a private member of any public KerasTuner class; and private
  names reached through the `keras_tuner` modules;
- imports of `keras.src` / `keras_tuner.src` (Keras' and KerasTuner's implementation packages),
  Keras' private `_flatten_layers`, and `.synchronized =` (a `BatchNormalization`'s
  `synchronized` is a constructor argument).

Each private KerasTuner member found must be listed in `tuners.kt_private.PRIVATE_MEMBERS`, on a
KerasTuner class the using class derives from; each listed member must still exist on the
installed KerasTuner (on a live oracle and tuner), each listed override must still be called
by the KerasTuner methods it names, and each listed member must still be used.
"""

import ast
import functools
import importlib
import inspect
import pathlib
import textwrap

import keras_tuner
import pytest

from tuners import kt_private

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("nasnet_tf", "tuners")
FORBIDDEN_MODULES = ("keras.src", "keras_tuner.src")
KERAS_PRIVATE = {
    "_flatten_layers": "private Keras API; walk `model.layers` (as `drop_path_cells` does)",
}


def _is_private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _under(name, packages):
    return any(name == p or name.startswith(p + ".") for p in packages)


@functools.cache
def _public_kt_classes():
    """The classes reachable from KerasTuner's public modules, with their bases."""
    modules = [keras_tuner, keras_tuner.oracles, keras_tuner.tuners, keras_tuner.errors]
    modules += [getattr(keras_tuner.engine, name) for name in dir(keras_tuner.engine)
                if inspect.ismodule(getattr(keras_tuner.engine, name))]
    classes = set()
    for module in modules:
        for name in dir(module):
            value = getattr(module, name)
            if inspect.isclass(value):
                classes.update(c for c in value.__mro__ if c.__module__.startswith("keras_tuner"))
    return frozenset(classes)


@functools.cache
def _private_members(cls):
    """The private names a KerasTuner class and its KerasTuner bases define or set on `self`."""
    names = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("keras_tuner"):
            continue
        names.update(name for name in vars(klass) if _is_private(name))
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "self" and _is_private(node.attr)):
                names.add(node.attr)
    return frozenset(names)


@functools.cache
def _all_kt_private():
    return frozenset().union(*(_private_members(c) for c in _public_kt_classes()))


def _dotted(node):
    """`a.b.c` for a Name/Attribute chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _imports(tree):
    """Local name -> full dotted name, for the module's imports."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    first = alias.name.split(".")[0]
                    names[first] = first
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _resolve(dotted, imports):
    head, _, rest = dotted.partition(".")
    if head in imports:
        return imports[head] + ("." + rest if rest else "")
    return dotted


def _kt_object(full_name):
    """The KerasTuner object a full dotted name refers to, or None."""
    parts = full_name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            value = getattr(value, part, None)
        return value
    return None


def _kt_bases_by_class(trees):
    """{(path, class name): set of KerasTuner classes its instances derive from}."""
    classes = {}  # simple name -> [(path, ClassDef, imports)]
    for path, tree in trees.items():
        imports = _imports(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, []).append((path, node, imports))
    direct, library_bases = {}, {}
    for name, defs in classes.items():
        for path, node, imports in defs:
            key = (path, name)
            direct[key], library_bases[key] = set(), set()
            for base in node.bases:
                dotted = _dotted(base)
                if dotted is None:
                    continue
                full = _resolve(dotted, imports)
                if _under(full, ("keras_tuner",)):
                    value = _kt_object(full)
                    if inspect.isclass(value):
                        direct[key].add(value)
                elif dotted.split(".")[-1] in classes:
                    library_bases[key].update(
                        (p, dotted.split(".")[-1]) for p, _, _ in classes[dotted.split(".")[-1]])
    kt = {key: set(value) for key, value in direct.items()}
    changed = True
    while changed:  # Through library bases, and from a class to the mixins combined with it.
        changed = False
        for key, bases in library_bases.items():
            for base in bases:
                for source, target in ((base, key), (key, base)):
                    before = len(kt[target])
                    kt[target] |= kt[source]
                    changed |= len(kt[target]) != before
    return kt


def _is_self(node):
    return (isinstance(node, ast.Name) and node.id in ("self", "cls")) or (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        and node.func.id == "super")


def find_private_api(paths):
    """`(where, name, kt_classes, message)` for each use in `paths`: `kt_classes` is the set
    of KerasTuner classes of the class it is used in (self-uses and overrides), else None;
    `message` is None for a private KerasTuner member, else why the use is forbidden outright."""
    trees = {path: ast.parse(path.read_text(encoding="utf-8"), str(path)) for path in paths}
    kt_bases = _kt_bases_by_class(trees)
    found = []

    def where(path, node):
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        return f"{shown}:{node.lineno}"

    for path, tree in trees.items():
        imports = _imports(tree)
        seen = set()
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            bases = kt_bases.get((path, cls.name)) or set()
            if not bases:
                continue
            private = frozenset().union(*(_private_members(b) for b in bases))
            for node in ast.walk(cls):
                name = None
                if isinstance(node, ast.Attribute) and _is_self(node.value):
                    name = node.attr
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node in cls.body:
                    name = node.name
                if name in private:
                    seen.add(id(node))
                    found.append((where(path, node), name, frozenset(bases), None))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif (isinstance(node, ast.Call) and node.args
                  and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                  and (_dotted(node.func) or "").split(".")[-1] in ("import_module", "__import__")):
                modules = [node.args[0].value]
            elif isinstance(node, ast.Attribute):
                dotted = _dotted(node)
                modules = [_resolve(dotted, imports)] if dotted else []
            else:
                modules = []
            for module in modules:
                if _under(module, FORBIDDEN_MODULES):
                    found.append((where(path, node), module, None,
                                  "an implementation package; use the public API"))
                elif _under(module, ("keras_tuner",)) and any(
                        _is_private(part) for part in module.split(".")):
                    found.append((where(path, node), module, None,
                                  "a private KerasTuner name outside any class"))
            if isinstance(node, ast.Attribute):
                if node.attr in KERAS_PRIVATE:
                    found.append((where(path, node), node.attr, None, KERAS_PRIVATE[node.attr]))
                elif (id(node) not in seen and not _is_self(node.value)
                      and node.attr in _all_kt_private()):
                    found.append((where(path, node), node.attr, None, None))
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign))
                       else [])
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "synchronized":
                    found.append((where(path, node), ".synchronized =", None,
                                  "pass `synchronized=` to `BatchNormalization(...)` instead"))
    return found


def unlisted(found, members=kt_private.PRIVATE_MEMBERS):
    """The uses in `found` that are forbidden, or private KerasTuner members not listed (on a
    class the using class derives from), as `where: name (why)` lines."""
    owners = {}
    for member in members:
        owners.setdefault(member.name, []).append(getattr(keras_tuner, member.owner))
    lines = []
    for place, name, bases, message in found:
        if message is not None:
            lines.append(f"{place}: {name} ({message})")
        elif name not in owners:
            lines.append(f"{place}: {name} (private KerasTuner member not listed in "
                         "tuners/kt_private.py: list it with why, or use the public API)")
        elif bases is not None and not any(
                issubclass(base, owner) for base in bases for owner in owners[name]):
            lines.append(f"{place}: {name} (listed for {owners[name]}, used in a class "
                         f"derived from {sorted(b.__name__ for b in bases)})")
    return lines


def _sources():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


@functools.cache
def _library_uses():
    sources = list(_sources())
    assert len(sources) > 20  # the packages were found
    return find_private_api(sources)


SAMPLE = '''
import importlib
import keras
import keras_tuner
import keras.src.layers
from keras_tuner.src.engine import oracle as oracle_module
from keras_tuner.engine import trial as trial_module


class Mixin:
    def helper(self):
        return self._tried_so_far, self._own_state


class MyOracle(Mixin, keras_tuner.Oracle):
    def _save_trial(self, trial):
        self._get_trial_dir(trial.trial_id)
        super()._save_trial(trial)

    def _own_helper(self):
        return self._retry_queue


class MyTuner(keras_tuner.Tuner):
    def _run_and_update_trial(self, trial):
        return self.oracle._display


class Plain:
    def __init__(self):
        self._retry_queue = []  # Its own attribute: not KerasTuner's.


def elsewhere(tuner, model, layer):
    importlib.import_module("keras_tuner.src.utils")
    model._flatten_layers()
    layer.synchronized = True
    keras.src.ops.add(1, 2)
    return tuner._is_worker(), trial_module.Trial, keras_tuner.engine.oracle._something
'''


def test_the_check_finds_each_private_use(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(SAMPLE)
    found = find_private_api([sample])
    names = sorted((int(place.rsplit(":", 1)[1]), name) for place, name, _, _ in found)
    line = {text.strip(): n for n, text in enumerate(SAMPLE.splitlines(), 1)}
    from_src = line["from keras_tuner.src.engine import oracle as oracle_module"]
    last = next(n for text, n in line.items() if text.startswith("return tuner._is_worker()"))
    assert names == sorted([
        (line["import keras.src.layers"], "keras.src.layers"),
        (from_src, "keras_tuner.src.engine"),
        (from_src, "keras_tuner.src.engine.oracle"),
        (line["return self._tried_so_far, self._own_state"], "_tried_so_far"),  # mixin
        (line["def _save_trial(self, trial):"], "_save_trial"),  # override
        (line["self._get_trial_dir(trial.trial_id)"], "_get_trial_dir"),
        (line["super()._save_trial(trial)"], "_save_trial"),
        (line["return self._retry_queue"], "_retry_queue"),
        (line["def _run_and_update_trial(self, trial):"], "_run_and_update_trial"),
        (line["return self.oracle._display"], "_display"),  # on another object
        (line['importlib.import_module("keras_tuner.src.utils")'], "keras_tuner.src.utils"),
        (line["model._flatten_layers()"], "_flatten_layers"),
        (line["layer.synchronized = True"], ".synchronized ="),
        (line["keras.src.ops.add(1, 2)"], "keras.src"),
        (line["keras.src.ops.add(1, 2)"], "keras.src.ops"),
        (line["keras.src.ops.add(1, 2)"], "keras.src.ops.add"),
        (last, "_is_worker"),
        (last, "keras_tuner.engine.oracle._something"),
    ])
    # The listed members pass; the rest do not.
    left = {line.split(": ")[1].split(" ")[0] for line in unlisted(found)}
    assert left == {"keras.src.layers", "keras_tuner.src.engine", "keras_tuner.src.engine.oracle",
                    "_tried_so_far", "_run_and_update_trial", "_display", "keras_tuner.src.utils",
                    "_flatten_layers", ".synchronized", "keras.src", "keras.src.ops",
                    "keras.src.ops.add", "keras_tuner.engine.oracle._something"}
    # A listed Oracle member used in a Tuner subclass is not covered by its entry.
    wrong_owner = [m._replace(owner="Tuner") if m.name == "_retry_queue" else m
                   for m in kt_private.PRIVATE_MEMBERS]
    assert any("_retry_queue (listed for" in text for text in unlisted(found, wrong_owner))


def test_library_uses_public_api_and_listed_private_members_only():
    lines = unlisted(_library_uses())
    assert not lines, "Private API in library code:\n" + "\n".join(lines)


def test_each_listed_private_member_is_still_used():
    used = {name for _, name, _, message in _library_uses() if message is None}
    stale = [m.name for m in kt_private.PRIVATE_MEMBERS if m.name not in used]
    assert not stale, f"Listed in tuners/kt_private.py but no longer used: {stale}"


@pytest.fixture(scope="module")
def live_kt(tmp_path_factory):
    """A real KerasTuner oracle and tuner (nothing is built or run)."""
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="loss", max_trials=1)
    tuner = keras_tuner.Tuner(oracle=oracle, hypermodel=lambda hp: None,
                              directory=str(tmp_path_factory.mktemp("kt")), project_name="p")
    return {"Oracle": oracle, "Tuner": tuner}


@pytest.mark.parametrize("member", kt_private.PRIVATE_MEMBERS, ids=kt_private.NAMES)
def test_each_listed_private_member_exists_in_the_installed_keras_tuner(member, live_kt):
    assert member.kind in ("read", "override")
    assert member.why and kt_private.VERSION_CHECKED
    owner = getattr(keras_tuner, member.owner)
    assert isinstance(live_kt[member.owner], owner)
    assert hasattr(live_kt[member.owner], member.name), (
        f"keras_tuner.{member.owner}.{member.name} is gone (keras-tuner "
        f"{keras_tuner.__version__}; tuners/kt_private.py was checked against "
        f"{kt_private.VERSION_CHECKED})")
    if member.kind == "override":
        assert callable(getattr(owner, member.name, None))
        assert member.called_by
    for caller in member.called_by:
        class_name, method_name = caller.split(".")
        klass = next(c for c in owner.__mro__ if c.__name__ == class_name)
        # From the class's source: KerasTuner's `synchronized` wraps methods without
        # `functools.wraps`.
        (method,) = [n for n in ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body
                     if isinstance(n, ast.FunctionDef) and n.name == method_name]
        calls = [n for n in ast.walk(method) if isinstance(n, ast.Attribute)
                 and n.attr == member.name and _is_self(n.value)]
        assert calls, f"KerasTuner's {caller} no longer calls {member.name}: the override is dead"
