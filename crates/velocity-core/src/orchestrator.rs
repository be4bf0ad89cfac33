//! One run's server-side state: the rule pipeline (pre-aggregators, then the
//! strategy), the attack plan (who is Byzantine, running what), the seed, the
//! thread count and, for strategies that declare [`uses_previous_aggregate`](crate::strategy::StrategySpec::uses_previous_aggregate),
//! the previous round's aggregate.
//!
//! Randomness is keyed, never sequential: the Byzantine assignment comes from
//! (seed, ASSIGN stream), an attacked update from (seed, UPDATE stream, round,
//! client), poisoned labels from (seed, DATA stream, round, client) and
//! Bucketing's buckets from (seed, round). Results therefore depend neither on
//! call order nor on the thread count.

use crate::error::{CoreError, Result};
use crate::parallel::install;
use crate::preagg::{permutation, Pipeline, RoundKey};
use crate::security::{
    byzantine_counts, rng_for, AdaptiveContext, Apply, HonestStats, Outcome, Params, UpdateContext,
};
use rayon::prelude::*;

const STREAM_ASSIGN: u64 = 0x6279_7a61_6e74_696e; // "byzantin"
const STREAM_UPDATE: u64 = 0x7570_6461_7465_0001;
const STREAM_DATA: u64 = 0x6461_7461_0000_0002;
const STREAM_ADAPTIVE: u64 = 0x6164_6170_7469_0003;

/// Detection counts of a selection strategy among one round's clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Detection {
    pub kept_honest: usize,
    pub kept_byzantine: usize,
    pub excluded_honest: usize,
    pub excluded_byzantine: usize,
}

/// What one [`Orchestrator::run_round`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundReport {
    pub round: u64,
    /// Participating clients (n).
    pub num_clients: usize,
    /// Sorted participating client ids whose attack is active this round.
    pub byzantine: Vec<usize>,
    /// (client id, attack name) for each of them, sorted by client id.
    pub attacked: Vec<(usize, &'static str)>,
    /// Client ids kept by a selection strategy (through the pre-aggregators'
    /// row mapping), sorted (None otherwise).
    pub selected: Option<Vec<usize>>,
    /// Kept/excluded × honest/Byzantine counts for selection strategies.
    pub detection: Option<Detection>,
}

/// One run's server side.
#[derive(Debug)]
pub struct Orchestrator {
    pipeline: Pipeline,
    attacks: Vec<Params>,
    /// Attack index per client id (None: honest).
    assignment: Vec<Option<usize>>,
    seed: u64,
    num_threads: Option<usize>,
    /// The last aggregate, kept only when the strategy uses it.
    previous: Option<Vec<f32>>,
}

impl Orchestrator {
    /// Builds a run: validates the plan and assigns the Byzantine clients.
    ///
    /// Assignment: one seeded permutation of the client ids; attack #1 takes
    /// its first k₁ ids, attack #2 the next k₂, … where k = `count` if given,
    /// else max(1, round_half_up(fraction · num_clients)). For a fixed seed,
    /// runs that differ only in fraction therefore get nested Byzantine sets.
    pub fn new(
        pipeline: Pipeline,
        attacks: Vec<Params>,
        num_clients: usize,
        seed: u64,
        num_threads: Option<usize>,
    ) -> Result<Self> {
        if num_clients == 0 {
            return Err(CoreError::invalid("num_clients", 0, "an integer ≥ 1"));
        }
        let counts = byzantine_counts(&attacks, num_clients)?;
        let order = permutation(num_clients, &mut rng_for(seed, STREAM_ASSIGN, 0, 0));
        let mut assignment = vec![None; num_clients];
        let mut next = 0;
        for (attack, &k) in counts.iter().enumerate() {
            for &client in &order[next..next + k] {
                assignment[client] = Some(attack);
            }
            next += k;
        }
        Ok(Orchestrator {
            pipeline,
            attacks,
            assignment,
            seed,
            num_threads,
            previous: None,
        })
    }

    /// The rule pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Number of clients in the federation.
    pub fn num_clients(&self) -> usize {
        self.assignment.len()
    }

    /// Byzantine client id → attack name, sorted by id (fixed for the run).
    pub fn byzantine_clients(&self) -> Vec<(usize, &'static str)> {
        self.assignment
            .iter()
            .enumerate()
            .filter_map(|(c, a)| a.map(|a| (c, self.attacks[a].spec().name)))
            .collect()
    }

    /// The attack `client` runs (None: honest or unknown id), active or not.
    pub fn attack_of(&self, client: usize) -> Option<&Params> {
        let a = (*self.assignment.get(client)?)?;
        self.attacks.get(a)
    }

    /// The attack `client` runs, if it is active in `round`.
    fn active_attack(&self, round: u64, client: usize) -> Option<&Params> {
        let attack = &self.attacks[self.assignment[client]?];
        attack.active(round).then_some(attack)
    }

    fn client_index(&self, field: &str, client: i64) -> Result<usize> {
        usize::try_from(client)
            .ok()
            .filter(|&c| c < self.num_clients())
            .ok_or_else(|| {
                CoreError::invalid(
                    field,
                    client,
                    format!(
                        "a client id in [0, num_clients) = [0, {})",
                        self.num_clients()
                    ),
                )
            })
    }

    /// The labels `client_id` trains on in `round` (a new vector): poisoned if
    /// it runs a data attack active this round, else an unchanged copy.
    ///
    /// Errors: unknown client, `num_classes` = 0, a label outside
    /// `[0, num_classes)`, or attack parameters that do not fit `num_classes`.
    pub fn poison_labels(
        &self,
        round: u64,
        client_id: i64,
        labels: &[i64],
        num_classes: usize,
    ) -> Result<Vec<i64>> {
        let client = self.client_index("client_id", client_id)?;
        if num_classes == 0 {
            return Err(CoreError::invalid("num_classes", 0, "an integer ≥ 1"));
        }
        if let Some(i) = labels
            .iter()
            .position(|&y| y < 0 || y >= num_classes as i64)
        {
            return Err(CoreError::invalid(
                format!("labels[{i}]"),
                labels[i],
                format!("a class in [0, num_classes) = [0, {num_classes})"),
            ));
        }
        let mut out = labels.to_vec();
        if let Some(attack) = self.active_attack(round, client) {
            if let Apply::Data(run) = attack.spec().apply {
                let mut rng = rng_for(self.seed, STREAM_DATA, round, client as u64);
                run(&mut out, num_classes, attack, &mut rng)?;
            }
        }
        Ok(out)
    }

    /// Attacks the Byzantine rows, aggregates and returns (global + aggregate, report).
    ///
    /// `rows` are the n participating clients' updates (each of length d =
    /// `global.len()`), `num_samples` their sample counts and `client_ids`
    /// their distinct ids. A row whose client runs an update attack active
    /// this round is replaced (the honest matrix is not copied); data
    /// attackers' rows pass unchanged. Honest statistics (ALIE, IPM) use the
    /// rows of non-Byzantine clients only. The rows then go through the
    /// pipeline: its pre-aggregators (Bucketing keyed by (seed, round)), then the
    /// strategy; one that declares `uses_previous_aggregate` (CenteredClipping)
    /// also gets the previous round's aggregate (none in the first round).
    ///
    /// Errors: shapes, ids, weights, NaN/Inf (input or attacked rows), the
    /// pipeline's preconditions for n, and a non-finite new global (divergence).
    pub fn run_round(
        &mut self,
        round: u64,
        global: &[f32],
        rows: &[&[f32]],
        num_samples: &[f64],
        client_ids: &[i64],
    ) -> Result<(Vec<f32>, RoundReport)> {
        let threads = self.num_threads;
        install(threads, || {
            self.run_round_here(round, global, rows, num_samples, client_ids)
        })?
    }

    fn run_round_here(
        &mut self,
        round: u64,
        global: &[f32],
        rows: &[&[f32]],
        num_samples: &[f64],
        client_ids: &[i64],
    ) -> Result<(Vec<f32>, RoundReport)> {
        let n = rows.len();
        let d = global.len();
        if d == 0 {
            return Err(CoreError::shape("global_params", "length d ≥ 1", 0));
        }
        if let Some(i) = rows.iter().position(|r| r.len() != d) {
            return Err(CoreError::shape(
                format!("updates row {i}"),
                format!("length d = len(global_params) = {d}"),
                rows[i].len(),
            ));
        }
        for (field, len) in [
            ("num_samples", num_samples.len()),
            ("client_ids", client_ids.len()),
        ] {
            if len != n {
                return Err(CoreError::shape(
                    field,
                    format!("length n = {n} (rows of updates)"),
                    len,
                ));
            }
        }
        if let Some(j) = global.iter().position(|v| !v.is_finite()) {
            return Err(CoreError::invalid(
                format!("global_params[{j}]"),
                global[j],
                "a finite float",
            ));
        }
        let mut clients = Vec::with_capacity(n);
        let mut seen = vec![false; self.num_clients()];
        for (i, &id) in client_ids.iter().enumerate() {
            let c = self.client_index(&format!("client_ids[{i}]"), id)?;
            if std::mem::replace(&mut seen[c], true) {
                return Err(CoreError::invalid(
                    format!("client_ids[{i}]"),
                    id,
                    "distinct client ids (this one is repeated)",
                ));
            }
            clients.push(c);
        }
        self.pipeline.check_clients(n)?;

        // Who attacks this round, and with what.
        let active: Vec<(usize, &Params)> = clients
            .iter()
            .enumerate()
            .filter_map(|(row, &c)| self.active_attack(round, c).map(|a| (row, a)))
            .collect();
        let needs_stats = active.iter().any(|(_, a)| {
            matches!(
                a.spec().apply,
                Apply::Update {
                    needs_honest_stats: true,
                    ..
                } | Apply::Adaptive(_)
            )
        });
        let stats = if needs_stats {
            let honest: Vec<&[f32]> = rows
                .iter()
                .zip(&clients)
                .filter(|(_, &c)| self.assignment[c].is_none())
                .map(|(r, _)| *r)
                .collect();
            HonestStats::compute(&honest)
        } else {
            None
        };
        let f = active.len();
        let seed = self.seed;
        let replaced: Vec<(usize, Vec<f32>)> = active
            .par_iter()
            .filter_map(|&(row, attack)| match attack.spec().apply {
                Apply::Update { run, .. } => {
                    let ctx = UpdateContext {
                        own: rows[row],
                        honest: stats.as_ref(),
                        n,
                        f,
                    };
                    let mut rng = rng_for(seed, STREAM_UPDATE, round, clients[row] as u64);
                    Some((row, run(&ctx, attack, &mut rng)))
                }
                Apply::Adaptive(_) | Apply::Data(_) => None,
            })
            .collect();
        let mut view: Vec<&[f32]> = rows.to_vec();
        for (row, update) in &replaced {
            view[*row] = update;
        }

        let previous = match &self.previous {
            Some(prev) if prev.len() != d => {
                return Err(CoreError::shape(
                    "global_params",
                    format!("length {} (as in the previous round)", prev.len()),
                    d,
                ))
            }
            prev => prev.as_deref(),
        };
        let key = RoundKey { seed, round };
        let is_byz: Vec<bool> = (0..n)
            .map(|row| active.iter().any(|&(r, _)| r == row))
            .collect();
        let adaptive = self.adaptive_updates(
            round,
            &active,
            &view,
            &clients,
            &is_byz,
            stats.as_ref(),
            num_samples,
            previous,
            key,
        )?;
        for (attack_rows, update) in &adaptive {
            for &row in attack_rows {
                view[row] = update;
            }
        }
        let agg = self.pipeline.aggregate(&view, num_samples, previous, key)?;

        let new_global: Vec<f32> = global.iter().zip(&agg.value).map(|(g, a)| g + a).collect();
        if let Some(col) = new_global.iter().position(|v| !v.is_finite()) {
            return Err(CoreError::Diverged { round, col });
        }

        let mut byzantine: Vec<usize> = active.iter().map(|&(row, _)| clients[row]).collect();
        byzantine.sort_unstable();
        let mut attacked: Vec<(usize, &'static str)> = active
            .iter()
            .map(|&(row, a)| (clients[row], a.spec().name))
            .collect();
        attacked.sort_unstable();
        let (selected, detection) = match &agg.selected {
            Some(kept_rows) => {
                let mut kept = vec![false; n];
                kept_rows.iter().for_each(|&r| kept[r] = true);
                let mut det = Detection::default();
                for row in 0..n {
                    match (kept[row], is_byz[row]) {
                        (true, false) => det.kept_honest += 1,
                        (true, true) => det.kept_byzantine += 1,
                        (false, false) => det.excluded_honest += 1,
                        (false, true) => det.excluded_byzantine += 1,
                    }
                }
                let mut ids: Vec<usize> = kept_rows.iter().map(|&r| clients[r]).collect();
                ids.sort_unstable();
                (Some(ids), Some(det))
            }
            None => (None, None),
        };
        if self.pipeline.rule().uses_previous_aggregate() {
            self.previous = Some(agg.value);
        }
        Ok((
            new_global,
            RoundReport {
                round,
                num_clients: n,
                byzantine,
                attacked,
                selected,
                detection,
            },
        ))
    }

    /// The vector each adaptive attack active this round sends, with the rows it
    /// replaces: one call per attack (not per row), in attack order, each seeing the
    /// rows before it already attacked (`view`) and the real pipeline on candidates
    /// (its [`AdaptiveContext::aggregate`]: every row of the attack replaced by the
    /// candidate, aggregated with this round's key, so Bucketing permutes alike).
    /// Without an honest row the attack sends zeros.
    #[allow(clippy::too_many_arguments)]
    fn adaptive_updates(
        &self,
        round: u64,
        active: &[(usize, &Params)],
        view: &[&[f32]],
        clients: &[usize],
        is_byz: &[bool],
        stats: Option<&HonestStats>,
        weights: &[f64],
        previous: Option<&[f32]>,
        key: RoundKey,
    ) -> Result<Vec<(Vec<usize>, Vec<f32>)>> {
        let d = view.first().map_or(0, |r| r.len());
        let honest: Vec<&[f32]> = view
            .iter()
            .zip(clients)
            .filter(|(_, &c)| self.assignment[c].is_none())
            .map(|(r, _)| *r)
            .collect();
        let mut out: Vec<(Vec<usize>, Vec<f32>)> = Vec::new();
        for (index, attack) in self.attacks.iter().enumerate() {
            let Apply::Adaptive(run) = attack.spec().apply else {
                continue;
            };
            let attack_rows: Vec<usize> = active
                .iter()
                .filter(|&&(row, _)| self.assignment[clients[row]] == Some(index))
                .map(|&(row, _)| row)
                .collect();
            if attack_rows.is_empty() {
                continue;
            }
            let update = match stats {
                Some(stats) if !honest.is_empty() => {
                    let mut current: Vec<&[f32]> = view.to_vec();
                    for (rows, update) in &out {
                        for &row in rows {
                            current[row] = update;
                        }
                    }
                    let aggregate = |candidate: &[f32]| -> Result<Outcome> {
                        let mut trial = current.clone();
                        for &row in &attack_rows {
                            trial[row] = candidate;
                        }
                        let agg = self.pipeline.aggregate(&trial, weights, previous, key)?;
                        Ok(Outcome {
                            byzantine_selected: agg
                                .selected
                                .map(|kept| kept.iter().any(|&r| is_byz[r])),
                            value: agg.value,
                        })
                    };
                    let ctx = AdaptiveContext {
                        honest: &honest,
                        stats,
                        n: view.len(),
                        f: attack_rows.len(),
                        aggregate: &aggregate,
                    };
                    let mut rng = rng_for(self.seed, STREAM_ADAPTIVE, round, index as u64);
                    run(&ctx, attack, &mut rng)?
                }
                _ => vec![0.0; d],
            };
            out.push((attack_rows, update));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preagg::PreAgg;
    use crate::security::{Kind, RawValue};

    /// The plain pipeline of the strategy `name` with `params`.
    fn strategy(name: &str, params: &[(&str, RawValue)]) -> Pipeline {
        Pipeline::plain(crate::strategy::test_util::strategy(name, params))
    }

    fn fedavg() -> Pipeline {
        strategy("FedAvg", &[])
    }

    fn attack(name: &str, params: &[(&str, RawValue)]) -> Params {
        let raw: Vec<(String, RawValue)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        Params::validate(name, &raw).unwrap()
    }

    fn byz_set(o: &Orchestrator) -> Vec<usize> {
        o.byzantine_clients().into_iter().map(|(c, _)| c).collect()
    }

    #[test]
    fn byzantine_sets_nest_across_fractions() {
        let mut previous: Vec<usize> = Vec::new();
        for fraction in [0.1, 0.2, 0.3, 0.5, 1.0] {
            let o = Orchestrator::new(
                fedavg(),
                vec![attack("zero", &[("fraction", RawValue::Float(fraction))])],
                20,
                42,
                None,
            )
            .unwrap();
            let set = byz_set(&o);
            assert_eq!(set.len(), (fraction * 20.0_f64).round() as usize);
            assert!(
                previous.iter().all(|c| set.contains(c)),
                "{previous:?} ⊄ {set:?}"
            );
            previous = set;
        }
        let other = Orchestrator::new(fedavg(), vec![attack("zero", &[])], 20, 43, None).unwrap();
        let same = Orchestrator::new(fedavg(), vec![attack("zero", &[])], 20, 42, None).unwrap();
        assert_eq!(byz_set(&same).len(), 4);
        assert!(byz_set(&same).iter().all(|c| previous.contains(c)));
        assert_ne!(byz_set(&other), byz_set(&same));
    }

    #[test]
    fn several_attacks_take_consecutive_slices() {
        let o = Orchestrator::new(
            fedavg(),
            vec![
                attack("zero", &[("count", RawValue::Int(2))]),
                attack("label_flipping", &[("count", RawValue::Int(3))]),
            ],
            10,
            7,
            None,
        )
        .unwrap();
        let names: Vec<&str> = o.byzantine_clients().iter().map(|(_, a)| *a).collect();
        assert_eq!(names.iter().filter(|a| **a == "zero").count(), 2);
        assert_eq!(names.iter().filter(|a| **a == "label_flipping").count(), 3);
        let too_many = Orchestrator::new(
            fedavg(),
            vec![
                attack("zero", &[("count", RawValue::Int(6))]),
                attack("zero", &[("fraction", RawValue::Float(0.5))]),
            ],
            10,
            7,
            None,
        );
        assert!(too_many
            .unwrap_err()
            .to_string()
            .contains("11 Byzantine clients"));
        assert!(Orchestrator::new(fedavg(), vec![], 0, 1, None).is_err());
        // Counts at the schema's bound, many times over: the total is checked, never wrapped.
        let huge = vec![attack("zero", &[("count", RawValue::Int(1_000_000))]); 64];
        let e = Orchestrator::new(fedavg(), huge, 10, 7, None).unwrap_err();
        assert!(e.to_string().contains("64000000 Byzantine clients"), "{e}");
        let wide = vec![attack("zero", &[]); 3];
        assert_eq!(byzantine_counts(&wide, 10).unwrap(), vec![2, 2, 2]);
    }

    #[test]
    fn round_replaces_only_active_update_attackers() {
        let mut o = Orchestrator::new(
            fedavg(),
            vec![attack(
                "sign_flipping",
                &[
                    ("count", RawValue::Int(1)),
                    ("start_round", RawValue::Int(2)),
                ],
            )],
            4,
            1,
            Some(2),
        )
        .unwrap();
        let byz = o.byzantine_clients()[0].0;
        let data: Vec<Vec<f32>> = (0..4).map(|_| vec![1.0, 2.0]).collect();
        let rows: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
        let ids = [0i64, 1, 2, 3];
        let (g1, r1) = o.run_round(1, &[0.0, 0.0], &rows, &[1.0; 4], &ids).unwrap();
        assert_eq!(g1, vec![1.0, 2.0]);
        assert!(r1.byzantine.is_empty() && r1.attacked.is_empty() && r1.selected.is_none());
        let (g2, r2) = o.run_round(2, &[0.0, 0.0], &rows, &[1.0; 4], &ids).unwrap();
        assert_eq!(g2, vec![0.5, 1.0]);
        assert_eq!(r2.byzantine, vec![byz]);
        assert_eq!(r2.attacked, vec![(byz, "sign_flipping")]);
    }

    #[test]
    fn detection_counts_for_selection_strategies() {
        let mut o = Orchestrator::new(
            strategy("Krum", &[("f", RawValue::Int(1))]),
            vec![attack(
                "gaussian_noise",
                &[
                    ("count", RawValue::Int(1)),
                    ("sigma", RawValue::Float(100.0)),
                ],
            )],
            6,
            3,
            None,
        )
        .unwrap();
        let byz = o.byzantine_clients()[0].0;
        let data: Vec<Vec<f32>> = (0..6).map(|i| vec![i as f32 * 0.01; 16]).collect();
        let rows: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
        let ids: Vec<i64> = (0..6).collect();
        let (_, r) = o.run_round(1, &[0.0; 16], &rows, &[1.0; 6], &ids).unwrap();
        let det = r.detection.unwrap();
        assert_eq!(det.kept_honest + det.kept_byzantine, 1);
        assert_eq!(det.excluded_byzantine, 1);
        assert_eq!(det.excluded_honest, 4);
        assert!(!r.selected.unwrap().contains(&byz));
    }

    #[test]
    fn round_is_deterministic_and_order_independent() {
        let plan = || {
            vec![
                attack("gaussian_noise", &[("count", RawValue::Int(2))]),
                attack("alie", &[("count", RawValue::Int(1))]),
            ]
        };
        let data = crate::strategy::test_util::matrix(8, 5000, 9);
        let rows: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
        let ids: Vec<i64> = (0..8).collect();
        let run = |threads| {
            let mut o =
                Orchestrator::new(strategy("FedMedian", &[]), plan(), 8, 5, threads).unwrap();
            o.run_round(3, &vec![0.0; 5000], &rows, &[1.0; 8], &ids)
                .unwrap()
        };
        let (a, ra) = run(Some(1));
        let (b, rb) = run(Some(4));
        assert_eq!(a, b);
        assert_eq!(ra, rb);
        // Reversing the row order gives the same median (rows are keyed by client id).
        let rev_rows: Vec<&[f32]> = rows.iter().rev().copied().collect();
        let rev_ids: Vec<i64> = ids.iter().rev().copied().collect();
        let mut o = Orchestrator::new(strategy("FedMedian", &[]), plan(), 8, 5, None).unwrap();
        let (c, _) = o
            .run_round(3, &vec![0.0; 5000], &rev_rows, &[1.0; 8], &rev_ids)
            .unwrap();
        assert_eq!(a, c);
    }

    #[test]
    fn bad_round_inputs_are_errors() {
        let mut o = Orchestrator::new(fedavg(), vec![], 3, 0, None).unwrap();
        let data = [vec![1.0f32, 2.0], vec![1.0, 2.0]];
        let rows: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
        assert!(o.run_round(1, &[0.0], &rows, &[1.0; 2], &[0, 1]).is_err());
        assert!(o
            .run_round(1, &[0.0; 2], &rows, &[1.0; 3], &[0, 1])
            .is_err());
        assert!(o
            .run_round(1, &[0.0; 2], &rows, &[1.0; 2], &[0, 0])
            .is_err());
        assert!(o
            .run_round(1, &[0.0; 2], &rows, &[1.0; 2], &[0, 3])
            .is_err());
        assert!(o
            .run_round(1, &[0.0; 2], &rows, &[1.0; 2], &[0, -1])
            .is_err());
        assert!(o
            .run_round(1, &[f32::NAN; 2], &rows, &[1.0; 2], &[0, 1])
            .is_err());
        let big = [vec![1e38f32, 2.0], vec![1e38, 2.0]];
        let big_rows: Vec<&[f32]> = big.iter().map(Vec::as_slice).collect();
        let e = o
            .run_round(4, &[f32::MAX; 2], &big_rows, &[1.0; 2], &[0, 1])
            .unwrap_err();
        assert_eq!(e, CoreError::Diverged { round: 4, col: 0 });
        assert!(o.run_round(1, &[0.0; 2], &[], &[], &[]).is_err());
        let mut k = Orchestrator::new(
            strategy("Krum", &[("f", RawValue::Int(1))]),
            vec![],
            3,
            0,
            None,
        )
        .unwrap();
        assert!(matches!(
            k.run_round(1, &[0.0; 2], &rows, &[1.0; 2], &[0, 1]),
            Err(CoreError::TooFewClients { .. })
        ));
    }

    #[test]
    fn labels_are_poisoned_only_for_active_data_attackers() {
        let o = Orchestrator::new(
            fedavg(),
            vec![attack(
                "label_flipping",
                &[("count", RawValue::Int(1)), ("end_round", RawValue::Int(2))],
            )],
            3,
            11,
            None,
        )
        .unwrap();
        let byz = o.byzantine_clients()[0].0;
        let honest = (byz + 1) % 3;
        let labels = [0i64, 1, 2, 9];
        assert_eq!(
            o.poison_labels(1, byz as i64, &labels, 10).unwrap(),
            vec![9, 8, 7, 0]
        );
        assert_eq!(
            o.poison_labels(3, byz as i64, &labels, 10).unwrap(),
            labels.to_vec()
        );
        assert_eq!(
            o.poison_labels(1, honest as i64, &labels, 10).unwrap(),
            labels.to_vec()
        );
        assert!(o.poison_labels(1, 3, &labels, 10).is_err());
        assert!(o.poison_labels(1, 0, &labels, 5).is_err());
        assert!(o.poison_labels(1, 0, &labels, 0).is_err());
        assert_eq!(o.attack_of(byz).map(|a| a.spec().kind()), Some(Kind::Data));
        assert!(o.attack_of(honest).is_none() && o.attack_of(99).is_none());
    }

    #[test]
    fn pre_aggregators_run_before_the_rule_and_map_detection_to_clients() {
        let krum = crate::strategy::test_util::strategy("Krum", &[("f", RawValue::Int(1))]);
        let pre = |name: &str, params: &[(&str, RawValue)]| PreAgg::new(name, params).unwrap();
        let plan = || {
            vec![attack(
                "gaussian_noise",
                &[
                    ("count", RawValue::Int(1)),
                    ("sigma", RawValue::Float(100.0)),
                ],
            )]
        };
        let data: Vec<Vec<f32>> = (0..10).map(|i| vec![i as f32 * 0.01; 16]).collect();
        let rows: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
        let ids: Vec<i64> = (0..10).collect();
        let nnm = Pipeline::new(vec![pre("NNM", &[("f", RawValue::Int(1))])], krum.clone());
        let mut o = Orchestrator::new(nnm, plan(), 10, 3, None).unwrap();
        let (_, r) = o.run_round(1, &[0.0; 16], &rows, &[1.0; 10], &ids).unwrap();
        let det = r.detection.unwrap();
        assert_eq!(det.kept_honest + det.kept_byzantine, 1);
        assert_eq!(det.excluded_honest + det.excluded_byzantine, 9);
        // Bucketing(s = 2): Krum keeps one bucket, i.e. its two clients; the buckets
        // are keyed by (seed, round): the same round gives the same report.
        let buckets = Pipeline::new(vec![pre("Bucketing", &[("s", RawValue::Int(2))])], krum);
        let mut o = Orchestrator::new(buckets.clone(), plan(), 10, 3, Some(1)).unwrap();
        let (g, r) = o.run_round(2, &[0.0; 16], &rows, &[1.0; 10], &ids).unwrap();
        assert_eq!(r.selected.as_ref().map(Vec::len), Some(2));
        let mut again = Orchestrator::new(buckets, plan(), 10, 3, Some(4)).unwrap();
        assert_eq!(
            again
                .run_round(2, &[0.0; 16], &rows, &[1.0; 10], &ids)
                .unwrap(),
            (g, r)
        );
        let e = again
            .run_round(3, &[0.0; 16], &rows[..8], &[1.0; 8], &ids[..8])
            .unwrap_err();
        assert!(e.to_string().contains("counted on the 4 rows"), "{e}");
    }

    #[test]
    fn centered_clipping_uses_the_previous_aggregate() {
        let mut o = Orchestrator::new(
            strategy(
                "CenteredClipping",
                &[("tau", RawValue::Float(1.0)), ("iters", RawValue::Int(1))],
            ),
            vec![],
            2,
            0,
            None,
        )
        .unwrap();
        let data = [vec![10.0f32], vec![10.0]];
        let rows: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
        let (g, _) = o.run_round(1, &[0.0], &rows, &[1.0; 2], &[0, 1]).unwrap();
        assert_eq!(g, vec![1.0]); // clipped from v0 = 0
        let (g, _) = o.run_round(2, &[0.0], &rows, &[1.0; 2], &[0, 1]).unwrap();
        assert_eq!(g, vec![2.0]); // from v0 = 1
    }

    /// Ten clients in 3 dimensions, client i's update (i, 1, −i) / 10.
    fn ten_rows() -> Vec<Vec<f32>> {
        (0..10)
            .map(|i| vec![i as f32 / 10.0, 0.1, -(i as f32) / 10.0])
            .collect()
    }

    #[test]
    fn an_adaptive_attack_sends_one_vector_found_with_the_real_rule() {
        let data = ten_rows();
        let rows: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
        let ids: Vec<i64> = (0..10).collect();
        for rule in [
            strategy("TrimmedMean", &[("beta", RawValue::Float(0.2))]),
            strategy("Krum", &[("f", RawValue::Int(2))]),
            Pipeline::new(
                vec![PreAgg::new("NNM", &[("f", RawValue::Int(2))]).unwrap()],
                crate::strategy::test_util::strategy("FedMedian", &[]),
            ),
        ] {
            let mut o = Orchestrator::new(
                rule.clone(),
                vec![attack("alie_opt", &[("count", RawValue::Int(2))])],
                10,
                3,
                Some(1),
            )
            .unwrap();
            let (attacked, report) = o.run_round(1, &[0.0; 3], &rows, &[1.0; 10], &ids).unwrap();
            assert_eq!(report.attacked.len(), 2, "{rule:?}");
            let honest: Vec<&Vec<f32>> = (0..10)
                .filter(|c| !report.byzantine.contains(c))
                .map(|c| &data[c])
                .collect();
            let honest_mean: Vec<f64> = (0..3)
                .map(|j| honest.iter().map(|r| f64::from(r[j])).sum::<f64>() / 8.0)
                .collect();
            let mut clean = Orchestrator::new(rule.clone(), vec![], 10, 3, Some(1)).unwrap();
            let (plain, _) = clean
                .run_round(1, &[0.0; 3], &rows, &[1.0; 10], &ids)
                .unwrap();
            let dist = |a: &[f32]| -> f64 {
                a.iter()
                    .zip(&honest_mean)
                    .map(|(&x, m)| (f64::from(x) - m).powi(2))
                    .sum()
            };
            // The attack's aggregate is farther from the honest mean than the clean
            // round's (whose Byzantine rows are honest ones) for the averaging rules;
            // Krum picks one row either way, so there it only has to move the aggregate.
            assert_ne!(attacked, plain, "{rule:?}");
            if !rule.is_selection() {
                assert!(
                    dist(&attacked) > dist(&plain),
                    "{rule:?}: {attacked:?} vs {plain:?}"
                );
            }
        }
    }

    #[test]
    fn an_adaptive_attack_without_an_honest_row_sends_zeros() {
        let data = ten_rows();
        let rows: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
        let ids: Vec<i64> = (0..10).collect();
        let mut o = Orchestrator::new(
            fedavg(),
            vec![attack("min_max", &[("fraction", RawValue::Float(1.0))])],
            10,
            3,
            Some(1),
        )
        .unwrap();
        let (g, report) = o.run_round(1, &[1.0; 3], &rows, &[1.0; 10], &ids).unwrap();
        assert_eq!(report.byzantine.len(), 10);
        assert_eq!(g, vec![1.0; 3]);
    }
}
