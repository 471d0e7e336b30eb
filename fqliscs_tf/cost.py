"""Analytical compute cost of a codec: multiply-accumulates (MACs) per image.

Counted: every Dense/Conv weight product and the two attention matmuls (Q K^T and
A V). Not counted: LayerNorm, softmax, GELU, additions and the mask products,
which are O(tokens x channels) and a few percent at most.
"""
from .presets import CodecConfig

__all__ = ["count_macs", "count_nonlinear", "bops"]


def _swin_block(tokens, dim, window_size, mlp_ratio):
    dense = tokens * dim * dim * (3 + 1 + 2 * mlp_ratio)
    attention = 2 * tokens * window_size ** 2 * dim
    return dense, attention


def _modnet(tokens, dim, hidden, layers, mod_hidden):
    per_token = dim * hidden + (layers - 1) * hidden * hidden + hidden * dim
    per_image = layers * (mod_hidden + mod_hidden * mod_hidden + mod_hidden * hidden)
    return tokens * per_token + per_image


def count_macs(cfg: CodecConfig, height, width):
    """MACs for one ``height x width`` image, split by part.

    Returns a dict with ``encoder``, ``decoder``, ``attention`` (the attention
    matmuls, included in the encoder/decoder totals), ``modnet`` (likewise) and ``total``.
    """
    ws, r = cfg.window_size, cfg.mlp_ratio
    p = cfg.patch_size
    hid = int(cfg.embed_dims[-1] * cfg.modnet_hidden_ratio)
    mod_hidden = cfg.modulator_hidden or hid
    attention = 0
    # Encoder.
    h, w = height // p, width // p
    enc = h * w * cfg.embed_dims[0] * 3 * p * p
    prev = None
    for i, (dim, depth) in enumerate(zip(cfg.embed_dims, cfg.depths)):
        if i > 0:
            h, w = h // 2, w // 2
            enc += h * w * 4 * prev * dim
        for _ in range(depth):
            dense, att = _swin_block(h * w, dim, ws, r)
            enc += dense + att
            attention += att
        prev = dim
    last = cfg.embed_dims[-1]
    modnet = 2 * _modnet(h * w, last, hid, cfg.modnet_layers, mod_hidden)
    enc += modnet // 2 + h * w * last * cfg.C
    # Decoder (mirror).
    dims = cfg.embed_dims[::-1]
    dec = h * w * cfg.C * dims[0] + modnet // 2
    for i, (dim, depth) in enumerate(zip(dims, cfg.depths[::-1])):
        for _ in range(depth):
            dense, att = _swin_block(h * w, dim, ws, r)
            dec += dense + att
            attention += att
        lastst = i == len(dims) - 1
        f = p if lastst else 2
        out = 3 if lastst else dims[i + 1]
        dec += h * w * dim * f * f * out
        h, w = h * f, w * f
    return {"encoder": int(enc), "decoder": int(dec), "attention": int(attention),
            "modnet": int(modnet), "total": int(enc + dec)}


def count_nonlinear(cfg: CodecConfig, height, width):
    """Elements passed through each nonlinear op for one image (encoder + decoder).

    Returns a dict: ``gelu``, ``softmax`` (attention logits), ``layernorm``
    (normalised elements) and ``sigmoid`` (ModNet gates, modulators excluded).
    """
    ws, r = cfg.window_size, cfg.mlp_ratio
    counts = {"gelu": 0, "softmax": 0, "layernorm": 0, "sigmoid": 0}
    h, w = height // cfg.patch_size, width // cfg.patch_size
    stage_tokens = []
    for i, dim in enumerate(cfg.embed_dims):
        if i > 0:
            counts["layernorm"] += (h // 2) * (w // 2) * 4 * cfg.embed_dims[i - 1]  # merge norm
            h, w = h // 2, w // 2
        stage_tokens.append((h * w, dim))
    for (tokens, dim), depth, heads in zip(stage_tokens, cfg.depths, cfg.num_heads):
        per_block = {"gelu": tokens * int(dim * r), "softmax": tokens * ws * ws * heads,
                     "layernorm": 2 * tokens * dim}
        for key, val in per_block.items():
            counts[key] += 2 * depth * val  # encoder and decoder
    last_tokens, last = stage_tokens[-1]
    counts["layernorm"] += last_tokens * last  # encoder output norm
    counts["sigmoid"] += 2 * last_tokens * last  # ModNet gates
    for tokens, dim in stage_tokens:  # decoder reverse-merging norms
        counts["layernorm"] += tokens * dim
    return {k: int(v) for k, v in counts.items()}


def bops(macs, weight_bits, act_bits, attention_macs=0):
    """Bit operations: ``MACs x b_w x b_a``; attention matmuls multiply two activations.

    ``macs`` includes ``attention_macs``, which are counted as ``b_a x b_a``.
    """
    return int((macs - attention_macs) * weight_bits * act_bits + attention_macs * act_bits ** 2)
