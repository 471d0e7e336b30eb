"""One registry of codec families: the Swin codec and the learned CNN baselines.

All families share the :class:`fqliscs_tf.codec.JSCC` contract (``call((image,
snr_db))`` -> dict, ``set_channel``, ``cbr``, ``build_for``, ``config``), so the
trainer, evaluation and export/load work on any of them.
"""
from .baselines import ADJSCC, CNNConfig, DeepJSCC, cnn_config
from .codec import JSCC
from .presets import CodecConfig, get_config

__all__ = ["MODELS", "model_families", "model_class", "family_of", "model_config", "build_model"]

MODELS = {"swin": JSCC, "deepjscc": DeepJSCC, "adjscc": ADJSCC}


def model_families():
    return sorted(MODELS)


def model_class(family):
    """The model class of ``family``; ValueError naming the families if unknown."""
    if family not in MODELS:
        raise ValueError(f"unknown model family {family!r}; choose one of {model_families()}")
    return MODELS[family]


def family_of(model):
    """The registry name of ``model``'s class (exact type, not a subclass)."""
    for name, cls in MODELS.items():
        if type(model) is cls:
            return name
    raise ValueError(f"{type(model).__name__} is not a registered model class")


def model_config(family, preset_or_config, C=None):
    """The configuration of a ``family`` model.

    ``preset_or_config`` is a preset name (``"lite"``, ``"cifar10"``, ...), a config
    object of the family, or its ``to_dict()`` (as in ``model.json``). With a preset
    name, ``C`` is the Swin latent width (the command line's ``--C``); the CNN
    families get the same CBR (see :func:`fqliscs_tf.baselines.cnn_config`). With a
    config, ``C`` replaces its ``C`` field.
    """
    cls = model_class(family)
    config_class = CodecConfig if cls is JSCC else CNNConfig
    if isinstance(preset_or_config, str):
        if cls is JSCC:
            return get_config(preset_or_config, **({} if C is None else {"C": C}))
        return cnn_config(family, preset_or_config, C=C)
    cfg = preset_or_config
    if isinstance(cfg, dict):
        cfg = config_class.from_dict(cfg)
    if not isinstance(cfg, config_class):
        raise ValueError(f"model family {family!r} needs a preset name or a "
                         f"{config_class.__name__}, got {type(cfg).__name__}")
    return cfg if C is None else cfg.replace(C=C)


def build_model(family, preset_or_config, C=None, channel_type="awgn", channel_kwargs=None):
    """A new (unbuilt) ``family`` model; arguments as in :func:`model_config`.

    >>> build_model("deepjscc", "lite", C=96).cbr   # c = 6 at 1/4 downsampling
    0.0625
    """
    cfg = model_config(family, preset_or_config, C=C)
    return MODELS[family](cfg, channel_type, channel_kwargs)
