"""The engine as it was at an earlier commit, importable beside the current one, for a row
measured in the same run.

``git worktree add`` checks the commit out under benchmarks/.previous/<commit>; its packages
``microtensor``, ``nn`` and ``optim`` are imported there and kept as module objects, and the
current ones are put back in ``sys.modules``. While ``using(previous)`` is active, imports that
the old code makes at call time (``import optim`` inside ``compile``) find the old modules.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

PACKAGES = ("microtensor", "nn", "optim")
ROOT = Path(__file__).resolve().parents[1]


def _ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def _swap_in(modules: dict[str, ModuleType]) -> dict[str, ModuleType]:
    """Put ``modules`` in sys.modules in place of the project's packages; return those."""
    taken = {name: sys.modules.pop(name) for name in list(sys.modules) if _ours(name)}
    sys.modules.update(modules)
    return taken


def load(commit: str) -> dict[str, ModuleType]:
    """The project's packages at ``commit`` (checked out into a worktree once, named by its
    hash: a name like HEAD would keep the checkout of whatever it meant the first time)."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", commit],
                            check=True, capture_output=True, text=True).stdout.strip()
    path = ROOT / "benchmarks" / ".previous" / commit
    if not path.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force",
                        str(path), commit], check=True, capture_output=True)
    current = _swap_in({})
    sys.path.insert(0, str(path))
    try:
        for package in PACKAGES:
            __import__(package)
        return {name: module for name, module in sys.modules.items() if _ours(name)}
    finally:
        sys.path.remove(str(path))
        _swap_in(current)


@contextmanager
def using(modules: dict[str, ModuleType]) -> Iterator[None]:
    """Inside the block, ``import microtensor`` (nn, optim) gives the previous engine's."""
    current = _swap_in(modules)
    try:
        yield
    finally:
        _swap_in(current)
