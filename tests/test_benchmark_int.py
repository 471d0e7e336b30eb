"""experiments.benchmark_int: parsing of --int8-variants (no export)."""
import pytest

from experiments.benchmark_int import build_parser, format_psnr_table, parse_int8_variants
from fqliscs_tf.engine.tflite import TwinOptions


def test_presets_match_twin_options_xnnpack():
    variants = parse_int8_variants("xnnpack, xnnpack_all")
    assert list(variants) == ["xnnpack", "xnnpack_all"]
    assert TwinOptions(activations="int8", **variants["xnnpack"]) == TwinOptions.xnnpack()
    assert (TwinOptions(activations="int8", **variants["xnnpack_all"])
            == TwinOptions.xnnpack(gelu="sigmoid", softmax="mlp"))
    fold = parse_int8_variants("xnnpack_fold")["xnnpack_fold"]
    assert (TwinOptions(activations="int8", **fold)
            == TwinOptions.xnnpack(gelu="sigmoid", softmax="elu", fold_norm=True))
    fit = parse_int8_variants("xnnpack_fit")["xnnpack_fit"]
    assert (TwinOptions(activations="int8", **fit)
            == TwinOptions.xnnpack(gelu="engine", softmax="elu", fold_norm=True))
    assert parse_int8_variants("f=layer_norm:mlp;fold_norm:TRUE") == {
        "f": {"layer_norm": "mlp", "fold_norm": True}}


def test_custom_spec_and_cli_flag():
    assert parse_int8_variants("ln=layer_norm:mlp;gelu:tanh,") == {
        "ln": {"layer_norm": "mlp", "gelu": "tanh"}}
    assert parse_int8_variants("") == {}
    args = build_parser().parse_args(["--int8-variants", "xnnpack,sm=softmax:mlp"])
    assert args.int8_variants == {"xnnpack": {"layer_norm": "mlp", "gelu": "erf"},
                                  "sm": {"softmax": "mlp"}}
    assert build_parser().parse_args([]).int8_variants == {}


@pytest.mark.parametrize("spec, message", [
    ("nope", "unknown int8 variant preset 'nope'"),
    ("a=colour:red", "unknown key 'colour'"),
    ("a=gelu:relu", "bad value 'relu' for key 'gelu'"),
    ("a=layer_norm", "expected key:value, got 'layer_norm'"),
    ("a=gelu:", "expected key:value"),
    ("a=", "no key:value given"),
    ("a=gelu:tanh;gelu:erf", "key 'gelu' given twice"),
    ("xnnpack,xnnpack", "'xnnpack' given twice"),
    ("a b=gelu:tanh", "variant name"),
    ("a=fold_norm:yes", "fold_norm must be true or false, got 'yes'"),
    ("a=fold_norm:true", "int8 variant 'a': fold_norm needs layer_norm='mlp'"),
])
def test_bad_specs_raise_value_error(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_int8_variants(spec)


def test_bad_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--int8-variants", "a=softmax:fast"])
    assert "bad value 'fast' for key 'softmax'" in capsys.readouterr().err


def test_psnr_table_has_variant_columns():
    row = {"size": "256x256", "snr_db": 1.0, "engine": [30.0], "tflite_16x8": [29.9],
           "tflite_16x8_delta_db": -0.1, "tflite_int8": [29.5], "tflite_int8_delta_db": -0.5,
           "tflite_int8[xnnpack]": [29.4], "tflite_int8[xnnpack]_delta_db": -0.6}
    table = format_psnr_table([row])
    assert "tflite_int8[xnnpack] | delta |" in table.splitlines()[0]
    assert table.splitlines()[-1].endswith("| 29.400 | -0.600 |")
