"""One helper for running a check in eager, graph and XLA modes (Sionna's test pattern)."""
import tensorflow as tf

MODES = ["eager", "graph", "xla"]


def run(fn, mode):
    """Run ``fn()`` eagerly, as a ``tf.function``, or as an XLA-compiled ``tf.function``."""
    if mode == "eager":
        return fn()
    if mode in ("graph", "xla"):
        return tf.function(fn, jit_compile=(mode == "xla"))()
    raise ValueError(f"unknown mode {mode!r}; choose from {MODES}")
