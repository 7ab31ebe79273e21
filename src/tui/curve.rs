//! Loss curves kept as at most `CAPACITY` min/max buckets, so drawing a frame costs the same for ten
//! points as for ten million: appending is amortised O(1) and `columns` is O(CAPACITY + width).

/// Buckets kept per series; when full, neighbours are merged pairwise and each bucket covers twice as many points.
pub const CAPACITY: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub x_first: f64,
    pub x_last: f64,
    pub min: f64,
    pub max: f64,
    pub points: u64,
}

impl Bucket {
    fn merge(self, other: Bucket) -> Bucket {
        Bucket {
            x_first: self.x_first,
            x_last: other.x_last,
            min: self.min.min(other.min),
            max: self.max.max(other.max),
            points: self.points + other.points,
        }
    }
}

/// One curve: points appended in increasing x, summarised as min/max buckets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    buckets: Vec<Bucket>,
    points_per_bucket: u64,
    len: u64,
    last_y: Option<f64>,
}

impl Series {
    /// Appends a point; non-finite values (a diverged loss) are skipped.
    pub fn push(&mut self, x: f64, y: f64) {
        if !x.is_finite() || !y.is_finite() {
            return;
        }
        self.len += 1;
        self.last_y = Some(y);
        let per_bucket = self.points_per_bucket.max(1);
        let point = Bucket { x_first: x, x_last: x, min: y, max: y, points: 1 };
        match self.buckets.last_mut() {
            Some(last) if last.points < per_bucket => *last = last.merge(point),
            _ => self.buckets.push(point),
        }
        if self.buckets.len() > CAPACITY {
            self.buckets = self
                .buckets
                .chunks(2)
                .map(|pair| pair.iter().copied().reduce(Bucket::merge).unwrap_or(pair[0]))
                .collect();
            self.points_per_bucket = per_bucket * 2;
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn last(&self) -> Option<f64> {
        self.last_y
    }

    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    /// (x_min, x_max, y_min, y_max), or None when empty.
    pub fn bounds(&self) -> Option<(f64, f64, f64, f64)> {
        let first = self.buckets.first()?;
        let last = self.buckets.last()?;
        let (lo, hi) =
            self.buckets.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), b| (lo.min(b.min), hi.max(b.max)));
        Some((first.x_first, last.x_last, lo, hi))
    }

    /// Min/max of the points falling in each of `width` columns spanning `[x0, x1)`.
    pub fn columns(&self, x0: f64, x1: f64, width: usize) -> Vec<Option<(f64, f64)>> {
        let mut cols: Vec<Option<(f64, f64)>> = vec![None; width];
        if width == 0 {
            return cols;
        }
        let span = if x1 > x0 { x1 - x0 } else { 1.0 };
        for b in &self.buckets {
            let mid = (b.x_first + b.x_last) / 2.0;
            let col = column_of(mid, x0, span, width);
            cols[col] = Some(match cols[col] {
                Some((lo, hi)) => (lo.min(b.min), hi.max(b.max)),
                None => (b.min, b.max),
            });
        }
        cols
    }
}

/// The column of `x` among `width` columns spanning `span` from `x0` (clamped to the edges).
pub fn column_of(x: f64, x0: f64, span: f64, width: usize) -> usize {
    let c = ((x - x0) / span * width as f64).floor();
    if c.is_nan() || c < 0.0 { 0 } else { (c as usize).min(width.saturating_sub(1)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_stay_bounded_however_long_the_history() {
        let mut short = Series::default();
        for i in 0..10 {
            short.push(i as f64, 1.0);
        }
        let mut long = Series::default();
        for i in 0..1_000_000 {
            long.push(i as f64, (i % 97) as f64);
        }
        assert_eq!(short.buckets().len(), 10);
        assert!(long.buckets().len() <= CAPACITY, "{}", long.buckets().len());
        assert_eq!(long.len(), 1_000_000);
        assert_eq!(long.buckets().iter().map(|b| b.points).sum::<u64>(), 1_000_000);
        assert_eq!(long.columns(0.0, 1e6, 80).len(), 80);
    }

    #[test]
    fn columns_keep_the_min_and_max_of_every_bucket() {
        let ys: Vec<f64> =
            (0..4096).map(|i| ((i * 7919) % 1000) as f64 / 10.0 + if i == 3001 { 500.0 } else { 0.0 }).collect();
        let mut s = Series::default();
        for (i, &y) in ys.iter().enumerate() {
            s.push(i as f64, y);
        }
        let cols = s.columns(0.0, 4096.0, 64);
        for (c, col) in cols.iter().enumerate() {
            let chunk = &ys[c * 64..(c + 1) * 64];
            let lo = chunk.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = chunk.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(*col, Some((lo, hi)), "column {c}");
        }
        assert_eq!(cols[3001 / 64].map(|c| c.1), Some(ys[3001]));
    }

    #[test]
    fn non_finite_points_are_skipped() {
        let mut s = Series::default();
        s.push(0.0, f64::NAN);
        s.push(1.0, 2.0);
        s.push(2.0, f64::INFINITY);
        assert_eq!(s.len(), 1);
        assert_eq!(s.bounds(), Some((1.0, 1.0, 2.0, 2.0)));
    }
}
