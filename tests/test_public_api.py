"""The library code uses Keras' and KerasTuner's public API only.

Private names break without notice between releases (`keras.src` is Keras' implementation
package; `Model._flatten_layers`, KerasTuner's `Oracle._get_n_values` and friends are private),
and a `BatchNormalization`'s `synchronized` is a constructor argument, not an attribute to set
after construction. This greps `nasnet_tf/` and `tuners/` (not the tests) for them.
"""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("nasnet_tf", "tuners")

FORBIDDEN = {
    "keras.src": "Keras' private implementation package; use the public `keras.*` API",
    "_flatten_layers": "private Keras API; walk `model.layers` (as `drop_path_cells` does)",
    "._get_n_values": "private KerasTuner API",
    "._duplicate(": "private KerasTuner API",
    "._id_to_hash": "private KerasTuner API",
    "._max_collisions": "private KerasTuner API",
    ".synchronized =": "pass `synchronized=` to `BatchNormalization(...)` instead",
}
_PATTERN = re.compile("|".join(re.escape(text) for text in FORBIDDEN))


def _sources():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def find_private_api(paths):
    """`file:line: text (why)` for each forbidden name in `paths`."""
    found = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in _PATTERN.finditer(line):
                where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                found.append(f"{where}:{number}: {match.group()} ({FORBIDDEN[match.group()]})")
    return found


def test_the_check_finds_each_forbidden_name(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("\n".join(f"x = y{name}z" for name in FORBIDDEN) + "\nok = 1\n")
    found = find_private_api([sample])
    assert [line.split(":")[1] for line in found] == [str(i) for i in range(1, len(FORBIDDEN) + 1)]


def test_library_code_uses_public_api_only():
    sources = list(_sources())
    assert len(sources) > 20  # the packages were found
    found = find_private_api(sources)
    assert not found, "Private API in library code:\n" + "\n".join(found)
