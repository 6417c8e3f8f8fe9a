"""The small network: backprop against central differences and against torch autograd, init, L2."""

from __future__ import annotations

import math

import numpy as np
import pytest

from npoptim import Adam, create_optimizer, nn


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


@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_backprop_matches_central_differences(lam):
    params, x, y = _problem()
    value, grads = nn.loss_and_grads(params, x, y, weight_decay_lambda=lam)
    assert value == pytest.approx(nn.loss(params, x, y, weight_decay_lambda=lam), rel=1e-12)
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
    assert value == pytest.approx(loss.item(), rel=1e-12)
    for key in params:
        np.testing.assert_allclose(grads[key], tp[key].grad.numpy(), rtol=1e-10, atol=1e-13)


def test_uniform_scores_give_log_of_class_count():
    # All-zero parameters: every score is 0, the softmax is uniform, the loss is log(K).
    params = {k: np.zeros_like(v) for k, v in nn.init_params([4, 5, 10], rng=np.random.default_rng(0)).items()}
    assert nn.loss(params, np.ones((3, 4)), np.array([0, 3, 9])) == pytest.approx(math.log(10))


def test_l2_term_is_half_lambda_sum_of_squared_weights():
    params, x, y = _problem()
    lam = 0.3
    expected = 0.5 * lam * sum(float((w**2).sum()) for k, w in params.items() if k.startswith("W"))
    diff = nn.loss(params, x, y, weight_decay_lambda=lam) - nn.loss(params, x, y)
    assert diff == pytest.approx(expected, rel=1e-12)


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
