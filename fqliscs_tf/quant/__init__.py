"""Integer-only building blocks for FQ-LISCS (GitHub issue #3).

* :mod:`.fixedpoint`: TFLite dyadic requantization, exact integer sqrt / rsqrt / reciprocal.
* :mod:`.intops`: integer GELU, softmax, sigmoid and LayerNorm (I-ViT shift and I-BERT
  polynomial variants), each as an exact integer forward ``int_*`` and a QAT training form
  ``fake_*`` with a straight-through gradient.
* :mod:`.approx_error`: error of each approximation against the float op.
"""
from . import approx_error, fixedpoint, intops
from .approx_error import *  # noqa: F401,F403  (each module lists its public names)
from .fixedpoint import *  # noqa: F401,F403
from .intops import *  # noqa: F401,F403

__all__ = fixedpoint.__all__ + intops.__all__ + approx_error.__all__
