//! Statistics of repeated measurements and the units the benchmarks report.

/// Median, min and max of repeated measurements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// The median (mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// How many values (non-finite ones are dropped).
    pub runs: usize,
}

impl Summary {
    /// Summarises the finite values of `samples`; `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        };
        Some(Summary {
            median,
            min: v[0],
            max: v[n - 1],
            runs: n,
        })
    }

    /// Summarises `f` of each sample (e.g. seconds → GB/s): min and max come from the
    /// transformed values, so a rate's max is the fastest run.
    pub fn of_map(samples: &[f64], f: impl Fn(f64) -> f64) -> Option<Summary> {
        Self::of(&samples.iter().map(|&s| f(s)).collect::<Vec<_>>())
    }
}

/// GB/s (10⁹ bytes per second) for `bytes` moved in `seconds`.
pub fn gbps(bytes: f64, seconds: f64) -> f64 {
    bytes / seconds / 1e9
}

/// GFLOP/s of `products` matrix products of m×k by k×n (2·m·k·n flops each) in `seconds`.
pub fn gflops(m: usize, k: usize, n: usize, products: usize, seconds: f64) -> f64 {
    2.0 * m as f64 * k as f64 * n as f64 * products as f64 / seconds / 1e9
}

/// `a / b`, or NaN when `b` is not positive.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_an_odd_count_is_the_middle_value() {
        let s = Summary::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.runs), (3.0, 1.0, 5.0, 3));
    }

    #[test]
    fn summary_of_an_even_count_averages_the_middle_two() {
        let s = Summary::of(&[4.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.runs), (3.0, 1.0, 10.0, 4));
    }

    #[test]
    fn summary_of_one_value_and_of_none() {
        let s = Summary::of(&[2.5]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.runs), (2.5, 2.5, 2.5, 1));
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn summary_drops_non_finite_values() {
        let s = Summary::of(&[f64::NAN, 1.0, f64::INFINITY, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.runs), (2.0, 1.0, 3.0, 2));
        assert_eq!(Summary::of(&[f64::NAN]), None);
    }

    #[test]
    fn summary_of_rates_takes_min_and_max_from_the_rates() {
        // 2 GB moved in 1, 2 and 4 s: 2, 1 and 0.5 GB/s; the slowest run is the min.
        let s = Summary::of_map(&[2.0, 1.0, 4.0], |t| gbps(2e9, t)).unwrap();
        assert_eq!((s.median, s.min, s.max), (1.0, 0.5, 2.0));
    }

    #[test]
    fn rates_and_ratios() {
        // 16M floats, 8 bytes each, in 32 ms: 134217728 B / 0.032 s = 4.194 GB/s.
        assert!((gbps(8.0 * 16_777_216.0, 0.032) - 4.194_304).abs() < 1e-9);
        // 1024³: 2·2³⁰ flops in 1 s = 2.147 GFLOP/s; two products double it.
        assert!((gflops(1024, 1024, 1024, 1, 1.0) - 2.147_483_648).abs() < 1e-9);
        assert!((gflops(1024, 1024, 1024, 2, 1.0) - 4.294_967_296).abs() < 1e-9);
        assert_eq!(ratio(3.0, 2.0), 1.5);
        assert!(ratio(1.0, 0.0).is_nan());
    }
}
