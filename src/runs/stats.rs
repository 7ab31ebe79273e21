//! Statistics over per-trial values: mean, std (population or sample), Student-t confidence intervals,
//! and Welch's two-sample t-test (Student's t and the incomplete beta from statrs). Pure functions; checked
//! against scipy/numpy in tests.
//!
//! Undefined quantities are `None`, never NaN: the sample std and the confidence interval need n ≥ 2;
//! Welch's test needs n ≥ 2 on both sides and is undefined when both samples are constant and equal
//! (scipy returns NaN there); two constant samples with different means give p = 0 (as scipy does).
//! A constant sample (n ≥ 2) has the zero-width interval [mean, mean] where scipy returns NaN.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};
use statrs::function::beta::beta_reg;

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
    beta_reg(df / 2.0, 0.5, df / (df + t * t)).clamp(0.0, 1.0)
}

/// Quantile of Student's t (scipy's `t.ppf(p, df)`); None outside 0 < p < 1 or df ≤ 0.
pub fn t_quantile(p: f64, df: f64) -> Option<f64> {
    if !(p > 0.0 && p < 1.0 && df > 0.0) {
        return None;
    }
    Some(StudentsT::new(0.0, 1.0, df).ok()?.inverse_cdf(p))
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
