"""Integer-only building blocks for FQ-LISCS (GitHub issue #3).

* :mod:`.fixedpoint`: TFLite dyadic requantization, exact integer sqrt / rsqrt / reciprocal.
* :mod:`.intops`: integer GELU, softmax, sigmoid and LayerNorm (I-ViT shift and I-BERT
  polynomial variants), each as an exact integer forward ``int_*`` and a QAT training form
  ``fake_*`` with a straight-through gradient.
* :mod:`.approx_error`: error of each approximation against the float op.
"""
from fqliscs_tf.quant.approx_error import (
    elementwise_error,
    layer_norm_error,
    measure_approximation_errors,
    softmax_error,
)
from fqliscs_tf.quant.fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    ISQRT_ITERATIONS,
    bit_length,
    dyadic_requantize,
    int_reciprocal,
    int_rsqrt,
    isqrt,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    shift_left_or_right,
)
from fqliscs_tf.quant.intops import (
    GELU_METHODS,
    LAYER_NORM_METHODS,
    MIN_SCALE,
    ROUNDING_MODES,
    SIGMOID_METHODS,
    SOFTMAX_METHODS,
    fake_gelu,
    fake_layer_norm,
    fake_sigmoid,
    fake_softmax,
    int_gelu,
    int_layer_norm,
    int_sigmoid,
    int_softmax,
)

__all__ = [
    # fixedpoint
    "INT32_MIN",
    "INT32_MAX",
    "ISQRT_ITERATIONS",
    "quantize_multiplier",
    "multiply_by_quantized_multiplier",
    "dyadic_requantize",
    "bit_length",
    "isqrt",
    "int_reciprocal",
    "int_rsqrt",
    "shift_left_or_right",
    # intops
    "GELU_METHODS",
    "SOFTMAX_METHODS",
    "SIGMOID_METHODS",
    "LAYER_NORM_METHODS",
    "ROUNDING_MODES",
    "MIN_SCALE",
    "int_gelu",
    "fake_gelu",
    "int_softmax",
    "fake_softmax",
    "int_sigmoid",
    "fake_sigmoid",
    "int_layer_norm",
    "fake_layer_norm",
    # approx_error
    "elementwise_error",
    "softmax_error",
    "layer_norm_error",
    "measure_approximation_errors",
]
