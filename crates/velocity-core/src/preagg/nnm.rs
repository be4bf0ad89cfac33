//! Nearest Neighbor Mixing (NNM).
//!
//! Fixing by Mixing: A Recipe for Optimal Byzantine ML under Heterogeneity
//! [Allouah et al., 2023] (AISTATS). Paper: <https://arxiv.org/abs/2302.01772>

use super::{at_least, sized, Members, Mixed, PreAgg, PreAggSpec, PreInputs, RowCount, StageRows};
use crate::error::Result;
use crate::parallel::{num_chunks, CHUNK};
use crate::schema::ParamSpec;
use crate::strategy::{all_finite, pairwise_sq_distances, KernelResult, SawNonFinite};
use rayon::prelude::*;

/// NNM's registry entry.
pub(super) const SPEC: PreAggSpec = PreAggSpec {
    name: "NNM",
    aliases: &["NearestNeighborMixing", "NearestNeighbourMixing"],
    description: "Nearest-neighbour mixing: each update becomes the mean of its n − f \
                  nearest updates (itself included).",
    reference: "Allouah et al. 2023, https://arxiv.org/abs/2302.01772",
    params: &[ParamSpec::int(
        "f",
        1,
        "number of Byzantine clients tolerated: each update is mixed with its n - f nearest \
         (needs n >= f+1)",
    )
    .min(0.0, true)],
    tolerance: Some("f"),
    seeded: false,
    rows: RowCount::Same,
    check_clients: Some(nnm_clients),
    kernel: run,
};

/// n ≥ f + 1 (each row has n − f ≥ 1 neighbours).
fn nnm_clients(p: &PreAgg, n: usize) -> Result<()> {
    at_least(p, n, 1, "f", 1)
}

fn run(p: &PreAgg, input: &PreInputs<'_>, buffer: &mut Vec<f32>) -> KernelResult<Mixed> {
    *buffer = nnm(input.rows, p.count("f"), std::mem::take(buffer))?;
    Ok(Mixed {
        rows: StageRows::New,
        weights: input.weights.to_vec(),
        members: Members::Same,
    })
}

/// Coordinates per cache block: the n rows' blocks (n · 2 KiB) stay in L2 while
/// every output row of the block is summed from them.
const BLOCK: usize = 512;

/// Nearest Neighbor Mixing.
///
/// ```text
/// NNM_f(x_1, …, x_n) = (y_1, …, y_n),    y_i = (1 / (n − f)) · Σ_{j ∈ N_i} x_j
/// ```
/// where x_1 … x_n are the n rows (client updates), f ≥ 0 the number of
/// Byzantine rows tolerated, and N_i the n − f rows closest to x_i in Euclidean
/// distance, x_i itself included (distance 0), ties broken by the lower index.
/// Unweighted, as ByzFL's `NNM`; each y_i keeps x_i's sample weight (in the
/// pipeline) and stands for row i. The sum runs over N_i in index order in
/// f64, divided by n − f and rounded to f32 (ByzFL: a float32 numpy mean, and
/// an arbitrary choice among tied neighbours, `argpartition`).
///
/// Cost: the n × n squared distances (the kernel Krum uses), a selection per
/// row, then n · (n − f) · d additions: per [`CHUNK`] of coordinates (in
/// parallel), per block of [`BLOCK`] coordinates, every output row is summed
/// from the n input blocks, which are read from memory once and then from cache.
///
/// The output is written into `buffer` (resized to n × d).
///
/// Preconditions: n ≥ f + 1 (checked by the caller). Non-finite input: rejected.
pub(crate) fn nnm(rows: &[&[f32]], f: usize, buffer: Vec<f32>) -> KernelResult<Vec<f32>> {
    let n = rows.len();
    let d = rows[0].len();
    let k = n - f;
    if n == 1 && !all_finite(rows[0]) {
        return Err(SawNonFinite); // one row has no pairs to reveal it
    }
    let dist = pairwise_sq_distances(rows)?;
    let neighbours: Vec<Vec<usize>> = (0..n)
        .into_par_iter()
        .map(|i| nearest(&dist[i * n..(i + 1) * n], k))
        .collect();
    let mut out = sized(buffer, n * d);
    let mut pieces: Vec<Vec<&mut [f32]>> = (0..num_chunks(d)).map(|_| Vec::new()).collect();
    for row in out.chunks_mut(d) {
        for (c, piece) in row.chunks_mut(CHUNK).enumerate() {
            pieces[c].push(piece);
        }
    }
    pieces
        .into_par_iter()
        .enumerate()
        .for_each(|(c, mut outs)| mix_chunk_dispatch(rows, &neighbours, c * CHUNK, &mut outs));
    Ok(out)
}

/// The `k` indices with the smallest (distance, index), in index order.
fn nearest(dist: &[f64], k: usize) -> Vec<usize> {
    let mut ids: Vec<usize> = (0..dist.len()).collect();
    if k < ids.len() {
        ids.select_nth_unstable_by(k - 1, |&a, &b| dist[a].total_cmp(&dist[b]).then(a.cmp(&b)));
        ids.truncate(k);
    }
    ids.sort_unstable();
    ids
}

/// `outs[i] = mean of rows[j][start..] over j ∈ neighbours[i]`, for one chunk
/// (`outs[i]` are row i's coordinates `start..start + len`): per block, each
/// output's f64 sums (4 KiB, in L1) take its neighbours' blocks (in L2) in
/// index order.
#[inline(always)]
fn mix_chunk(rows: &[&[f32]], neighbours: &[Vec<usize>], start: usize, outs: &mut [&mut [f32]]) {
    let len = outs.first().map_or(0, |o| o.len());
    let mut acc = [0f64; BLOCK];
    let mut b0 = 0;
    while b0 < len {
        let b1 = (b0 + BLOCK).min(len);
        let blocks: Vec<&[f32]> = rows.iter().map(|r| &r[start + b0..start + b1]).collect();
        let acc = &mut acc[..b1 - b0];
        for (out, near) in outs.iter_mut().zip(neighbours) {
            acc.fill(0.0);
            for &j in near {
                for (a, &x) in acc.iter_mut().zip(blocks[j]) {
                    *a += f64::from(x);
                }
            }
            let count = near.len() as f64;
            for (o, a) in out[b0..b1].iter_mut().zip(acc.iter()) {
                *o = (a / count) as f32;
            }
        }
        b0 = b1;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
/// # Safety
/// The CPU must support AVX2.
unsafe fn mix_chunk_avx2(
    rows: &[&[f32]],
    neighbours: &[Vec<usize>],
    start: usize,
    outs: &mut [&mut [f32]],
) {
    mix_chunk(rows, neighbours, start, outs)
}

/// [`mix_chunk`] with AVX2 where the CPU has it (the same bits on every path:
/// additions in a fixed order, no contraction).
fn mix_chunk_dispatch(
    rows: &[&[f32]],
    neighbours: &[Vec<usize>],
    start: usize,
    outs: &mut [&mut [f32]],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { mix_chunk_avx2(rows, neighbours, start, outs) };
        }
    }
    mix_chunk(rows, neighbours, start, outs)
}

const _: () = assert!(CHUNK % BLOCK == 0);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parallel::install;
    use crate::strategy::test_util::{matrix, rows};

    /// O(n²d) reference: the n − f nearest by (distance², index), summed in index order.
    fn naive(data: &[Vec<f32>], f: usize) -> Vec<Vec<f32>> {
        let n = data.len();
        let dist = |i: usize, j: usize| -> f64 {
            data[i]
                .iter()
                .zip(&data[j])
                .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                .sum()
        };
        (0..n)
            .map(|i| {
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(|&a, &b| dist(i, a).total_cmp(&dist(i, b)).then(a.cmp(&b)));
                let mut near = order[..n - f].to_vec();
                near.sort_unstable();
                (0..data[i].len())
                    .map(|c| {
                        let s = near.iter().fold(0f64, |s, &j| s + f64::from(data[j][c]));
                        (s / near.len() as f64) as f32
                    })
                    .collect()
            })
            .collect()
    }

    fn flat(v: &[Vec<f32>]) -> Vec<f32> {
        v.concat()
    }

    #[test]
    fn hand_computed_mixing() {
        // f = 1, k = 2: 0 → {0, 2}, 2 → {0, 2} (|2 − 0| < |2 − 30|), 30 → {2, 30}.
        let data = vec![vec![0.0f32, 1.0], vec![30.0, 1.0], vec![2.0, 1.0]];
        let out = nnm(&rows(&data), 1, Vec::new()).unwrap();
        assert_eq!(out, vec![1.0, 1.0, 16.0, 1.0, 1.0, 1.0]);
        // f = 0: every row becomes the mean of all rows.
        let out = nnm(&rows(&data), 0, Vec::new()).unwrap();
        assert_eq!(out, [32.0 / 3.0, 1.0].repeat(3));
        // Ties go to the lower index: 1 is as close to 0 as 2 is.
        let tied = vec![vec![1.0f32], vec![0.0], vec![2.0]];
        assert_eq!(
            nnm(&rows(&tied), 1, Vec::new()).unwrap(),
            vec![0.5, 0.5, 1.5]
        );
    }

    #[test]
    fn matches_the_naive_reference_bit_for_bit() {
        for (n, d, f) in [
            (1, 5, 0),
            (2, 3, 1),
            (5, 17, 2),
            (9, CHUNK + 37, 3),
            (12, 700, 0),
        ] {
            let data = matrix(n, d, (n * 7 + d) as u64);
            let got = nnm(&rows(&data), f, Vec::new()).unwrap();
            assert_eq!(got, flat(&naive(&data, f)), "n={n} d={d} f={f}");
        }
    }

    #[test]
    fn same_bits_for_any_thread_count() {
        let data = matrix(11, 3 * CHUNK + 5, 4);
        let r = rows(&data);
        let one = install(Some(1), || nnm(&r, 3, Vec::new())).unwrap();
        let four = install(Some(4), || nnm(&r, 3, Vec::new())).unwrap();
        assert_eq!(one, four);
    }

    #[test]
    fn non_finite_input_is_rejected() {
        let mut data = matrix(4, 9, 2);
        data[2][5] = f32::INFINITY;
        assert_eq!(nnm(&rows(&data), 1, Vec::new()), Err(SawNonFinite));
        assert_eq!(
            nnm(&rows(&[vec![f32::NAN]]), 0, Vec::new()),
            Err(SawNonFinite)
        );
    }
}
