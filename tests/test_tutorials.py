"""The tutorial notebooks: each runs from top to bottom in a fresh kernel, prints what its
stored copy shows (beyond timings), and its pictures fit a page."""

from __future__ import annotations

import base64
import importlib.util
import re
import struct
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = ROOT / "demos" / "tutorials"
PAGE_PX = 880  # a README column on a code host
MAX_BYTES = 1_000_000


def _load_runner():
    spec = importlib.util.spec_from_file_location("tutorials_execute", TUTORIALS / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


runner = _load_runner()
NOTEBOOKS = runner.notebooks()


def stored(path: Path, nbformat):
    return nbformat.read(path, as_version=4)


def picture_width_px(kind: str, data: str) -> float:
    if kind == "image/png":
        return struct.unpack(">I", base64.b64decode(data)[16:20])[0]
    width = re.search(r'<svg[^>]*\swidth="([\d.]+)(pt|px)?"', data)
    assert width, "an SVG without a width"
    return float(width.group(1)) * (4 / 3 if width.group(2) == "pt" else 1)


def test_the_tutorials_are_numbered_in_reading_order():
    numbers = [path.name[:2] for path in NOTEBOOKS]
    assert numbers == [f"{n:02d}" for n in range(1, len(NOTEBOOKS) + 1)]
    assert len(NOTEBOOKS) >= 6


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_a_stored_notebook_reads_without_running(path, nbformat):
    """Every code cell ran and kept its outputs; pictures fit a page; the file stays small."""
    notebook = stored(path, nbformat)
    nbformat.validate(notebook)
    assert path.stat().st_size < MAX_BYTES
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code), "a cell was never run"
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert sum(cell.cell_type == "markdown" for cell in notebook.cells) >= len(code) // 2
    varies = [cell for cell in code if runner.VARIES in cell.metadata.get("tags", [])]
    assert len(varies) <= len(code) // 2, "most numbers of a tutorial must be compared"
    pictures = [(kind, data) for cell in code for output in cell.outputs
                for kind, data in output.get("data", {}).items()
                if kind in ("image/png", "image/svg+xml")]
    assert pictures, "a tutorial without a picture"
    for kind, data in pictures:
        assert picture_width_px(kind, data) <= PAGE_PX, f"a {kind} wider than a page"


@pytest.mark.slow  # 1 to 40 s each
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_a_notebook_runs_and_prints_what_it_shows(path, nbformat, notebook_kernel, dot_binary):
    fresh, _ = runner.execute(path)  # raises CellExecutionError, naming the cell, on an error
    expected, got = runner.text_outputs(stored(path, nbformat)), runner.text_outputs(fresh)
    assert len(got) == len(expected)
    for number, (was, now) in enumerate(zip(expected, got, strict=True), start=1):
        assert now == was, f"code cell {number} of {path.name} now shows something else"


def test_normalise_drops_only_what_varies_between_runs():
    text = "Epoch 1/2 - 3.2s - loss: 0.5\r\x1b[KEpoch 2/2 - 0.4s - loss: 0.25\n" \
           "<Figure at 0x7f3a2b1c9d80> trained in 12 s, 81% right\n"
    assert runner.normalise(text) == "Epoch 2/2 - <time> - loss: 0.25\n" \
                                     "<Figure at 0x…> trained in <time>, 81% right\n"


def test_text_outputs_ignore_chunking_and_timings_but_not_numbers(nbformat):
    def notebook(*chunks):
        cell = nbformat.v4.new_code_cell("print(...)")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)
                        for text in chunks]
        return nbformat.v4.new_notebook(cells=[cell])

    stored_copy = notebook("accuracy 99.6%, trained in 21 s\n")
    assert runner.text_outputs(notebook("accuracy 99.6%, ", "trained in 35 s\n")) \
        == runner.text_outputs(stored_copy)
    assert runner.text_outputs(notebook("accuracy 99.5%, trained in 21 s\n")) \
        != runner.text_outputs(stored_copy)


def test_a_cell_tagged_varies_is_compared_by_its_words_not_its_numbers(nbformat):
    def notebook(text, tags):
        cell = nbformat.v4.new_code_cell("print(...)", metadata={"tags": tags})
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        return nbformat.v4.new_notebook(cells=[cell])

    def shown(text, tags=(runner.VARIES,)):
        return runner.text_outputs(notebook(text, list(tags)))

    assert shown("LSTM: 2e-04 reaches t = 1; it learned the task (92%).") \
        == shown("LSTM: 6e-05 reaches t = 1; it learned the task (100%).")
    assert shown("LSTM: it learned the task (92%).") != shown("LSTM: it stayed near chance (52%).")
    assert shown("accuracy 92%", tags=()) != shown("accuracy 93%", tags=())
