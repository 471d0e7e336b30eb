# SPDX-FileCopyrightText: fqliscs_tf contributors
# SPDX-License-Identifier: Apache-2.0
"""Channel configuration files and parameter validation helpers.

A channel configuration is a channel type name plus keyword arguments of its
layer, e.g. (JSON)::

    {"channel_type": "ofdm-tdl",
     "model": "C", "delay_spread": 300e-9, "max_speed": 30.0,
     "estimator": "ls-lin"}

Load it with :func:`load_channel_config` and build the link with
``JSCCLink(channel_type, **kwargs)`` or ``get_channel(channel_type, **kwargs)``.
Parameters may also be nested under a ``"params"`` key. YAML files
(``.yaml``/``.yml``) are read if PyYAML is importable; JSON always works.

Validation happens when the file is loaded: unknown channel types, unknown
parameter names and invalid values raise ``ValueError`` naming the parameter.
"""
import inspect
import json
import math
import numbers
import os

from .channels import lookup_channel

__all__ = [
    "load_channel_config",
    "save_channel_config",
    "validate_channel_config",
    "check_choice",
    "check_int",
    "check_number",
    "check_unknown_kwargs",
]

#: Keras ``Layer`` constructor arguments accepted by every channel layer
LAYER_KWARGS = ("name", "trainable", "dtype", "dynamic")


# ------------------------------------------------------------------ validators

def check_choice(name, value, choices, *, upper=False):
    """Returns ``value`` (lower- or upper-cased) if it is one of ``choices``.

    Raises ``ValueError("Invalid <name> <value>; valid values: ...")`` otherwise.
    """
    if isinstance(value, str):
        norm = value.upper() if upper else value.lower()
        if norm in choices:
            return norm
    raise ValueError(
        f"Invalid {name} {value!r}; valid values: {', '.join(map(repr, choices))}")


def check_number(name, value, *, minimum=None, maximum=None, strict_min=False,
                 allow_none=False):
    """Returns ``float(value)`` after checking it is a finite real in range.

    ``minimum`` is exclusive if ``strict_min`` is `True`. ``None`` is
    returned unchanged if ``allow_none`` is `True`.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    value = float(value)
    if minimum is not None and (value < minimum or (strict_min and value == minimum)):
        rel = ">" if strict_min else ">="
        raise ValueError(f"{name} must be {rel} {minimum:g}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum:g}, got {value!r}")
    return value


def check_int(name, value, *, minimum=None, maximum=None, allow_none=False):
    """Returns ``int(value)`` after checking it is an integer in range."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value!r}")
    return value


def check_unknown_kwargs(owner, kwargs, valid=()):
    """Raises ``ValueError`` naming the keys of ``kwargs`` that are neither in
    ``valid`` nor Keras layer arguments (:data:`LAYER_KWARGS`)."""
    unknown = sorted(set(kwargs) - set(valid) - set(LAYER_KWARGS))
    if unknown:
        raise ValueError(
            f"Unknown parameter(s) {', '.join(map(repr, unknown))} for {owner}"
            + (f"; valid parameters: {', '.join(sorted(valid))}" if valid else ""))


# -------------------------------------------------------------- config files

def _parameter_names(cls):
    """Explicit keyword parameters of ``cls.__init__`` (no ``self``/``**kwargs``)."""
    params = inspect.signature(cls.__init__).parameters.values()
    return tuple(p.name for p in params
                 if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))


def validate_channel_config(channel_type, kwargs):
    """Checks a channel type and its keyword arguments without building the layer.

    Input
    -----
    channel_type : `str`
        A registered channel type (see :data:`phy.CHANNEL_TYPES`)

    kwargs : `dict`
        Constructor arguments of its layer

    Output
    ------
    channel_type : `str`
        Lower-cased channel type

    kwargs : `dict`
        The arguments (a copy)

    Raises
    ------
    ValueError
        Unknown channel type, unknown parameter, a value that contradicts the
        channel type (e.g. ``channel_model`` of an "ofdm-*" type), or an
        invalid value (via the layer's ``check_params`` classmethod if it has
        one).
    """
    if not isinstance(channel_type, str):
        raise ValueError(f"channel_type must be a string, got {channel_type!r}")
    if not isinstance(kwargs, dict):
        raise ValueError(f"Channel parameters must be a mapping, got {kwargs!r}")
    cls, fixed = lookup_channel(channel_type)
    kwargs = dict(kwargs)
    for arg, value in fixed.items():
        if arg in kwargs and kwargs[arg] != value:
            raise ValueError(
                f"Channel type {channel_type!r} implies {arg}={value!r}, got {arg}={kwargs[arg]!r}")
    check = getattr(cls, "check_params", None)
    if check is None:
        check_unknown_kwargs(f"channel type {channel_type!r}", kwargs, _parameter_names(cls))
    else:  # checks names and values
        check(**{k: v for k, v in {**kwargs, **fixed}.items() if k not in LAYER_KWARGS})
    return channel_type.lower(), kwargs


def _is_yaml(path):
    return os.fspath(path).lower().endswith((".yaml", ".yml"))


def load_channel_config(path):
    """Reads a channel configuration file (JSON, or YAML if PyYAML is installed).

    The file holds one mapping with the key ``"channel_type"`` and the layer
    parameters, either at top level or under ``"params"``.

    Input
    -----
    path : `str` | `os.PathLike`
        ``*.json``, or ``*.yaml``/``*.yml``

    Output
    ------
    channel_type : `str`
        Lower-cased channel type

    kwargs : `dict`
        Validated keyword arguments for ``get_channel(channel_type, **kwargs)``
        / ``JSCCLink(channel_type, **kwargs)``

    Raises
    ------
    ValueError
        Malformed file, missing ``channel_type``, YAML requested but PyYAML
        not importable, or invalid parameters (see :func:`validate_channel_config`).
    """
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if _is_yaml(path):
        try:
            import yaml  # pylint: disable=import-outside-toplevel
        except ImportError:
            raise ValueError(
                f"Cannot read {os.fspath(path)!r}: YAML needs PyYAML (not installed); "
                "use a JSON file") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"Malformed YAML channel config {os.fspath(path)!r}: {e}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"Malformed JSON channel config {os.fspath(path)!r}: {e}") from None
    if not isinstance(data, dict) or "channel_type" not in data:
        raise ValueError(
            f"Channel config {os.fspath(path)!r} must be a mapping with a 'channel_type' key")
    data = dict(data)
    channel_type = data.pop("channel_type")
    params = data.pop("params", None)
    if params is not None:
        if data:
            raise ValueError(
                f"Channel config {os.fspath(path)!r}: give the parameters either under "
                f"'params' or at top level, not both (top level: {sorted(data)})")
        data = params
    return validate_channel_config(channel_type, data)


def save_channel_config(path, channel_type, **kwargs):
    """Validates and writes a channel configuration (JSON, or YAML by extension).

    The inverse of :func:`load_channel_config`: tuples are written as lists.
    """
    channel_type, kwargs = validate_channel_config(channel_type, kwargs)
    data = {"channel_type": channel_type, **kwargs}
    if _is_yaml(path):
        try:
            import yaml  # pylint: disable=import-outside-toplevel
        except ImportError:
            raise ValueError(
                f"Cannot write {os.fspath(path)!r}: YAML needs PyYAML (not installed); "
                "use a JSON file") from None
        text = yaml.safe_dump(json.loads(json.dumps(data)), sort_keys=False)
    else:
        text = json.dumps(data, indent=2) + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
