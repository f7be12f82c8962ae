"""Closed forms of recursive training: the simulator's reference curves and its tests' oracles.

Curves are arrays over generations t = 1..G, where generation 1 is fitted on real data.
"""

from __future__ import annotations

import numpy as np


def _t(generations: int) -> np.ndarray:
    return np.arange(1, generations + 1, dtype=np.float64)


def ols_scale(sigma2: float, d: int, T: int) -> float:
    """σ²d/(T−d−1) = σ² E tr (XᵀX)⁻¹ for X (T×d) with N(0, I) rows (inverse-Wishart mean):
    the expected test error of one OLS fit. Needs T > d + 1."""
    if T <= d + 1:
        raise ValueError(f"T={T} must exceed d+1={d + 1} for the OLS closed form")
    return sigma2 * d / (T - d - 1)


def ols_replace(generations: int, sigma2: float, d: int, T: int) -> np.ndarray:
    """E_test(ŵ_n) = n·σ²d/(T−d−1) with fixed design and replaced labels (Dohmatob et al.
    2024, "Model Collapse Demystified"; Gerstgrasser et al. 2024, Thm. 1). E_test(ŵ) =
    E_x (xᵀŵ − xᵀw*)² = ‖ŵ − w*‖² for x ~ N(0, I)."""
    return ols_scale(sigma2, d, T) * _t(generations)


def ols_accumulate(generations: int, sigma2: float, d: int, T: int) -> np.ndarray:
    """E_test(ŵ_n) = σ²d/(T−d−1)·Σ_{i≤n} 1/i² < π²/6·σ²d/(T−d−1) when every generation's
    labels accumulate on the repeated design (Gerstgrasser et al. 2024, Thm. 2)."""
    return ols_scale(sigma2, d, T) * np.cumsum(1.0 / _t(generations) ** 2)


def ols_replace_multiple(generations: int, sigma2: float, d: int, T: int, k) -> np.ndarray:
    """Replace with k·T synthetic labels on k copies of the design: each generation after
    the first adds X⁺ε̄ with ε̄ the mean of k noise vectors, so E_test = σ²d/(T−d−1)·
    (1 + Σ_{i=2}^{n} 1/k_i) with k_i = k, or k_i = i for ``k="t"`` (then = c·H_n, the
    harmonic number: unbounded, growing like ln n). Derived here, same setting."""
    t = _t(generations)
    inc = 1.0 / t if k == "t" else np.full_like(t, 1.0 / k)
    inc[0] = 1.0
    return ols_scale(sigma2, d, T) * np.cumsum(inc)


def gaussian_trace_replace(generations: int, m: int, trace0: float,
                           variance: str = "ml") -> np.ndarray:
    """E tr Σ̂_t under replace with m samples per generation: ((m−1)/m)^t tr Σ₀ for the ML
    (1/m) covariance, tr Σ₀ for the unbiased (1/(m−1)) one — whose trace is a martingale
    yet still tends to 0 almost surely (Shumailov et al. 2024, Nature, §3 Gaussian case;
    Bertrand et al. 2024)."""
    if variance == "unbiased":
        return np.full(generations, float(trace0))
    return ((m - 1) / m) ** _t(generations) * trace0


def gaussian_mean_error_replace(generations: int, m: int, trace0: float,
                                variance: str = "ml") -> np.ndarray:
    """E‖μ̂_t − μ₀‖² = Σ_{i<t} E tr Σ̂_i / m (Σ̂_0 = Σ₀): tr Σ₀ (1 − ((m−1)/m)^t) for ML,
    t·tr Σ₀/m for the unbiased covariance. Derived from μ̂_t | past ~ N(μ̂_{t−1}, Σ̂_{t−1}/m)."""
    t = _t(generations)
    if variance == "unbiased":
        return t * trace0 / m
    return trace0 * (1 - ((m - 1) / m) ** t)


def kde_trace_replace(generations: int, m: int, trace0: float, d: int,
                      bandwidth: float) -> np.ndarray:
    """E tr Cov of a Gaussian KDE (bandwidth h) refitted on m of its own samples:
    c_t + d h² with c_1 = r tr Σ₀, c_t = r (c_{t−1} + d h²), r = (m−1)/m, i.e.
    c_t = r^t tr Σ₀ + d h² r (1 − r^{t−1})/(1 − r). Derived here (sampling a KDE = picking a
    point and adding N(0, h²I) noise)."""
    r = (m - 1) / m
    t = _t(generations)
    c = r ** t * trace0 + d * bandwidth ** 2 * r * (1 - r ** (t - 1)) / (1 - r)
    return c + d * bandwidth ** 2


def wright_fisher_heterozygosity(generations: int, m: int, h0: float) -> np.ndarray:
    """E[1 − Σ p_{t,i}²] = (1 − 1/m)^t (1 − Σ p_{0,i}²): exact for multinomial resampling of
    m draws per generation (Wright 1931; Ewens 2004, Mathematical Population Genetics)."""
    return (1 - 1 / m) ** _t(generations) * h0


def wright_fisher_fixation(p0, m: int) -> float:
    """Mean generations until one category holds everything, −2m Σ (1 − p_i) ln(1 − p_i)
    (diffusion approximation for m haploid draws per generation; Kimura & Ohta 1969 for two
    categories, Littler 1975 for K)."""
    p = np.asarray(p0, dtype=np.float64)
    q = 1.0 - p[p < 1]
    return float(-2 * m * np.sum(q * np.log(q)))


# Gaussian divergences, batched over leading axes ----------------------------------------
def sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of (batched) positive semi-definite matrices via eigh."""
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))[..., None, :]) @ np.swapaxes(v, -1, -2)


def gaussian_w2(mu1, cov1, mu2, cov2) -> np.ndarray:
    """2-Wasserstein distance between N(μ₁, Σ₁) and N(μ₂, Σ₂): W₂² = ‖μ₁ − μ₂‖² +
    tr(Σ₁ + Σ₂ − 2 (Σ₂^{1/2} Σ₁ Σ₂^{1/2})^{1/2}) (Dowson & Landau 1982; Givens & Shortt 1984)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    r2 = sqrtm_psd(cov2)
    cross = np.trace(sqrtm_psd(r2 @ cov1 @ r2), axis1=-2, axis2=-1)
    w2 = (np.sum((mu1 - mu2) ** 2, axis=-1) + np.trace(cov1, axis1=-2, axis2=-1)
          + np.trace(cov2, axis1=-2, axis2=-1) - 2 * cross)
    return np.sqrt(np.clip(w2, 0, None))


def gaussian_kl(mu0, cov0, mu1, cov1) -> np.ndarray:
    """KL(N(μ₀, Σ₀) ‖ N(μ₁, Σ₁)) = ½[tr(Σ₁⁻¹Σ₀) + (μ₁−μ₀)ᵀΣ₁⁻¹(μ₁−μ₀) − d + ln(|Σ₁|/|Σ₀|)]."""
    mu0, mu1 = np.asarray(mu0, np.float64), np.asarray(mu1, np.float64)
    cov0, cov1 = np.asarray(cov0, np.float64), np.asarray(cov1, np.float64)
    d = mu0.shape[-1]
    diff = (mu1 - mu0)[..., None]
    inv = np.linalg.inv(cov1)
    maha = (np.swapaxes(diff, -1, -2) @ inv @ diff)[..., 0, 0]
    logdet = np.linalg.slogdet(cov1)[1] - np.linalg.slogdet(cov0)[1]
    return 0.5 * (np.trace(inv @ cov0, axis1=-2, axis2=-1) + maha - d + logdet)


def gaussian_entropy(cov) -> np.ndarray:
    """Differential entropy of N(μ, Σ): ½ ln((2πe)^d |Σ|) nats."""
    cov = np.asarray(cov, np.float64)
    d = cov.shape[-1]
    return 0.5 * (d * np.log(2 * np.pi * np.e) + np.linalg.slogdet(cov)[1])
