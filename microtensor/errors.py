"""The errors microtensor raises for its own reasons (numpy's own pass through)."""


class ShapeError(ValueError):
    """An op got operands whose shapes don't fit together."""


class FreedValueError(RuntimeError):
    """A tensor whose value was dropped inside ``mt.freeing_values()`` was used again."""
