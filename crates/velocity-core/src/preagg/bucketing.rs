//! Bucketing.
//!
//! Byzantine-Robust Learning on Heterogeneous Datasets via Bucketing
//! [Karimireddy, He and Jaggi, 2022] (ICLR). Paper: <https://arxiv.org/abs/2006.09365>

use super::{at_least, sized, Members, Mixed, PreAgg, PreAggSpec, PreInputs, RowCount, StageRows};
use crate::error::Result;
use crate::schema::ParamSpec;
use crate::security::rng_for;
use crate::strategy::{weighted_sum_into, KernelResult, SawNonFinite};
use rand::Rng;
use rayon::prelude::*;

/// The RNG stream of the buckets' permutation ("bucketin").
const STREAM_BUCKETS: u64 = 0x6275_636b_6574_696e;

/// Bucketing's registry entry.
pub(super) const SPEC: PreAggSpec = PreAggSpec {
    name: "Bucketing",
    aliases: &["Bucket", "Buckets"],
    description: "Bucketing: shuffle the updates, split them into buckets of s and \
                  average each bucket.",
    reference: "Karimireddy, He and Jaggi 2022, https://arxiv.org/abs/2006.09365",
    params: &[ParamSpec::int(
        "s",
        2,
        "bucket size: updates averaged per bucket (ceil(n/s) buckets; needs n >= s)",
    )
    .min(1.0, true)],
    tolerance: None,
    seeded: true,
    rows: RowCount::Groups("s"),
    check_clients: Some(bucketing_clients),
    kernel: run,
};

/// n ≥ s.
fn bucketing_clients(p: &PreAgg, n: usize) -> Result<()> {
    at_least(p, n, 1, "s", 0)
}

fn run(p: &PreAgg, input: &PreInputs<'_>, buffer: &mut Vec<f32>) -> KernelResult<Mixed> {
    let order = permutation(
        input.rows.len(),
        &mut rng_for(input.key.seed, STREAM_BUCKETS, input.key.round, 0),
    );
    let (rows, mixed) = bucketing(
        input.rows,
        input.weights,
        &order,
        p.count("s"),
        std::mem::take(buffer),
    )?;
    *buffer = rows;
    Ok(mixed)
}

/// A uniformly random permutation of `0..n` (Fisher–Yates driven by `rng`).
pub(crate) fn permutation(n: usize, rng: &mut impl Rng) -> Vec<usize> {
    let mut ids: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i as u64) as usize;
        ids.swap(i, j);
    }
    ids
}

/// Bucketing over the row order `order` (a permutation of 0..n).
///
/// ```text
/// B_b = {π(b·s + 1), …, π(min((b + 1)·s, n))},   b = 0 … ⌈n/s⌉ − 1
/// y_b = Σ_{i ∈ B_b} w_i x_i / Σ_{i ∈ B_b} w_i,    weight of y_b = Σ_{i ∈ B_b} w_i
/// ```
/// where x_1 … x_n are the rows (client updates), w_i their sample weights, s
/// ≥ 1 the bucket size and π a uniformly random permutation, keyed by (seed,
/// round) in a run. The last bucket is smaller when s ∤ n. A bucket whose
/// weights sum to 0 is averaged uniformly (its weight stays 0). With equal
/// weights y_b is ByzFL's plain bucket mean; the weighted form makes
/// Bucketing > FedAvg equal FedAvg up to rounding. Each y_b stands for B_b.
/// Summed in f64 in bucket order, rounded to f32.
///
/// Returns the bucket means, written into `buffer` (resized to ⌈n/s⌉ × d), and
/// the stage's output.
///
/// Preconditions: n ≥ s (checked by the caller; ByzFL then averages all rows
/// into one bucket). Non-finite input: rejected.
pub(crate) fn bucketing(
    rows: &[&[f32]],
    weights: &[f64],
    order: &[usize],
    s: usize,
    buffer: Vec<f32>,
) -> KernelResult<(Vec<f32>, Mixed)> {
    let d = rows[0].len();
    let buckets: Vec<Vec<usize>> = order.chunks(s).map(<[usize]>::to_vec).collect();
    let mut out = sized(buffer, buckets.len() * d);
    let finite = out
        .par_chunks_mut(d)
        .zip(&buckets)
        .map(|(y, bucket)| {
            let members: Vec<&[f32]> = bucket.iter().map(|&i| rows[i]).collect();
            let w: Vec<f64> = bucket.iter().map(|&i| weights[i]).collect();
            let total: f64 = w.iter().sum();
            let coeffs: Vec<f64> = if total > 0.0 {
                w.iter().map(|w| w / total).collect()
            } else {
                vec![1.0 / w.len() as f64; w.len()]
            };
            weighted_sum_into(&members, &coeffs, y, |a| a as f32)
        })
        .reduce(|| true, |a, b| a & b);
    if !finite {
        return Err(SawNonFinite);
    }
    let weights = buckets
        .iter()
        .map(|b| b.iter().map(|&i| weights[i]).sum())
        .collect();
    let mixed = Mixed {
        rows: StageRows::New,
        weights,
        members: Members::Groups(buckets),
    };
    Ok((out, mixed))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::out_rows;
    use super::*;
    use crate::parallel::install;
    use crate::strategy::test_util::{matrix, rows};

    #[test]
    fn hand_computed_buckets() {
        let data = vec![
            vec![1.0f32, 2.0],
            vec![3.0, 4.0],
            vec![5.0, 6.0],
            vec![7.0, 8.0],
            vec![9.0, 0.0],
        ];
        let (flat, out) = bucketing(
            &rows(&data),
            &[1.0, 3.0, 1.0, 0.0, 2.0],
            &[4, 1, 0, 2, 3],
            2,
            Vec::new(),
        )
        .unwrap();
        assert_eq!(
            out.members,
            Members::Groups(vec![vec![4, 1], vec![0, 2], vec![3]])
        );
        // (2·[9, 0] + 3·[3, 4]) / 5, ([1, 2] + [5, 6]) / 2, [7, 8] (weight 0: uniform).
        assert_eq!(
            out_rows(&flat, 2),
            vec![vec![5.4, 2.4], vec![3.0, 4.0], vec![7.0, 8.0]]
        );
        assert_eq!(out.weights, vec![5.0, 2.0, 0.0]);
        let (one, _) = bucketing(&rows(&data), &[1.0; 5], &[0, 1, 2, 3, 4], 5, Vec::new()).unwrap();
        assert_eq!(one, vec![5.0, 4.0]);
    }

    #[test]
    fn permutations_are_keyed_and_uniformly_spread() {
        let p = |seed, round| permutation(10, &mut rng_for(seed, STREAM_BUCKETS, round, 0));
        assert_eq!(p(1, 2), p(1, 2));
        assert_ne!(p(1, 2), p(1, 3));
        let mut sorted = p(5, 5);
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        // Each of 4 rows lands first about 1/4 of the time.
        let mut first = [0usize; 4];
        for round in 0..4000 {
            first[permutation(4, &mut rng_for(0, STREAM_BUCKETS, round, 0))[0]] += 1;
        }
        assert!(first.iter().all(|&c| (850..1150).contains(&c)), "{first:?}");
    }

    #[test]
    fn same_bits_for_any_thread_count_and_rejects_non_finite() {
        let mut data = matrix(9, 2 * crate::parallel::CHUNK + 3, 8);
        let order: Vec<usize> = (0..9).rev().collect();
        let w: Vec<f64> = (0..9).map(|i| i as f64).collect();
        let run = |t| {
            install(Some(t), || {
                bucketing(&rows(&data), &w, &order, 4, Vec::new())
            })
            .unwrap()
        };
        assert_eq!(run(1), run(4));
        data[0][7] = f32::NAN; // row 0 has weight 0: still detected
        assert_eq!(
            bucketing(&rows(&data), &w, &order, 4, Vec::new()),
            Err(SawNonFinite)
        );
    }
}
