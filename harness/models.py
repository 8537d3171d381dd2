"""Model builders a case may name.

Parameters are declared with pydantic so a case file is validated (and its
limits enforced) without importing Keras; Keras is imported only when a model
is built, inside a worker process.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import Field

from .registry import Component, Params, Registry

__all__ = ["MODELS", "ModelBuilder", "ModelParams", "build_model", "output_spec", "LayersModel", "LAYER_ARGS",
           "LayerSpecError", "check_layer", "layer_arg_table", "build_layers_model", "layers_output_spec", "MAX_PARAMS"]

Activation = Literal["relu", "tanh", "sigmoid", "linear", "elu", "selu", "softmax", "softplus", "leaky_relu", "gelu"]
Initializer = Literal["glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "zeros", "ones",
                      "random_normal", "lecun_normal", "orthogonal"]


class ModelParams(Params):
    """What every named model shares: its output head, initialisation and whether it trains."""
    output_activation: Activation | Literal["auto"] = Field(
        "auto", description="auto: sigmoid (binary), softmax (multiclass), linear (regression)")
    output_units: int | Literal["auto"] = Field("auto", description="auto: 1 (binary, regression) or n_classes")
    kernel_initializer: Initializer = Field(
        "glorot_uniform", description="hidden layers only: the output layer keeps glorot_uniform (write the model as "
                                      "`layers:` to set the output layer's initializer)")
    init_scale: float = Field(1.0, gt=0, le=1e4, description="std of random_normal initialisation (hidden layers)")
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


# ---------------------------------------------------------------- models written as Keras layers

#: The layer classes a case may name, each with the arguments it may set (beyond the ones every layer
#: takes): a curated table so `validate` checks a layer without importing Keras, and so the case format
#: can never reach Lambda, TFSMLayer or a custom object. Values are the expected Python types.
_COMMON_ARGS: dict[str, tuple] = {"name": (str,), "trainable": (bool,), "dtype": (str,)}
_DENSE_ARGS: dict[str, tuple] = {
    "activation": (str,), "use_bias": (bool,), "kernel_initializer": (str, dict), "bias_initializer": (str, dict),
    "kernel_regularizer": (str, dict, type(None)), "bias_regularizer": (str, dict, type(None)),
    "activity_regularizer": (str, dict, type(None)), "kernel_constraint": (str, dict, type(None)),
    "bias_constraint": (str, dict, type(None))}
_RNN_ARGS: dict[str, tuple] = {
    "units": (int,), "activation": (str,), "recurrent_activation": (str,), "use_bias": (bool,),
    "kernel_initializer": (str, dict), "recurrent_initializer": (str, dict), "bias_initializer": (str, dict),
    "dropout": (float, int), "recurrent_dropout": (float, int), "return_sequences": (bool,),
    "return_state": (bool,), "go_backwards": (bool,), "unroll": (bool,),
    "kernel_regularizer": (str, dict, type(None)), "recurrent_regularizer": (str, dict, type(None))}
_CONV_ARGS: dict[str, tuple] = {
    "filters": (int,), "kernel_size": (int, list), "strides": (int, list), "padding": (str,),
    "dilation_rate": (int, list), "groups": (int,), "data_format": (str, type(None)), **_DENSE_ARGS}
_POOL_ARGS: dict[str, tuple] = {"pool_size": (int, list), "strides": (int, list, type(None)), "padding": (str,),
                                "data_format": (str, type(None))}
LAYER_ARGS: dict[str, dict[str, tuple]] = {
    "Dense": {"units": (int,), **_DENSE_ARGS},
    "Dropout": {"rate": (float, int), "seed": (int, type(None))},
    "BatchNormalization": {"axis": (int,), "momentum": (float,), "epsilon": (float,), "center": (bool,),
                           "scale": (bool,)},
    "LayerNormalization": {"axis": (int, list), "epsilon": (float,), "center": (bool,), "scale": (bool,)},
    "Activation": {"activation": (str,)},
    "Flatten": {"data_format": (str, type(None))},
    "Reshape": {"target_shape": (list,)},
    "Conv1D": _CONV_ARGS, "Conv2D": _CONV_ARGS,
    "MaxPooling1D": _POOL_ARGS, "MaxPooling2D": _POOL_ARGS,
    "AveragePooling1D": _POOL_ARGS, "AveragePooling2D": _POOL_ARGS,
    "GlobalAveragePooling1D": {"data_format": (str, type(None)), "keepdims": (bool,)},
    "GlobalAveragePooling2D": {"data_format": (str, type(None)), "keepdims": (bool,)},
    "GlobalMaxPooling1D": {"data_format": (str, type(None)), "keepdims": (bool,)},
    "LSTM": _RNN_ARGS, "GRU": {**_RNN_ARGS, "reset_after": (bool,)}, "SimpleRNN": _RNN_ARGS,
    "Embedding": {"input_dim": (int,), "output_dim": (int,), "embeddings_initializer": (str, dict),
                  "mask_zero": (bool,)},
    "LeakyReLU": {"negative_slope": (float, int)},
    "ReLU": {"max_value": (float, int, type(None)), "negative_slope": (float, int), "threshold": (float, int)},
    "Softmax": {"axis": (int,)},
    "GaussianNoise": {"stddev": (float, int), "seed": (int, type(None))},
}
#: The objects a layer argument ending in _initializer, _regularizer or _constraint may name as a mapping,
#: short {L1L2: {l1: 0.01}} or long {class_name: L1L2, config: {l1: 0.01}} (a string such as "he_normal"
#: is Keras's own name for one and is passed through), each with the arguments it takes.
_SEED = {"seed": (int, type(None))}
NESTED_ARGS: dict[str, dict[str, dict[str, tuple]]] = {
    "initializer": {
        "Zeros": {}, "Ones": {}, "Constant": {"value": (float, int)},
        "RandomNormal": {"mean": (float, int), "stddev": (float, int), **_SEED},
        "RandomUniform": {"minval": (float, int), "maxval": (float, int), **_SEED},
        "TruncatedNormal": {"mean": (float, int), "stddev": (float, int), **_SEED},
        **{k: dict(_SEED) for k in ("GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "LecunNormal",
                                    "LecunUniform")},
        "Orthogonal": {"gain": (float, int), **_SEED}, "Identity": {"gain": (float, int)},
        "VarianceScaling": {"scale": (float, int), "mode": (str,), "distribution": (str,), **_SEED}},
    "regularizer": {"L1": {"l1": (float, int)}, "L2": {"l2": (float, int)},
                    "L1L2": {"l1": (float, int), "l2": (float, int)},
                    "OrthogonalRegularizer": {"factor": (float, int), "mode": (str,)}},
    "constraint": {"MaxNorm": {"max_value": (float, int), "axis": (int, list)},
                   "MinMaxNorm": {"min_value": (float, int), "max_value": (float, int), "rate": (float, int),
                                  "axis": (int, list)},
                   "NonNeg": {}, "UnitNorm": {"axis": (int, list)}},
}

#: Arguments that size a layer's weights, and the most any one may be.
_SIZE_ARGS = {"units": 4096, "filters": 1024, "input_dim": 100_000, "output_dim": 1024}
#: The most weights a layers model may hold: beyond it a worker runs out of memory or time.
MAX_PARAMS = 5_000_000


class LayerSpecError(ValueError):
    """A layer a case names that no build would accept; `where` is its path below `model`."""

    def __init__(self, where: str, message: str):
        self.where = where
        super().__init__(message)


def layer_entry(spec: Any) -> tuple[str, dict]:
    """(class_name, config) from the short form {Dense: {...}} or the long form {class_name:, config:}."""
    if isinstance(spec, dict) and "class_name" in spec:
        extra = set(spec) - {"class_name", "config"}
        if extra:
            raise LayerSpecError("", f"unknown key '{sorted(extra)[0]}'; the long form takes class_name and config")
        name, cfg = spec["class_name"], spec.get("config", {})
    elif isinstance(spec, dict) and len(spec) == 1:
        name, cfg = next(iter(spec.items()))
    else:
        raise LayerSpecError("", "expected one layer: {ClassName: {argument: value}} or {class_name:, config:}")
    if cfg is None:
        cfg = {}
    if not isinstance(name, str) or not isinstance(cfg, dict):
        raise LayerSpecError("", "expected a class name and a mapping of its arguments")
    return name, cfg


def types_ok(value: Any, types: tuple) -> bool:
    """`value` is one of `types`, where a bool is not an int (YAML's `true` is no unit count)."""
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def type_names(types: tuple) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


def check_nested(kind: str, value: Any) -> Any:
    """An initializer, regularizer or constraint given as a mapping, checked against NESTED_ARGS and returned
    in the long form Keras deserializes ({class_name:, config:}); a string or null is returned as it is."""
    from .registry import suggest

    if not isinstance(value, dict):
        return value
    table = NESTED_ARGS[kind]
    try:
        name, cfg = layer_entry(value)
    except LayerSpecError as e:
        raise LayerSpecError("", f"expected one {kind}: {{ClassName: {{argument: value}}}} or "
                                 f"{{class_name:, config:}} ({e})") from None
    if name not in table:
        raise LayerSpecError(f".{name}", f"unknown {kind} class '{name}'; {suggest(name, sorted(table))}"
                                         f"valid: {', '.join(sorted(table))}")
    for arg, v in cfg.items():
        if arg not in table[name]:
            takes = ", ".join(sorted(table[name])) or "no arguments"
            raise LayerSpecError(f".{name}.{arg}", f"{name} takes no argument '{arg}'; "
                                                   f"{suggest(str(arg), sorted(table[name]))}takes: {takes}")
        if not types_ok(v, table[name][arg]):
            raise LayerSpecError(f".{name}.{arg}", f"expected {type_names(table[name][arg])}, got {v!r}")
    return {"class_name": name, "config": dict(cfg)}


def layer_arg_table(name: str) -> dict[str, tuple]:
    """Every argument an allowlisted layer class takes, with its allowed Python types."""
    return {**_COMMON_ARGS, **LAYER_ARGS[name]}


def check_layer(spec: Any) -> tuple[str, dict]:
    """The class and config of one layer, checked against the allowlist and its argument table."""
    from .registry import suggest

    name, cfg = layer_entry(spec)
    if name not in LAYER_ARGS:
        raise LayerSpecError("", f"layer '{name}' is not allowed; {suggest(name, sorted(LAYER_ARGS))}"
                                 f"allowed: {', '.join(sorted(LAYER_ARGS))}")
    args = layer_arg_table(name)
    for arg, value in cfg.items():
        if arg not in args:
            raise LayerSpecError(f".{name}.{arg}", f"{name} takes no argument '{arg}'; "
                                                   f"{suggest(str(arg), sorted(args))}takes: {', '.join(sorted(args))}")
        if not types_ok(value, args[arg]):
            raise LayerSpecError(f".{name}.{arg}", f"expected {type_names(args[arg])}, got {value!r}")
        kind = str(arg).rpartition("_")[2]
        if kind in NESTED_ARGS:
            try:
                cfg = {**cfg, arg: check_nested(kind, value)}
            except LayerSpecError as e:
                raise LayerSpecError(f".{name}.{arg}{e.where}", str(e)) from None
        if arg in _SIZE_ARGS and not 1 <= value <= _SIZE_ARGS[arg]:
            raise LayerSpecError(f".{name}.{arg}", f"expected 1..{_SIZE_ARGS[arg]}, got {value}")
        if arg in ("rate", "dropout", "recurrent_dropout") and not 0 <= value < 1:
            raise LayerSpecError(f".{name}.{arg}", f"expected a rate in [0, 1), got {value}")
    return name, cfg


def estimate_params(layers: list[tuple[str, dict]], n_inputs: int | None = None) -> int:
    """An upper-bound-ish count of the weights of the Dense/recurrent/embedding layers, knowing only the
    unit counts: enough to refuse `units: 30000` twice before a worker tries to allocate it."""
    total, width = 0, n_inputs or 1
    for name, cfg in layers:
        if name == "Dense":
            total += (width + 1) * cfg.get("units", 1)
            width = cfg.get("units", 1)
        elif name in ("LSTM", "GRU", "SimpleRNN"):
            gates = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[name]
            u = cfg.get("units", 1)
            total += gates * (width * u + u * u + u)
            width = u
        elif name == "Embedding":
            total += cfg.get("input_dim", 1) * cfg.get("output_dim", 1)
            width = cfg.get("output_dim", 1)
        elif name in ("Conv1D", "Conv2D"):
            width = cfg.get("filters", width)
    return total


class LayersModel(Params):
    """A model written as Keras writes it: a list of layers (keras.layers vocabulary) and model-level
    `trainable`. Built by Keras's own deserialization in safe mode over LAYER_ARGS' allowlist."""
    layers: list[Any] = Field(min_length=1, max_length=32,
                              description="each {ClassName: {argument: value}} or {class_name:, config:}")
    trainable: bool = Field(True, description="false freezes the whole model")

    @property
    def name(self) -> str:
        """What a named model's `name` says, for code that branches on the model kind."""
        return "layers"

    def checked(self) -> list[tuple[str, dict]]:
        """Every layer checked; a LayerSpecError's `where` starts with `layers.<index>`."""
        out = []
        for i, spec in enumerate(self.layers):
            try:
                out.append(check_layer(spec))
            except LayerSpecError as e:
                raise LayerSpecError(f"layers.{i}{e.where}", str(e)) from None
        n = estimate_params(out)
        if n > MAX_PARAMS:
            raise LayerSpecError("layers", f"about {n:,} weights (counting one input feature); a case may have at "
                                           f"most {MAX_PARAMS:,}: use fewer units")
        return out


def build_layers_model(spec: LayersModel, input_shape: tuple):
    """keras.Sequential from the allowlisted layers, each deserialized by keras.layers.deserialize (safe mode:
    no lambdas, no custom objects), so a case's arguments mean exactly what Keras's documentation says."""
    import keras

    layers = [keras.Input(shape=input_shape)]
    for name, cfg in spec.checked():
        layers.append(keras.layers.deserialize({"class_name": name, "config": dict(cfg), "module": "keras.layers"}))
    model = keras.Sequential(layers)
    model.trainable = spec.trainable
    return model


def layers_output_spec(spec: LayersModel) -> tuple[int, str]:
    """The units and activation of the last layer that has them (what the record's model summary reports)."""
    units, act = 0, "linear"
    for name, cfg in spec.checked():
        if "units" in cfg:
            units, act = cfg["units"], cfg.get("activation", "linear") or "linear"
        elif name == "Activation":
            act = cfg.get("activation", act)
        elif name == "Softmax":
            act = "softmax"
    return units, act
