//! The one definition of a percentile that every tool reports: exact,
//! by nearest rank, so that a p50 is always the latency of a call that
//! happened (an interpolated or sketched value can fall in a gap no call
//! was in). The MCP server's statistics and the investigations both use
//! it; only groups too large to hold ([`EXACT_LIMIT`]) are estimated.

/// Largest group whose percentiles are computed exactly; above it a
/// t-digest estimates them (and says so).
pub const EXACT_LIMIT: usize = 100_000;

/// How a percentile was computed, as results name it.
pub const EXACT_METHOD: &str = "exact (nearest rank: the value of the ceil(p*n)-th smallest)";
/// See [`EXACT_LIMIT`].
pub const APPROX_METHOD: &str = "approximate (t-digest; the group is larger than 100000 rows)";

/// The `p`-th percentile (0..=1) of some values by nearest rank: the
/// ceil(p*n)-th smallest (0 for no values).
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    percentile_sorted(&v, p)
}

/// [`percentile`] of values already sorted.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_is_a_value_that_occurred() {
        // Bimodal: no value between 58 and 5005. The median is one of them.
        let v = [5005.0, 40.0, 58.0, 5100.0, 52.0, 5010.0];
        assert_eq!(percentile(&v, 0.5), 58.0);
        assert_eq!(percentile(&v, 0.99), 5100.0);
        assert_eq!(percentile(&v, 0.0), 40.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[7.0], 0.9), 7.0);
    }
}
