"""Cost report: parameters, weight bytes, MACs and BOPs for every codec preset.

    fqliscs-cost --size 256 256 --size 512 768 --output experiments/results/cost.json

BOPs = MACs x b_w x b_a (attention matmuls: b_a x b_a). Float32 is 32 x 32 bits;
the quantized codec is W8A8 by default. Nonlinear ops (GELU, softmax, LayerNorm,
sigmoid) are reported separately as element counts.
"""
import argparse
import json
import os
import sys

__all__ = ["main", "cost_table"]


def cost_table(presets, sizes, weight_bits=8, act_bits=8, C=None):
    """One row per (preset, size): parameters, weight bytes, MACs, BOPs, nonlinear counts."""
    from fqliscs_tf.codec import build_decoder, build_encoder
    from fqliscs_tf.cost import bops, count_macs, count_nonlinear
    from fqliscs_tf.presets import get_config
    rows = []
    for name in presets:
        cfg = get_config(name, **({"C": C} if C else {}))
        params = build_encoder(cfg).count_params() + build_decoder(cfg).count_params()
        for (h, w) in sizes:
            if name == "cifar10":
                h, w = 32, 32
            macs = count_macs(cfg, h, w)
            rows.append({
                "preset": name, "C": cfg.C, "cbr": cfg.cbr, "height": h, "width": w,
                "params": params, "weight_bytes_float32": 4 * params,
                "weight_bytes_int": params * weight_bits // 8,
                "weight_bits": weight_bits, "act_bits": act_bits,
                "macs": macs["total"], "attention_macs": macs["attention"],
                "bops_float32": bops(macs["total"], 32, 32, macs["attention"]),
                "bops_int": bops(macs["total"], weight_bits, act_bits, macs["attention"]),
                "nonlinear_elements": count_nonlinear(cfg, h, w),
            })
            if name == "cifar10":
                break
    return rows


def _size(text):
    try:
        h, w = (int(v) for v in text.lower().replace("x", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} must be 'HxW', e.g. 256x256") from None
    return h, w


def main(argv=None):
    from fqliscs_tf.presets import preset_names
    p = argparse.ArgumentParser(prog="fqliscs-cost", description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default="lite,div2k,cifar10",
                   help="comma-separated codec presets, from: " + ", ".join(preset_names())
                        + " (default: %(default)s)")
    p.add_argument("--size", type=_size, action="append",
                   help="image size HEIGHTxWIDTH [pixels] for the high-resolution presets, "
                        "e.g. 512x768 for a landscape Kodak image; repeat the flag for several "
                        "sizes (default: 256x256 and 512x768); cifar10 is always 32x32")
    p.add_argument("--weight-bits", type=int, default=8,
                   help="bit width b_w of the quantized weights, 1-32, for the integer weight "
                        "bytes and the quantized BOPs = MACs x b_w x b_a (default: %(default)s)")
    p.add_argument("--act-bits", type=int, default=8,
                   help="bit width b_a of the quantized activations, 1-32; attention matmuls "
                        "(activation x activation) count b_a x b_a (default: %(default)s)")
    p.add_argument("--output", default=None,
                   help="also write the rows (with provenance) to this JSON file; parent "
                        "folders are created (default: print the Markdown table only)")
    args = p.parse_args(argv)
    presets = [s.strip() for s in args.presets.split(",") if s.strip()]
    for name in presets:
        if name not in preset_names():
            p.error(f"unknown preset {name!r}; choose from {preset_names()}")
    for b in (args.weight_bits, args.act_bits):
        if not 1 <= b <= 32:
            p.error(f"bit widths must be in 1..32, got {b}")
    rows = cost_table(presets, args.size or [(256, 256), (512, 768)], args.weight_bits,
                      args.act_bits)
    print(f"| preset | image | params [M] | fp32 weights [MB] | int{args.weight_bits} weights [MB] "
          f"| GMAC | fp32 TBOPs | W{args.weight_bits}A{args.act_bits} TBOPs | BOPs ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['preset']} | {r['height']}x{r['width']} | {r['params'] / 1e6:.3f} "
              f"| {r['weight_bytes_float32'] / 1e6:.2f} | {r['weight_bytes_int'] / 1e6:.2f} "
              f"| {r['macs'] / 1e9:.2f} | {r['bops_float32'] / 1e12:.2f} "
              f"| {r['bops_int'] / 1e12:.3f} | {r['bops_float32'] / r['bops_int']:.1f}x |")
    if args.output:
        from fqliscs_tf.utils import provenance
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w") as f:
            json.dump({"name": "cost", "meta": provenance(command=" ".join(sys.argv)),
                       "results": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
