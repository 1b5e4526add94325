"""The README's layout table names every module of the package, and nothing else."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
FOLDERS = ("nasnet_tf", "nasnet_tf/cli", "tuners")


def _layout_rows():
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `([\w/]+)/` \| (.*) \|$", line)
        if match:
            rows[match.group(1)] = set(re.findall(r"`(\w+\.py)`", match.group(2)))
    return rows


def test_the_layout_table_names_each_module_once_and_only_modules_that_exist():
    rows = _layout_rows()
    for folder in FOLDERS:
        modules = {p.name for p in (ROOT / folder).glob("*.py")} - {"__init__.py", "__main__.py"}
        named = rows.get(folder)
        assert named is not None, f"README's layout has no row for `{folder}/`"
        assert named - modules == set(), f"`{folder}/`: named but not in the tree"
        assert modules - named == set(), f"`{folder}/`: in the tree but not in the README"
