//! The rule pipeline: pre-aggregators in order, then an aggregation rule.
//!
//! `NNM(f) > Krum(f)` is `Pipeline::new(vec![nnm], krum)`: the rule aggregates
//! the rows the last stage outputs, and a selection rule's kept rows are mapped
//! back through every stage's [`Members`] to the input rows (clients) they stand
//! for. A pipeline without stages is the rule itself, at no extra cost.

use super::{scale_rows_into, Members, PreAgg, PreInputs, RoundKey, StageRows};
use crate::error::{CoreError, Result};
use crate::strategy::{check_inputs, dict_literal, locate_non_finite, Aggregate, Strategy};
use std::sync::Mutex;

/// Pre-aggregators followed by a rule; immutable and validated.
#[derive(Clone, PartialEq)]
pub struct Pipeline {
    pre: Vec<PreAgg>,
    rule: Strategy,
    scratch: Scratch,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The stages' row buffers, kept from one call to the next: at n = 50, d = 10⁶ a
/// fresh 200 MB buffer costs more in first-touch page faults than the kernel
/// that fills it, so a pipeline run every round reuses the last round's. Held
/// until the pipeline is dropped; a call that finds them in use (another
/// thread) allocates its own. Not part of the pipeline's value: a clone starts
/// empty and every two compare equal.
#[derive(Default)]
struct Scratch(Mutex<Vec<Vec<f32>>>);

/// Buffers kept at most (a pipeline uses one per stage).
const SCRATCH_BUFFERS: usize = 8;

impl Scratch {
    /// The kept buffers (none when another call holds them).
    fn take(&self) -> Vec<Vec<f32>> {
        self.0
            .try_lock()
            .map(|mut kept| std::mem::take(&mut *kept))
            .unwrap_or_default()
    }

    /// Keeps `buffers` for the next call.
    fn keep(&self, mut buffers: Vec<Vec<f32>>) {
        if let Ok(mut kept) = self.0.try_lock() {
            buffers.truncate(SCRATCH_BUFFERS);
            *kept = buffers;
        }
    }
}

impl Clone for Scratch {
    fn clone(&self) -> Self {
        Scratch::default()
    }
}

impl PartialEq for Scratch {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The smallest buffer in `spare` that holds `len` values, or a new one.
fn lend(spare: &mut Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    spare
        .iter()
        .enumerate()
        .filter(|(_, b)| b.capacity() >= len)
        .min_by_key(|(_, b)| b.capacity())
        .map(|(i, _)| i)
        .map(|i| spare.swap_remove(i))
        .unwrap_or_default()
}

/// Where a stage's row lives: an input row, or row `row` of buffer `buf`.
#[derive(Clone, Copy)]
enum RowRef {
    Input(usize),
    Buffer { buf: usize, row: usize },
}

/// The rows `refs` point at, as slices of length `d`.
fn resolve<'a>(
    refs: &[RowRef],
    input: &[&'a [f32]],
    buffers: &'a [Vec<f32>],
    d: usize,
) -> Vec<&'a [f32]> {
    refs.iter()
        .map(|r| match *r {
            RowRef::Input(i) => input[i],
            RowRef::Buffer { buf, row } => &buffers[buf][row * d..(row + 1) * d],
        })
        .collect()
}

impl Pipeline {
    /// The stages `pre` (run in order) before `rule`.
    pub fn new(pre: Vec<PreAgg>, rule: Strategy) -> Self {
        Pipeline {
            pre,
            rule,
            scratch: Scratch::default(),
        }
    }

    /// The rule alone.
    pub fn plain(rule: Strategy) -> Self {
        Pipeline::new(Vec::new(), rule)
    }

    /// The aggregation rule.
    pub fn rule(&self) -> &Strategy {
        &self.rule
    }

    /// The pre-aggregators, in order.
    pub fn pre(&self) -> &[PreAgg] {
        &self.pre
    }

    /// The rule's: whether it keeps a subset of the rows.
    pub fn is_selection(&self) -> bool {
        self.rule.is_selection()
    }

    /// The rule's Byzantine clients tolerated among `n`.
    pub fn configured_byzantine(&self, n: usize) -> Option<usize> {
        self.rule.configured_byzantine(n)
    }

    /// As `Strategy(...)` is called in Python:
    /// `Strategy("Krum", {"f": 1}, pre=[("NNM", {"f": 1})])`.
    pub fn describe(&self) -> String {
        let rule = self.rule.describe();
        if self.pre.is_empty() {
            return rule;
        }
        let params = if self.rule.values().is_empty() {
            "None".to_string()
        } else {
            dict_literal(self.rule.values())
        };
        let pre: Vec<String> = self.pre.iter().map(PreAgg::describe).collect();
        format!(
            "Strategy(\"{}\", {params}, pre=[{}])",
            self.rule.name(),
            pre.join(", ")
        )
    }

    /// Checks every stage's precondition on the rows it receives and the rule's
    /// on the rows the last stage outputs (Bucketing makes ⌈n/s⌉ of n).
    ///
    /// A stage after Bucketing that gets too few rows is reported in clients:
    /// "Krum needs at least 9 clients (n ≥ 2f+3 with f = 1, counted on the 4
    /// rows that Bucketing(s = 2) makes of them), got n = 8".
    pub fn check_clients(&self, n: usize) -> Result<()> {
        let mut rows = n;
        for (j, stage) in self.pre.iter().enumerate() {
            rows = stage
                .check_clients(rows)
                .map_err(|e| self.in_clients(j, n, e))?;
        }
        self.rule
            .check_clients(rows)
            .map_err(|e| self.in_clients(self.pre.len(), n, e))
    }

    /// A stage `j`'s too-few-rows error, restated for the `n` clients entering
    /// the pipeline when the stages before it change the row count.
    fn in_clients(&self, j: usize, n: usize, e: CoreError) -> CoreError {
        let before = &self.pre[..j];
        let regrouped: Vec<&PreAgg> = before
            .iter()
            .filter(|p| p.spec().rows != super::RowCount::Same)
            .collect();
        match e {
            CoreError::TooFewClients {
                strategy,
                n: rows,
                required,
                formula,
            } if !regrouped.is_empty() => {
                let stages: Vec<String> = regrouped.iter().map(|p| p.label()).collect();
                CoreError::TooFewClients {
                    strategy,
                    n,
                    required: before.iter().rev().fold(required, |r, p| p.rows_needed(r)),
                    formula: format!(
                        "{formula}, counted on the {rows} rows that {} makes of them",
                        stages.join(" then ")
                    ),
                }
            }
            other => other,
        }
    }

    /// Runs the stages, then the rule, on `rows` (n × d) with sample `weights`.
    ///
    /// `previous` is the previous round's aggregate (for rules that use it);
    /// `key` seeds the seeded stages (Bucketing). A selection rule's `selected`
    /// are input rows: each kept row is replaced by the rows it stands for,
    /// stage by stage back to the input (sorted, distinct).
    ///
    /// Errors: those of [`Strategy::aggregate`] (shapes, weights, NaN/Inf in
    /// `rows`, located in the input), and [`Pipeline::check_clients`].
    pub fn aggregate(
        &self,
        rows: &[&[f32]],
        weights: &[f64],
        previous: Option<&[f32]>,
        key: RoundKey,
    ) -> Result<Aggregate> {
        if self.pre.is_empty() {
            return self.rule.aggregate(rows, weights, previous);
        }
        let d = check_inputs(rows, weights)?;
        self.check_clients(rows.len())?;
        let mut spare = self.scratch.take();
        let mut buffers: Vec<Vec<f32>> = Vec::with_capacity(self.pre.len());
        let mut refs: Vec<RowRef> = (0..rows.len()).map(RowRef::Input).collect();
        let mut current_weights = weights.to_vec();
        let mut members: Vec<Members> = Vec::with_capacity(self.pre.len());
        for stage in &self.pre {
            let view = resolve(&refs, rows, &buffers, d);
            let inputs = PreInputs {
                rows: &view,
                weights: &current_weights,
                key,
            };
            let m = stage.rows_out(refs.len());
            let mut buffer = lend(&mut spare, m * d);
            // Finite rows give finite stage outputs, so NaN/Inf is in the input.
            let out = stage
                .run(&inputs, &mut buffer)
                .map_err(|_| locate_non_finite(rows))?;
            let buf = buffers.len();
            match out.rows {
                StageRows::New => {
                    refs = (0..m).map(|row| RowRef::Buffer { buf, row }).collect();
                }
                StageRows::Scaled(scale) => {
                    let which: Vec<usize> = (0..refs.len()).filter(|&i| scale[i] != 1.0).collect();
                    if buffer.capacity() < which.len() * d {
                        spare.push(buffer);
                        buffer = lend(&mut spare, which.len() * d);
                    }
                    buffer.resize(which.len() * d, 0.0);
                    scale_rows_into(&view, &which, &scale, &mut buffer);
                    for (row, &i) in which.iter().enumerate() {
                        refs[i] = RowRef::Buffer { buf, row };
                    }
                }
            }
            buffers.push(buffer);
            current_weights = out.weights;
            members.push(out.members);
        }
        let view = resolve(&refs, rows, &buffers, d);
        let result = self.rule.aggregate(&view, &current_weights, previous);
        drop(view);
        buffers.append(&mut spare);
        self.scratch.keep(buffers);
        let mut agg = result.map_err(|e| match e {
            CoreError::NonFinite { .. } => locate_non_finite(rows),
            other => other,
        })?;
        agg.selected = agg.selected.map(|kept| {
            members
                .iter()
                .rev()
                .fold(kept, |kept, m| m.input_rows(&kept))
        });
        Ok(agg)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::preagg;
    use super::*;
    use crate::schema::RawValue;
    use crate::strategy::test_util::{matrix, rows, strategy};

    fn int(i: i64) -> RawValue {
        RawValue::Int(i)
    }

    #[test]
    fn plain_pipeline_is_the_rule() {
        let data = matrix(7, 50, 1);
        let krum = strategy("Krum", &[("f", int(2))]);
        let p = Pipeline::plain(krum.clone());
        let key = RoundKey { seed: 3, round: 4 };
        assert_eq!(
            p.aggregate(&rows(&data), &[1.0; 7], None, key).unwrap(),
            krum.aggregate(&rows(&data), &[1.0; 7], None).unwrap()
        );
        assert_eq!(p.describe(), krum.describe());
        assert!(p.is_selection());
        assert_eq!(p.configured_byzantine(7), Some(2));
    }

    #[test]
    fn bucketing_of_one_is_the_rule_on_permuted_rows() {
        let data = matrix(9, 40, 2);
        let w: Vec<f64> = (1..=9).map(f64::from).collect();
        let key = RoundKey { seed: 11, round: 5 };
        let bucket = preagg("Bucketing", &[("s", int(1))]);
        let out = bucket
            .run(
                &PreInputs {
                    rows: &rows(&data),
                    weights: &w,
                    key,
                },
                &mut Vec::new(),
            )
            .unwrap();
        let Members::Groups(groups) = &out.members else {
            panic!("bucketing groups rows")
        };
        let order: Vec<usize> = groups.iter().map(|g| g[0]).collect();
        assert_ne!(order, (0..9).collect::<Vec<_>>(), "the rows are shuffled");
        let permuted: Vec<&[f32]> = order.iter().map(|&i| data[i].as_slice()).collect();
        let pw: Vec<f64> = order.iter().map(|&i| w[i]).collect();
        for rule in [
            strategy("FedMedian", &[]),
            strategy("MultiKrum", &[("f", int(2)), ("m", int(4))]),
        ] {
            let p = Pipeline::new(vec![bucket.clone()], rule.clone());
            let got = p.aggregate(&rows(&data), &w, None, key).unwrap();
            let mut want = rule.aggregate(&permuted, &pw, None).unwrap();
            want.selected = want
                .selected
                .map(|kept| Members::Groups(groups.clone()).input_rows(&kept));
            assert_eq!(got, want, "{rule:?}");
        }
    }

    #[test]
    fn bucketing_then_fedavg_is_fedavg() {
        let data = matrix(10, 300, 3);
        let w: Vec<f64> = (0..10).map(|i| (i % 4) as f64).collect();
        let fedavg = strategy("FedAvg", &[]);
        let want = fedavg.aggregate(&rows(&data), &w, None).unwrap().value;
        for s in [1, 3, 4, 10] {
            let p = Pipeline::new(vec![preagg("Bucketing", &[("s", int(s))])], fedavg.clone());
            let got = p
                .aggregate(&rows(&data), &w, None, RoundKey { seed: 1, round: 2 })
                .unwrap()
                .value;
            for (g, e) in got.iter().zip(&want) {
                assert!(
                    (g - e).abs() <= 1e-6 * e.abs().max(1.0),
                    "s={s}: {g} vs {e}"
                );
            }
        }
    }

    #[test]
    fn nnm_then_krum_selects_input_rows() {
        let mut data = matrix(7, 20, 4);
        data[3].iter_mut().for_each(|x| *x += 50.0);
        let krum = strategy("Krum", &[("f", int(1))]);
        let nnm = preagg("NNM", &[("f", int(1))]);
        let p = Pipeline::new(vec![nnm.clone()], krum.clone());
        let got = p
            .aggregate(&rows(&data), &[1.0; 7], None, RoundKey::default())
            .unwrap();
        let mut mixed = Vec::new();
        nnm.run(
            &PreInputs {
                rows: &rows(&data),
                weights: &[1.0; 7],
                key: RoundKey::default(),
            },
            &mut mixed,
        )
        .unwrap();
        let mixed_rows: Vec<&[f32]> = mixed.chunks_exact(20).collect();
        let want = krum.aggregate(&mixed_rows, &[1.0; 7], None).unwrap();
        assert_eq!(got, want);
        let kept = got.selected.unwrap();
        assert_eq!(kept.len(), 1);
        assert_ne!(kept, vec![3]);
        // Through buckets, a kept row stands for its whole bucket.
        let two = Pipeline::new(
            vec![nnm, preagg("Bucketing", &[("s", int(2))])],
            strategy("Krum", &[("f", int(0))]),
        );
        let got = two
            .aggregate(&rows(&data), &[1.0; 7], None, RoundKey::default())
            .unwrap();
        assert!((1..=2).contains(&got.selected.unwrap().len()));
    }

    #[test]
    fn check_clients_through_bucketing_counts_clients() {
        let p = Pipeline::new(
            vec![preagg("Bucketing", &[("s", int(2))])],
            strategy("Krum", &[("f", int(1))]),
        );
        // ⌈n/2⌉ ≥ 5 ⇔ n ≥ 9.
        assert!(p.check_clients(9).is_ok());
        let e = p.check_clients(8).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Krum needs at least 9 clients (n ≥ 2f+3 with f = 1, counted on the 4 rows \
             that Bucketing(s = 2) makes of them), got n = 8"
        );
        let data = matrix(8, 3, 1);
        assert!(p
            .aggregate(&rows(&data), &[1.0; 8], None, RoundKey::default())
            .is_err());
        // A stage's own precondition names the stage.
        let nnm = Pipeline::new(
            vec![preagg("NNM", &[("f", int(4))])],
            strategy("FedAvg", &[]),
        );
        assert_eq!(
            nnm.check_clients(4).unwrap_err().to_string(),
            "NNM needs at least 5 clients (n ≥ f+1 with f = 4), got n = 4"
        );
        // Bounds at MAX_COUNT stay exact through the inverse.
        let huge = Pipeline::new(
            vec![preagg("Bucketing", &[("s", int(1_000_000))])],
            strategy("Krum", &[("f", int(1_000_000))]),
        );
        match huge.check_clients(2_000_000).unwrap_err() {
            CoreError::TooFewClients { required, .. } => {
                assert_eq!(required, 1_000_000u128 * 2_000_002 + 1)
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn scaling_stages_pass_unscaled_rows_on_and_scale_the_others() {
        let mut data = matrix(8, 70, 6);
        data[2].iter_mut().for_each(|x| *x *= 40.0);
        data[5].iter_mut().for_each(|x| *x *= 9.0);
        let r = rows(&data);
        let w: Vec<f64> = (1..=8).map(f64::from).collect();
        for (stage, scale) in [
            (
                "Clipping",
                super::super::clipping::clipping(&r, 12.0).unwrap(),
            ),
            ("ARC", super::super::arc::arc(&r, 2).unwrap()),
        ] {
            assert!(scale.iter().filter(|&&s| s != 1.0).count() >= 1, "{stage}");
            let clipped = super::super::test_util::scaled(&r, &scale);
            let clipped_rows: Vec<&[f32]> = clipped.chunks_exact(70).collect();
            for rule in [
                strategy("FedMedian", &[]),
                strategy("MultiKrum", &[("f", int(2))]),
            ] {
                let params: &[(&str, RawValue)] = match stage {
                    "Clipping" => &[("tau", RawValue::Float(12.0))],
                    _ => &[("f", int(2))],
                };
                let p = Pipeline::new(vec![preagg(stage, params)], rule.clone());
                let want = rule.aggregate(&clipped_rows, &w, None).unwrap();
                assert_eq!(
                    p.aggregate(&r, &w, None, RoundKey::default()).unwrap(),
                    want
                );
            }
        }
    }

    #[test]
    fn kept_buffers_give_the_same_bits_call_after_call() {
        let data = matrix(12, 2 * crate::parallel::CHUNK + 9, 7);
        let other = matrix(12, 2 * crate::parallel::CHUNK + 9, 8);
        let small = matrix(5, 31, 9);
        let key = RoundKey { seed: 2, round: 3 };
        let p = Pipeline::new(
            vec![
                preagg("Clipping", &[("tau", RawValue::Float(20.0))]),
                preagg("NNM", &[("f", int(2))]),
                preagg("Bucketing", &[("s", int(2))]),
            ],
            strategy("FedMedian", &[]),
        );
        let fresh = |x: &Vec<Vec<f32>>| p.clone().aggregate(&rows(x), &[1.0; 12], None, key);
        let first = fresh(&data).unwrap();
        assert_eq!(
            p.aggregate(&rows(&data), &[1.0; 12], None, key).unwrap(),
            first
        );
        // The buffers now hold the other matrix's rows; a smaller call resizes them.
        let second = p.aggregate(&rows(&other), &[1.0; 12], None, key).unwrap();
        assert_eq!(second, fresh(&other).unwrap());
        assert!(p.aggregate(&rows(&small), &[1.0; 5], None, key).is_ok());
        assert_eq!(
            p.aggregate(&rows(&data), &[1.0; 12], None, key).unwrap(),
            first
        );
        assert_eq!(p.clone(), p, "the buffers are not part of the value");
    }

    #[test]
    fn non_finite_input_is_located_in_the_input_rows() {
        let mut data = matrix(6, 10, 5);
        data[4][7] = f32::NAN;
        for stage in ["NNM", "Bucketing", "Clipping", "ARC"] {
            let p = Pipeline::new(vec![preagg(stage, &[])], strategy("FedMedian", &[]));
            assert_eq!(
                p.aggregate(&rows(&data), &[1.0; 6], None, RoundKey::default()),
                Err(CoreError::NonFinite { row: 4, col: 7 }),
                "{stage}"
            );
        }
    }

    #[test]
    fn describe_shows_the_python_call() {
        let p = Pipeline::new(
            vec![preagg("NNM", &[]), preagg("Clipping", &[])],
            strategy("FedAvg", &[]),
        );
        assert_eq!(
            p.describe(),
            "Strategy(\"FedAvg\", None, pre=[(\"NNM\", {\"f\": 1}), (\"Clipping\", {\"tau\": 2.0})])"
        );
        let k = Pipeline::new(vec![preagg("ARC", &[])], strategy("Krum", &[]));
        assert_eq!(
            format!("{k:?}"),
            "Strategy(\"Krum\", {\"f\": 1}, pre=[(\"ARC\", {\"f\": 1})])"
        );
    }
}
