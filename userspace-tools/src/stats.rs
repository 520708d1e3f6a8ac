//! Latency statistics shared by `ssictl ping` and `ssictl page read`.

/// Nanoseconds as (fractional) microseconds.
pub fn ns_to_us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// A latency in microseconds for text output.
pub fn fmt_us(us: f64) -> String {
    format!("{us:.1}")
}

/// The median of `samples` (the mean of the two middle ones for an even count), or
/// `None` if there are none.
pub fn median(samples: &[f64]) -> Option<f64> {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(s[n / 2]),
        _ => Some((s[n / 2 - 1] + s[n / 2]) / 2.0),
    }
}

/// Fastest, median and slowest of a set of latencies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Fastest.
    pub min: f64,
    /// Median.
    pub median: f64,
    /// Slowest.
    pub max: f64,
}

impl Summary {
    /// Summarizes `samples`, or `None` if there are none.
    pub fn of(samples: &[f64]) -> Option<Self> {
        Some(Self {
            min: samples.iter().copied().reduce(f64::min)?,
            median: median(samples)?,
            max: samples.iter().copied().reduce(f64::max)?,
        })
    }

    /// `min/median/max` for text output.
    pub fn text(&self) -> String {
        format!(
            "{}/{}/{}",
            fmt_us(self.min),
            fmt_us(self.median),
            fmt_us(self.max)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty_sets() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[5.0]), Some(5.0));
        assert_eq!(median(&[9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0, 7.0]), Some(7.0));
    }

    #[test]
    fn summary_and_units() {
        assert_eq!(Summary::of(&[]), None);
        let s = Summary::of(&[30.5, 10.26, 20.0]).unwrap();
        assert_eq!(
            s,
            Summary {
                min: 10.26,
                median: 20.0,
                max: 30.5
            }
        );
        assert_eq!(s.text(), "10.3/20.0/30.5");
        assert_eq!(ns_to_us(123_456), 123.456);
        assert_eq!(ns_to_us(0), 0.0);
    }
}
