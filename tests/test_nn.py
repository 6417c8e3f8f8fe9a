"""The small network: backprop against central differences and against torch autograd, init, L2."""

from __future__ import annotations

import math

import numpy as np
import pytest

from npoptim import Adam, create_optimizer, nn
from numerics import assert_within, gamma


def _problem(seed: int = 0, sizes=(5, 7, 6, 4), n: int = 9):
    rng = np.random.default_rng(seed)
    params = nn.init_params(list(sizes), rng=rng)
    for key in params:  # non-zero biases so their gradients are exercised too
        if key.startswith("b"):
            params[key] = rng.normal(0.0, 0.3, params[key].shape)
    x = rng.standard_normal((n, sizes[0]))
    y = rng.integers(0, sizes[-1], n)
    return params, x, y


def _numerical_gradient(params, x, y, lam, h=1e-6):
    """Central differences (f(w+h) - f(w-h)) / 2h, one element at a time, float64: error O(h^2)."""
    grads = {}
    for key, p in params.items():
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + h
            up = nn.loss(params, x, y, weight_decay_lambda=lam)
            p[i] = old - h
            down = nn.loss(params, x, y, weight_decay_lambda=lam)
            p[i] = old
            g[i] = (up - down) / (2 * h)
        grads[key] = g
    return grads


def _torch_bounds(params, x, y, lam):
    """Rounding bounds for |npoptim - torch| on the loss and on each gradient (Higham §3.5).

    Neither side is exact and they run different kernels (BLAS vs torch's matmul, NumPy's SIMD
    exp/log vs torch's, different summation orders).  Forward: with the absolute forward pass
    |z| <= z_abs (|x| @ |W1| + |b1|, relu, ...), each side's scores are within gamma_M z_abs,
    M = sum of (fan-in + 2).  A row's cross-entropy has gradient p - onehot (l1 norm <= 2) in z, so
    it moves by <= 2 gamma_M max_j z_abs, plus exp and log (<= 4 ULP each, 8u per side on values
    up to 1 + max z_abs); the mean over n rows adds gamma_n, the L2 sum gamma_(#weights).  Two sides.
    Backward: a row's output delta (p - onehot)/n is within eps_D = 2 (2 gamma_M z_abs + gamma_16)
    relative of its absolute value D = (p + onehot)/n; |dW_l| <= |h_{l-1}|^T D_l with D carried down
    through |W|^T, each matmul adding gamma of its length: bound |h|^T ((eps_D + 2 gamma_K) D),
    K = M + n + the backward sums' lengths, plus lam W's two roundings.  Worst-case (Higham) bounds:
    measured errors are 1e-4..1e-3 of them, and a backprop bug (an O(1) relative error) is far outside.
    """
    n_rows, keys = len(x), [k for k in params if k.startswith("W")]
    hs, h = [np.abs(x)], np.abs(x)
    for i in range(1, len(keys) + 1):
        h = h @ np.abs(params[f"W{i}"]) + np.abs(params[f"b{i}"])
        hs.append(h)
    z_abs = hs.pop().max(axis=1)
    m = sum(params[k].shape[0] + 2 for k in keys)
    ce = -nn._log_softmax(nn.forward(params, x)[0])[np.arange(n_rows), y]
    l2 = 0.5 * lam * sum(float((params[k] ** 2).sum()) for k in keys)
    n_w = sum(params[k].size for k in keys)
    value_bound = 2 * (
        (2 * gamma(m) * z_abs + gamma(16) * (1 + z_abs)).mean() + gamma(n_rows) * ce.mean() + gamma(n_w) * l2
    )
    z = nn.forward(params, x)[0]
    p = np.exp(nn._log_softmax(z))
    d_abs = p.copy()
    d_abs[np.arange(n_rows), y] += 1.0
    d_abs /= n_rows
    k_len = m + n_rows + sum(params[k].shape[1] for k in keys)
    # each row's delta carries its own eps_D (rows are independent until the sums over the batch)
    e_abs = d_abs * (2 * (2 * gamma(m) * z_abs + gamma(16)) + 2 * gamma(k_len))[:, None]
    bounds = {}
    for i in range(len(keys), 0, -1):
        w = params[f"W{i}"]
        bounds[f"W{i}"] = hs[i - 1].T @ e_abs + 2 * gamma(2) * lam * np.abs(w)
        bounds[f"b{i}"] = e_abs.sum(axis=0)
        e_abs = e_abs @ np.abs(w).T
    return value_bound, bounds


@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_backprop_matches_central_differences(lam):
    params, x, y = _problem()
    value, grads = nn.loss_and_grads(params, x, y, weight_decay_lambda=lam)
    # bit-exact: both run the same forward, log-softmax and L2 code on the same arrays in one process
    assert value == nn.loss(params, x, y, weight_decay_lambda=lam)
    numeric = _numerical_gradient(params, x, y, lam)
    assert list(grads) == list(params)
    for key in params:
        assert grads[key].shape == params[key].shape
        err = np.abs(grads[key] - numeric[key]).max() / max(1e-8, np.abs(numeric[key]).max())
        assert err < 1e-6, f"{key}: relative error {err:.2e}"


def test_loss_and_grads_match_torch_autograd():
    torch = pytest.importorskip("torch")
    params, x, y = _problem(seed=3, sizes=(6, 8, 8, 3), n=11)
    lam = 0.05
    value, grads = nn.loss_and_grads(params, x, y, weight_decay_lambda=lam)
    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    h = torch.tensor(x)
    for layer in (1, 2, 3):
        h = h @ tp[f"W{layer}"] + tp[f"b{layer}"]
        if layer < 3:
            h = torch.relu(h)
    loss = torch.nn.functional.cross_entropy(h, torch.tensor(y))
    loss = loss + 0.5 * lam * sum((tp[f"W{i}"] ** 2).sum() for i in (1, 2, 3))
    loss.backward()
    value_bound, grad_bounds = _torch_bounds(params, x, y, lam)  # derived there; torch runs its own kernels
    assert abs(value - loss.item()) <= value_bound
    for key in params:
        assert_within(grads[key], tp[key].grad.numpy(), grad_bounds[key], f"{key} vs torch autograd")


def test_uniform_scores_give_log_of_class_count():
    # All-zero parameters: every score is 0, the softmax is uniform, the loss is log(K).
    params = {k: np.zeros_like(v) for k, v in nn.init_params([4, 5, 10], rng=np.random.default_rng(0)).items()}
    assert nn.loss(params, np.ones((3, 4)), np.array([0, 3, 9])) == pytest.approx(math.log(10))


def test_l2_term_is_half_lambda_sum_of_squared_weights():
    params, x, y = _problem()
    lam = 0.3
    expected = 0.5 * lam * sum(float((w**2).sum()) for k, w in params.items() if k.startswith("W"))
    total = nn.loss(params, x, y, weight_decay_lambda=lam)
    diff = total - nn.loss(params, x, y)
    # _l2 computes exactly ``expected`` (w*w, np.sum, the same order); the rest is the rounding of
    # CE + L2 (u |total|) and of the test's subtraction (u |diff|); measured: 1 ULP of diff
    assert abs(diff - expected) <= gamma(1) * (abs(total) + abs(diff))


def test_he_init_scale_seeding_and_zero_biases():
    a = nn.init_params([400, 300, 10], rng=np.random.default_rng(7))
    b = nn.init_params([400, 300, 10], rng=np.random.default_rng(7))
    c = nn.init_params([400, 300, 10], rng=np.random.default_rng(8))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["W1"], c["W1"])
    # He et al. (2015): std sqrt(2 / fan_in); 120,000 samples put the sample std within ~0.3% of it.
    assert a["W1"].std() == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    assert a["W2"].std() == pytest.approx(math.sqrt(2 / 300), rel=0.05)
    assert abs(a["W1"].mean()) < 0.01 * math.sqrt(2 / 400) * 10
    assert not a["b1"].any() and not a["b2"].any()
    assert nn.init_params([3, 2], rng=np.random.default_rng(0), dtype=np.float32)["W1"].dtype == np.float32


def test_init_requires_an_explicit_generator():
    with pytest.raises(TypeError, match="np.random.Generator"):
        nn.init_params([3, 2], rng=0)


def test_params_and_grads_are_what_every_optimizer_takes():
    params, x, y = _problem()
    before = nn.loss(params, x, y)
    for name in ("sgd", "adam"):
        opt = create_optimizer(name, lr=0.05)
        for _ in range(30):
            _, grads = nn.loss_and_grads(params, x, y)
            opt.update(params, grads)
    assert nn.loss(params, x, y) < 0.5 * before
    Adam(lr=1e-3).update(params, nn.loss_and_grads(params, x, y)[1])  # a dict update, no key errors


def test_predict_and_accuracy():
    params = {"W1": np.eye(3), "b1": np.zeros(3)}
    x = np.array([[1.0, 0, 0], [0, 0, 2.0], [0, 3.0, 0]])
    np.testing.assert_array_equal(nn.predict(params, x), [0, 2, 1])
    assert nn.accuracy(params, x, np.array([0, 2, 0])) == pytest.approx(2 / 3)


def test_bad_inputs_are_named():
    params, x, y = _problem()
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        nn.loss(params, x, np.full(len(x), 4))
    with pytest.raises(ValueError, match="labels must be 9 integers"):
        nn.loss(params, x, y[:3])
    with pytest.raises(KeyError, match="W1, b1"):
        nn.forward({"W1": params["W1"]}, x)
    with pytest.raises(ValueError, match="positive integers"):
        nn.layer_sizes(64, [100, 0], 10)
    with pytest.raises(ValueError, match="weight_decay_lambda"):
        nn.loss(params, x, y, weight_decay_lambda=-1.0)
