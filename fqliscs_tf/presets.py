"""Named codec configurations (presets) and their validation."""
import dataclasses
from typing import Tuple

__all__ = ["CodecConfig", "ConfigMixin", "PRESETS", "get_config", "preset_names", "cbr"]


def cbr(C, num_downsamplings):
    """Channel bandwidth ratio k/n = C / (2^(2i) * 3 * 2) for ``i`` 2x downsamplings.

    k = complex channel uses, n = real source values (3*H*W).
    """
    return C / (2 ** (2 * num_downsamplings) * 3 * 2)


class ConfigMixin:
    """``replace`` and JSON round trips for the frozen config dataclasses."""

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        """Inverse of :meth:`to_dict`; JSON lists become tuples, unknown keys are an error."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclasses.dataclass(frozen=True)
class CodecConfig(ConfigMixin):
    """Architecture of a Swin JSCC encoder/decoder pair (WITT / SwinJSCC family).

    ``embed_dims``, ``depths`` and ``num_heads`` describe the encoder stages from
    high to low resolution; the decoder mirrors them. The total downsampling is
    ``patch_size * 2**(len(depths)-1)`` and must be a power of two.
    """
    name: str
    embed_dims: Tuple[int, ...]
    depths: Tuple[int, ...]
    num_heads: Tuple[int, ...]
    window_size: int
    C: int
    patch_size: int = 2
    mlp_ratio: float = 4.0
    modnet_layers: int = 7          # WITT: 7 SNR-modulated layers
    modnet_hidden_ratio: float = 1.5  # WITT: hidden = 1.5 * last embed dim
    modulator_hidden: int = 0       # 0: same as the ModNet hidden width (WITT)

    def __post_init__(self):
        n = len(self.embed_dims)
        if not (len(self.depths) == n == len(self.num_heads)) or n == 0:
            raise ValueError(f"embed_dims {self.embed_dims}, depths {self.depths} and num_heads "
                             f"{self.num_heads} must be non-empty and of equal length")
        for d, h in zip(self.embed_dims, self.num_heads):
            if d % h:
                raise ValueError(f"embed dim {d} is not divisible by {h} heads")
        if self.C < 1:
            raise ValueError(f"C must be a positive number of latent channels, got {self.C}")
        if self.window_size < 1 or self.patch_size < 1:
            raise ValueError(f"window_size={self.window_size} and patch_size={self.patch_size} "
                             "must be positive")
        if self.patch_size & (self.patch_size - 1):
            raise ValueError(f"patch_size={self.patch_size} must be a power of two")

    @property
    def downsampling(self):
        """Total spatial downsampling factor of the encoder."""
        return self.patch_size * 2 ** (len(self.depths) - 1)

    @property
    def num_downsamplings(self):
        """``i`` in the CBR formula: the number of 2x downsamplings."""
        return self.downsampling.bit_length() - 1

    @property
    def size_multiple(self):
        """Image sides must be multiples of this: the last stage holds whole windows."""
        return self.downsampling * self.window_size

    @property
    def cbr(self):
        return cbr(self.C, self.num_downsamplings)

    @property
    def modnet_hidden(self):
        return int(self.embed_dims[-1] * self.modnet_hidden_ratio)


PRESETS = {
    # WITT / SwinJSCC-base for CIFAR-10 (i = 2).
    "cifar10": CodecConfig("cifar10", (128, 256), (2, 4), (4, 8), window_size=2, C=16),
    # WITT / SwinJSCC-base for DIV2K / Kodak (i = 4): ~28.2 M parameters.
    "div2k": CodecConfig("div2k", (128, 192, 256, 320), (2, 2, 6, 2), (4, 6, 8, 10),
                         window_size=8, C=96),
    # Our CPU / edge design (i = 4): thin high-resolution stages, where WITT spends most
    # of its MACs, a deeper low-resolution stage, and a slimmer SNR ModNet.
    "lite": CodecConfig("lite", (32, 64, 128, 160), (1, 1, 2, 1), (2, 4, 4, 5),
                        window_size=8, C=96, modnet_layers=4, modnet_hidden_ratio=1.0,
                        modulator_hidden=64),
}
PRESETS["base"] = PRESETS["div2k"].replace(name="base")


def preset_names():
    return sorted(PRESETS)


def get_config(name, **overrides):
    """The preset called ``name`` with fields replaced by ``overrides`` (e.g. ``C=32``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {preset_names()}")
    cfg = PRESETS[name]
    return cfg.replace(**overrides) if overrides else cfg
