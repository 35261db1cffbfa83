"""Checks shared by the inversion tests: closed-form gradients against central differences."""

import numpy as np
import pytest


def gradient_by_differences(fn, theta, h=1e-6):
    return np.array([(fn(theta + h * e) - fn(theta - h * e)) / (2 * h) for e in np.eye(theta.size)])


def check_gradients_and_far_rate(lik, theta):
    """The likelihood's value and gradient, and the far rate's gradient, against central differences (step
    1e-6: truncation error ~1e-12 relative, rounding ~1e-16 * |l| / 1e-6 ~ 1e-7 absolute for |l| ~ 10^3);
    the far rate must be positive (the pair cut active)."""
    value, grad = lik.value_and_grad(theta)
    assert value == pytest.approx(lik(theta), rel=1e-13)
    np.testing.assert_allclose(grad, gradient_by_differences(lik, theta), rtol=1e-6, atol=1e-5)
    far, far_grad = lik.far_rate(theta, grad=True)
    assert far > 0.0
    np.testing.assert_allclose(far_grad, gradient_by_differences(lik.far_rate, theta), rtol=1e-6, atol=1e-9)
