"""The data profile: what a data linter could know before any training."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["profile_data"]

MAX_PROFILED_FEATURES = 256


def _labels(y: np.ndarray) -> np.ndarray:
    return y.argmax(axis=-1) if y.ndim > 1 else y


def _counts(y: np.ndarray) -> dict[str, int]:
    vals, counts = np.unique(_labels(y), return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(vals, counts)}


def _flat(x: np.ndarray) -> np.ndarray:
    """One row per sample; also for no samples (a run without validation data), where -1 is ambiguous."""
    return x.reshape(len(x), int(np.prod(x.shape[1:])))


def _rows(x: np.ndarray) -> set[bytes]:
    return {r.tobytes() for r in np.ascontiguousarray(_flat(x))}


def _fl(v) -> float:
    v = float(v)
    return v if math.isfinite(v) else (math.nan if math.isnan(v) else v)


def profile_data(x_train, y_train, x_val, y_val) -> dict:
    """Per-feature statistics over the last input axis, counts, overlap and target correlation."""
    y_train, y_val = np.asarray(y_train), np.asarray(y_val)
    is_class = np.issubdtype(y_train.dtype, np.integer) or y_train.ndim > 1
    feats = x_train.reshape(-1, x_train.shape[-1])[:, :MAX_PROFILED_FEATURES].astype("float64")
    with np.errstate(all="ignore"):
        stats = {k: [_fl(v) for v in f(feats, axis=0)] for k, f in
                 (("feature_min", np.nanmin), ("feature_max", np.nanmax),
                  ("feature_mean", np.nanmean), ("feature_std", np.nanstd))}
        target = _labels(y_train).astype("float64")
        flat = x_train.reshape(len(x_train), -1)[:, :MAX_PROFILED_FEATURES].astype("float64")
        corr = []
        for j in range(flat.shape[1]):
            col = flat[:, j]
            ok = np.isfinite(col)
            if ok.sum() < 3 or np.nanstd(col[ok]) == 0 or np.std(target[ok]) == 0:
                corr.append(0.0)
            else:
                corr.append(_fl(abs(np.corrcoef(col[ok], target[ok])[0, 1])))
    both = np.concatenate([x_train.reshape(-1), x_val.reshape(-1)])
    train_rows = _rows(x_train)
    dup = sum(1 for r in np.ascontiguousarray(_flat(x_val)) if r.tobytes() in train_rows)
    return {
        "n_train": int(len(x_train)), "n_val": int(len(x_val)),
        "input_shape": list(x_train.shape[1:]), "x_dtype": str(x_train.dtype), "y_dtype": str(y_train.dtype),
        "task_kind": "classification" if is_class else "regression",
        "label_shape": list(y_train.shape[1:]),
        "n_classes": int(len(np.unique(_labels(y_train)))) if is_class else 0,
        **stats,
        "nan_count": int(np.isnan(both).sum()), "inf_count": int(np.isinf(both).sum()),
        "class_counts_train": _counts(y_train) if is_class else {},
        "class_counts_val": _counts(y_val) if is_class else {},
        "duplicate_rows_train_val": int(dup),
        "feature_target_corr": corr,
        "target_mean": _fl(np.mean(target)), "target_std": _fl(np.std(target)),
        "target_min": _fl(np.min(target)), "target_max": _fl(np.max(target)),
        "input_min": _fl(np.nanmin(x_train)) if np.isfinite(x_train).any() else math.nan,
        "input_max": _fl(np.nanmax(x_train)) if np.isfinite(x_train).any() else math.nan,
    }
