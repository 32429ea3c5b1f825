"""Every link in the README to a file of this repository points at a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")  # [text](target) and ![alt](target)


def local_links(markdown: str) -> list[str]:
    targets = [target.split("#")[0] for target in LINK.findall(markdown)]
    return [t for t in targets if t and not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_local_links_are_found_and_urls_are_not():
    text = "[a](demos/x.ipynb) ![b](demos/images/y.svg) [c](https://e.org/z) [d](#learn) " \
           "[e](benchmarks/README.md#speed)"
    assert local_links(text) == ["demos/x.ipynb", "demos/images/y.svg", "benchmarks/README.md"]


def test_every_local_link_in_the_readme_exists():
    links = local_links((ROOT / "README.md").read_text(encoding="utf-8"))
    assert any(link.endswith(".ipynb") for link in links), "the README links no tutorial"
    missing = [link for link in links if not (ROOT / link).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"
