"""`nasnet-tf report` and `nasnet-tf search --report`: one self-contained HTML page per search,
written whole; one-line errors for what is not a search."""

import pytest

from nasnet_tf.cli import main


@pytest.fixture(scope="module")
def search_dir(tmp_path_factory):
    """A finished tiny search (two one-layer children), run with --report."""
    out = tmp_path_factory.mktemp("search")
    status = main(["search", "--trials", "2", "--space", "layerwise", "--num-layers", "1",
                   "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "32",
                   "--report", "--output-dir", str(out)])
    assert status == 0
    return out


def _run(capsys, *argv):
    try:
        status = main(list(argv))
    except SystemExit as e:  # argparse: --help and usage errors
        status = e.code
    out, err = capsys.readouterr()
    return status, out, err


def _one_line_error(capsys, *argv):
    status, out, err = _run(capsys, *argv)
    assert status == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nasnet-tf report: error: "), err
    return lines[0]


def _check_page(path, search_dir):
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert f"Search report: {search_dir.name}" in text
    assert "<script src" not in text and "http://" not in text  # self-contained
    return text


def test_search_report_writes_the_page(search_dir):
    _check_page(search_dir / "report.html", search_dir)


def test_report_command_writes_the_page(capsys, search_dir, tmp_path):
    target = tmp_path / "pages" / "out.html"
    status, out, err = _run(capsys, "report", str(search_dir), "-o", str(target))
    assert status == 0, err
    assert out.strip() == str(target)
    text = _check_page(target, search_dir)
    # The same files give the same page: the search's own last report is byte-identical.
    assert text == (search_dir / "report.html").read_text()
    # Default: RUN_DIR/report.html.
    (search_dir / "report.html").unlink()
    status, out, err = _run(capsys, "report", str(search_dir), "--top-k", "1")
    assert status == 0, err
    assert out.strip() == str(search_dir / "report.html")
    _check_page(search_dir / "report.html", search_dir)


def test_report_errors(capsys, tmp_path):
    line = _one_line_error(capsys, "report", str(tmp_path / "missing"))
    assert "run directory not found" in line and "missing" in line
    assert not (tmp_path / "missing").exists()
    line = _one_line_error(capsys, "report", str(tmp_path))  # a folder, but no search
    assert "must be a KerasTuner project" in line
    assert list(tmp_path.iterdir()) == []  # nothing written
    line = _one_line_error(capsys, "report", str(tmp_path), "--top-k", "0")
    assert "expected an integer >= 1, got '0'" in line
    (tmp_path / "page.html").mkdir()
    line = _one_line_error(capsys, "report", str(tmp_path), "-o", str(tmp_path / "page.html"))
    assert "is a directory" in line
