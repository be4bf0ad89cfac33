//! The math the attacks share: Φ⁻¹, the keyed random generator, the
//! coordinate-wise statistics of a round's honest updates and, for the adaptive
//! attacks, the damage an aggregate does.

use super::UpdateContext;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Coordinate-wise statistics of this round's honest rows.
#[derive(Debug, Clone, PartialEq)]
pub struct HonestStats {
    /// Mean per coordinate.
    pub mean: Vec<f64>,
    /// Population standard deviation per coordinate.
    pub std: Vec<f64>,
    /// Smallest honest value per coordinate.
    pub min: Vec<f32>,
    /// Largest honest value per coordinate.
    pub max: Vec<f32>,
}

impl HonestStats {
    /// Mean, population std, min and max over `rows` (None when there are no
    /// rows). Two passes in f64 (min and max ride on the first), parallel over
    /// fixed coordinate chunks; within a chunk, per block of [`STATS_BLOCK`]
    /// coordinates, so the second pass reads the rows from cache, not memory.
    ///
    /// ```
    /// use _core::security::HonestStats;
    ///
    /// let rows: Vec<&[f32]> = vec![&[1.0, 1.0, 1.0], &[3.0, 1.0, -1.0]];
    /// let stats = HonestStats::compute(&rows).unwrap();
    /// assert_eq!(stats.mean, vec![2.0, 1.0, 0.0]);
    /// assert_eq!(stats.std, vec![1.0, 0.0, 1.0]);
    /// assert_eq!((stats.min, stats.max), (vec![1.0, 1.0, -1.0], vec![3.0, 1.0, 1.0]));
    /// ```
    pub fn compute(rows: &[&[f32]]) -> Option<HonestStats> {
        use crate::parallel::CHUNK;
        use rayon::prelude::*;
        let d = rows.first()?.len();
        let mut mean = vec![0f64; d];
        let mut std = vec![0f64; d];
        let mut min = vec![0f32; d];
        let mut max = vec![0f32; d];
        mean.par_chunks_mut(CHUNK)
            .zip(std.par_chunks_mut(CHUNK))
            .zip(min.par_chunks_mut(CHUNK).zip(max.par_chunks_mut(CHUNK)))
            .enumerate()
            .for_each(|(c, ((m, s), (lo, hi)))| {
                let mut start = c * CHUNK;
                for (((m, s), lo), hi) in m
                    .chunks_mut(STATS_BLOCK)
                    .zip(s.chunks_mut(STATS_BLOCK))
                    .zip(lo.chunks_mut(STATS_BLOCK))
                    .zip(hi.chunks_mut(STATS_BLOCK))
                {
                    stats_block_dispatch(rows, start, m, s, lo, hi);
                    start += m.len();
                }
            });
        Some(HonestStats {
            mean,
            std,
            min,
            max,
        })
    }
}

/// Coordinates per block of [`HonestStats::compute`]: the rows' blocks (h · 2 KiB)
/// stay in L2 between its two passes.
const STATS_BLOCK: usize = 512;

/// One block's statistics, coordinates `start..start + m.len()` of `rows`:
/// mean and population std summed in f64 in row order, min and max in f32.
#[inline(always)]
fn stats_block(
    rows: &[&[f32]],
    start: usize,
    m: &mut [f64],
    s: &mut [f64],
    lo: &mut [f32],
    hi: &mut [f32],
) {
    let (h, len) = (rows.len(), m.len());
    lo.copy_from_slice(&rows[0][start..start + len]);
    hi.copy_from_slice(&rows[0][start..start + len]);
    m.fill(0.0);
    s.fill(0.0);
    for row in rows {
        let x = &row[start..start + len];
        for (a, &x) in m.iter_mut().zip(x) {
            *a += f64::from(x);
        }
        for ((l, h), &x) in lo.iter_mut().zip(hi.iter_mut()).zip(x) {
            *l = l.min(x);
            *h = h.max(x);
        }
    }
    m.iter_mut().for_each(|a| *a /= h as f64);
    for row in rows {
        for ((a, &x), &mu) in s.iter_mut().zip(&row[start..start + len]).zip(m.iter()) {
            let t = f64::from(x) - mu;
            *a += t * t;
        }
    }
    s.iter_mut().for_each(|a| *a = (*a / h as f64).sqrt());
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
/// # Safety
/// The CPU must support AVX2.
unsafe fn stats_block_avx2(
    rows: &[&[f32]],
    start: usize,
    m: &mut [f64],
    s: &mut [f64],
    lo: &mut [f32],
    hi: &mut [f32],
) {
    stats_block(rows, start, m, s, lo, hi)
}

/// [`stats_block`] with AVX2 where the CPU has it (the same bits: the operation
/// order is fixed in the source and never contracted).
fn stats_block_dispatch(
    rows: &[&[f32]],
    start: usize,
    m: &mut [f64],
    s: &mut [f64],
    lo: &mut [f32],
    hi: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { stats_block_avx2(rows, start, m, s, lo, hi) };
        }
    }
    stats_block(rows, start, m, s, lo, hi)
}

/// ‖a − μ‖₂, how far an aggregate `a` lands from the honest mean μ (in f64;
/// per fixed [`crate::parallel::CHUNK`] in coordinate order, chunks in
/// parallel, their sums added in order: the same bits for any thread count):
/// what the adaptive attacks maximise.
pub(super) fn damage(aggregate: &[f32], mean: &[f64]) -> f64 {
    use crate::parallel::CHUNK;
    use rayon::prelude::*;
    let partials: Vec<f64> = aggregate
        .par_chunks(CHUNK)
        .zip(mean.par_chunks(CHUNK))
        .map(|(a, m)| {
            a.iter()
                .zip(m)
                .map(|(&a, &m)| (f64::from(a) - m).powi(2))
                .sum::<f64>()
        })
        .collect();
    partials.iter().sum::<f64>().sqrt()
}

/// `v` as f32 (computed in parallel), or None if a coordinate overflows f32 (a
/// candidate the adaptive attacks skip rather than send).
pub(super) fn to_f32(v: impl rayon::iter::IndexedParallelIterator<Item = f64>) -> Option<Vec<f32>> {
    use rayon::prelude::*;
    let out: Vec<f32> = v.map(|x| x as f32).collect();
    out.par_iter().all(|y| y.is_finite()).then_some(out)
}

/// The zero vector of the client's update length (what an attack that lacks
/// its inputs sends).
pub(super) fn zeros(ctx: &UpdateContext<'_>) -> Vec<f32> {
    vec![0f32; ctx.own.len()]
}

/// Φ⁻¹, the standard normal quantile (Acklam's rational approximation,
/// relative error < 1.15e-9). Returns ∓∞ at p = 0 / 1 and NaN outside [0, 1].
///
/// ```
/// use _core::security::normal_quantile;
///
/// assert_eq!(normal_quantile(0.5), 0.0);
/// assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-8);
/// assert_eq!(normal_quantile(1.0), f64::INFINITY);
/// ```
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.383_577_518_672_69e2,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-03,
        3.224671290700398e-01,
        2.445134137142996e+00,
        3.754408661907416e+00,
    ];
    const P_LOW: f64 = 0.02425;
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    }
}

/// A ChaCha8 generator for (seed, stream, round, client): independent of call order.
///
/// ```
/// use _core::security::rng_for;
/// use rand::Rng;
///
/// let a: u64 = rng_for(1, 2, 3, 4).random();
/// assert_eq!(a, rng_for(1, 2, 3, 4).random::<u64>());
/// assert_ne!(a, rng_for(1, 2, 3, 5).random::<u64>());
/// ```
pub fn rng_for(seed: u64, stream: u64, round: u64, client: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    for (i, word) in [seed, stream, round, client].iter().enumerate() {
        key[i * 8..(i + 1) * 8].copy_from_slice(&word.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantile_known_values() {
        let cases = [
            (0.5, 0.0),
            (0.975, 1.959963984540054),
            (0.8413447460685429, 1.0),
            (0.02275013194817921, -2.0),
            (0.001, -3.090232306167813),
            (0.999, 3.090232306167813),
            (0.6, 0.2533471031357997),
        ];
        for (p, x) in cases {
            let q = normal_quantile(p);
            assert!(
                (q - x).abs() < 1e-8 * x.abs().max(1.0),
                "Φ⁻¹({p}) = {q}, want {x}"
            );
        }
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert!(normal_quantile(1.5).is_nan());
    }

    #[test]
    fn honest_stats() {
        let rows: Vec<&[f32]> = vec![&[1.0, 1.0, 1.0], &[3.0, 1.0, -1.0]];
        let stats = HonestStats::compute(&rows).unwrap();
        assert_eq!(stats.mean, vec![2.0, 1.0, 0.0]);
        assert_eq!(stats.std, vec![1.0, 0.0, 1.0]);
        assert_eq!(stats.min, vec![1.0, 1.0, -1.0]);
        assert_eq!(stats.max, vec![3.0, 1.0, 1.0]);
        assert!(HonestStats::compute(&[]).is_none());
        // Chunks: min/max and the mean agree with a naive pass past CHUNK.
        let d = crate::parallel::CHUNK + 7;
        let a: Vec<f32> = (0..d).map(|j| j as f32).collect();
        let b: Vec<f32> = (0..d).map(|j| -(j as f32)).collect();
        let stats = HonestStats::compute(&[&a, &b]).unwrap();
        assert!(stats.mean.iter().all(|&m| m == 0.0));
        assert_eq!(stats.max, a.iter().map(|x| x.abs()).collect::<Vec<_>>());
        assert_eq!(stats.min, b.iter().map(|x| -x.abs()).collect::<Vec<_>>());
    }

    #[test]
    fn honest_stats_equal_a_naive_two_pass_bit_for_bit_for_any_thread_count() {
        let d = 2 * crate::parallel::CHUNK + STATS_BLOCK + 13;
        let data = crate::strategy::test_util::matrix(7, d, 21);
        let rows: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
        let h = rows.len() as f64;
        let mean: Vec<f64> = (0..d)
            .map(|j| rows.iter().fold(0.0, |a, r| a + f64::from(r[j])) / h)
            .collect();
        let std: Vec<f64> = (0..d)
            .map(|j| {
                let ss = rows.iter().fold(0.0, |a, r| {
                    let t = f64::from(r[j]) - mean[j];
                    a + t * t
                });
                (ss / h).sqrt()
            })
            .collect();
        let min: Vec<f32> = (0..d)
            .map(|j| rows.iter().fold(rows[0][j], |a, r| a.min(r[j])))
            .collect();
        let max: Vec<f32> = (0..d)
            .map(|j| rows.iter().fold(rows[0][j], |a, r| a.max(r[j])))
            .collect();
        let want = HonestStats {
            mean,
            std,
            min,
            max,
        };
        for threads in [1, 3] {
            let got = crate::parallel::install(Some(threads), || HonestStats::compute(&rows));
            assert_eq!(got.unwrap(), Some(want.clone()), "{threads} threads");
        }
    }

    #[test]
    fn damage_and_overflow() {
        assert_eq!(damage(&[3.0, 4.0], &[0.0, 0.0]), 5.0);
        use rayon::prelude::*;
        assert_eq!(to_f32(vec![1.0, 2.0].into_par_iter()), Some(vec![1.0, 2.0]));
        assert_eq!(to_f32(vec![1.0, 1e300].into_par_iter()), None);
    }
}
