"""matplotlib, imported only when a plot is asked for (it is an optional dependency)."""

from __future__ import annotations


def pyplot(caller: str):
    """``matplotlib.pyplot``, or an ImportError naming ``caller`` and how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(f"{caller} needs matplotlib: pip install matplotlib "
                          '(or the demo extra: pip install -e ".[demos]")') from None
    return plt
