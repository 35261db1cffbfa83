"""ETASParams: branching ratio, checks, (de)serialisation, and the exact SED `etas` conversion."""

import math

import numpy as np
import pytest
from scipy import integrate

from etasvae.params import ETASParams, ParameterError, from_sed, omori_normaliser, upper_incomplete_gamma

BASE = dict(mu=5.0, K=0.2, alpha=1.5, c=0.01, p=1.1, D=0.5, q=1.5, gamma=1.0, b=1.0, mc=2.5)


def make(**changes):
    return ETASParams(**{**BASE, **changes})


# ---------------------------------------------------------------------------------------------- branching


def test_branching_ratio_untruncated_is_k_beta_over_beta_minus_alpha():
    p = make()
    beta = math.log(10.0)
    assert p.beta == pytest.approx(beta, rel=1e-15)
    assert p.branching_ratio() == pytest.approx(0.2 * beta / (beta - 1.5), rel=1e-14)


@pytest.mark.parametrize("alpha", [0.0, 1.5, math.log(10.0), 3.0])
def test_branching_ratio_truncated_matches_quadrature(alpha):
    # n = K * E[exp(alpha (m - mc))] over GR truncated at mmax; alpha = beta and alpha > beta are finite here
    p = make(alpha=alpha, mmax=6.0)
    beta, dm = p.beta, 6.0 - 2.5
    density = lambda x: beta * math.exp(-beta * x) / (1.0 - math.exp(-beta * dm))  # noqa: E731
    mean, _ = integrate.quad(lambda x: math.exp(alpha * x) * density(x), 0.0, dm, epsabs=0, epsrel=1e-13)
    assert p.branching_ratio() == pytest.approx(0.2 * mean, rel=1e-10)


def test_truncation_lowers_the_branching_ratio_towards_the_untruncated_limit():
    n_inf = make().branching_ratio()
    values = [make(mmax=2.5 + dm).branching_ratio() for dm in (1.0, 3.0, 10.0, 40.0)]
    assert all(a < b for a, b in zip(values, values[1:]))
    assert values[-1] == pytest.approx(n_inf, rel=1e-12)


# ---------------------------------------------------------------------------------------------- checks


def test_valid_parameters_pass():
    make().check()
    make(mmax=7.5).check()
    make(p=0.8, tau=1000.0).check()  # p <= 1 is fine with a taper
    make(alpha=3.0, mmax=6.0, K=0.01).check()  # alpha >= beta is fine when truncated


@pytest.mark.parametrize(
    "changes, key, words",
    [
        (dict(mu=0.0), "mu", "positive"),
        (dict(mu=-1.0), "mu", "positive"),
        (dict(K=-0.1), "K", ">= 0"),
        (dict(c=0.0), "c", "positive"),
        (dict(D=-1.0), "D", "positive"),
        (dict(q=1.0), "q", "not normalisable"),
        (dict(b=0.0), "b", "positive"),
        (dict(p=1.0), "p", "not normalisable"),
        (dict(p=0.9, tau=None), "p", "without a taper"),
        (dict(tau=0.0), "tau", "positive"),
        (dict(tau=-5.0), "tau", "positive"),
        (dict(mmax=2.5), "mmax", "exceed mc"),
        (dict(mmax=2.0), "mmax", "exceed mc"),
        (dict(alpha=2.4), "alpha", "diverges"),
        (dict(mu=float("nan")), "mu", "finite"),
        (dict(K=float("inf")), "K", "finite"),
    ],
)
def test_every_invalid_parameter_is_named_with_value_and_reason(changes, key, words):
    params = make(**changes)
    with pytest.raises(ParameterError) as info:
        params.check()
    err = info.value
    assert err.key == key
    assert words in err.reason
    value = err.value
    assert str(err) == f"{key} = {format(value, '.10g') if isinstance(value, float) else value}: {err.reason}"


def test_supercritical_is_refused_with_the_formula_unless_capped():
    params = make(K=0.5)  # n = 0.5 * 2.3026 / 0.8026 = 1.43
    n = params.branching_ratio()
    with pytest.raises(ParameterError) as info:
        params.check()
    err = info.value
    assert err.key == "branching_ratio" and err.value == pytest.approx(n)
    message = str(err)
    assert "n = K*beta/(beta - alpha)" in message
    assert "0.5*2.30259" in message and "1.5" in message and f"{n:.6g}" in message
    assert "max_events" in message
    params.check(max_events=10_000)  # allowed with a cap
    with pytest.raises(ParameterError, match="mmax - mc"):
        make(K=0.6, mmax=7.0).check()  # truncated form of the formula


def test_construction_rejects_non_numbers_and_normalises_infinities():
    with pytest.raises(ParameterError) as info:
        make(K="a lot")
    assert info.value.key == "K"
    with pytest.raises(ParameterError):
        make(c=None)
    p = make(mmax=math.inf, tau=float("inf"), mu=4)
    assert p.mmax is None and p.tau is None
    assert isinstance(p.mu, float)


def test_dict_round_trip_and_key_errors():
    p = make(mmax=7.5, tau=1e4)
    d = p.to_dict()
    assert d == {**BASE, "mmax": 7.5, "tau": 1e4}
    assert all(type(v) is float for v in d.values())
    assert ETASParams.from_dict(d) == p
    assert ETASParams.from_dict(BASE) == make()
    with pytest.raises(ParameterError) as info:
        ETASParams.from_dict({**BASE, "omega": 0.1})
    assert info.value.key == "omega"
    missing = dict(BASE)
    del missing["q"]
    with pytest.raises(ParameterError) as info:
        ETASParams.from_dict(missing)
    assert info.value.key == "q"


# ---------------------------------------------------------------------------------------------- special functions


@pytest.mark.parametrize("a", [1.7, 0.5, 0.0, -0.02, -0.5, -1.0, -1.3, -2.6])
@pytest.mark.parametrize("x", [1e-6, 0.03, 1.0, 7.0])
def test_upper_incomplete_gamma_matches_quadrature(a, x):
    # in log space (s = e^u) the integrand e^(a u - e^u) is smooth however small x is
    f = lambda u: math.exp(a * u - math.exp(u))  # noqa: E731
    pieces = [math.log(x), *[v for v in (-10.0, 0.0, 3.0) if v > math.log(x)], 7.0]
    expected = sum(
        integrate.quad(f, lo, hi, epsabs=0, epsrel=1e-13, limit=200)[0] for lo, hi in zip(pieces, pieces[1:])
    )
    assert float(upper_incomplete_gamma(a, x)) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize(
    "p, c, tau",
    [
        (1.1, 0.01, None),
        (2.5, 0.1, None),
        (1.1, 0.01, 1e3),
        (1.0, 0.01, 50.0),
        (0.6, 0.05, 30.0),
        (-0.4, 0.01, 2.0),
        (1.2, 5.0, 2.0),
    ],
)
def test_omori_normaliser_matches_quadrature(p, c, tau):
    taper = (lambda t: 1.0) if tau is None else (lambda t: math.exp(-t / tau))
    f = lambda t: taper(t) * (t + c) ** -p  # noqa: E731
    pieces = [0.0, c, 100 * c, 1e4 * c, np.inf]  # split where the integrand changes scale
    expected = sum(
        integrate.quad(f, lo, hi, epsabs=0, epsrel=1e-11, limit=200)[0] for lo, hi in zip(pieces, pieces[1:])
    )
    assert omori_normaliser(p, c, tau) == pytest.approx(expected, rel=1e-7)


# ---------------------------------------------------------------------------------------------- SED conversion

SED = dict(
    log10_mu=-5.8, log10_k0=-2.6, a=1.8, log10_c=-2.5, omega=-0.02, log10_tau=3.5, log10_d=-0.85, gamma=1.3, rho=0.66
)


def sed_rate(m, t, r2, s, mc):
    """The `etas` package's triggering rate, written as in its documentation (docs/design.md §3)."""
    k0, c, d = 10 ** s["log10_k0"], 10 ** s["log10_c"], 10 ** s["log10_d"]
    taper = 1.0 if s["log10_tau"] is None else math.exp(-t / 10 ** s["log10_tau"])
    return (
        k0
        * math.exp(s["a"] * (m - mc))
        * taper
        / (t + c) ** (1 + s["omega"])
        / (r2 + d * math.exp(s["gamma"] * (m - mc))) ** (1 + s["rho"])
    )


def ogata_rate(m, t, r2, p: ETASParams):
    """kappa(m) g(t) f(r|m) of docs/design.md §3 (with the normalised, possibly tapered, Omori law)."""
    kappa = p.K * math.exp(p.alpha * (m - p.mc))
    taper = 1.0 if p.tau is None else math.exp(-t / p.tau)
    g = taper * (t + p.c) ** -p.p / omori_normaliser(p.p, p.c, p.tau)
    sigma = p.D * math.exp(p.gamma * (m - p.mc))
    f = (p.q - 1) / (math.pi * sigma) * (1 + r2 / sigma) ** -p.q
    return kappa * g * f


@pytest.mark.parametrize(
    "sed",
    [
        SED,  # omega < 0 with taper: the Swiss model's regime
        {**SED, "omega": 0.15, "log10_tau": None},  # no taper
        {**SED, "omega": 0.3, "log10_tau": 2.0},
        {**SED, "omega": 0.0, "log10_tau": 4.0},
    ],
)
def test_sed_conversion_reproduces_the_sed_kernel_pointwise(sed):
    mc, area = 3.6, 4.0e4
    p = from_sed(**sed, b=1.0, mc=mc, area_km2=area)
    assert p.mu == pytest.approx(10 ** sed["log10_mu"] * area, rel=1e-14)
    for m in (3.6, 4.3, 6.1):
        for t in (1e-5, 0.3, 40.0, 5e3):
            for r2 in (0.0, 0.7, 120.0):
                assert ogata_rate(m, t, r2, p) == pytest.approx(sed_rate(m, t, r2, sed, mc), rel=1e-9)


def test_sed_branching_ratio_matches_the_etas_package_formula():
    # etas.inversion.branching_ratio:
    # beta k0 pi d^-rho tau^-omega e^(c/tau) Gamma(-omega, c/tau) / (rho (beta - a + gamma rho))
    beta = 1.0 * math.log(10.0)
    k0, c, d, tau = 10 ** SED["log10_k0"], 10 ** SED["log10_c"], 10 ** SED["log10_d"], 10 ** SED["log10_tau"]
    omega, rho = SED["omega"], SED["rho"]
    eta = (
        beta
        * k0
        * math.pi
        * d**-rho
        * tau**-omega
        * math.exp(c / tau)
        * float(upper_incomplete_gamma(-omega, c / tau))
        / (rho * (beta - SED["a"] + SED["gamma"] * rho))
    )
    p = from_sed(**SED, b=1.0, mc=3.6, area_km2=1.0)
    assert p.branching_ratio() == pytest.approx(eta, rel=1e-12)
    assert (p.p, p.q, p.D, p.alpha) == pytest.approx((1 + omega, 1 + rho, d, SED["a"] - rho * SED["gamma"]))


def test_sed_without_taper_uses_the_closed_form():
    sed = {**SED, "omega": 0.2, "log10_tau": math.inf}
    p = from_sed(**sed, b=1.0, mc=3.0, mmax=8.0, area_km2=10.0)
    k0, c, d, rho = 10 ** sed["log10_k0"], 10 ** sed["log10_c"], 10 ** sed["log10_d"], sed["rho"]
    assert p.tau is None and p.mmax == 8.0
    assert p.K == pytest.approx(k0 * math.pi / (0.2 * c**0.2 * rho * d**rho), rel=1e-13)
    assert from_sed(**{**sed, "log10_tau": None}, b=1.0, mc=3.0, mmax=8.0, area_km2=10.0) == p


@pytest.mark.parametrize(
    "changes, key",
    [
        (dict(rho=0.0), "rho"),
        (dict(rho=-0.2), "rho"),
        (dict(omega=0.0, log10_tau=None), "omega"),
        (dict(omega=-0.1, log10_tau=math.inf), "omega"),
        (dict(log10_tau=float("nan")), "log10_tau"),
        (dict(log10_k0=float("inf")), "log10_k0"),
    ],
)
def test_sed_errors_name_the_sed_key(changes, key):
    with pytest.raises(ParameterError) as info:
        from_sed(**{**SED, **changes}, b=1.0, mc=3.0, area_km2=1.0)
    assert info.value.key == key
    with pytest.raises(ParameterError) as info:
        from_sed(**SED, b=1.0, mc=3.0, area_km2=0.0)
    assert info.value.key == "area_km2"
