//! The rule pipeline: pre-aggregators in order, then an aggregation rule.
//!
//! `NNM(f) > Krum(f)` is `Pipeline::new(vec![nnm], krum)`: the rule aggregates
//! the rows the last stage outputs, and a selection rule's kept rows are mapped
//! back through every stage's [`Members`] to the input rows (clients) they stand
//! for. A pipeline without stages is the rule itself, at no extra cost.

use super::{Members, PreAgg, PreInputs, RoundKey};
use crate::error::{CoreError, Result};
use crate::strategy::{check_inputs, dict_literal, locate_non_finite, Aggregate, Strategy};

/// Pre-aggregators followed by a rule; immutable and validated.
#[derive(Clone, PartialEq)]
pub struct Pipeline {
    pre: Vec<PreAgg>,
    rule: Strategy,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// One stage's output rows (m × d, row-major) and weights.
struct Rows {
    flat: Vec<f32>,
    weights: Vec<f64>,
}

impl Pipeline {
    /// The stages `pre` (run in order) before `rule`.
    pub fn new(pre: Vec<PreAgg>, rule: Strategy) -> Self {
        Pipeline { pre, rule }
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
        let mut current: Option<Rows> = None;
        let mut members: Vec<Members> = Vec::with_capacity(self.pre.len());
        for stage in &self.pre {
            let out = {
                let (view, w): (Vec<&[f32]>, &[f64]) = match &current {
                    None => (rows.to_vec(), weights),
                    Some(r) => (r.flat.chunks_exact(d).collect(), &r.weights),
                };
                let inputs = PreInputs {
                    rows: &view,
                    weights: w,
                    key,
                };
                // Finite rows give finite stage outputs, so NaN/Inf is in the input.
                stage.run(&inputs).map_err(|_| locate_non_finite(rows))?
            };
            members.push(out.members);
            current = Some(Rows {
                flat: out.rows,
                weights: out.weights,
            });
        }
        let last = current.expect("at least one stage ran");
        let view: Vec<&[f32]> = last.flat.chunks_exact(d).collect();
        let mut agg = self
            .rule
            .aggregate(&view, &last.weights, previous)
            .map_err(|e| match e {
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
            .run(&PreInputs {
                rows: &rows(&data),
                weights: &w,
                key,
            })
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
        let mixed = nnm
            .run(&PreInputs {
                rows: &rows(&data),
                weights: &[1.0; 7],
                key: RoundKey::default(),
            })
            .unwrap();
        let mixed_rows: Vec<&[f32]> = mixed.rows.chunks_exact(20).collect();
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
