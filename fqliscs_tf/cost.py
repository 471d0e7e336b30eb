"""Analytical compute cost of a codec: multiply-accumulates (MACs) per image.

Counted: every Dense/Conv weight product and the two attention matmuls (Q K^T and
A V). Not counted: LayerNorm, softmax, GELU, additions and the mask products,
which are O(tokens x channels) and a few percent at most.
"""
from .presets import CodecConfig

__all__ = ["count_macs"]


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
