"""Rendering with Graphviz's ``dot``, with a time limit; errors that say what to do.

``dot`` is run here rather than through the graphviz package so that it can be
stopped: a graph it cannot lay out (tens of thousands of nodes, long edges
across a whole unroll) would otherwise keep it busy for minutes or let it eat
all memory. After ``DOT_TIMEOUT`` seconds it is killed and the error says how
to draw less.
"""

from __future__ import annotations

import os
import subprocess

import graphviz

DOT_TIMEOUT = 30.0  # seconds; a picture that fits a page is laid out in well under one


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's ``dot`` program is needed to render a picture and is not installed."""


class GraphvizTimeoutError(RuntimeError):
    """``dot`` did not finish laying out the graph within its time limit."""


_HOW_TO_DRAW_LESS = (
    "draw fewer nodes: draw_graph(..., max_steps=2) keeps the first 2 time steps and the "
    "last one of each recurrent layer; a hand-written loop gets time steps by running each "
    "step inside `with mt.scope(step=t):`; level='step' draws one box per step")


def _not_found(command: str) -> GraphvizNotFoundError:
    error = GraphvizNotFoundError(
        "rendering the graph needs Graphviz's `dot` program, which is not on PATH. "
        "Install Graphviz (Debian/Ubuntu: `apt-get install graphviz`, macOS: "
        "`brew install graphviz`, conda: `conda install graphviz`), or paste the DOT "
        "text from `graph.source` into any Graphviz viewer.")
    return error


def run_dot(source: str, format: str = "svg", engine: str = "dot",  # noqa: A002
            timeout: float | None = None) -> bytes:
    """The picture of the DOT ``source`` in ``format``, laid out by ``engine`` within
    ``timeout`` seconds (default DOT_TIMEOUT). Raises GraphvizNotFoundError,
    GraphvizTimeoutError, or RuntimeError with dot's own message."""
    timeout = DOT_TIMEOUT if timeout is None else timeout
    try:
        done = subprocess.run([engine, f"-T{format}"], input=source.encode(),
                              capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise _not_found(engine) from graphviz.ExecutableNotFound([engine])
    except subprocess.TimeoutExpired:
        raise GraphvizTimeoutError(
            f"Graphviz's `{engine}` did not lay out the graph ({source.count('->'):,} edges) "
            f"within {timeout:g} s and was stopped; {_HOW_TO_DRAW_LESS}; or allow more time: "
            "render(..., timeout=<seconds>)."
        ) from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise RuntimeError(
            f"Graphviz's `{engine}` failed to lay out the graph (exit status "
            f"{done.returncode}: {message[:200]!r}); big graphs are where it breaks: "
            f"{_HOW_TO_DRAW_LESS}.")
    return done.stdout


class Graph(graphviz.Digraph):
    """A ``graphviz.Digraph`` whose ``render`` and ``pipe`` (what Jupyter calls to show it)
    run ``dot`` with a time limit and explain a missing Graphviz."""

    def render(self, filename: str | None = None, directory: str | None = None,
               view: bool = False, cleanup: bool = False, format: str | None = None,  # noqa: A002
               *, timeout: float | None = None, **unsupported) -> str:
        """Write the DOT text to ``filename`` and the picture next to it
        (``filename + "." + format``); returns the picture's path. ``cleanup=True`` removes
        the DOT file. ``timeout``: seconds ``dot`` may take (default DOT_TIMEOUT)."""
        if unsupported:
            raise TypeError(f"Graph.render: {', '.join(sorted(unsupported))} not supported "
                            "here; use graphviz.Digraph(body=graph.body).render(...) for them")
        source_path = self.save(filename, directory=directory)
        picture = run_dot(self.source, format or self.format, self.engine, timeout)
        path = f"{source_path}.{format or self.format}"
        with open(path, "wb") as file:
            file.write(picture)
        if cleanup:
            os.remove(source_path)
        if view:
            graphviz.view(path)
        return path

    def pipe(self, format: str | None = None, renderer=None, formatter=None,  # noqa: A002
             neato_no_op=None, quiet: bool = False, *, engine: str | None = None,
             encoding: str | None = None, timeout: float | None = None):
        """The picture as bytes (or text with ``encoding``), as graphviz's ``pipe``."""
        if renderer or formatter or neato_no_op:
            return super().pipe(format, renderer, formatter, neato_no_op, quiet,
                                engine=engine, encoding=encoding)
        picture = run_dot(self.source, format or self.format, engine or self.engine, timeout)
        return picture.decode(encoding) if encoding else picture


def render(graph: graphviz.Digraph, path: str, format: str = "svg",  # noqa: A002
           timeout: float | None = None) -> str:
    """Render ``graph`` to ``path + "." + format`` (no DOT file left behind); returns its path.

    Raises GraphvizNotFoundError, saying how to install Graphviz, if ``dot`` is missing, and
    GraphvizTimeoutError if it takes longer than ``timeout`` seconds (default DOT_TIMEOUT).
    """
    picture = run_dot(graph.source, format, graph.engine, timeout)
    target = f"{path}.{format}"
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    with open(target, "wb") as file:
        file.write(picture)
    return target
