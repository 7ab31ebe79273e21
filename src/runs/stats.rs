//! Statistics over per-trial values: mean, std (population or sample), Student-t confidence intervals,
//! and Welch's two-sample t-test. Pure functions, no dependencies; checked against scipy/numpy in tests.
//!
//! Undefined quantities are `None`, never NaN: the sample std and the confidence interval need n ≥ 2;
//! Welch's test needs n ≥ 2 on both sides and is undefined when both samples are constant and equal
//! (scipy returns NaN there); two constant samples with different means give p = 0 (as scipy does).
//! A constant sample (n ≥ 2) has the zero-width interval [mean, mean] where scipy returns NaN.

use serde::{Deserialize, Serialize};

/// Which standard deviation to report. The study uses numpy's default, the population std (ddof 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StdKind {
    /// Divide by n (numpy's `np.std`, ddof = 0): the study's convention.
    #[default]
    Population,
    /// Divide by n − 1 (ddof = 1).
    Sample,
}

impl StdKind {
    pub fn ddof(self) -> usize {
        match self {
            StdKind::Population => 0,
            StdKind::Sample => 1,
        }
    }
}

/// What the leaderboard shows for one group of trials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    /// The std of `std_kind`; None for the sample std of a single value.
    pub std: Option<f64>,
    pub std_kind: StdKind,
    /// 95% confidence interval of the mean (Student t with n − 1 degrees of freedom, sample std); None for n < 2.
    pub ci95: Option<(f64, f64)>,
    pub min: f64,
    pub max: f64,
}

/// Summarises `values`; None when there are none.
pub fn summarize(values: &[f64], std_kind: StdKind) -> Option<Summary> {
    let m = mean(values)?;
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(Summary {
        n: values.len(),
        mean: m,
        std: std(values, std_kind.ddof()),
        std_kind,
        ci95: confidence_interval(values, 0.95),
        min,
        max,
    })
}

pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(values.iter().sum::<f64>() / values.len() as f64)
}

/// Standard deviation with `ddof` delta degrees of freedom (numpy's meaning); None when n ≤ ddof.
pub fn std(values: &[f64], ddof: usize) -> Option<f64> {
    variance(values, ddof).map(f64::sqrt)
}

fn variance(values: &[f64], ddof: usize) -> Option<f64> {
    let m = mean(values)?;
    if values.len() <= ddof {
        return None;
    }
    let ss: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    Some(ss / (values.len() - ddof) as f64)
}

/// Two-sided confidence interval of the mean at `level` (e.g. 0.95); None for n < 2.
pub fn confidence_interval(values: &[f64], level: f64) -> Option<(f64, f64)> {
    let n = values.len();
    let m = mean(values)?;
    let s = std(values, 1)?;
    let t = t_quantile(0.5 + level / 2.0, (n - 1) as f64)?;
    let half = t * s / (n as f64).sqrt();
    Some((m - half, m + half))
}

/// Welch's unequal-variance two-sample t-test, two-sided p-value (scipy's `ttest_ind(equal_var=False)`).
pub fn welch_p_value(a: &[f64], b: &[f64]) -> Option<f64> {
    let (va, vb) = (variance(a, 1)?, variance(b, 1)?);
    let (ma, mb) = (mean(a)?, mean(b)?);
    let (sa, sb) = (va / a.len() as f64, vb / b.len() as f64);
    let se2 = sa + sb;
    if se2 == 0.0 {
        return if ma == mb { None } else { Some(0.0) };
    }
    let t = (ma - mb) / se2.sqrt();
    let df = se2 * se2 / (sa * sa / (a.len() - 1) as f64 + sb * sb / (b.len() - 1) as f64);
    Some(two_sided_t_p(t, df))
}

/// P(|T| ≥ |t|) for Student's t with `df` degrees of freedom.
pub fn two_sided_t_p(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return 0.0;
    }
    regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t)).clamp(0.0, 1.0)
}

/// Student's t cumulative distribution function.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * two_sided_t_p(t, df);
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// Quantile of Student's t (scipy's `t.ppf(p, df)`) by bisection on the CDF; None outside 0 < p < 1 or df ≤ 0.
pub fn t_quantile(p: f64, df: f64) -> Option<f64> {
    if !(p > 0.0 && p < 1.0 && df > 0.0) {
        return None;
    }
    if p == 0.5 {
        return Some(0.0);
    }
    let upper = p > 0.5;
    let target = if upper { p } else { 1.0 - p };
    let mut hi = 1.0;
    while t_cdf(hi, df) < target {
        hi *= 2.0;
        if hi > 1e300 {
            return None;
        }
    }
    let mut lo = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < target {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-15 * hi {
            break;
        }
    }
    let q = 0.5 * (lo + hi);
    Some(if upper { q } else { -q })
}

/// I_x(a, b), the regularized incomplete beta function (continued fraction, Numerical Recipes §6.4).
pub fn regularized_incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_continued_fraction(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_continued_fraction(b, a, 1.0 - x) / b
    }
}

fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=500 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; relative error ~1e-15).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEF[0];
    for (i, c) in COEF.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    #[test]
    fn known_t_quantiles() {
        assert!(close(t_quantile(0.975, 1.0).unwrap(), 12.706204736174694, 1e-10));
        assert!(close(t_quantile(0.975, 4.0).unwrap(), 2.7764451051977987, 1e-10));
        assert!(close(t_quantile(0.025, 9.0).unwrap(), -2.2621571627409915, 1e-10));
        assert_eq!(t_quantile(1.0, 3.0), None);
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-13));
        assert!(close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-13));
    }

    #[test]
    fn single_values_and_constants() {
        let s = summarize(&[0.8], StdKind::Population).unwrap();
        assert_eq!((s.n, s.std, s.ci95), (1, Some(0.0), None));
        assert_eq!(summarize(&[0.8], StdKind::Sample).unwrap().std, None);
        assert_eq!(summarize(&[], StdKind::Sample), None);
        assert_eq!(welch_p_value(&[1.0, 1.0], &[1.0, 1.0]), None);
        assert_eq!(welch_p_value(&[1.0, 1.0], &[2.0, 2.0]), Some(0.0));
        assert_eq!(welch_p_value(&[1.0], &[2.0, 2.5]), None);
    }
}
