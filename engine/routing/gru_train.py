"""Training the GRU router in numpy: batched BPTT, masked softmax cross-entropy, Adam.

Sequences are padded to a common length; ``valid[b, t]`` marks real steps and
``allowed[b, t, k]`` the agents that were available (the softmax runs over
those only, as at inference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["KEYS", "TrainLog", "forward", "init_weights", "loss_and_grads", "train"]

KEYS = ("W_z", "U_z", "b_z", "W_r", "U_r", "b_r", "W_h", "U_h", "b_h", "W_o", "b_o")


def init_weights(
    rng: np.random.Generator, n_in: int = 10, hidden: int = 64, n_out: int = 3
) -> dict[str, np.ndarray]:
    """Glorot-uniform input and output weights, orthogonal recurrent weights, zero biases."""

    def glorot(rows: int, cols: int) -> np.ndarray:
        lim = np.sqrt(6.0 / (rows + cols))
        return rng.uniform(-lim, lim, size=(rows, cols))

    def orthogonal(n: int) -> np.ndarray:
        q, r = np.linalg.qr(rng.normal(size=(n, n)))
        return q * np.sign(np.diag(r))

    w = {}
    for g in ("z", "r", "h"):
        w[f"W_{g}"] = glorot(hidden, n_in)
        w[f"U_{g}"] = orthogonal(hidden)
        w[f"b_{g}"] = np.zeros(hidden)
    w["W_o"] = glorot(n_out, hidden)
    w["b_o"] = np.zeros(n_out)
    return w


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def forward(w: dict[str, np.ndarray], X: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """Probabilities (B, T, 3) and the per-step cache for the backward pass.

    Raw features are standardised with the stored ``x_mean`` / ``x_std`` first.
    """
    if "x_mean" in w:
        X = (X - w["x_mean"]) / w["x_std"]
    B, T, _ = X.shape
    h = np.zeros((B, w["U_z"].shape[0]))
    probs = np.zeros((B, T, w["W_o"].shape[0]))
    cache = []
    for t in range(T):
        x = X[:, t]
        z = _sigmoid(x @ w["W_z"].T + h @ w["U_z"].T + w["b_z"])
        r = _sigmoid(x @ w["W_r"].T + h @ w["U_r"].T + w["b_r"])
        ht = np.tanh(x @ w["W_h"].T + (r * h) @ w["U_h"].T + w["b_h"])
        h_new = (1.0 - z) * h + z * ht
        logits = h_new @ w["W_o"].T + w["b_o"]
        logits = np.where(allowed[:, t], logits, -1e9)
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits) * allowed[:, t]
        p = e / np.maximum(e.sum(axis=1, keepdims=True), 1e-300)
        probs[:, t] = p
        cache.append({"x": x, "h": h, "z": z, "r": r, "ht": ht, "h_new": h_new})
        h = h_new
    return probs, cache


def loss_and_grads(
    w: dict[str, np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    valid: np.ndarray,
    allowed: np.ndarray,
    l2: float = 0.0,
) -> tuple[float, dict[str, np.ndarray]]:
    """Mean cross-entropy over valid steps (+ l2 on weight matrices) and its gradients."""
    probs, cache = forward(w, X, allowed)
    _, T, K = probs.shape
    n = max(int(valid.sum()), 1)
    onehot = np.eye(K)[y]
    picked = np.take_along_axis(probs, y[..., None], axis=2)[..., 0]
    loss = -float((np.log(np.maximum(picked, 1e-12)) * valid).sum()) / n
    g = {k: np.zeros_like(w[k]) for k in KEYS}
    dh_next = np.zeros_like(cache[0]["h"])
    for t in reversed(range(T)):
        c = cache[t]
        dlogits = (probs[:, t] - onehot[:, t]) * valid[:, t, None] / n
        g["W_o"] += dlogits.T @ c["h_new"]
        g["b_o"] += dlogits.sum(axis=0)
        dh = dlogits @ w["W_o"] + dh_next
        z, r, ht, h, x = c["z"], c["r"], c["ht"], c["h"], c["x"]
        dz = dh * (ht - h)
        dht = dh * z
        dh_prev = dh * (1.0 - z)
        da_h = dht * (1.0 - ht**2)
        g["W_h"] += da_h.T @ x
        g["U_h"] += da_h.T @ (r * h)
        g["b_h"] += da_h.sum(axis=0)
        drh = da_h @ w["U_h"]
        dr = drh * h
        dh_prev += drh * r
        da_r = dr * r * (1.0 - r)
        g["W_r"] += da_r.T @ x
        g["U_r"] += da_r.T @ h
        g["b_r"] += da_r.sum(axis=0)
        dh_prev += da_r @ w["U_r"]
        da_z = dz * z * (1.0 - z)
        g["W_z"] += da_z.T @ x
        g["U_z"] += da_z.T @ h
        g["b_z"] += da_z.sum(axis=0)
        dh_prev += da_z @ w["U_z"]
        dh_next = dh_prev
    if l2:
        for k in KEYS:
            if k[0] in "WU":
                loss += 0.5 * l2 * float((w[k] ** 2).sum())
                g[k] += l2 * w[k]
    return loss, g


@dataclass(frozen=True, slots=True)
class TrainLog:
    epochs: int
    final_loss: float
    losses: tuple[float, ...]


def train(
    X: np.ndarray,
    y: np.ndarray,
    valid: np.ndarray,
    allowed: np.ndarray,
    *,
    hidden: int = 64,
    epochs: int = 300,
    lr: float = 0.01,
    batch: int = 128,
    l2: float = 1e-4,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], TrainLog]:
    """Fit the GRU with Adam on shuffled mini-batches; returns weights and the loss curve.

    The features' mean and standard deviation over the valid training steps are
    stored with the weights (``x_mean``, ``x_std``) and applied at inference, so
    that small-scale features such as query_length/10000 can matter.
    """
    rng = np.random.default_rng(seed)
    w = init_weights(rng, X.shape[2], hidden, allowed.shape[2])
    steps = X[valid.astype(bool)]
    w["x_mean"] = steps.mean(axis=0)
    w["x_std"] = np.maximum(steps.std(axis=0), 1e-3)
    m = {k: np.zeros_like(w[k]) for k in KEYS}
    v = {k: np.zeros_like(w[k]) for k in KEYS}
    b1, b2, eps, step = 0.9, 0.999, 1e-8, 0
    losses = []
    for _ in range(epochs):
        order = rng.permutation(len(X))
        total = 0.0
        for start in range(0, len(X), batch):
            idx = order[start : start + batch]
            loss, g = loss_and_grads(w, X[idx], y[idx], valid[idx], allowed[idx], l2)
            total += loss * len(idx)
            step += 1
            for k in KEYS:
                m[k] = b1 * m[k] + (1 - b1) * g[k]
                v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
                w[k] -= lr * (m[k] / (1 - b1**step)) / (np.sqrt(v[k] / (1 - b2**step)) + eps)
        losses.append(total / len(X))
    return w, TrainLog(epochs, losses[-1], tuple(round(x, 5) for x in losses))
