"""Rendering with Graphviz's ``dot``; errors that say what to do when it is missing or fails."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import graphviz


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's ``dot`` program is needed to render a picture and is not installed."""


NO_DOT = ("rendering the graph needs Graphviz's `dot` program, which is not on PATH. "
          "Install Graphviz (Debian/Ubuntu: `apt-get install graphviz`, macOS: "
          "`brew install graphviz`, conda: `conda install graphviz`), or paste the DOT "
          "text from `graph.source` into any Graphviz viewer.")


@contextmanager
def _explained_graphviz_errors() -> Iterator[None]:
    """Turn graphviz's errors into ones that say what to do."""
    try:
        yield
    except graphviz.ExecutableNotFound as err:
        raise GraphvizNotFoundError(NO_DOT) from err
    except graphviz.CalledProcessError as err:
        raise RuntimeError(
            f"Graphviz's `dot` failed to lay out the graph ({err.stderr!r:.200}); "
            "big unrolls are where it breaks: try draw_graph(..., max_steps=3)") from err


class Graph(graphviz.Digraph):
    """A ``graphviz.Digraph`` whose ``render`` explains how to install a missing ``dot``."""

    def render(self, *args, **kwargs) -> str:
        with _explained_graphviz_errors():
            return super().render(*args, **kwargs)

    def pipe(self, *args, **kwargs):
        with _explained_graphviz_errors():
            return super().pipe(*args, **kwargs)

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs) -> dict:
        """Jupyter's display: the SVG, or without `dot` the text saying how to get it."""
        try:
            return super()._repr_mimebundle_(include, exclude, **kwargs)
        except GraphvizNotFoundError as err:
            return {"text/plain": f"(no picture: {err})"}


def render(graph: graphviz.Digraph, path: str, format: str = "svg") -> str:  # noqa: A002
    """Render ``graph`` to ``path + "." + format`` (no DOT file left behind); returns its path.

    Raises GraphvizNotFoundError, saying how to install Graphviz, if ``dot`` is missing.
    """
    with _explained_graphviz_errors():
        return graphviz.Digraph.render(graph, path, format=format, cleanup=True)
