"""What the README and the demos' docstrings claim is what the code prints.

The demos' numbers with their defaults take minutes to measure, so they are kept
in demos/transcripts/ (written by demos/record_transcripts.py). Each number the
prose quotes must be in its demo's transcript (timings excepted: they depend on
the machine), and the transcript line holding it must still be printed by the
demo today, in the same words (checked on the tiny run the other demo tests read).
The README's code blocks are run, and what they print is compared with what the
README says they print.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re

import pytest
from demo_runs import DEMOS, ROOT

README = (ROOT / "README.md").read_text()
TRANSCRIPTS = DEMOS / "transcripts"

# A number as the prose and the demos write it: 137,217  99.9%  3.45e-04  -0.5
NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?:e[-+]\d+)?%?(?![\w%])")
# What follows a number that is a duration or the machine's size, not a measured result.
NOT_A_RESULT = re.compile(r"(?:\s?(?:s|ms|seconds|minutes)\b|-core|\s+CPU)")


def quoted_numbers(prose: str) -> list[str]:
    return [m.group().rstrip(",") for m in NUMBER.finditer(prose)
            if not NOT_A_RESULT.match(prose, m.end())]


def template(line: str) -> str:
    """A printed line with its numbers masked and its spacing collapsed: what stays the same
    from one run to the next, whatever the settings."""
    return " ".join(NUMBER.sub("#", line).split())


def as_shown(stdout: str) -> list[str]:
    import sys
    sys.path.insert(0, str(DEMOS))
    from record_transcripts import as_shown as shown  # the recorder's own cleaning
    return shown(stdout).splitlines()


def demo_docstring(name: str) -> str:
    return ast.get_docstring(ast.parse((DEMOS / f"{name}.py").read_text()))


def readme_claims() -> dict[str, str]:
    """The README's prose about each demo: its row of the demos table, and for the
    vanishing-gradients demo the paragraph that reads its plot."""
    claims = {}
    for row in README.splitlines():
        found = re.match(r"\| `demos/(\w+)\.py` \|", row)
        if found:
            claims[found.group(1)] = row
    paragraph = re.search(r"The vanishing-gradients plot shows.*?\n\n", README, re.S)
    assert paragraph, "the README's paragraph on the vanishing-gradients plot is missing"
    claims["vanishing_gradients"] += "\n" + paragraph.group()
    return claims


CLAIMS = [(f"README on {name}", name, text) for name, text in readme_claims().items()]
CLAIMS += [(f"{name}.py docstring", name, demo_docstring(name))
           for name in ("anatomy", "seed_model", "digits_sequence", "text_classifier",
                        "vanishing_gradients")]


def paragraphs(lines: list[str]) -> list[str]:
    """Runs of non-blank lines, each joined into one: prose wrapped for the terminal breaks
    its lines where the numbers' widths put the breaks, so it is compared whole."""
    return [" ".join(block.split("\n")) for block in "\n".join(lines).split("\n\n")]


@pytest.mark.parametrize("where, demo, prose", CLAIMS, ids=[c[0] for c in CLAIMS])
def test_every_number_quoted_is_printed_by_the_demo(where, demo, prose, demo_runs):
    transcript = []  # the default run's, and those of other settings the prose quotes
    for path in sorted(TRANSCRIPTS.glob(f"{demo}*.txt")):
        transcript += path.read_text().splitlines() + [""]
    today = as_shown(demo_runs[demo][1])
    printed_today = {template(text) for text in today + paragraphs(today)}
    missing, stale = [], []
    for number in quoted_numbers(prose):
        holding = [text for text in transcript + paragraphs(transcript)
                   if number in quoted_numbers(text)]
        if not holding:
            missing.append(number)
        elif not any(template(text) in printed_today for text in holding):
            stale.append(f"{number}: {holding[0].strip()}")
    assert not missing, (f"{where} quotes numbers that demos/transcripts/{demo}*.txt do not "
                         f"have: {missing}")
    assert not stale, (f"{where} quotes transcript lines that demos/{demo}.py no longer "
                       "prints (run demos/record_transcripts.py): " + "; ".join(stale))


def test_the_quotes_are_numbers_not_timings():
    assert quoted_numbers("LSTM 99.9% test accuracy, 24 s of training on a 2-core machine, "
                          "3.45e-04 at t = 100; 137,217 params, about 45 s on 2 CPU cores") \
        == ["99.9%", "3.45e-04", "100", "137,217"]


def test_the_vanishing_gradients_prose_says_what_was_measured():
    """The trained LSTM's gradient line is not flat: the paragraph must say where it dips."""
    prose = " ".join(readme_claims()["vanishing_gradients"].split())
    assert "nearly flat back to t = 1" not in prose
    transcript = (TRANSCRIPTS / "vanishing_gradients.txt").read_text()
    lstm = re.search(r"LSTM, after training +(\S+) +(\S+) +(\S+) +(\S+), t=(\d+)", transcript)
    assert lstm, transcript
    at_end, at_start, _, lowest, where = lstm.groups()
    for number in (at_end, at_start, lowest, f"t = {where}"):
        assert number in prose, number


def code_block_after(heading: str) -> tuple[str, str]:
    """(the first python block after ``heading``, the text block right after it, if any)."""
    section = README[README.index(heading):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    rest = section[section.index(code) + len(code):]
    shown = re.match(r"```\s*\n[^`]*?```(?:python)?\s*\n(.*?)```", rest, re.S)
    return code, shown.group(1) if shown else ""


def printed_by(code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102  (the README's own code)
    return out.getvalue()


def test_the_tour_prints_what_its_comments_say():
    code, _ = code_block_after("## A tour in twenty lines")
    lines = printed_by(code).splitlines()
    assert lines[0] == "tanh ['add']"
    assert lines[1].startswith("(3, 2) [")
    assert lines[2:] == ["False", "True"]
    for comment in ("# tanh ['add']", "# (3, 2) and d loss / d b", "# False",
                    "# True: matches finite differences"):
        assert comment in code


def test_the_summary_shown_in_the_readme_is_what_the_code_prints():
    code, shown = code_block_after("## The question every learner asks")
    assert shown.strip(), "the README shows no output under the code"
    printed = [line.rstrip() for line in printed_by(code).splitlines()]
    shown_lines = [line.rstrip() for line in shown.strip("\n").splitlines()]
    start = printed.index(shown_lines[0])
    assert printed[start:start + len(shown_lines)] == shown_lines


def test_the_busy_machine_section_gives_the_measured_numbers_and_what_to_set():
    section = README[README.index("## A busy machine"):]
    section = section[:section.find("\n## ", 1) if "\n## " in section[1:] else None]
    # The measurements (seed-model step, 2 cores, another process on one of them).
    for number in ("27.4 ms", "57.8 ms", "27.8 ms", "126 ms", "349 ms", "159 ms", "60–90×"):
        assert number in section, number
    assert "OPENBLAS_NUM_THREADS=1 python" in section


def test_the_busy_machine_snippet_runs_fit_with_one_blas_thread(threadpoolctl):
    code = README[README.index("## A busy machine"):]
    code = re.search(r"```python\n(.*?)```", code, re.S).group(1)

    class Model:
        def fit(self, x, y, epochs):
            self.threads = [pool["num_threads"] for pool in threadpoolctl.threadpool_info()
                            if pool["user_api"] == "blas"]

    model = Model()
    exec(compile(code, "README.md", "exec"), {"model": model, "x": None, "y": None})  # noqa: S102
    assert model.threads and set(model.threads) == {1}
