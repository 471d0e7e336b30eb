"""Inverse of the engine export: integer parameters -> quantization-aware codec.

:func:`qat_from_engine` builds the :class:`~fqliscs_tf.quant.qat.QATJSCC` of an engine
export's config and spec (``engine.json`` records both) and writes every value the engine
holds into it, so that :func:`~fqliscs_tf.engine.export.export_integer_codec` of the result
gives the same integer parameters (int8 kernels, int32 biases, dyadic multipliers bit for
bit). Use it where an engine export must serve as a QAT model (the TFLite exporter, the
fake-quantized simulation, fine-tuning).

What is stored and how it is inverted
-------------------------------------
* Activation scales (``scales`` of ``engine.json``: every Swin, merging, norm and head grid,
  the ModNet's ``bm*_fc3`` and ``out``): exact. The ``ActRange`` absmax is the float32 ``a``
  with ``float32(a) / qmax == scale`` (unique except in the top ~1 % of a binade, where two
  neighbouring absmax values give the same scale and the same fake-quant).
* Kernel scales are not stored: the per-channel weight scale ``s_w`` is recovered from the
  multiplier of the requantization that follows the layer,
  ``s_w = (m * 2**(shift - 31)) * s_out / s_in``. The Q31 multiplier has a relative error
  <= 2**-31, far below a float32 ulp (2**-23), so the nearest float32 is the original scale
  (each is checked: re-quantizing the multiplier must give back ``(m, shift)``). The TF-MOT
  range variables get ``max = -min = hi`` with ``float32(2 hi / 254) == s_w``; the kernel is
  ``int8 * s_w``, whose per-channel fake-quant is exact.
* The ModNet stores neither the scales of its hidden points (``bm*_fc1``, ``bm*_fc2``,
  ``sm*``, ``mod*``) nor its kernel scales, only their ratios. Each unknown scale is found
  by an exhaustive search over the 2**23 float32 mantissas (the candidates whose per-channel
  weight scales re-quantize to every stored multiplier of that layer; one survives in
  practice). Its power of two is a free *gauge*: scaling a hidden scale, the kernel and bias
  before it by ``2**g`` and the kernel after it by ``2**-g`` changes neither the integer
  parameters nor the QAT forward pass (exactly). It is not recoverable; it is chosen so that
  the kernels of each chain (``fc1 -> fc2 -> fc3`` of a modulator, ``sm0 -> ... -> out``) have
  equal RMS weights in the log2 sense (rounded to powers of two). On the shipped
  ``lite_c96_awgn_int`` this gives the original gauges for 8 of its 10 chains (checked against
  its float initialization ``lite_c96_awgn``); two are off by a factor 2 at one hidden point.
* Biases: ``b = int32 * s_in * s_w`` (float32): the same int32 back for ``|b| < 2**23`` LSB.
  The original float bias's sub-LSB part is lost, the one difference in the QAT forward pass
  (a bias moves by < 0.5 accumulator LSB).
* Relative-position bias tables: ``int * s_q s_k``; the QAT graph rounds the table to that
  grid anyway, so its forward pass is unchanged. The shifted-window mask is a constant.
* LayerNorm gamma/beta are stored as floats: exact.

A zero multiplier (a weight column of zeros, or a real multiplier < 2**-32) loses its
channel's weight scale; such a channel gets scale 0. Counts of the checks end up in
``model.meta["from_engine"]``.
"""
import math
import os

import numpy as np

from fqliscs_tf.engine.export import _f32, _mult, _sublayer, act_scale, load_integer_codec
from fqliscs_tf.quant.fakequant import IMAGE_SCALE

__all__ = ["qat_from_engine"]

_TRIES = (0, 1, -1, 2, -2, 3, -3)  # float32 ulps tried around an estimate


# --------------------------------------------------------------------------- float32 helpers
def _ulps(x, k):
    """``x`` moved by ``k`` float32 ulps (elementwise)."""
    x = np.asarray(x, np.float32)
    toward = np.float32(np.inf) if k > 0 else np.float32(-np.inf)
    for _ in range(abs(k)):
        x = np.nextafter(x, toward)
    return x


def _q31(real):
    """Vectorized :func:`~fqliscs_tf.quant.fixedpoint.quantize_multiplier` (int64 arrays)."""
    real = np.asarray(real, np.float64)
    mant, exp = np.frexp(real)
    q = np.floor(mant * 2.0 ** 31 + 0.5)
    up = q == 2.0 ** 31
    q, exp = np.where(up, q / 2, q), exp + up
    zero = (real == 0) | (exp < -31)
    return np.where(zero, 0, q).astype(np.int64), np.where(zero, 0, exp).astype(np.int64)


def _pair(pair):
    m, s = pair
    return np.atleast_1d(np.asarray(m, np.int64)), np.atleast_1d(np.asarray(s, np.int64))


def _real(pair):
    m, s = _pair(pair)
    return m * np.exp2((s - 31).astype(np.float64))


def _absmax(scale, bits):
    """float32 ``a`` with ``act_scale(a, bits) == scale`` (the ActRange variable; 0, i.e.
    never calibrated, for the floor scale ``1e-8 / qmax``)."""
    if scale == act_scale(0.0, bits):
        return 0.0
    qmax = 2 ** (bits - 1) - 1
    guess = np.float32(scale * qmax)
    for k in _TRIES:
        a = _ulps(guess, k)
        if act_scale(a, bits) == scale:
            return float(a)
    raise ValueError(f"no float32 activation range gives the scale {scale!r} ({bits} bits)")


def _range_of(sw):
    """float32 ``hi`` per channel with ``float32(2 hi / 254) == sw`` (NaN where there is none)."""
    sw = np.asarray(sw, np.float32)
    guess = (sw * np.float32(127.0)).astype(np.float32)
    hi = np.full_like(sw, np.nan)
    for k in _TRIES:
        cand = _ulps(guess, k)
        ok = np.isnan(hi) & ((cand + cand) / np.float32(254.0) == sw)
        hi[ok] = cand[ok]
    return hi


# --------------------------------------------------------------------------- weight scales
class _Report:
    def __init__(self):
        self.channels = self.unmatched = self.zero = self.bias_mismatches = 0
        self.searches, self.ambiguous, self.gauges, self.part = 0, [], {}, ""
        self.unmatched_layers = []

    def as_dict(self):
        return {"kernel_channels": self.channels, "unmatched_channels": self.unmatched,
                "unmatched_layers": self.unmatched_layers,
                "zero_multiplier_channels": self.zero, "bias_mismatches": self.bias_mismatches,
                "scale_searches": self.searches, "ambiguous_searches": self.ambiguous,
                "gauges": self.gauges}


def _matches(sw, s_in, s_out, m, s):
    """Does the export's ``(f64(s_in) * f64(sw)) / s_out`` quantize to ``(m, s)``?"""
    mm, ss = _q31(np.float64(s_in) * np.asarray(sw, np.float32).astype(np.float64) / s_out)
    return (mm == m) & (ss == s)


def _weight_scale(pair, s_in, s_out, report, what):
    """Per-channel float32 kernel scales from a multiplier ``s_in * s_w / s_out``."""
    m, s = _pair(pair)
    s_out = np.broadcast_to(np.asarray(s_out, np.float64), m.shape)
    guess = (_real(pair) * s_out / np.float64(s_in)).astype(np.float32)
    sw, ok = np.zeros_like(guess), m == 0
    for k in _TRIES:
        cand = _ulps(guess, k)
        fix = ~ok & _matches(cand, s_in, s_out, m, s) & ~np.isnan(_range_of(cand))
        sw[fix], ok = cand[fix], ok | fix
    report.channels += m.size
    report.zero += int(np.sum(m == 0))
    report.unmatched += int(np.sum(~ok))
    if not np.all(ok):  # keep the estimate; the re-export then differs in those channels
        sw[~ok] = guess[~ok]
        report.unmatched_layers.append(what)
    return sw


def _mantissa_candidates(real, s_in):
    """Output scales ``M * 2**-23`` (all float32 mantissas ``M``) for which the channel's
    weight scale ``real * s_out / s_in`` lies within ~2**-29 (relative) of a float32: a cheap
    filter (about 1 in 16 passes) before the exact check."""
    k = real / s_in * 2.0 ** -23  # weight scale = k * M
    _, e = math.frexp(k * 2.0 ** 23)
    big = math.ldexp(k, 24 - e)  # t = M * big in [2**23, 2**25): the float32 mantissa grid
    out = []
    for start in range(2 ** 23, 2 ** 24, 2 ** 21):
        mant = np.arange(start, start + 2 ** 21, dtype=np.float64)
        t = mant * big
        t = np.where(t >= 2.0 ** 24, t * 0.5, t)
        out.append(mant[np.abs(t - np.rint(t)) <= t * 2.0 ** -29])
    return np.concatenate(out) * 2.0 ** -23


def _search_scale(pair, s_in, bits, report, what):
    """An unknown output scale (mantissa exact, exponent: [1, 2)) from the multipliers of a
    layer with unknown kernel scales: every float32 mantissa is tried."""
    m, s = _pair(pair)
    real = _real(pair)
    cands = None
    for c in np.flatnonzero(m):
        if cands is None:
            cands = _mantissa_candidates(real[c], s_in)
        sw = (real[c] * cands / s_in).astype(np.float32)
        cands = cands[_matches(sw, s_in, cands, m[c], s[c])]
    report.searches += 1
    if cands is None or not len(cands):
        raise ValueError(f"{what}: no float32 scale reproduces the stored multipliers")
    realizable = [c for c in cands if _realizable(c, bits)]
    cands = realizable or list(cands)
    if len(cands) > 1:
        report.ambiguous.append(what)
    return float(cands[0])


def _realizable(scale, bits):
    try:
        _absmax(scale, bits)
        return True
    except ValueError:
        return False


def _mod_scale(pair, s_sm, bits, what):
    """``s_mod`` with ``quantize_multiplier(s_sm * 2**-(bits-1) / s_mod) == pair``."""
    m, s = _pair(pair)
    guess = np.float32(s_sm * 2.0 ** -(bits - 1) / _real(pair)[0])
    for k in _TRIES:
        cand = float(_ulps(guess, k))
        mm, ss = _mult(s_sm * 2.0 ** -(bits - 1) / cand)  # as the export computes it
        if (int(mm[0]), int(ss[0])) == (int(m[0]), int(s[0])) and _realizable(cand, bits):
            return cand
    raise ValueError(f"{what}: no float32 scale reproduces the stored multiplier")


def _log_rms(w, sw):
    x = np.asarray(w, np.float64) * np.asarray(sw, np.float64)
    rms = math.sqrt(float(np.mean(x ** 2)))
    return math.log2(rms) if rms > 0 else 0.0


def _gauges(kernels):
    """Powers of two of the hidden scales of a chain of kernels (``[(w, sw)]``): the chain's
    kernels get ``2**(g[k] - g[k-1])``; chosen to equalize their log2 RMS weights."""
    logs = np.array([_log_rms(w, sw) for w, sw in kernels])
    return [int(g) for g in np.round(np.cumsum(logs.mean() - logs)[:-1])]


# --------------------------------------------------------------------------- per layer
# Each returns ``(kernels, ranges, floats)``: ``kernels[path] = (int8 w, int32 b, float32
# s_w, s_in)``; ``ranges[(sublayer path, name)] = scale``; ``floats[(sublayer path,
# attribute)] = value``.
def _swin_block(layer, arrays, s, nxt, spec, report):
    kern = {}
    dim = layer.dim
    out_qkv = np.concatenate([np.full(dim, s["q"] / layer.scale), np.full(dim, s["k"]),
                              np.full(dim, s["v"])])
    for path, key, s_in, s_out in (("qkv", "qkv", s["norm1"], out_qkv),
                                   ("proj", "proj", s["attn"], s["mid"]),
                                   ("fc1", "1", s["norm2"], s["fc1"]),
                                   ("fc2", "2", s["gelu"], nxt)):
        sw = _weight_scale(arrays[f"m_{path}"], s_in, s_out, report, f"{s['name']}.{path}")
        kern[path] = (arrays[f"w{key}"], arrays[f"b{key}"], sw, s_in)
    ranges = {("", "input"): s["in"], ("", "mid"): s["mid"]}
    ranges.update({("", n): s[n] for n in ("norm1", "q", "k", "v", "attn", "norm2", "fc1",
                                           "gelu")})
    floats = {("norm1", "gamma"): s["norm1_gamma"], ("norm1", "beta"): s["norm1_beta"],
              ("norm2", "gamma"): s["norm2_gamma"], ("norm2", "beta"): s["norm2_beta"],
              ("", "relative_position_bias_table"):
                  np.asarray(arrays["rel_table"], np.float64) * s["logit"]}
    return kern, ranges, floats


def _patch_embed(layer, arrays, s, nxt, spec, report):
    s_in = _f32(IMAGE_SCALE)
    sw = _weight_scale(arrays["m_out"], s_in, nxt, report, f"{s['name']}.proj")
    return {"proj": (arrays["w"], arrays["b"], sw, s_in)}, {}, {}


def _merging(path):
    def inverse(layer, arrays, s, nxt, spec, report):
        target = _f32(IMAGE_SCALE) if s.get("image_output") else nxt
        sw = _weight_scale(arrays["m_out"], s["norm"], target, report, f"{s['name']}.{path}")
        return ({path: (arrays["w"], arrays["b"], sw, s["norm"])},
                {("", "input"): s["in"], ("", "norm"): s["norm"]},
                {("norm", "gamma"): s["norm_gamma"], ("norm", "beta"): s["norm_beta"]})
    return inverse


def _output_norm(layer, arrays, s, nxt, spec, report):
    return {}, {("", "input"): s["in"], ("", "output"): s["out"]}, {
        ("", "gamma"): s["norm_gamma"], ("", "beta"): s["norm_beta"]}


def _head(layer, arrays, s, nxt, spec, report):
    sw = _weight_scale(arrays["m_out"], s["in"], s["out"], report, f"{s['name']}.kernel")
    return {"": (arrays["w"], arrays["b"], sw, s["in"])}, {
        ("", "input"): s["in"], ("", "output"): s["out"]}, {}


def _modnet(layer, arrays, s, nxt, spec, report):
    r8, name = spec.act_bits, f"{report.part}.{s['name']}"
    kern, ranges = {}, {("", "out"): s["out"]}
    snr = s["snr"]
    for i in range(s["num_layers"]):  # SNR modulators: snr -> fc1 -> fc2 -> fc3 (known)
        bm, chain, scales = f"layers_bm.{i}", [], []
        s_in = snr
        for fc in ("fc1", "fc2", "fc3"):
            pair = arrays[f"bm{i}_{fc}_m"]
            if fc == "fc3":
                s_out = s[f"bm{i}_fc3"]
            else:
                s_out = _search_scale(pair, s_in, r8, report, f"{name}.bm{i}.{fc}")
            sw = _weight_scale(pair, s_in, s_out, report, f"{name}.bm{i}.{fc}")
            chain.append([f"{bm}.{fc}", arrays[f"bm{i}_{fc}_w"], arrays[f"bm{i}_{fc}_b"], sw,
                          s_in])
            scales.append([(bm, fc), s_out])
            s_in = s_out
        _apply_gauges(chain, scales[:-1], report, f"{name}.bm{i}", kern, ranges)
        ranges[(bm, "fc3")] = scales[-1][1]
    chain, scales, s_in = [], [], s["x"]  # x -> sm0 -> mod0 -> sm1 ... -> out (known)
    for i in range(s["num_layers"]):
        pair = arrays[f"sm{i}_m"]
        s_sm = _search_scale(pair, s_in, r8, report, f"{name}.sm{i}")
        sw = _weight_scale(pair, s_in, s_sm, report, f"{name}.sm{i}")
        chain.append([f"layers_sm.{i}", arrays[f"sm{i}_w"], arrays[f"sm{i}_b"], sw, s_in])
        s_mod = _mod_scale(arrays[f"mod{i}_m"], s_sm, r8, f"{name}.mod{i}")
        scales.append([("", f"sm{i}"), s_sm, ("", f"mod{i}"), s_mod])
        s_in = s_mod
    sw = _weight_scale(arrays["out_m"], s_in, s["out"], report, f"{name}.out")
    chain.append(["out", arrays["out_w"], arrays["out_b"], sw, s_in])
    _apply_gauges(chain, scales, report, f"{name}.sm", kern, ranges)
    return kern, ranges, {}


def _apply_gauges(chain, scales, report, what, kern, ranges):
    """Scale the hidden scales of a chain by their gauges (powers of two, exact) and store
    kernels and ranges. ``scales[k]`` lists ``(range key, scale)`` pairs after kernel k."""
    gauges = _gauges([(w, sw) for _, w, _, sw, _ in chain])
    report.gauges[what] = gauges
    g_prev, g_all = 0, gauges + [0]
    for k, (path, w, b, sw, s_in) in enumerate(chain):
        g_in, g = g_prev, g_all[k]
        kern[path] = (w, b, np.ldexp(sw, g - g_in).astype(np.float32),
                      math.ldexp(s_in, g_in) if k else s_in)
        if k < len(scales):
            items = scales[k]
            for j in range(0, len(items), 2):
                ranges[items[j]] = math.ldexp(items[j + 1], g)
        g_prev = g


_KINDS = {"swin_block": _swin_block, "patch_embed": _patch_embed,
          "patch_merging": _merging("reduction"), "patch_reverse_merging": _merging("increment"),
          "output_norm": _output_norm, "head": _head, "modnet": _modnet}


# --------------------------------------------------------------------------- writing
def _write_kernels(wrapper, kern, report):
    layer = wrapper.layer
    for path, (weight, _, qvars) in zip(layer.kernels, wrapper._weight_vars):
        w, b, sw, s_in = kern[path]
        sw = np.asarray(sw, np.float32)
        hi = _range_of(sw)
        hi = np.where(np.isnan(hi), sw * np.float32(127.0), hi).astype(np.float32)
        q = np.asarray(w, np.float32).reshape(weight.shape)
        weight.assign((q * sw).astype(np.float32))
        qvars["max_var"].assign(hi)
        qvars["min_var"].assign(-hi)
        dense = _sublayer(layer, path)
        if getattr(dense, "use_bias", False) and dense.bias is not None:
            acc = np.float64(s_in) * sw.astype(np.float64)
            bias = (np.asarray(b, np.float64) * acc).astype(np.float32)
            dense.bias.assign(bias)
            back = np.round(bias.astype(np.float64) / np.where(acc > 0, acc, 1.0))
            report.bias_mismatches += int(np.sum((back != b) & (acc > 0)))


def _write(wrapper, kern, ranges, floats, report):
    layer = wrapper.layer
    if set(kern) != set(layer.kernels):
        raise ValueError(f"layer {layer.name!r}: kernels {sorted(kern)} != {layer.kernels}")
    _write_kernels(wrapper, kern, report)
    for (path, name), scale in ranges.items():
        r = _sublayer(layer, path).ranges[name]
        r.absmax.assign(_absmax(scale, r.bits))
    for (path, attr), value in floats.items():
        var = getattr(_sublayer(layer, path), attr)
        var.assign(np.asarray(value, np.float64).reshape(var.shape).astype(np.float32))


def _load_part(model, part, spec, report):
    report.part = model.name
    wrappers = [w for w in model.layers if getattr(w, "layer", None) is not None]
    if len(wrappers) != len(part):
        raise ValueError(f"{model.name}: the engine has {len(part)} layers, the QAT model "
                         f"{len(wrappers)}")
    for i, (wrapper, (kind, arrays, scales)) in enumerate(zip(wrappers, part)):
        if wrapper.layer.name != scales["name"]:
            raise ValueError(f"{model.name}: engine layer {i} is {scales['name']!r}, the QAT "
                             f"model's {wrapper.layer.name!r}")
        nxt = part[i + 1][2]["in"] if i + 1 < len(part) else None
        kern, ranges, floats = _KINDS[kind](wrapper.layer, arrays, scales, nxt, spec, report)
        _write(wrapper, kern, ranges, floats, report)


def qat_from_engine(params_or_dir, channel_type=None, **channel_kwargs):
    """The :class:`~fqliscs_tf.quant.qat.QATJSCC` whose engine export is ``params_or_dir``.

    Parameters
    ----------
    params_or_dir : IntegerParams or str
        Engine parameters, or a folder written by
        :func:`~fqliscs_tf.engine.export.save_integer_codec` (e.g. a shipped ``*_int`` model).
    channel_type, channel_kwargs : channel of the QAT model (default: the engine's
        ``meta["channel_type"]``, else ``"awgn"``).

    Returns
    -------
    QATJSCC, built, with ``meta``: the engine's meta plus ``from_engine`` (source folder and
    the recovery checks: ``unmatched_channels`` and ``bias_mismatches`` are 0 for a
    bit-identical re-export; the ModNet ``gauges``).
    See the module docstring for what is exactly invertible.
    """
    from fqliscs_tf.quant.qat import QATJSCC, quantize_scope
    source = None
    if isinstance(params_or_dir, (str, os.PathLike)):
        source = os.fspath(params_or_dir)
        params = load_integer_codec(source)
    else:
        params = params_or_dir
    if channel_type is None:
        channel_type = params.meta.get("channel_type", "awgn")
    with quantize_scope():
        model = QATJSCC(params.config, params.spec, channel_type=channel_type,
                        channel_kwargs=channel_kwargs)
    model.build_for()
    report = _Report()
    _load_part(model.encoder, params.encoder, params.spec, report)
    _load_part(model.decoder, params.decoder, params.spec, report)
    model.meta = dict(params.meta, from_engine={"source": source, **report.as_dict()})
    return model
