"""Integer-only nonlinear ops of the Swin JSCC codec: GELU, softmax, sigmoid, LayerNorm.

Modules: ``_common`` (method tuples, ``MIN_SCALE``, argument checks, shared helpers), ``_exp``
(integer exponentials and reciprocal normalisation), ``gelu``, ``softmax``, ``sigmoid``,
``layer_norm`` (the integer square root is :func:`~.fixedpoint.isqrt`).

Each op comes as a pair:

* ``int_<op>(q, scale, ...) -> (q_out, out_scale)``: the **exact integer forward**. ``q`` is
  an integer tensor (real value ``q * scale``); the result is a ``tf.int32`` tensor whose real
  value is ``q_out * out_scale``. Only integer TF ops run (int64 intermediates, shifts,
  ``floordiv``); ``scale`` must be a Python float and is folded into integer constants at trace
  time, so a traced graph has no float tensor at all.
* ``fake_<op>(x, scale, ...) -> y``: the **training form** for QAT. ``x`` is float; it is
  rounded to the grid ``scale`` (``round(x / scale)``, ties to even), run through the very same
  integer algorithm (so it equals the integer forward, dequantized) and returned as float with
  a straight-through gradient: ``y = f(x) + stop_gradient(approx - f(x))``, i.e. the exact
  float op's gradient (GELU with erf, softmax, sigmoid, LayerNorm incl. gamma/beta).
  ``scale`` may also be a scalar float tensor/variable (e.g. a learned or EMA range); the
  integer constants are then computed in-graph in float64 (no gradient flows to ``scale``).

Methods (``method=``)
---------------------
``"shift"`` (I-ViT, Li & Gu 2023): ``exp`` by shifts: ``x*log2(e) ~ x + (x>>1) - (x>>4)``,
    ``2**r ~ 1 + r/2`` on ``r in (-1, 0]``, then ``<< (n - q)`` (Shiftmax, ShiftGELU).
``"poly"`` (I-BERT, Kim et al. 2021): ``exp(p) ~ 0.35815147 p**2 + 0.96963238 p + 1`` on
    ``p in (-ln2, 0]`` (i-exp), ``erf`` by the clipped second-order polynomial (i-GELU).
LayerNorm: ``"newton"`` (exact centring ``C*x - sum(x)``, exact :func:`~.fixedpoint.isqrt`
    with per-row normalisation to 31 significant bits) or ``"ivit"`` (I-ViT as published:
    rounded mean (ties up; torch.round ties to even), 10 Newton steps from ``2**16``,
    ``floor((2**31 - 1) / std)``, ``floor(y factor / 2)``).

Output scales
-------------
* softmax, sigmoid: ``q_out in [0, 2**(bits-1) - 1]``, ``out_scale = 2**-(bits-1)``.
* GELU ``shift``: ``q * sigma_q``, ``out_scale = scale * 2**-(bits-1)`` (``bits`` = gate width).
* GELU ``poly``: ``q * (erf_q + one_q)``, ``out_scale = scale / (2 one_q)``, where
  ``one_q ~ 1 / (0.2888 (scale/sqrt2)**2 2**k)`` is the code of ``erf = 1`` and ``k`` is
  chosen so ``one_q`` has ``bits`` bits.
  GELU outputs are wide int32 products (saturated), meant for a following
  :func:`~.fixedpoint.dyadic_requantize`.
* LayerNorm without affine: ``|q_out| <= 2**30``, ``out_scale = sqrt(C) / 2**30``; with
  ``out_scale`` given: gamma/beta applied with per-channel dyadic multipliers (TFLite
  :func:`~.fixedpoint.multiply_by_quantized_multiplier`) to
  ``frac`` extra fractional bits, ``M_c = |gamma_c| sqrt(C) 2**(frac-30) / out_scale``, plus
  ``round(beta_c 2**frac / out_scale)``, then one rounding shift by ``frac`` and a clamp to
  ``bits`` bits: ``q_out ~ round((gamma (x - mean) / std + beta) / out_scale)``. (I-ViT's
  folding ``floor(beta / (gamma S))`` into the normalised integers is not used: it overflows
  when ``gamma -> 0``.)

Deviations from the published code (all documented where they occur): the sigmoid (and so
ShiftGELU) uses the per-element identity ``sigma(z) = e**(z-m) / (e**(z-m) + e**-m)`` with
``m = max(z, 0)`` instead of I-ViT's row maximum; the exponential is capped to
``exp_bits = min(norm_bits - bits - 2, 30)`` bits by a trace-time right shift (I-BERT's 16-bit
requantization of ``exp``, I-ViT unchanged for 8-bit logits at scales >= 2**-6), so that
``sum(exp) < 2**norm_bits`` and the ``floor((2**norm_bits - 1) / sum)`` reciprocal adds less
than 1/8 LSB; the last right shift of softmax/sigmoid/GELU gates rounds to nearest by
default (``rounding="floor"`` gives the published truncation, which biases every output by
-1/2 LSB); I-GELU rounds ``|erf|`` sign-symmetrically and has a positive scale.
"""
from ._common import (GELU_METHODS, LAYER_NORM_METHODS, MIN_SCALE, ROUNDING_MODES,
                      SIGMOID_METHODS, SOFTMAX_METHODS)
from .gelu import fake_gelu, int_gelu
from .layer_norm import _ln_preshift, fake_layer_norm, int_layer_norm  # noqa: F401 (tests)
from .sigmoid import fake_sigmoid, int_sigmoid
from .softmax import fake_softmax, int_softmax

__all__ = [
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
]
