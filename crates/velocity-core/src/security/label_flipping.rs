//! Label flipping: the Byzantine client trains on reversed labels.
//!
//! ```text
//! y ← C − 1 − y    for every local sample
//! ```
//! where C is the dataset's number of classes and y a label in [0, C). The
//! update it then sends is honestly computed on the poisoned data.
//!
//! Parameters: only the common ones.
//!
//! ```
//! use _core::security::{rng_for, Apply, Params};
//!
//! let p = Params::validate("label_flipping", &[]).unwrap();
//! let Apply::Data(poison) = p.spec().apply else { unreachable!() };
//! let mut labels = vec![0i64, 1, 9, 4];
//! poison(&mut labels, 10, &p, &mut rng_for(0, 0, 0, 0)).unwrap();
//! assert_eq!(labels, vec![9, 8, 0, 5]);
//! ```
//!
//! References:
//! 1. Tolpegin, Truex, Gursoy and Liu, "Data Poisoning Attacks Against
//!    Federated Learning Systems", ESORICS 2020. <https://arxiv.org/abs/2007.08432>

use super::{Apply, AttackSpec, Params};
use crate::error::Result;
use rand_chacha::ChaCha8Rng;

pub(super) const SPEC: AttackSpec = AttackSpec {
    name: "label_flipping",
    aliases: &[],
    description: "trains on flipped labels: y -> C - 1 - y for every sample",
    reference: "Tolpegin et al. 2020, Data Poisoning Attacks Against Federated \
                Learning Systems, https://arxiv.org/abs/2007.08432",
    params: &[],
    apply: Apply::Data(label_flipping),
    adaptive: false,
    check: None,
};

fn label_flipping(
    labels: &mut [i64],
    classes: usize,
    _: &Params,
    _: &mut ChaCha8Rng,
) -> Result<()> {
    let top = classes as i64 - 1;
    labels.iter_mut().for_each(|y| *y = top - *y);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_reversed() {
        let p = Params::validate("label_flipping", &[]).unwrap();
        let mut labels = vec![0i64, 1, 9, 4];
        label_flipping(&mut labels, 10, &p, &mut super::super::rng_for(0, 0, 0, 0)).unwrap();
        assert_eq!(labels, vec![9, 8, 0, 5]);
    }
}
