//! Targeted label flipping: the Byzantine client relabels a share of one
//! class's samples as another class.
//!
//! ```text
//! S = {i : y_i = source},    pick round(ratio · |S|) of S uniformly,    y_i ← target
//! ```
//! where `source` and `target` are distinct class ids below the dataset's
//! number of classes C, `ratio` ∈ (0, 1], rounding is half up, and the pick is
//! drawn from the client's keyed ChaCha8 stream (seed, round, client). Other
//! samples keep their labels.
//!
//! Parameters: `source` (class id, default 1), `target` (class id ≠ source,
//! default 7), `ratio` (float in (0, 1], default 1.0), plus the common ones.
//!
//! ```
//! use _core::security::{rng_for, Apply, Params};
//!
//! let p = Params::validate("targeted_label_flipping", &[]).unwrap(); // 1 → 7, all of them
//! let Apply::Data(poison) = p.spec().apply else { unreachable!() };
//! let mut labels = vec![1i64, 2, 1, 3];
//! poison(&mut labels, 10, &p, &mut rng_for(0, 0, 0, 0)).unwrap();
//! assert_eq!(labels, vec![7, 2, 7, 3]);
//! ```
//!
//! References:
//! 1. Tolpegin, Truex, Gursoy and Liu, "Data Poisoning Attacks Against
//!    Federated Learning Systems", ESORICS 2020. <https://arxiv.org/abs/2007.08432>

use super::{Apply, AttackSpec, Params};
use crate::error::{CoreError, Result};
use crate::schema::ParamSpec;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

pub(super) const SPEC: AttackSpec = AttackSpec {
    name: "targeted_label_flipping",
    aliases: &[],
    description: "relabels a seeded random ratio of the samples of class source as target",
    reference: "Tolpegin et al. 2020, Data Poisoning Attacks Against Federated \
                Learning Systems, https://arxiv.org/abs/2007.08432",
    params: &[
        ParamSpec::int("source", 1, "class whose samples are relabelled")
            .min(0.0, true)
            .class_id(),
        ParamSpec::int("target", 7, "class they are relabelled as")
            .min(0.0, true)
            .class_id(),
        ParamSpec::float("ratio", 1.0, "share of the source samples relabelled")
            .min(0.0, false)
            .max(1.0, true),
    ],
    apply: Apply::Data(targeted_label_flipping),
    adaptive: false,
    check: Some(source_differs_from_target),
};

fn targeted_label_flipping(
    labels: &mut [i64],
    classes: usize,
    p: &Params,
    rng: &mut ChaCha8Rng,
) -> Result<()> {
    let (source, target) = (p.int("source"), p.int("target"));
    for (name, v) in [("source", source), ("target", target)] {
        if v >= classes as i64 {
            return Err(CoreError::invalid(
                format!("targeted_label_flipping.{name}"),
                v,
                format!("an int in [0, num_classes) = [0, {classes})"),
            ));
        }
    }
    let hits: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == source).collect();
    let k = ((p.float("ratio") * hits.len() as f64 + 0.5).floor() as usize).min(hits.len());
    for pick in sample(rng, hits.len(), k) {
        labels[hits[pick]] = target;
    }
    Ok(())
}

fn source_differs_from_target(p: &Params) -> Result<()> {
    if p.int("source") == p.int("target") {
        return Err(CoreError::invalid(
            "targeted_label_flipping.target",
            p.int("target"),
            format!("an int ≥ 0 different from source = {}", p.int("source")),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::raw;
    use super::*;
    use crate::schema::RawValue;
    use crate::security::rng_for;

    #[test]
    fn relabels_a_ratio_of_the_source_class() {
        let p = Params::validate(
            "targeted_label_flipping",
            &raw(&[("ratio", RawValue::Float(0.5))]),
        )
        .unwrap();
        let mut labels = vec![1i64, 1, 2, 1, 1, 3];
        targeted_label_flipping(&mut labels, 10, &p, &mut rng_for(0, 0, 0, 0)).unwrap();
        assert_eq!(labels.iter().filter(|&&y| y == 7).count(), 2);
        assert_eq!(labels.iter().filter(|&&y| y == 1).count(), 2);
        assert_eq!((labels[2], labels[5]), (2, 3));
        let mut labels = vec![1i64; 3];
        assert!(targeted_label_flipping(&mut labels, 5, &p, &mut rng_for(0, 0, 0, 0)).is_err());
    }
}
