"""Quantization-aware training of the Swin JSCC codec with TF-MOT.

:func:`quantize_codec` turns a trained float :class:`~fqliscs_tf.codec.JSCC` into a
:class:`QATJSCC` in one call:

1. the encoder and decoder are rebuilt with ``quant=spec``: every layer then fake-quantizes
   its activations where the integer engine requantizes (:mod:`.fakequant`), with the integer
   training forms of LayerNorm, softmax, GELU and sigmoid;
2. the float weights are copied over;
3. TF-MOT wraps every layer (``quantize_annotate_layer`` + ``quantize_apply``) with
   :class:`KernelQuantizeConfig`, which fake-quantizes every Dense and Conv kernel, nested ones
   included, to int8 per output channel (symmetric, narrow range ``[-127, 127]``).

The channel in between gets int8 I/Q symbols (``spec.symbol_bits`` bits, clipped at
``spec.symbol_clip``) and the SNR an int8 grid (``spec.snr_step_db``), as the engine does.

TF-MOT pitfalls handled here (see ``docs/QUANTIZATION.md``): nested kernels are all named
``kernel``, so each quantizer prefixes its variable names; layers build their sublayers
explicitly; QAT models save as TF checkpoints or SavedModel, never ``.h5``/``.keras``
(:func:`save_qat` / :func:`load_qat` store weights plus ``model.json``).
"""
import json
import os

import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from fqliscs_tf.codec import JSCCModel, build_decoder, build_encoder
from fqliscs_tf.heads import Head, OutputNorm
from fqliscs_tf.modnet import AdaptiveModulator, ChannelModNet
from fqliscs_tf.presets import CodecConfig
from fqliscs_tf.quant.fakequant import QuantSpec, as_quant_spec, fixed_grid, quantize_snr
from fqliscs_tf.swin import PatchEmbed, PatchMerging, PatchReverseMerging, SwinBlock

__all__ = ["KernelQuantizeConfig", "PrefixedWeightQuantizer", "QATJSCC", "quantize_codec",
           "requantize_codec", "quantize_scope", "calibrate", "save_qat", "load_qat",
           "wrapped_layer", "QAT_FILE"]

QAT_FILE = "model.json"
_LAYER_CLASSES = (PatchEmbed, PatchMerging, PatchReverseMerging, SwinBlock, ChannelModNet,
                  AdaptiveModulator, Head, OutputNorm)
_quantizers = tfmot.quantization.keras.quantizers


def _sublayer(layer, path):
    """``"layers_bm.0.fc1"`` -> ``layer.layers_bm[0].fc1``; ``""`` -> ``layer``."""
    obj = layer
    for part in filter(None, path.split(".")):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


class PrefixedWeightQuantizer(_quantizers.LastValueQuantizer):
    """Per-output-channel symmetric ``LastValueQuantizer`` whose range variables carry a
    prefix, so that the many nested ``kernel`` weights of one block get distinct names."""

    def __init__(self, prefix, num_bits=8):
        super().__init__(num_bits=num_bits, per_axis=True, symmetric=True, narrow_range=True)
        self.prefix = prefix

    def build(self, tensor_shape, name, layer):
        return super().build(tensor_shape, f"{self.prefix or 'kernel'}_{name}", layer)

    def get_config(self):
        return {"prefix": self.prefix, "num_bits": self.num_bits}


class KernelQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """TF-MOT config for the codec layers: every kernel listed in ``layer.kernels``
    (sublayer paths) is quantized per output channel; activations are quantized inside the
    layer (its ``quant`` mode), so there are no TF-MOT activation/output quantizers."""

    def __init__(self, num_bits=8):
        self.num_bits = int(num_bits)

    def get_weights_and_quantizers(self, layer):
        return [(_sublayer(layer, p).kernel,
                 PrefixedWeightQuantizer(p.replace(".", "_"), self.num_bits))
                for p in layer.kernels]

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        for path, weight in zip(layer.kernels, quantize_weights):
            _sublayer(layer, path).kernel = weight

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {"num_bits": self.num_bits}


class _KeepLayout(tfmot.quantization.keras.QuantizeLayoutTransform):
    """No graph rewrites and no ``QuantizeLayer`` after the inputs: the codec layers
    quantize the image and SNR inputs on their own fixed grids."""

    def apply(self, model, layer_quantize_map):
        return model, {k: v for k, v in layer_quantize_map.items() if v.get("quantize_config")}


class _CodecScheme(tfmot.quantization.keras.QuantizeScheme):
    def get_layout_transformer(self):
        return _KeepLayout()

    def get_quantize_registry(self):
        return tfmot.quantization.keras.default_8bit.Default8BitQuantizeRegistry()


def quantize_scope():
    """Context in which QAT models can be cloned, saved and loaded."""
    objects = {c.__name__: c for c in _LAYER_CLASSES}
    objects.update(KernelQuantizeConfig=KernelQuantizeConfig,
                   PrefixedWeightQuantizer=PrefixedWeightQuantizer)
    return tfmot.quantization.keras.quantize_scope(objects)


def _copy_weights(source, target):
    """Copy the float ``source`` weights into ``target`` layer by layer, in order.

    (Nested sublayer variables share names such as ``block/kernel:0``, so the order of
    ``trainable_weights`` is the key; the quantized layers only add non-trainable ranges.)
    """
    for layer in source.layers:
        src = layer.trainable_weights
        dst = target.get_layer(layer.name).trainable_weights
        if [v.shape for v in src] != [v.shape for v in dst] or layer.non_trainable_weights:
            raise ValueError(f"layer {layer.name!r}: float and quantized weights differ "
                             f"({[v.shape for v in src]} vs {[v.shape for v in dst]})")
        for s, d in zip(src, dst):
            d.assign(s)


def _annotate(model):
    def annotate(layer):
        if isinstance(layer, _LAYER_CLASSES) and getattr(layer, "quant", None) is not None:
            return tfmot.quantization.keras.quantize_annotate_layer(
                layer.__class__.from_config(layer.get_config()),
                KernelQuantizeConfig(layer.quant.weight_bits))
        return layer.__class__.from_config(layer.get_config())

    annotated = keras.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())
    return tfmot.quantization.keras.quantize_apply(annotated, scheme=_CodecScheme())


def _quantized_pair(config, spec, source_encoder=None, source_decoder=None):
    encoder = build_encoder(config, quant=spec)
    decoder = build_decoder(config, quant=spec)
    if source_encoder is not None:
        _copy_weights(source_encoder, encoder)
        _copy_weights(source_decoder, decoder)
    with quantize_scope():
        return _annotate(encoder), _annotate(decoder)


class QATJSCC(JSCCModel):
    """Quantization-aware Swin JSCC codec (same call contract as :class:`JSCCModel`).

    The SNR is rounded to its int8 grid before the encoder and decoder see it, and the
    unit-power channel symbols are rounded to ``spec.symbol_bits``-bit I/Q before the
    channel, as the integer engine transmits them. ``x_hat`` is on the 8-bit pixel grid.

    Parameters
    ----------
    config : CodecConfig
    spec : QuantSpec or dict
    encoder, decoder : TF-MOT quantized Functional models (from :func:`quantize_codec`);
        None builds fresh ones (weights then come from :func:`load_qat`).
    channel_type, channel_kwargs : as :class:`~fqliscs_tf.codec.JSCC`.
    """

    def __init__(self, config, spec=None, encoder=None, decoder=None, channel_type="awgn",
                 channel_kwargs=None, **kwargs):
        self.spec = as_quant_spec(spec) or QuantSpec()
        if encoder is None or decoder is None:
            encoder, decoder = _quantized_pair(config, self.spec)
        super().__init__(config, encoder, decoder, channel_type, channel_kwargs, **kwargs)

    def set_channel(self, channel_type, **channel_kwargs):
        super().set_channel(channel_type, **channel_kwargs)
        qmax = 2 ** (self.spec.symbol_bits - 1) - 1
        scale = self.spec.symbol_scale

        def quantize_symbols(z):
            re = fixed_grid(tf.math.real(z), scale, -qmax, qmax)
            im = fixed_grid(tf.math.imag(z), scale, -qmax, qmax)
            return tf.complex(re, im)

        self.link.symbol_quantizer = quantize_symbols

    def call(self, inputs, training=False):
        image, snr_db = inputs
        snr_db = quantize_snr(tf.reshape(tf.cast(snr_db, tf.float32), [-1]), self.spec)
        return super().call((image, snr_db), training=training)


def quantize_codec(model, spec=None):
    """One call: trained float codec -> quantization-aware codec (:class:`QATJSCC`).

    Parameters
    ----------
    model : fqliscs_tf.codec.JSCC
        Built float Swin codec (e.g. from :func:`fqliscs_tf.checkpoints.load_model`).
    spec : QuantSpec, dict or None
        Bit widths and integer-op methods (default :class:`QuantSpec`).

    Returns
    -------
    QATJSCC with the same channel. Its activation ranges are still empty: run
    :func:`calibrate` (or a few training steps) before evaluating it.
    """
    if not isinstance(getattr(model, "config", None), CodecConfig) or not model.uses_snr:
        raise ValueError("quantize_codec needs a built Swin JSCC codec (fqliscs_tf.codec.JSCC), "
                         f"got {type(model).__name__}")
    if not model.built:
        model.build_for()
    spec = as_quant_spec(spec) or QuantSpec()
    encoder, decoder = _quantized_pair(model.config, spec, model.encoder, model.decoder)
    qat = QATJSCC(model.config, spec, encoder, decoder, model.channel_type, model.channel_kwargs)
    qat.build_for()
    return qat


def requantize_codec(qat_model, spec=None):
    """A :class:`QATJSCC` with another QuantSpec, starting from ``qat_model``'s weights.

    For fine-tuning a trained integer codec under other bit widths or integer-op forms, e.g.
    ``requantize_codec(qat_from_engine("fqliscs_tf/weights/lite_c96_awgn_int"),
    {"residual_bits": 8})``. Every trainable weight (kernels, biases, LayerNorm affines,
    position biases) is copied in order; the activation ranges start empty, so run
    :func:`calibrate` before evaluating or training it.

    Raises ValueError when the trainable weights of the two codecs differ in number or shape.
    """
    if not isinstance(qat_model, QATJSCC):
        raise ValueError(f"requantize_codec needs a QATJSCC, got {type(qat_model).__name__}")
    qat = QATJSCC(qat_model.config, as_quant_spec(spec) or QuantSpec(),
                  channel_type=qat_model.channel_type, channel_kwargs=qat_model.channel_kwargs)
    qat.build_for()
    src, dst = qat_model.trainable_weights, qat.trainable_weights
    if [v.shape for v in src] != [v.shape for v in dst]:
        raise ValueError(f"requantize_codec: the source has {len(src)} trainable weights and "
                         f"the new spec's codec {len(dst)}, or their shapes differ")
    for s, d in zip(src, dst):
        d.assign(s)
    return qat


def calibrate(model, images, snr_db, num_batches=None):
    """Set the activation ranges of a :class:`QATJSCC` from data, without training.

    Runs the model in training mode (range moving averages update; no weight changes).

    Parameters
    ----------
    images : iterable of ``[B, H, W, 3]`` float32 batches in [0, 1]
    snr_db : sequence of float, SNRs [dB] cycled over the batches
    num_batches : int or None, stop after this many batches
    """
    snr_db = list(snr_db)
    if not snr_db:
        raise ValueError("calibrate needs at least one SNR")
    count = 0
    for i, batch in enumerate(images):
        if num_batches is not None and i >= num_batches:
            break
        batch = tf.convert_to_tensor(batch, tf.float32)
        snr = tf.fill([tf.shape(batch)[0]], float(snr_db[i % len(snr_db)]))
        model((batch, snr), training=True)
        count += 1
    if count == 0:
        raise ValueError("calibrate got no image batches")
    return model


def wrapped_layer(model, name):
    """The codec layer inside TF-MOT's wrapper ``quant_<name>`` (or the plain layer)."""
    for layer in model.layers:
        if layer.name in (name, f"quant_{name}"):
            return getattr(layer, "layer", layer)
    raise ValueError(f"no layer {name!r} in {model.name}")


def save_qat(model, directory, **meta):
    """Save a :class:`QATJSCC`: ``model.json`` (config, spec, channel, meta) + TF checkpoint
    ``weights`` (QAT models do not save as .h5/.keras)."""
    os.makedirs(directory, exist_ok=True)
    info = {"family": "swin-qat", "config": model.config.to_dict(), "quant": model.spec.to_dict(),
            "channel_type": model.channel_type, "channel_kwargs": model.channel_kwargs,
            "cbr": model.cbr, "meta": meta}
    model.save_weights(os.path.join(directory, "weights"))
    with open(os.path.join(directory, QAT_FILE), "w") as f:
        json.dump(info, f, indent=2)
    return directory


def load_qat(directory, channel_type=None, **channel_kwargs):
    """Load a :func:`save_qat` folder into a :class:`QATJSCC` (channel overridable)."""
    path = os.path.join(directory, QAT_FILE)
    if not os.path.exists(path):
        raise ValueError(f"{directory!r} is not a QAT model folder (no {QAT_FILE})")
    with open(path) as f:
        info = json.load(f)
    if info.get("family") != "swin-qat":
        raise ValueError(f"{directory!r} holds a {info.get('family')!r} model, not swin-qat")
    config = CodecConfig.from_dict(info["config"])
    if channel_type is None:
        channel_type, channel_kwargs = info["channel_type"], info.get("channel_kwargs", {})
    with quantize_scope():
        model = QATJSCC(config, info["quant"], channel_type=channel_type,
                        channel_kwargs=channel_kwargs)
    model.build_for()
    model.load_weights(os.path.join(directory, "weights")).expect_partial()
    model.meta = info.get("meta", {})
    return model
