"""Deep MLPs for the vanishing-gradient experiments, plain and residual.

References:
- Glorot & Bengio, "Understanding the difficulty of training deep feedforward
  neural networks", AISTATS 2010 (sigmoid/tanh stacks, Glorot init).
- He et al., "Delving Deep into Rectifiers", ICCV 2015 (He init for ReLU).
- Klambauer et al., "Self-Normalizing Neural Networks", NeurIPS 2017 (SELU,
  LeCun init, alpha dropout).
- Ioffe & Szegedy, "Batch Normalization", ICML 2015.
- He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, and
  "Identity Mappings in Deep Residual Networks", ECCV 2016 (skip connections
  with the activation inside the branch, so the skip path is a pure identity).

The initializer is matched to the activation (``initializer="auto"``), so
depth alone is what the experiments vary.
"""
from __future__ import annotations

import keras

from models import _layers
from models._registry import Family, register_model
from models.errors import ModelConfigError
from utils.checks import is_number
from utils.images import IMAGE_SHAPE


# --- building blocks ---------------------------------------------------------

def _dense_unit(x, cfg: dict, units: int, name: str, activate: bool = True):
    """Dense -> [BatchNorm] -> [activation]; the bias is dropped under batch
    norm because BN's beta already provides the shift."""
    bn = cfg["batch_norm"]
    init = _layers.initializer_for(cfg["activation"], cfg["initializer"])
    x = keras.layers.Dense(units, use_bias=not bn, kernel_initializer=init, name=name)(x)
    if bn:
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    if activate:
        x = _layers.apply_activation(x, cfg["activation"], f"{name}_act")
    return x


def _dropout(x, cfg: dict, name: str):
    if not cfg["dropout"]:
        return x
    # Plain dropout would break SELU's self-normalisation; alpha dropout keeps it.
    selu = _layers.activation_name(cfg["activation"]) == "selu"
    layer = keras.layers.AlphaDropout if selu else keras.layers.Dropout
    return layer(cfg["dropout"], name=name)(x)


def _unit_params(cfg: dict, n_in: int, units: int, activate: bool = True) -> int:
    bn = cfg["batch_norm"]
    total = _layers.dense_params(n_in, units, bias=not bn) + (4 * units if bn else 0)
    return total + (_layers.activation_params(cfg["activation"], (units,)) if activate else 0)


def _head(x, cfg: dict):
    x = keras.layers.Dense(cfg["num_classes"], name="output")(x)
    return _layers.apply_activation(x, cfg["output_activation"], "output_act")


def _head_params(cfg: dict, n_in: int) -> int:
    return (_layers.dense_params(n_in, cfg["num_classes"])
            + _layers.activation_params(cfg["output_activation"], (cfg["num_classes"],)))


def _validate(cfg: dict) -> None:
    _layers.positive_int(cfg, "depth")
    _layers.positive_int(cfg, "width")
    if not isinstance(cfg["batch_norm"], bool):
        raise ModelConfigError(f"batch_norm must be True or False. "
                               f"Received: batch_norm={cfg['batch_norm']!r}")
    rate = cfg["dropout"]
    if not (is_number(rate) and 0 <= rate < 1):
        raise ModelConfigError(f"dropout must be a rate in [0, 1). Received: dropout={rate!r}")
    _layers.check_initializer(cfg)


_COMMON = dict(
    input_shape=IMAGE_SHAPE,
    num_classes=10,
    activation="relu",
    output_activation="softmax",
    batch_norm=False,
    dropout=0.0,
    initializer="auto",   # He / Glorot / LeCun from the activation
)


# --- deep_mlp ----------------------------------------------------------------

def _build_deep(cfg: dict) -> keras.Model:
    inputs, x = _layers.input_and_flatten(cfg["input_shape"])
    for i in range(1, cfg["depth"] + 1):
        x = _dense_unit(x, cfg, cfg["width"], f"hidden_{i}")
        x = _dropout(x, cfg, f"hidden_{i}_dropout")
    return keras.Model(inputs, _head(x, cfg))


def _count_deep(cfg: dict) -> int:
    w = cfg["width"]
    return (_unit_params(cfg, _layers.features(cfg["input_shape"]), w)
            + (cfg["depth"] - 1) * _unit_params(cfg, w, w)
            + _head_params(cfg, w))


DEEP_MLP = Family(
    name="deep_mlp",
    defaults=dict(_COMMON, depth=4, width=128),
    build=_build_deep,
    count_params=_count_deep,
    validate=_validate,
    reference="Glorot & Bengio (2010); He et al. (2015); Klambauer et al. (2017) for SELU",
)


@register_model
def deep_mlp(**overrides):
    """Plain deep MLP, 4 x 128 ReLU hidden layers by default (depth/width configurable)."""
    return DEEP_MLP.variant(overrides)


@register_model
def deep_mlp_8x64(**overrides):
    """Eight ReLU layers of 64 units with He init: the deep baseline."""
    return DEEP_MLP.variant(overrides, depth=8, width=64)


@register_model
def deep_mlp_sigmoid_8x64(**overrides):
    """Eight sigmoid layers of 64 units with Glorot init: shows vanishing gradients."""
    return DEEP_MLP.variant(overrides, depth=8, width=64, activation="sigmoid")


@register_model
def deep_mlp_16x32_bn(**overrides):
    """Sixteen ReLU layers of 32 units with batch norm after every Dense."""
    return DEEP_MLP.variant(overrides, depth=16, width=32, batch_norm=True)


@register_model
def deep_mlp_selu_8x128(**overrides):
    """Eight self-normalising SELU layers of 128 units with LeCun-normal init."""
    return DEEP_MLP.variant(overrides, depth=8, width=128, activation="selu")


# --- residual_mlp ------------------------------------------------------------

def _build_residual(cfg: dict) -> keras.Model:
    inputs, x = _layers.input_and_flatten(cfg["input_shape"])
    # The stem projects the input to `width` so every skip is a pure identity.
    x = _dense_unit(x, cfg, cfg["width"], "stem")
    for i in range(1, cfg["depth"] + 1):
        # Identity mapping (He et al. 2016b): the activation stays inside the
        # branch, x_{l+1} = x_l + F(x_l), so the skip path from the head back to
        # the stem crosses no saturating unit. With the activation after the
        # addition (ResNet v1) a sigmoid net multiplies the gradient by
        # sigmoid' <= 1/4 once per block on the skip path too.
        h = _dense_unit(x, cfg, cfg["width"], f"block_{i}_dense_1")
        h = _dropout(h, cfg, f"block_{i}_dropout")
        h = _dense_unit(h, cfg, cfg["width"], f"block_{i}_dense_2", activate=False)
        x = keras.layers.Add(name=f"block_{i}_add")([x, h])
    x = _layers.apply_activation(x, cfg["activation"], "final_act")
    return keras.Model(inputs, _head(x, cfg))


def _count_residual(cfg: dict) -> int:
    w = cfg["width"]
    block = _unit_params(cfg, w, w) + _unit_params(cfg, w, w, activate=False)
    return (_unit_params(cfg, _layers.features(cfg["input_shape"]), w)
            + cfg["depth"] * block
            + _layers.activation_params(cfg["activation"], (w,))
            + _head_params(cfg, w))


RESIDUAL_MLP = Family(
    name="residual_mlp",
    defaults=dict(_COMMON, depth=4, width=64),
    build=_build_residual,
    count_params=_count_residual,
    validate=_validate,
    reference="He et al., 'Identity Mappings in Deep Residual Networks', ECCV 2016",
)


@register_model
def residual_mlp(**overrides):
    """Residual MLP: stem + 4 blocks of two 64-unit Dense layers with identity skips."""
    return RESIDUAL_MLP.variant(overrides)


@register_model
def residual_mlp_8x64(**overrides):
    """Eight residual blocks of width 64 (17 Dense layers deep) with ReLU."""
    return RESIDUAL_MLP.variant(overrides, depth=8, width=64)


@register_model
def residual_mlp_sigmoid_8x64(**overrides):
    """Eight sigmoid residual blocks: skips let gradients bypass saturated units."""
    return RESIDUAL_MLP.variant(overrides, depth=8, width=64, activation="sigmoid")


@register_model
def residual_mlp_16x32_bn(**overrides):
    """Sixteen residual blocks of width 32 with batch norm (33 Dense layers deep)."""
    return RESIDUAL_MLP.variant(overrides, depth=16, width=32, batch_norm=True)
