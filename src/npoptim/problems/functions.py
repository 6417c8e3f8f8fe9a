r"""Test functions for optimizers: value, analytic gradient, known minima, a domain to draw.

A test function is plain data plus two vectorised callables (:class:`Objective`).
Points are arrays whose *last* axis holds the coordinates, so one call
evaluates a whole contour grid: ``f.value(np.stack([X, Y], axis=-1))`` has
the shape of ``X``.

====================  =====================================================  =====================
name                  :math:`f`                                               minimiser(s), minimum
====================  =====================================================  =====================
``anisotropic``       :math:`x^2/20 + y^2`                                    (0, 0), 0
``rosenbrock``        :math:`(a-x)^2 + b(y-x^2)^2`, a=1, b=100                (1, 1), 0
``beale``             :math:`\sum_{i=1}^3 (c_i - x + x y^i)^2`,               (3, 0.5), 0
                      :math:`c = (1.5, 2.25, 2.625)`
``booth``             :math:`(x + 2y - 7)^2 + (2x + y - 5)^2`                 (1, 3), 0
``himmelblau``        :math:`(x^2 + y - 11)^2 + (x + y^2 - 7)^2`              four points, 0
``rastrigin``         :math:`10 n + \sum_i (x_i^2 - 10\cos 2\pi x_i)`         0, 0
``quadratic``         :math:`\tfrac12 (x - x^*)^\top A (x - x^*)`,            :math:`x^* = 0`, 0
                      eigenvalues of :math:`A` log-spaced in
                      :math:`[1/\kappa, 1]`
====================  =====================================================  =====================

References: the anisotropic function is the one of Saito, *Deep Learning from
Scratch* (2016), section 6.1; Rosenbrock (1960), *Comput. J.* 3(3); Beale
(1958), Booth, Himmelblau (1972), *Applied Nonlinear Programming*; Rastrigin
(1974); all as collected by Jamil & Yang (2013), "A literature survey of
benchmark functions for global optimisation problems", *IJMMNO* 4(2).

``get_function`` takes a *spec*: a name, optionally with parameters after a
colon, e.g. ``"quadratic:kappa=100,dim=10"`` or ``"rosenbrock:b=10"``.

>>> f = get_function("anisotropic")
>>> float(f.value(np.array([-7.0, 2.0])))
6.45
>>> f.gradient(np.array([-7.0, 2.0]))
array([-0.7,  4. ])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Objective",
    "FUNCTIONS",
    "get_function",
    "anisotropic",
    "rosenbrock",
    "beale",
    "booth",
    "himmelblau",
    "rastrigin",
    "quadratic",
]

ArrayFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Objective:
    """A test function: data plus ``value`` and ``gradient``.

    Attributes
    ----------
    name : str
        The spec that builds it again with :func:`get_function`.
    formula : str
        Matplotlib mathtext of :math:`f`, for titles.
    value : callable
        ``(..., dim) -> (...)``.
    gradient : callable
        ``(..., dim) -> (..., dim)``, the analytic gradient.
    minimizers : tuple of points
        Every global minimiser (all four for Himmelblau).
    minimum : float
        :math:`f` at the minimisers.
    domain : tuple of (low, high), one per coordinate
        The window drawn in contour plots.
    start : tuple of float
        The customary starting point.
    hessian : ndarray or None
        The constant Hessian of a quadratic (``None`` otherwise); the theory
        of :mod:`npoptim.experiments.theory` applies exactly when it is set.
    """

    name: str
    formula: str
    value: ArrayFn
    gradient: ArrayFn
    minimizers: tuple[tuple[float, ...], ...]
    minimum: float
    domain: tuple[tuple[float, float], ...]
    start: tuple[float, ...]
    hessian: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def dim(self) -> int:
        """Number of coordinates."""
        return len(self.start)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.value(np.asarray(x, dtype=float))

    def distance_to_minimum(self, x: np.ndarray) -> np.ndarray:
        """Euclidean distance from ``x`` (``(..., dim)``) to the nearest minimiser."""
        x = np.asarray(x, dtype=float)
        mins = np.asarray(self.minimizers, dtype=float)  # (m, dim)
        d = np.linalg.norm(x[..., None, :] - mins, axis=-1)
        return d.min(axis=-1)

    def nearest_minimizer(self, x: np.ndarray) -> np.ndarray:
        """The minimiser nearest to the point ``x`` (shape ``(dim,)``)."""
        mins = np.asarray(self.minimizers, dtype=float)
        return mins[np.argmin(np.linalg.norm(mins - np.asarray(x, dtype=float), axis=-1))]


def _xy(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=float)
    if p.shape[-1:] != (2,):
        raise ValueError(f"expected points with a last axis of length 2, got shape {p.shape}")
    return p[..., 0], p[..., 1]


# --- the functions -------------------------------------------------------------


def anisotropic() -> Objective:
    r""":math:`f(x, y) = x^2/20 + y^2`, Saito (2016) section 6.1; Hessian ``diag(1/10, 2)``."""

    def value(p):
        x, y = _xy(p)
        return x * x / 20.0 + y * y

    def gradient(p):
        x, y = _xy(p)
        return np.stack([x / 10.0, 2.0 * y], axis=-1)

    return Objective(
        name="anisotropic",
        formula=r"$f(x, y) = x^2/20 + y^2$",
        value=value,
        gradient=gradient,
        minimizers=((0.0, 0.0),),
        minimum=0.0,
        domain=((-10.0, 10.0), (-5.0, 5.0)),
        start=(-7.0, 2.0),
        hessian=np.diag([0.1, 2.0]),
    )


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Objective:
    r""":math:`f(x, y) = (a - x)^2 + b (y - x^2)^2`, Rosenbrock (1960); minimiser :math:`(a, a^2)`.

    .. math:: \nabla f = \bigl(-2(a - x) - 4 b x (y - x^2),\; 2 b (y - x^2)\bigr)
    """
    if b <= 0:
        raise ValueError(f"rosenbrock: invalid b={b!r}: must be > 0")

    def value(p):
        x, y = _xy(p)
        return (a - x) ** 2 + b * (y - x * x) ** 2

    def gradient(p):
        x, y = _xy(p)
        r = y - x * x
        return np.stack([-2.0 * (a - x) - 4.0 * b * x * r, 2.0 * b * r], axis=-1)

    lo, hi = min(-2.0, a - 1.5), max(2.0, a + 1.5)
    return Objective(
        name="rosenbrock" if (a, b) == (1.0, 100.0) else f"rosenbrock:a={a:g},b={b:g}",
        formula=rf"$f = ({a:g} - x)^2 + {b:g}\,(y - x^2)^2$",
        value=value,
        gradient=gradient,
        minimizers=((float(a), float(a) ** 2),),
        minimum=0.0,
        domain=((lo, hi), (min(-1.0, a * a - 2.0), max(3.0, a * a + 2.0))),
        start=(-1.2, 1.0),
    )


_BEALE_C = (1.5, 2.25, 2.625)


def beale() -> Objective:
    r""":math:`f(x, y) = \sum_{i=1}^{3} (c_i - x + x y^i)^2`, :math:`c = (1.5, 2.25, 2.625)`, Beale (1958).

    .. math::
        \partial_x f = \sum_i 2 r_i (y^i - 1), \qquad
        \partial_y f = \sum_i 2 r_i \, i x y^{i-1}, \qquad r_i = c_i - x + x y^i
    """

    def value(p):
        x, y = _xy(p)
        return sum((c - x + x * y**i) ** 2 for i, c in enumerate(_BEALE_C, start=1))

    def gradient(p):
        x, y = _xy(p)
        gx = np.zeros(np.broadcast(x, y).shape)
        gy = np.zeros_like(gx)
        for i, c in enumerate(_BEALE_C, start=1):
            r = c - x + x * y**i
            gx = gx + 2.0 * r * (y**i - 1.0)
            gy = gy + 2.0 * r * i * x * y ** (i - 1)
        return np.stack([gx, gy], axis=-1)

    return Objective(
        name="beale",
        formula=r"$f = \sum_{i=1}^{3}(c_i - x + xy^i)^2$",
        value=value,
        gradient=gradient,
        minimizers=((3.0, 0.5),),
        minimum=0.0,
        domain=((-4.5, 4.5), (-4.5, 4.5)),
        start=(1.0, 1.5),
    )


def booth() -> Objective:
    r""":math:`f(x, y) = (x + 2y - 7)^2 + (2x + y - 5)^2`: a quadratic, Hessian ``[[10, 8], [8, 10]]``.

    Its eigenvalues are 2 (direction (1, -1)) and 18 (direction (1, 1)); the
    start (-6, 8) excites both, so the slow one sets the rate.
    """

    def value(p):
        x, y = _xy(p)
        return (x + 2.0 * y - 7.0) ** 2 + (2.0 * x + y - 5.0) ** 2

    def gradient(p):
        x, y = _xy(p)
        u, v = x + 2.0 * y - 7.0, 2.0 * x + y - 5.0
        return np.stack([2.0 * u + 4.0 * v, 4.0 * u + 2.0 * v], axis=-1)

    return Objective(
        name="booth",
        formula=r"$f = (x + 2y - 7)^2 + (2x + y - 5)^2$",
        value=value,
        gradient=gradient,
        minimizers=((1.0, 3.0),),
        minimum=0.0,
        domain=((-10.0, 10.0), (-10.0, 10.0)),
        start=(-6.0, 8.0),
        hessian=np.array([[10.0, 8.0], [8.0, 10.0]]),
    )


# Newton-refined to full double precision from (3, 2), (-2.8, 3.13), (-3.78, -3.28), (3.58, -1.85).
_HIMMELBLAU_MINIMA = (
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.779310253377747, -3.283185991286169),
    (3.5844283403304917, -1.8481265269644034),
)


def himmelblau() -> Objective:
    r""":math:`f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2`, Himmelblau (1972); four global minima, value 0.

    .. math:: \nabla f = \bigl(4 x u + 2 v,\; 2 u + 4 y v\bigr), \quad u = x^2 + y - 11,\; v = x + y^2 - 7
    """

    def value(p):
        x, y = _xy(p)
        return (x * x + y - 11.0) ** 2 + (x + y * y - 7.0) ** 2

    def gradient(p):
        x, y = _xy(p)
        u, v = x * x + y - 11.0, x + y * y - 7.0
        return np.stack([4.0 * x * u + 2.0 * v, 2.0 * u + 4.0 * y * v], axis=-1)

    return Objective(
        name="himmelblau",
        formula=r"$f = (x^2 + y - 11)^2 + (x + y^2 - 7)^2$",
        value=value,
        gradient=gradient,
        minimizers=_HIMMELBLAU_MINIMA,
        minimum=0.0,
        domain=((-5.0, 5.0), (-5.0, 5.0)),
        start=(0.0, -0.5),
    )


def rastrigin(dim: int = 2, A: float = 10.0) -> Objective:
    r""":math:`f(x) = A n + \sum_i (x_i^2 - A\cos 2\pi x_i)`, Rastrigin (1974); global minimum 0 at 0.

    .. math:: \partial_i f = 2 x_i + 2\pi A \sin 2\pi x_i
    """
    dim = _positive_int("rastrigin", "dim", dim)
    if A <= 0:
        raise ValueError(f"rastrigin: invalid A={A!r}: must be > 0")

    def value(p):
        p = _check_dim("rastrigin", p, dim)
        return A * dim + np.sum(p * p - A * np.cos(2.0 * np.pi * p), axis=-1)

    def gradient(p):
        p = _check_dim("rastrigin", p, dim)
        return 2.0 * p + 2.0 * np.pi * A * np.sin(2.0 * np.pi * p)

    base = (-3.3, 2.4)
    return Objective(
        name="rastrigin" if (dim, A) == (2, 10.0) else f"rastrigin:dim={dim},A={A:g}",
        formula=rf"$f = {A:g}n + \sum_i (x_i^2 - {A:g}\cos 2\pi x_i)$",
        value=value,
        gradient=gradient,
        minimizers=(tuple([0.0] * dim),),
        minimum=0.0,
        domain=tuple([(-5.12, 5.12)] * dim),
        start=tuple(base[i % 2] for i in range(dim)),
    )


def quadratic(kappa: float = 10.0, dim: int = 2, rotate: bool = False, seed: int = 0) -> Objective:
    r"""An ``dim``-dimensional quadratic with condition number ``kappa``.

    .. math::
        f(x) = \tfrac12 x^\top A x, \qquad A = Q \,\mathrm{diag}(\lambda_1, \dots, \lambda_n)\, Q^\top, \qquad
        \lambda_i = \kappa^{-(n - i)/(n - 1)}

    so the eigenvalues are log-spaced from :math:`\mu = 1/\kappa` to :math:`L = 1`
    (``dim=1`` gives the single eigenvalue 1).  ``Q`` is the identity, or with
    ``rotate=True`` a random orthogonal matrix drawn from
    ``np.random.default_rng(seed)`` (QR of a Gaussian matrix), which matters for
    coordinate-wise methods (AdaGrad, RMSprop, Adam) and not for gradient
    descent, heavy ball and Nesterov.  The start is
    :math:`x_0 = (-3, \dots, 2)`, evenly spaced, so every eigen-direction is excited.
    """
    dim = _positive_int("quadratic", "dim", dim)
    kappa = float(kappa)
    if not math.isfinite(kappa) or kappa < 1.0:
        raise ValueError(f"quadratic: invalid kappa={kappa!r}: the condition number must be >= 1 and finite")
    eig = np.ones(1) if dim == 1 else kappa ** (-(dim - 1 - np.arange(dim)) / (dim - 1))
    if rotate:
        q, r = np.linalg.qr(np.random.default_rng(int(seed)).standard_normal((dim, dim)))
        q = q * np.sign(np.diag(r))
    else:
        q = np.eye(dim)
    hess = (q * eig) @ q.T
    hess = 0.5 * (hess + hess.T)

    def value(p):
        p = _check_dim("quadratic", p, dim)
        return 0.5 * np.einsum("...i,ij,...j->...", p, hess, p)

    def gradient(p):
        p = _check_dim("quadratic", p, dim)
        return p @ hess  # hess is symmetric

    start = tuple(float(v) for v in np.linspace(-3.0, 2.0, dim)) if dim > 1 else (-3.0,)
    extent = max(abs(s) for s in start) * 1.3
    parts = [f"kappa={kappa:g}", f"dim={dim}"] + ([f"rotate=1,seed={int(seed)}"] if rotate else [])
    return Objective(
        name="quadratic:" + ",".join(parts),
        formula=rf"$f = \frac{{1}}{{2}} x^\top A x$, $\kappa(A) = {kappa:g}$",
        value=value,
        gradient=gradient,
        minimizers=(tuple([0.0] * dim),),
        minimum=0.0,
        domain=tuple([(-extent, extent)] * dim),
        start=start,
        hessian=hess,
    )


def _positive_int(owner: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not float(value).is_integer() or int(value) < 1:  # type: ignore[arg-type]
        raise ValueError(f"{owner}: invalid {name}={value!r}: must be a positive integer")
    return int(value)  # type: ignore[call-overload]


def _check_dim(owner: str, p: np.ndarray, dim: int) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    if p.shape[-1:] != (dim,):
        raise ValueError(f"{owner}: expected points with a last axis of length {dim}, got shape {p.shape}")
    return p


#: name -> (factory, {parameter: type}); the factory's keyword arguments are the spec's parameters.
FUNCTIONS: dict[str, tuple[Callable[..., Objective], Mapping[str, type]]] = {
    "anisotropic": (anisotropic, {}),
    "rosenbrock": (rosenbrock, {"a": float, "b": float}),
    "beale": (beale, {}),
    "booth": (booth, {}),
    "himmelblau": (himmelblau, {}),
    "rastrigin": (rastrigin, {"dim": int, "A": float}),
    "quadratic": (quadratic, {"kappa": float, "dim": int, "rotate": bool, "seed": int}),
}


def get_function(spec: str | Objective) -> Objective:
    """Build a test function from its spec: ``"name"`` or ``"name:key=value,key=value"``.

    >>> get_function("quadratic:kappa=100,dim=3").dim
    3
    >>> get_function("sphere")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown function 'sphere'; known: anisotropic, rosenbrock, beale, booth, ...
    """
    if isinstance(spec, Objective):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"function spec must be a str, got {type(spec).__name__}")
    name, _, rest = spec.strip().partition(":")
    entry = FUNCTIONS.get(name.strip().lower())
    if entry is None:
        raise ValueError(f"unknown function {name.strip()!r}; known: {', '.join(FUNCTIONS)}")
    factory, types = entry
    kwargs: dict[str, object] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq:
            raise ValueError(f"function {name!r}: parameter {item!r} must be written key=value")
        if key not in types:
            known = ", ".join(types) or "none"
            raise ValueError(f"function {name!r}: unknown parameter {key!r}; its parameters: {known}")
        kwargs[key] = _parse(name, key, raw.strip(), types[key])
    return factory(**kwargs)


def _parse(name: str, key: str, raw: str, kind: type) -> object:
    try:
        if kind is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            return int(raw)
        return float(raw)
    except ValueError:
        raise ValueError(f"function {name!r}: invalid {key}={raw!r}: expected {kind.__name__}") from None
