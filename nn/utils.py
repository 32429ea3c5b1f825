"""Keras's ``keras.utils`` helpers for preparing data: one-hot labels and padded sequences."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .seeding import set_seed


def to_categorical(x, num_classes: int | None = None) -> np.ndarray:
    """Integer class labels -> one-hot rows: [0, 2] with 3 classes -> [[1, 0, 0], [0, 0, 1]].

    Labels of shape (n,) or (n, 1) give (n, num_classes); (n, t) gives (n, t, num_classes).
    ``num_classes`` defaults to the largest label + 1 (Keras's rule).
    """
    labels = np.asarray(x)
    if labels.size and not np.all(labels == np.round(labels)):
        raise ValueError("to_categorical: labels must be whole numbers")
    labels = labels.astype(np.int64)
    shape = labels.shape[:-1] if labels.ndim > 1 and labels.shape[-1] == 1 else labels.shape
    flat = labels.reshape(-1)
    classes = int(flat.max()) + 1 if num_classes is None else int(num_classes)
    if flat.size and (flat.min() < 0 or flat.max() >= classes):
        raise ValueError(f"to_categorical: labels must be in [0, {classes}), got values from "
                         f"{flat.min()} to {flat.max()}")
    one_hot = np.zeros((flat.size, classes))
    one_hot[np.arange(flat.size), flat] = 1.0
    return one_hot.reshape(*shape, classes)


def pad_sequences(sequences: Sequence, maxlen: int | None = None, dtype="int32",
                  padding: str = "pre", truncating: str = "pre", value: float = 0.0) -> np.ndarray:
    """Sequences of different lengths -> one array (n, maxlen), as Keras pads them.

    Shorter ones get ``value`` in front (``padding="pre"``) or behind ("post"); longer
    ones lose their first steps (``truncating="pre"``) or their last ("post").
    ``maxlen`` defaults to the longest sequence.
    """
    for argument, given in (("padding", padding), ("truncating", truncating)):
        if given not in ("pre", "post"):
            raise ValueError(f"pad_sequences: {argument} must be 'pre' or 'post', got {given!r}")
    sequences = [np.asarray(s) for s in sequences]
    lengths = [len(s) for s in sequences]
    maxlen = max(lengths, default=0) if maxlen is None else int(maxlen)
    sample_shape = next((s.shape[1:] for s in sequences if len(s)), ())
    out = np.full((len(sequences), maxlen, *sample_shape), value, dtype=dtype)
    for row, sequence in enumerate(sequences):
        if not len(sequence) or not maxlen:
            continue
        kept = sequence[-maxlen:] if truncating == "pre" else sequence[:maxlen]
        if padding == "post":
            out[row, :len(kept)] = kept
        else:
            out[row, -len(kept):] = kept
    return out


set_random_seed = set_seed  # keras.utils.set_random_seed

__all__ = ["pad_sequences", "set_random_seed", "to_categorical"]
