"""Model builders a case may name.

Parameters are declared with pydantic so a case file is validated (and its
limits enforced) without importing Keras; Keras is imported only when a model
is built, inside a worker process.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import Field

from .registry import Component, Params, Registry

__all__ = ["MODELS", "ModelBuilder", "ModelParams", "build_model", "output_spec"]

Activation = Literal["relu", "tanh", "sigmoid", "linear", "elu", "selu", "softmax", "softplus", "leaky_relu", "gelu"]
Initializer = Literal["glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "zeros", "ones",
                      "random_normal", "lecun_normal", "orthogonal"]


class ModelParams(Params):
    """What every named model shares: its output head, initialisation and whether it trains."""
    output_activation: Activation | Literal["auto"] = Field(
        "auto", description="auto: sigmoid (binary), softmax (multiclass), linear (regression)")
    output_units: int | Literal["auto"] = Field("auto", description="auto: 1 (binary, regression) or n_classes")
    kernel_initializer: Initializer = "glorot_uniform"
    init_scale: float = Field(1.0, gt=0, le=1e4, description="std of random_normal initialisation")
    trainable: bool = Field(True, description="false freezes every hidden layer")


class ModelBuilder(Protocol):
    """A model: its parameters, the input shape and the task in, an uncompiled keras.Model out."""
    def __call__(self, p: ModelParams, input_shape: tuple, task: str, n_classes: int) -> Any: ...


MODELS: Registry[Component[ModelBuilder]] = Registry("model")


def output_spec(p: ModelParams, task: str, n_classes: int) -> tuple[int, str]:
    units = p.output_units if p.output_units != "auto" else (n_classes if task == "multiclass" else 1)
    if p.output_activation != "auto":
        return units, p.output_activation
    return units, {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}[task]


def _init(p: ModelParams):
    import keras

    if p.kernel_initializer == "random_normal":
        return keras.initializers.RandomNormal(stddev=0.05 * p.init_scale)
    return p.kernel_initializer


def _head(p: ModelParams, task: str, n_classes: int):
    import keras

    units, act = output_spec(p, task, n_classes)
    return keras.layers.Dense(units, activation=act, name="output")


class MLPParams(ModelParams):
    hidden: list[int] = Field([32, 32], max_length=16, description="units per hidden layer")
    activation: Activation = "relu"
    bias_initializer: Literal["zeros", "ones", "random_normal"] | float = Field(
        "zeros", description="a number gives a constant bias (e.g. -10 kills ReLUs)")
    dropout: float = Field(0.0, ge=0, lt=1)
    l2: float = Field(0.0, ge=0, le=1)
    batch_norm: bool = False


@MODELS.component("mlp", MLPParams)
def mlp(p: MLPParams, input_shape: tuple, task: str, n_classes: int):
    """A dense network: Flatten, hidden Dense layers, task head."""
    import keras

    bias = keras.initializers.Constant(p.bias_initializer) if isinstance(p.bias_initializer, float) \
        else p.bias_initializer
    layers = [keras.Input(shape=input_shape)]
    if len(input_shape) > 1:
        layers.append(keras.layers.Flatten())
    for i, units in enumerate(p.hidden):
        if not 1 <= units <= 1024:
            raise ValueError(f"hidden[{i}]: expected 1..1024 units, got {units}")
        layers.append(keras.layers.Dense(units, activation=p.activation, kernel_initializer=_init(p),
                                         bias_initializer=bias, trainable=p.trainable,
                                         kernel_regularizer=keras.regularizers.l2(p.l2) if p.l2 else None))
        if p.batch_norm:
            layers.append(keras.layers.BatchNormalization())
        if p.dropout:
            layers.append(keras.layers.Dropout(p.dropout))
    layers.append(_head(p, task, n_classes))
    return keras.Sequential(layers)


class RNNParams(ModelParams):
    cell: Literal["lstm", "gru", "simple_rnn"] = "lstm"
    depth: int = Field(1, ge=1, le=16)
    units: int = Field(16, ge=1, le=512)
    activation: Activation = "tanh"
    recurrent_activation: Activation = "sigmoid"
    recurrent_initializer: Initializer = "orthogonal"


@MODELS.component("rnn_stack", RNNParams)
def rnn_stack(p: RNNParams, input_shape: tuple, task: str, n_classes: int):
    """A stack of recurrent layers (LSTM, GRU or SimpleRNN), last one returning its final state."""
    import keras

    layers = [keras.Input(shape=input_shape)]
    for i in range(p.depth):
        kw = dict(units=p.units, activation=p.activation, return_sequences=i < p.depth - 1,
                  kernel_initializer=_init(p), recurrent_initializer=p.recurrent_initializer,
                  trainable=p.trainable)
        if p.cell == "simple_rnn":
            layers.append(keras.layers.SimpleRNN(**kw))
        else:
            cls = keras.layers.LSTM if p.cell == "lstm" else keras.layers.GRU
            layers.append(cls(recurrent_activation=p.recurrent_activation, **kw))
    layers.append(_head(p, task, n_classes))
    return keras.Sequential(layers)


class CNNParams(ModelParams):
    filters: list[int] = Field([16, 32], max_length=8)
    kernel_size: int = Field(3, ge=1, le=7)
    activation: Activation = "relu"
    dense: int = Field(32, ge=1, le=1024)
    dropout: float = Field(0.0, ge=0, lt=1)


@MODELS.component("cnn", CNNParams)
def cnn(p: CNNParams, input_shape: tuple, task: str, n_classes: int):
    """A small convolutional network for (H, W, C) inputs such as 8x8 digits."""
    import keras

    layers = [keras.Input(shape=input_shape)]
    for f in p.filters:
        layers.append(keras.layers.Conv2D(f, p.kernel_size, padding="same", activation=p.activation,
                                          kernel_initializer=_init(p), trainable=p.trainable))
    layers += [keras.layers.Flatten(),
               keras.layers.Dense(p.dense, activation=p.activation, kernel_initializer=_init(p),
                                  trainable=p.trainable)]
    if p.dropout:
        layers.append(keras.layers.Dropout(p.dropout))
    layers.append(_head(p, task, n_classes))
    return keras.Sequential(layers)


def build_model(name: str, params: dict, input_shape: tuple, task: str, n_classes: int):
    entry = MODELS.get(name)
    return entry.fn(entry.parse(params), input_shape, task, n_classes)
