"""The integer inference engine (GitHub issue #3).

* :mod:`.export`: QAT codec -> integer parameters (int8 kernels, int32 biases, dyadic
  multipliers), saved as ``engine.json`` + ``engine.npz``.
* :mod:`.layers`: integer forward of each codec layer.
* :mod:`.codec`: :class:`IntegerCodec`, encoder -> integer (or float Sionna) channel ->
  decoder, integer tensors only between input quantization and output dequantization.
* :mod:`.to_qat`: :func:`qat_from_engine`, the inverse of the export (engine -> QAT model).
"""
from .codec import IntegerCodec, quantize_image, quantize_snr_db
from .export import (IntegerParams, export_integer_codec, load_integer_codec,
                     save_integer_codec)
from .to_qat import qat_from_engine

__all__ = ["IntegerCodec", "IntegerParams", "export_integer_codec", "load_integer_codec",
           "save_integer_codec", "quantize_image", "quantize_snr_db", "qat_from_engine"]
