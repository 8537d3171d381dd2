"""Calibration runs for the issue-14 report drafts: each reporter's model in plain Keras on the
offline substitute data, broken vs fixed, 2 seeds. Usage: python calibrate.py NAME [NAME...]"""
import os, sys, time, json
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import keras
from keras import layers as L
from sklearn import datasets as D
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.metrics import r2_score, balanced_accuracy_score

def split(x, y, seed, val=0.2, shuffle=True, stratify=False):
    return train_test_split(x, y, test_size=val, random_state=seed, shuffle=shuffle,
                            stratify=y if stratify else None)

def seq(layer_list, input_dim):
    return keras.Sequential([keras.Input((input_dim,) if isinstance(input_dim, int) else input_dim)] + layer_list)

def run(name, variant, seed, data, build, opt, loss, fit, metrics=("accuracy",), task="clf", fit_on_val=True):
    keras.utils.set_random_seed(seed)
    xtr, xva, ytr, yva = data(seed)
    m = build(xtr.shape[1:] if len(xtr.shape) > 2 else xtr.shape[1])
    m.compile(optimizer=opt(), loss=loss, metrics=list(metrics))
    t = time.time()
    kw = dict(fit)
    if "validation_split" not in kw:
        kw["validation_data"] = (xva, yva)
    h = m.fit(xtr, ytr, verbose=0, **kw).history
    dt = time.time() - t
    out = {"case": name, "variant": variant, "seed": seed, "secs": round(dt, 1),
           "loss_first": h["loss"][0], "loss_last": h["loss"][-1],
           "nonfinite": int(not np.all(np.isfinite(h["loss"])))}
    for k in ("accuracy", "val_accuracy", "binary_accuracy", "val_binary_accuracy", "val_loss"):
        if k in h:
            out[f"best_{k}"] = float(np.nanmax(h[k])) if "loss" not in k else float(np.nanmin(h[k]))
            out[f"last_{k}"] = float(h[k][-1])
    if "validation_split" in kw:
        n = int(len(xtr) * (1 - kw["validation_split"]))
        xva, yva = xtr[n:], ytr[n:]
    p = m.predict(xva, verbose=0)
    if task == "reg":
        out["val_r2"] = float(r2_score(yva, np.nan_to_num(p.reshape(yva.shape), nan=0.0, posinf=1e30, neginf=-1e30)))
        out["pred_std"] = float(np.nanstd(p))
    elif task == "clf":
        yt = yva.argmax(1) if yva.ndim > 1 and yva.shape[1] > 1 else yva.reshape(-1).astype(int)
        pc = p.argmax(1) if p.shape[1] > 1 else (p.reshape(-1) > 0.5).astype(int)
        out["val_bal_acc"] = float(balanced_accuracy_score(yt, pc))
        out["top_class_share"] = float(np.bincount(pc).max() / len(pc))
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}), flush=True)
    return out

CASES = {}
def case(f):
    CASES[f.__name__] = f
    return f

XOR4 = (np.array([[1, 1], [1, 0], [0, 0], [0, 1]], float), np.array([[0], [1], [0], [1]], float))

@case
def xor_mae(seed):
    data = lambda s: (XOR4[0], XOR4[0], XOR4[1], XOR4[1])
    build = lambda d: seq([L.Dense(4, activation="sigmoid"), L.Dense(1, activation="sigmoid")], d)
    run("xor_mae", "broken", seed, data, build, lambda: keras.optimizers.SGD(0.05, momentum=0.11, nesterov=True),
        "mean_absolute_error", dict(epochs=200, batch_size=4))
    run("xor_mae", "fixed", seed, data, build, lambda: keras.optimizers.Adam(0.05), "mse", dict(epochs=200, batch_size=4))

XOR6 = (np.array([[1., 1.], [0., 0.], [1., 0.], [0., 1.], [1., 1.], [0., 0.]]), np.array([[0.], [0.], [1.], [1.], [0.], [0.]]))
@case
def xor6_softmax(seed):
    data = lambda s: (XOR6[0], XOR6[0], XOR6[1], XOR6[1])
    def build(out):
        return lambda d: seq([L.Dense(2, activation="sigmoid", kernel_initializer="random_uniform"),
                              L.Dense(3, activation="sigmoid", kernel_initializer="random_uniform"),
                              L.Dense(1, activation=out, kernel_initializer="random_uniform")], d)
    run("xor6_softmax", "broken", seed, data, build("softmax"), lambda: keras.optimizers.SGD(0.001, momentum=0.9, nesterov=True),
        "mse", dict(epochs=20, batch_size=32))
    run("xor6_softmax", "fixed", seed, data, build("sigmoid"), lambda: keras.optimizers.SGD(0.5, momentum=0.9, nesterov=True),
        "mse", dict(epochs=200, batch_size=6))

@case
def reg_softmax(seed):
    def data(s):
        x, y = D.make_regression(n_samples=2000, n_features=3, noise=0.4, random_state=s)
        xtr, xva, ytr, yva = split(x, y, s)
        sc = StandardScaler().fit(xtr); ys = StandardScaler().fit(ytr[:, None])
        return sc.transform(xtr), sc.transform(xva), ys.transform(ytr[:, None]).ravel(), ys.transform(yva[:, None]).ravel()
    def build(out):
        return lambda d: seq([L.Dense(3, activation="tanh"), L.Dropout(0.5), L.Dense(2, activation="tanh"), L.Dropout(0.5),
                              L.Dense(1, activation=out)], d)
    for v, out in (("broken", "softmax"), ("fixed", "linear")):
        run("reg_softmax", v, seed, data, build(out), lambda: keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
            "mse", dict(epochs=20, batch_size=32), metrics=(), task="reg")

@case
def multilabel_softmax(seed):
    def data(s):
        x, y = D.make_multilabel_classification(n_samples=6000, n_features=20, n_classes=3, random_state=s)
        return split(x.astype(float), y.astype(float), s)
    def build(out):
        return lambda d: seq([L.Dense(20, activation="relu"), L.Dropout(0.5), L.Dense(20, activation="relu"), L.Dropout(0.5),
                              L.Dense(3, activation=out)], d)
    run("multilabel", "broken", seed, data, build("softmax"), lambda: keras.optimizers.SGD(), "mse",
        dict(epochs=20, batch_size=20), metrics=("binary_accuracy",), task="none")
    run("multilabel", "fixed", seed, data, build("sigmoid"), lambda: keras.optimizers.SGD(), "binary_crossentropy",
        dict(epochs=20, batch_size=20), metrics=("binary_accuracy",), task="none")

@case
def relu_output_bce(seed):
    def data(s, scale=True):
        x, y = D.make_classification(n_samples=1000, n_features=11, n_informative=6, random_state=s)
        xtr, xva, ytr, yva = split(x, y.astype(float), s)
        if scale:
            sc = StandardScaler().fit(xtr); xtr, xva = sc.transform(xtr), sc.transform(xva)
        return xtr, xva, ytr, yva
    def build(out):
        return lambda d: seq([L.Dense(12, activation="relu", kernel_initializer="random_normal"),
                              L.Dense(12, activation="relu", kernel_initializer="random_normal"),
                              L.Dense(1, activation=out, kernel_initializer="random_normal")], d)
    run("relu_output_bce", "broken", seed, data, build("relu"), lambda: keras.optimizers.Adam(), "binary_crossentropy", dict(epochs=30, batch_size=5))
    run("relu_output_bce", "fixed", seed, data, build("sigmoid"), lambda: keras.optimizers.Adam(), "binary_crossentropy", dict(epochs=30, batch_size=5))

@case
def parabola_sigmoid(seed):
    x = np.round(np.arange(-10, 10, 0.1), 1)[:, None]; y = x[:, 0] ** 2 + 3
    data = lambda s: split(x, y, s, val=0.25)
    def build(out):
        return lambda d: seq([L.Dense(5, activation="sigmoid"), L.Dense(1, activation=out)], d)
    for v, out in (("broken", "sigmoid"), ("fixed", "linear")):
        run("parabola_sigmoid", v, seed, data, build(out), lambda: keras.optimizers.SGD(), "mse",
            dict(epochs=200, batch_size=150), metrics=(), task="reg")

@case
def digits_linear_lr3(seed):
    def data(s):
        x, y = D.load_digits(return_X_y=True)
        return split(x / 16.0, keras.utils.to_categorical(y, 10), s)
    init = lambda: keras.initializers.RandomNormal(stddev=1.0)
    b_broken = lambda d: seq([L.Dense(30, kernel_initializer=init(), bias_initializer=init()),
                              L.Dense(10, kernel_initializer=init(), bias_initializer=init())], d)
    b_fixed = lambda d: seq([L.Dense(30, activation="sigmoid", kernel_initializer=init(), bias_initializer=init()),
                             L.Dense(10, activation="softmax", kernel_initializer=init(), bias_initializer=init())], d)
    run("digits_linear_lr3", "broken", seed, data, b_broken, lambda: keras.optimizers.SGD(3.0), "mse", dict(epochs=10, batch_size=10))
    run("digits_linear_lr3", "fixed", seed, data, b_fixed, lambda: keras.optimizers.SGD(3.0), "categorical_crossentropy", dict(epochs=10, batch_size=10))

@case
def quadratic_lr(seed):
    rng = np.random.RandomState(0)
    x = np.arange(0.0, 5.0, 0.1, dtype="float32").reshape(-1, 1)
    y = 5 * x ** 2 + rng.randn(50, 1) ** 3
    data = lambda s: (x, x, y, y)
    build = lambda d: seq([L.Dense(50, activation="relu"), L.Dense(30, activation="relu", kernel_initializer="random_uniform"), L.Dense(1)], d)
    run("quadratic_lr", "broken", seed, data, build, lambda: keras.optimizers.SGD(0.1), "mse", dict(epochs=150, batch_size=32), metrics=(), task="reg")
    run("quadratic_lr", "fixed", seed, data, build, lambda: keras.optimizers.SGD(0.001), "mse", dict(epochs=150, batch_size=32), metrics=(), task="reg")

@case
def two_clusters(seed):
    def data(s):
        x, y = D.make_blobs(n_samples=400, centers=[[0.3, 0.3], [0.6, 0.6]], cluster_std=0.06, random_state=s)
        return split(x, y.astype(float), s)
    build = lambda d: seq([L.Dense(2, activation="sigmoid"), L.Dense(1, activation="sigmoid")], d)
    run("two_clusters", "broken", seed, data, build, lambda: keras.optimizers.RMSprop(), "binary_crossentropy", dict(epochs=5, batch_size=32))
    run("two_clusters", "fixed", seed, data, build, lambda: keras.optimizers.Adam(0.1), "binary_crossentropy", dict(epochs=5, batch_size=32))

@case
def iris_scaler_unused(seed):
    def data(s, scale):
        x, y = D.load_iris(return_X_y=True)
        xtr, xva, ytr, yva = split(x, keras.utils.to_categorical(y, 3), 2, val=0.5)
        if scale:
            sc = StandardScaler().fit(xtr); xtr, xva = sc.transform(xtr), sc.transform(xva)
        return xtr, xva, ytr, yva
    def build(out):
        return lambda d: seq([L.Dense(4, activation="relu", kernel_initializer="random_normal"), L.Dense(3, activation=out, kernel_initializer="random_normal")], d)
    run("iris_scaler_unused", "broken", seed, lambda s: data(s, False), build("sigmoid"), lambda: keras.optimizers.Adam(), "categorical_crossentropy", dict(epochs=50, batch_size=5))
    run("iris_scaler_unused", "fixed", seed, lambda s: data(s, True), build("softmax"), lambda: keras.optimizers.Adam(), "categorical_crossentropy", dict(epochs=50, batch_size=5))

@case
def x4_target(seed):
    x = np.arange(-100, 100, 0.5)[:, None]; y = x[:, 0] ** 4
    def data(s, scale):
        if not scale:
            return x, x, y, y
        xs = StandardScaler().fit_transform(x); ys = StandardScaler().fit_transform(y[:, None]).ravel()
        return xs, xs, ys, ys
    build = lambda d: seq([L.Dense(50, activation="sigmoid"), L.Dense(50, activation="elu"), L.Dense(1)], d)
    run("x4_target", "broken", seed, lambda s: data(s, False), build, lambda: keras.optimizers.Adam(0.01), "mse", dict(epochs=200, batch_size=400), metrics=(), task="reg")
    run("x4_target", "fixed", seed, lambda s: data(s, True), build, lambda: keras.optimizers.Adam(0.01), "mse", dict(epochs=200, batch_size=400), metrics=(), task="reg")

@case
def raw_pixels(seed):
    def data(s, div):
        x, y = D.load_digits(return_X_y=True)
        x = x * 16.0 / div
        return split(x, keras.utils.to_categorical(y, 10), s)
    def build(out):
        return lambda d: seq([L.Dense(64), L.Dense(50, activation="relu"), L.Dense(10, activation=out)], d)
    run("raw_pixels", "broken", seed, lambda s: data(s, 1.0), build("sigmoid"), lambda: keras.optimizers.SGD(1e-4), "categorical_crossentropy", dict(epochs=10, batch_size=32))
    run("raw_pixels", "fixed", seed, lambda s: data(s, 255.0), build("softmax"), lambda: keras.optimizers.SGD(1e-4), "categorical_crossentropy", dict(epochs=10, batch_size=32))
    run("raw_pixels", "fixed_lr", seed, lambda s: data(s, 255.0), build("softmax"), lambda: keras.optimizers.SGD(0.1), "categorical_crossentropy", dict(epochs=10, batch_size=32))

@case
def labels_div255(seed):
    def data(s, broken):
        x, y = D.load_digits(return_X_y=True)
        x = (x * 16.0).reshape(-1, 8, 8, 1)
        xtr, xva, ytr, yva = split(x, y.astype(float), s)
        xtr = xtr / 255
        if broken:
            ytr = ytr / 255  # the reporter's slip: the labels, not x_test, divided by 255
        else:
            xva = xva / 255
        return xtr, xva, ytr, yva
    build = lambda d: seq([L.Conv2D(64, 3, padding="same"), L.MaxPooling2D(2), L.Conv2D(32, 3, padding="same"), L.MaxPooling2D(2),
                           L.Flatten(), L.Dense(128, activation="relu"), L.Dense(10, activation="softmax")], d)
    run("labels_div255", "broken", seed, lambda s: data(s, True), build, lambda: keras.optimizers.Adam(), "sparse_categorical_crossentropy", dict(epochs=5, batch_size=32))
    run("labels_div255", "fixed", seed, lambda s: data(s, False), build, lambda: keras.optimizers.Adam(), "sparse_categorical_crossentropy", dict(epochs=5, batch_size=32))

@case
def cnn_relu_output(seed):
    def data(s):
        x, y = D.load_digits(return_X_y=True)
        return split((x / 16.0).reshape(-1, 8, 8, 1), keras.utils.to_categorical(y, 10), s)
    bi = lambda: keras.initializers.Constant(0.1)
    def build(out):
        return lambda d: seq([L.Conv2D(32, 5, padding="same", activation="relu", bias_initializer=bi()), L.MaxPooling2D(padding="same"),
                              L.Conv2D(64, 5, padding="same", activation="relu", bias_initializer=bi()), L.MaxPooling2D(padding="same"),
                              L.Flatten(), L.Dense(1024, activation="relu", bias_initializer=bi()), L.Dropout(0.5),
                              L.Dense(10, activation=out)], d)
    run("cnn_relu_output", "broken", seed, data, build("relu"), lambda: keras.optimizers.Adam(), "categorical_crossentropy", dict(epochs=5, batch_size=50))
    run("cnn_relu_output", "fixed", seed, data, build("softmax"), lambda: keras.optimizers.Adam(), "categorical_crossentropy", dict(epochs=5, batch_size=50))

@case
def valsplit_sorted(seed):
    def data(s, shuffle):
        x, y = D.load_digits(n_class=5, return_X_y=True)
        order = np.argsort(y, kind="stable")
        x, y = x[order] / 16.0, y[order]
        if shuffle:
            p = np.random.RandomState(s).permutation(len(x)); x, y = x[p], y[p]
        y = keras.utils.to_categorical(y, 5)
        return x.reshape(-1, 8, 8, 1), None, y, None
    build = lambda d: seq([L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(), L.Conv2D(16, 2, activation="relu"), L.Flatten(),
                           L.Dense(128, activation="relu"), L.Dense(64, activation="relu"), L.Dense(5, activation="softmax")], d)
    for v, sh in (("broken", False), ("fixed", True)):
        run("valsplit_sorted", v, seed, lambda s: data(s, sh), build, lambda: keras.optimizers.Adam(), "categorical_crossentropy",
            dict(epochs=10, batch_size=100, validation_split=0.2))

@case
def sine_unnorm(seed):
    def data(s, norm):
        rng = np.random.RandomState(s)
        x = rng.uniform(0, 2 * np.pi * 5, size=(2000, 1)); y = np.sin(x[:, 0]) * 10
        xtr, xva, ytr, yva = split(x, y, s)
        if norm:
            xm, xs = xtr.mean(), xtr.std(); xtr, xva = (xtr - xm) / xs, (xva - xm) / xs
            ytr, yva = ytr / 10, yva / 10
        return xtr, xva, ytr, yva
    build = lambda d: seq([L.Dense(10, activation="tanh"), L.Dense(10, activation="tanh"), L.Dense(10, activation="tanh"), L.Dense(1)], d)
    run("sine_unnorm", "broken", seed, lambda s: data(s, False), build, lambda: keras.optimizers.Adam(), "mse", dict(epochs=40, batch_size=32), metrics=(), task="reg")
    run("sine_unnorm", "fixed", seed, lambda s: data(s, True), build, lambda: keras.optimizers.Adam(), "mse", dict(epochs=40, batch_size=32), metrics=(), task="reg")

@case
def arange_gd(seed):
    rng = np.random.RandomState(20180130)
    T = 100
    noise = 10 * rng.random_sample((T, 1))
    x = np.array([np.arange(T), np.ones(T)]).T.astype(np.float32)
    y = (x @ np.array([[2], [4]]) + noise).ravel()
    def data(s, scale):
        xx = x.copy()
        if scale:
            xx[:, 0] = (xx[:, 0] - xx[:, 0].mean()) / xx[:, 0].std()
        return xx, xx, y, y
    build = lambda d: seq([L.Dense(1, use_bias=False, kernel_initializer="zeros")], d)
    run("arange_gd", "broken", seed, lambda s: data(s, False), build, lambda: keras.optimizers.SGD(0.5), "mse", dict(epochs=50, batch_size=100), metrics=(), task="reg")
    run("arange_gd", "fixed", seed, lambda s: data(s, True), build, lambda: keras.optimizers.SGD(0.5), "mse", dict(epochs=50, batch_size=100), metrics=(), task="reg")
    run("arange_gd", "fixed_lr", seed, lambda s: data(s, False), build, lambda: keras.optimizers.SGD(1e-4), "mse", dict(epochs=50, batch_size=100), metrics=(), task="reg")

@case
def big_init_relu(seed):
    def data(s):
        x, y = D.load_digits(return_X_y=True)
        return split(x / 16.0, keras.utils.to_categorical(y, 10), s)
    def build(init):
        return lambda d: seq([L.Dense(500, activation="relu", kernel_initializer=init(), bias_initializer=init()),
                              L.Dense(500, activation="relu", kernel_initializer=init(), bias_initializer=init()),
                              L.Dense(500, activation="relu", kernel_initializer=init(), bias_initializer=init()),
                              L.Dense(10, kernel_initializer=init(), bias_initializer=init())], d)
    rn = lambda: keras.initializers.RandomNormal(stddev=1.0)
    run("big_init_relu", "broken", seed, data, build(rn), lambda: keras.optimizers.Adam(), keras.losses.CategoricalCrossentropy(from_logits=True), dict(epochs=10, batch_size=100))
    run("big_init_relu", "fixed", seed, data, build(lambda: "glorot_uniform"), lambda: keras.optimizers.Adam(), keras.losses.CategoricalCrossentropy(from_logits=True), dict(epochs=10, batch_size=100))

Y2X = (np.array([[-1.0], [0.0], [1.0], [2.0], [3.0], [4.0], [5.0]]), np.array([-3.0, -1.0, 1.0, 3.0, 5.0, 7.0, 9.0]))
@case
def dying_relu_y2x(seed):
    data = lambda s: (Y2X[0], Y2X[0], Y2X[1], Y2X[1])
    def build(out):
        return lambda d: seq([L.Dense(4, activation="relu"), L.Dense(2, activation="relu"), L.Dense(1, activation=out)], d)
    run("dying_relu_y2x", "broken", seed, data, build("relu"), lambda: keras.optimizers.Adam(0.01), "mse", dict(epochs=200), metrics=(), task="reg")
    run("dying_relu_y2x", "fixed", seed, data, build("linear"), lambda: keras.optimizers.Adam(0.01), "mse", dict(epochs=200), metrics=(), task="reg")

@case
def xor_relu2(seed):
    def data(s):
        rng = np.random.RandomState(s)
        x = rng.randint(2, size=(1000, 2)).astype(float); y = (x[:, 0] != x[:, 1]).astype(float)
        xt = rng.randint(2, size=(100, 2)).astype(float); yt = (xt[:, 0] != xt[:, 1]).astype(float)
        return x, xt, y, yt
    def build(act, n):
        return lambda d: seq([L.Dense(n, activation=act), L.Dense(1, activation="sigmoid")], d)
    run("xor_relu2", "broken", seed, data, build("relu", 2), lambda: keras.optimizers.RMSprop(), "binary_crossentropy", dict(epochs=40, batch_size=4))
    run("xor_relu2", "fixed", seed, data, build("relu", 8), lambda: keras.optimizers.RMSprop(), "binary_crossentropy", dict(epochs=40, batch_size=4))

@case
def trap_dropout_val(seed):
    def data(s):
        x, y = D.make_classification(n_samples=3000, n_features=30, n_informative=10, flip_y=0.1, random_state=s)
        xtr, xva, ytr, yva = split(x, keras.utils.to_categorical(y, 2), s, val=0.3)
        sc = StandardScaler().fit(xtr); return sc.transform(xtr), sc.transform(xva), ytr, yva
    def build(rate):
        return lambda d: seq([L.Dense(250, activation="relu", kernel_initializer="random_normal", kernel_regularizer=keras.regularizers.L1L2(0.001, 0.001)),
                              L.Dropout(rate), L.Dense(2, activation="softmax", kernel_initializer="random_normal")], d)
    run("trap_dropout_val", "broken", seed, data, build(0.5), lambda: keras.optimizers.Adamax(), "categorical_crossentropy", dict(epochs=30, batch_size=10))

@case
def trap_deep_relu_multilabel(seed):
    def data(s):
        x, y = D.make_multilabel_classification(n_samples=1000, n_features=4, n_classes=1, random_state=s)
        return split(x.astype(float), y.ravel().astype(float), s)
    build = lambda d: seq([L.Dense(10, activation="relu"), L.Dense(20, activation="relu"), L.Dense(30, activation="relu"),
                           L.Dense(40, activation="relu"), L.Dense(50, activation="relu"), L.Dense(1, activation="sigmoid")], d)
    run("trap_deep_relu_multilabel", "broken", seed, data, build, lambda: keras.optimizers.Adam(), "binary_crossentropy",
        dict(epochs=30, batch_size=10))

@case
def trap_sin_direction(seed):
    t = np.arange(299)
    s0 = np.sin(2 * np.pi * t / 100.0)
    s1 = np.concatenate([[0.0], s0[:-1]])
    x = np.stack([s0, s1], 1); y = (s0 >= s1).astype(float)
    n = int(len(x) * 0.8)
    data = lambda s: (x[:n], x[n:], y[:n], y[n:])
    build = lambda d: seq([L.Dense(2, activation="relu", kernel_initializer="random_uniform"), L.Dense(2, activation="relu", kernel_initializer="random_uniform"),
                           L.Dense(1, activation="sigmoid", kernel_initializer="random_uniform")], d)
    run("trap_sin_direction", "broken", seed, data, build, lambda: keras.optimizers.Adam(), "binary_crossentropy", dict(epochs=20, batch_size=2))

@case
def adult_codes(seed):
    def data(s, scale):
        x, y = D.make_classification(n_samples=3000, n_features=14, n_informative=6, weights=[0.76], random_state=s)
        x = x.copy(); x[:, 2] = np.abs(x[:, 2]) * 1.9e5; x[:, 10] = np.abs(x[:, 10]) * 1e3; x[:, 0] = np.abs(x[:, 0]) * 20 + 17
        xtr, xva, ytr, yva = split(x, keras.utils.to_categorical(y, 2), s)
        if scale:
            sc = StandardScaler().fit(xtr); xtr, xva = sc.transform(xtr), sc.transform(xva)
        return xtr, xva, ytr, yva
    build = lambda d: seq([L.Dense(21, activation="relu"), L.Dense(2, activation="softmax")], d)
    run("adult_codes", "broken", seed, lambda s: data(s, False), build, lambda: keras.optimizers.Adam(), "categorical_crossentropy", dict(epochs=20, batch_size=100))
    run("adult_codes", "fixed", seed, lambda s: data(s, True), build, lambda: keras.optimizers.Adam(), "categorical_crossentropy", dict(epochs=20, batch_size=100))

@case
def bits_sigmoid_stack(seed):
    X = np.array([[float(c) for c in format(i, "08b")] for i in range(256)])
    def build(act, out):
        return lambda d: seq([L.Dense(8, activation=act, kernel_initializer="random_normal"), L.Dense(8, activation=act, kernel_initializer="random_normal"),
                              L.Dense(8, activation=out, kernel_initializer="random_normal")], d)
    data = lambda s: (X, X, X, X)
    run("bits", "broken", seed, data, build("sigmoid", "sigmoid"), lambda: keras.optimizers.SGD(), "mse", dict(epochs=100, batch_size=50), metrics=("binary_accuracy",), task="none")
    run("bits", "fixed", seed, data, build("relu", "sigmoid"), lambda: keras.optimizers.SGD(), "binary_crossentropy", dict(epochs=40, batch_size=4), metrics=("binary_accuracy",), task="none")

@case
def onefeat_softmax(seed):
    def data(s, fix):
        rng = np.random.RandomState(s)
        x = rng.randint(15000, 26000, size=(1000, 1)).astype(float)
        y = (rng.rand(1000) < 1 / (1 + np.exp(-(x[:, 0] - 20500) / 800))).astype(float)
        if fix:
            x = (x - x.mean()) / x.std()
        n = 800
        return x[:n], x[n:], y[:n], y[n:]
    def build(out):
        return lambda d: seq([L.Dense(1, activation="sigmoid"), L.Dense(1, activation=out, kernel_initializer="random_normal")], d)
    run("onefeat_softmax", "broken", seed, lambda s: data(s, False), build("softmax"), lambda: keras.optimizers.RMSprop(), "mean_absolute_error", dict(epochs=100, batch_size=200))
    run("onefeat_softmax", "fixed", seed, lambda s: data(s, True), build("sigmoid"), lambda: keras.optimizers.RMSprop(), "binary_crossentropy", dict(epochs=100, batch_size=200))

@case
def imbalance_fraud(seed):
    def data(s):
        x, y = D.make_classification(n_samples=20000, n_features=5, n_informative=3, n_redundant=0, weights=[0.995], class_sep=0.8, random_state=s)
        xtr, xva, ytr, yva = split(x, y.astype(float), s, stratify=True)
        sc = StandardScaler().fit(xtr); return sc.transform(xtr), sc.transform(xva), ytr, yva
    build = lambda d: seq([L.Dense(10, activation="relu"), L.Dense(10, activation="relu"), L.Dense(1, activation="sigmoid")], d)
    run("imbalance_fraud", "broken", seed, data, build, lambda: keras.optimizers.Adam(), "binary_crossentropy", dict(epochs=10, batch_size=256))
    n1 = 0.005
    run("imbalance_fraud", "fixed", seed, data, build, lambda: keras.optimizers.Adam(), "binary_crossentropy",
        dict(epochs=10, batch_size=256, class_weight={0: 0.5 / (1 - n1), 1: 0.5 / n1}))

@case
def raw_pixels_lr01(seed):
    def data(s, div):
        x, y = D.load_digits(return_X_y=True)
        return split(x * 16.0 / div, keras.utils.to_categorical(y, 10), s)
    def build(out):
        return lambda d: seq([L.Dense(64), L.Dense(50, activation="relu"), L.Dense(10, activation=out)], d)
    run("raw_pixels_lr01", "broken", seed, lambda s: data(s, 1.0), build("sigmoid"), lambda: keras.optimizers.SGD(0.1), "categorical_crossentropy", dict(epochs=10, batch_size=32))
    run("raw_pixels_lr01", "broken_softmax", seed, lambda s: data(s, 1.0), build("softmax"), lambda: keras.optimizers.SGD(0.1), "categorical_crossentropy", dict(epochs=10, batch_size=32))

@case
def relu_output_raw(seed):
    def data(s, scale):
        x, y = D.make_classification(n_samples=1000, n_features=11, n_informative=6, random_state=s)
        x = x.copy(); x[:, 0] = x[:, 0] * 1e4 + 3.2e9; x[:, 1] = x[:, 1] * 1e4 + 3.2e9; x[:, 4] = x[:, 4] * 1e3 + 5e5; x[:, 5] = x[:, 5] * 1e4 + 3e4
        xtr, xva, ytr, yva = split(x, y.astype(float), s)
        if scale:
            sc = StandardScaler().fit(xtr); xtr, xva = sc.transform(xtr), sc.transform(xva)
        return xtr, xva, ytr, yva
    def build(out):
        return lambda d: seq([L.Dense(12, activation="relu", kernel_initializer="random_normal"),
                              L.Dense(12, activation="relu", kernel_initializer="random_normal"),
                              L.Dense(1, activation=out, kernel_initializer="random_normal")], d)
    run("relu_output_raw", "broken", seed, lambda s: data(s, False), build("relu"), lambda: keras.optimizers.Adam(), "binary_crossentropy", dict(epochs=20, batch_size=5))
    run("relu_output_raw", "fixed", seed, lambda s: data(s, True), build("sigmoid"), lambda: keras.optimizers.Adam(), "binary_crossentropy", dict(epochs=20, batch_size=5))

@case
def sine2(seed):
    def data(s, norm):
        rng = np.random.RandomState(s)
        x = rng.uniform(0, 4 * np.pi, size=(2000, 1)); y = np.sin(x[:, 0]) * 10
        xtr, xva, ytr, yva = split(x, y, s)
        if norm:
            xm, xs = xtr.mean(), xtr.std(); xtr, xva = (xtr - xm) / xs, (xva - xm) / xs
            ytr, yva = ytr / 10, yva / 10
        return xtr, xva, ytr, yva
    build = lambda d: seq([L.Dense(50, activation="tanh"), L.Dense(50, activation="tanh"), L.Dense(1)], d)
    run("sine2", "broken", seed, lambda s: data(s, False), build, lambda: keras.optimizers.Adam(0.01), "mse", dict(epochs=40, batch_size=32), metrics=(), task="reg")
    run("sine2", "fixed", seed, lambda s: data(s, True), build, lambda: keras.optimizers.Adam(0.01), "mse", dict(epochs=40, batch_size=32), metrics=(), task="reg")

@case
def trap_sin_glorot(seed):
    t = np.arange(299)
    s0 = np.sin(2 * np.pi * t / 100.0)
    s1 = np.concatenate([[0.0], s0[:-1]])
    x = np.stack([s0, s1], 1); y = (s0 >= s1).astype(float)
    n = int(len(x) * 0.8)
    data = lambda s: (x[:n], x[n:], y[:n], y[n:])
    build = lambda d: seq([L.Dense(2, activation="relu"), L.Dense(2, activation="relu"), L.Dense(1, activation="sigmoid")], d)
    run("trap_sin_glorot", "broken", seed, data, build, lambda: keras.optimizers.Adam(), "binary_crossentropy", dict(epochs=20, batch_size=2))

@case
def onefeat_fixed_lr(seed):
    def data(s):
        rng = np.random.RandomState(s)
        x = rng.randint(15000, 26000, size=(1000, 1)).astype(float)
        y = (rng.rand(1000) < 1 / (1 + np.exp(-(x[:, 0] - 20500) / 800))).astype(float)
        x = (x - x.mean()) / x.std()
        return x[:800], x[800:], y[:800], y[800:]
    build = lambda d: seq([L.Dense(1, activation="sigmoid"), L.Dense(1, activation="sigmoid", kernel_initializer="random_normal")], d)
    run("onefeat_fixed_lr", "fixed", seed, data, build, lambda: keras.optimizers.RMSprop(0.05), "binary_crossentropy", dict(epochs=100, batch_size=200))

@case
def xor_sigmoid2(seed):
    def data(s):
        rng = np.random.RandomState(s)
        x = rng.randint(2, size=(1000, 2)).astype(float); y = (x[:, 0] != x[:, 1]).astype(float)
        xt = rng.randint(2, size=(100, 2)).astype(float); yt = (xt[:, 0] != xt[:, 1]).astype(float)
        return x, xt, y, yt
    for v, act, n in (("fixed_sigmoid2", "sigmoid", 2), ("fixed_tanh8", "tanh", 8)):
        build = lambda d: seq([L.Dense(n, activation=act), L.Dense(1, activation="sigmoid")], d)
        run("xor_sigmoid2", v, seed, data, build, lambda: keras.optimizers.RMSprop(), "binary_crossentropy", dict(epochs=40, batch_size=4))

@case
def xor6_adam(seed):
    data = lambda s: (XOR6[0], XOR6[0], XOR6[1], XOR6[1])
    build = lambda d: seq([L.Dense(2, activation="sigmoid", kernel_initializer="random_uniform"),
                           L.Dense(3, activation="sigmoid", kernel_initializer="random_uniform"),
                           L.Dense(1, activation="sigmoid", kernel_initializer="random_uniform")], d)
    run("xor6_adam", "fixed_adam005", seed, data, build, lambda: keras.optimizers.Adam(0.05), "mse", dict(epochs=100, batch_size=6))
    build2 = lambda d: seq([L.Dense(2, activation="sigmoid"), L.Dense(3, activation="sigmoid"), L.Dense(1, activation="sigmoid")], d)
    run("xor6_adam", "fixed_adam005_glorot", seed, data, build2, lambda: keras.optimizers.Adam(0.05), "mse", dict(epochs=100, batch_size=6))

@case
def dying_relu_seeds(seed):
    data = lambda s: (Y2X[0], Y2X[0], Y2X[1], Y2X[1])
    build = lambda d: seq([L.Dense(4, activation="relu"), L.Dense(2, activation="relu"), L.Dense(1, activation="relu")], d)
    for sd in range(10):
        run("dying_relu_seeds", "broken_lr001_50ep", sd, data, build, lambda: keras.optimizers.Adam(0.001), "mse", dict(epochs=50), metrics=(), task="reg")

@case
def bits_adam(seed):
    X = np.array([[float(c) for c in format(i, "08b")] for i in range(256)])
    data = lambda s: (X, X, X, X)
    for v, act, loss in (("broken_sigmoid_mse_adam", "sigmoid", "mse"), ("fixed_relu_bce_adam", "relu", "binary_crossentropy")):
        build = lambda d: seq([L.Dense(8, activation=act, kernel_initializer="random_normal"), L.Dense(8, activation=act, kernel_initializer="random_normal"),
                               L.Dense(8, activation="sigmoid", kernel_initializer="random_normal")], d)
        run("bits_adam", v, seed, data, build, lambda: keras.optimizers.Adam(0.01), loss, dict(epochs=60, batch_size=16), metrics=("binary_accuracy",), task="none")

@case
def bce_multiclass_metric(seed):
    def data(s):
        x, y = D.load_digits(return_X_y=True)
        return split(x / 16.0, keras.utils.to_categorical(y, 10), s)
    build = lambda d: seq([L.Dense(32, activation="relu"), L.Dense(10, activation="softmax")], d)
    for v, loss, met in (("broken_bce_accuracy", "binary_crossentropy", ("accuracy",)), ("fixed_cce_accuracy", "categorical_crossentropy", ("accuracy",))):
        run("bce_multiclass_metric", v, seed, data, build, lambda: keras.optimizers.Adamax(0.002), loss, dict(epochs=3, batch_size=32), metrics=met)

@case
def extrapolate_x2(seed):
    def data(s, extrap):
        rng = np.random.RandomState(s)
        x = rng.random_sample((4000, 1)) * 1000 - 500
        if extrap:
            xv = rng.random_sample((500, 1)) * 500 + 500     # 500..1000, outside training range
        else:
            xv = rng.random_sample((500, 1)) * 1000 - 500
        return x, xv, x[:, 0] ** 2, xv[:, 0] ** 2
    build = lambda d: seq([L.Dense(8, activation="relu", kernel_regularizer=keras.regularizers.L2(0.001)), L.Dense(1)], d)
    for v, ex in (("broken_extrapolate", True), ("fixed_inrange", False)):
        run("extrapolate_x2", v, seed, lambda s: data(s, ex), build, lambda: keras.optimizers.RMSprop(0.01), "mse", dict(epochs=30, batch_size=32), metrics=(), task="reg")

@case
def imbalance2(seed):
    def data(s):
        x, y = D.make_classification(n_samples=20000, n_features=5, n_informative=3, n_redundant=0, weights=[0.99], class_sep=1.5, random_state=s)
        xtr, xva, ytr, yva = split(x, y.astype(float), s, stratify=True)
        sc = StandardScaler().fit(xtr); return sc.transform(xtr), sc.transform(xva), ytr, yva
    build = lambda d: seq([L.Dense(10, activation="relu"), L.Dense(10, activation="relu"), L.Dense(1, activation="sigmoid")], d)
    run("imbalance2", "broken", seed, data, build, lambda: keras.optimizers.Adam(), "binary_crossentropy", dict(epochs=10, batch_size=256))
    from sklearn.utils.class_weight import compute_class_weight
    xtr, _, ytr, _ = data(seed)
    w = compute_class_weight("balanced", classes=np.array([0.0, 1.0]), y=ytr)
    run("imbalance2", "fixed_balanced", seed, data, build, lambda: keras.optimizers.Adam(), "binary_crossentropy",
        dict(epochs=10, batch_size=256, class_weight={0: float(w[0]), 1: float(w[1])}))

@case
def trap_train_vs_eval_loss(seed):
    keras.utils.set_random_seed(seed)
    rng = np.random.RandomState(seed)
    x = rng.rand(32, 100); y = rng.rand(32, 1)
    m = seq([L.Dense(1000, activation="relu"), L.Dense(1)], 100)
    m.compile(loss="mse", optimizer="adam")
    h = m.fit(x, y, batch_size=32, epochs=1, verbose=0).history
    ev = m.evaluate(x, y, verbose=0)
    h2 = m.fit(x, y, batch_size=32, epochs=20, verbose=0).history
    print(json.dumps({"case": "trap_train_vs_eval_loss", "seed": seed, "fit_loss_epoch1": h["loss"][0], "evaluate_after": ev,
                      "loss_last_of_21": h2["loss"][-1]}), flush=True)

@case
def xor6_b1(seed):
    data = lambda s: (XOR6[0], XOR6[0], XOR6[1], XOR6[1])
    build = lambda d: seq([L.Dense(2, activation="sigmoid", kernel_initializer="random_uniform"),
                           L.Dense(3, activation="sigmoid", kernel_initializer="random_uniform"),
                           L.Dense(1, activation="sigmoid", kernel_initializer="random_uniform")], d)
    run("xor6_b1", "fixed_adam005_b1", seed, data, build, lambda: keras.optimizers.Adam(0.05), "mse", dict(epochs=100, batch_size=1))
    buildb = lambda d: seq([L.Dense(2, activation="sigmoid", kernel_initializer="random_uniform"),
                           L.Dense(3, activation="sigmoid", kernel_initializer="random_uniform"),
                           L.Dense(1, activation="softmax", kernel_initializer="random_uniform")], d)
    run("xor6_b1", "broken_softmax_adam005_b1", seed, data, buildb, lambda: keras.optimizers.Adam(0.05), "mse", dict(epochs=100, batch_size=1))

@case
def missing_softmax_logits(seed):
    def data(s):
        x, y = D.load_digits(return_X_y=True)
        return split(x / 16.0, keras.utils.to_categorical(y, 10), s)
    rn = lambda: keras.initializers.RandomNormal(stddev=1.0)
    build = lambda d: seq([L.Dense(512, activation="sigmoid", use_bias=False, kernel_initializer=rn()), L.Dense(10, use_bias=False, kernel_initializer=rn())], d)
    run("missing_softmax_logits", "broken_probs_loss_on_logits", seed, data, build, lambda: keras.optimizers.SGD(0.05), keras.losses.CategoricalCrossentropy(from_logits=False), dict(epochs=10, batch_size=32))
    run("missing_softmax_logits", "broken_bce_on_logits", seed, data, build, lambda: keras.optimizers.SGD(0.05), keras.losses.BinaryCrossentropy(from_logits=False), dict(epochs=10, batch_size=32))
    run("missing_softmax_logits", "fixed_from_logits", seed, data, build, lambda: keras.optimizers.SGD(0.05), keras.losses.CategoricalCrossentropy(from_logits=True), dict(epochs=10, batch_size=32))

@case
def threshold_raw_relu(seed):
    def data(s, fix):
        rng = np.random.RandomState(s)
        threshold, samples = 50000, 1000
        x = np.concatenate([rng.randint(0, threshold, samples), rng.randint(threshold, 2 * threshold, samples)]).astype(float)[:, None]
        y = np.concatenate([np.zeros(samples), np.ones(samples)])
        p = rng.permutation(len(x)); x, y = x[p], y[p]
        if fix:
            x = (x - x.mean()) / x.std()
        n = 1600
        return x[:n], x[n:], y[:n], y[n:]
    def build(out):
        return lambda d: seq([L.Dense(3, activation="relu"), L.Dense(5, activation="relu"), L.Dense(1, activation=out)], d)
    run("threshold_raw_relu", "broken", seed, lambda s: data(s, False), build("relu"), lambda: keras.optimizers.Adam(), "binary_crossentropy", dict(epochs=10, batch_size=5))
    run("threshold_raw_relu", "fixed", seed, lambda s: data(s, True), build("sigmoid"), lambda: keras.optimizers.Adam(), "binary_crossentropy", dict(epochs=10, batch_size=5))
    run("threshold_raw_relu", "fixed_scale_only", seed, lambda s: data(s, True), build("relu"), lambda: keras.optimizers.Adam(), "binary_crossentropy", dict(epochs=10, batch_size=5))

@case
def dying_relu_fixcheck(seed):
    data = lambda s: (Y2X[0], Y2X[0], Y2X[1], Y2X[1])
    for sd in (1, 4, 5):
        for v, out in (("broken_lr001_100ep", "relu"), ("fixed_linear_lr001_100ep", "linear")):
            build = lambda d: seq([L.Dense(4, activation="relu"), L.Dense(2, activation="relu"), L.Dense(1, activation=out)], d)
            run("dying_relu_fixcheck", v, sd, data, build, lambda: keras.optimizers.Adam(0.01), "mse", dict(epochs=100), metrics=(), task="reg")

@case
def xor_mae_b1(seed):
    data = lambda s: (XOR4[0], XOR4[0], XOR4[1], XOR4[1])
    build = lambda d: seq([L.Dense(4, activation="sigmoid"), L.Dense(1, activation="sigmoid")], d)
    run("xor_mae_b1", "broken_b1", seed, data, build, lambda: keras.optimizers.SGD(0.05, momentum=0.11, nesterov=True),
        "mean_absolute_error", dict(epochs=100, batch_size=1))
    run("xor_mae_b1", "fixed_b1", seed, data, build, lambda: keras.optimizers.Adam(0.05), "mse", dict(epochs=100, batch_size=1))

@case
def dying_relu_leaky(seed):
    data = lambda s: (Y2X[0], Y2X[0], Y2X[1], Y2X[1])
    for sd in (1, 4, 5):
        build = lambda d: seq([L.Dense(4, activation="leaky_relu"), L.Dense(2, activation="leaky_relu"), L.Dense(1, activation="linear")], d)
        run("dying_relu_leaky", "fixed_leaky_linear_adam001_100ep", sd, data, build, lambda: keras.optimizers.Adam(0.01), "mse", dict(epochs=100), metrics=(), task="reg")

if __name__ == "__main__":
    names = sys.argv[1:] or list(CASES)
    seeds = [int(s) for s in os.environ.get("SEEDS", "0,1").split(",")]
    for n in names:
        for sd in seeds:
            t = time.time()
            try:
                CASES[n](sd)
            except Exception as e:
                print(json.dumps({"case": n, "seed": sd, "error": repr(e)[:300]}), flush=True)
            print(f"# {n} seed {sd} took {time.time()-t:.1f}s", flush=True)
