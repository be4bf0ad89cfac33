//! numpy views → row slices, copying only when the layout forces it.

use numpy::ndarray::{ArrayView1, ArrayView2};
use std::borrow::Cow;

/// The rows of an n × d view. A C-contiguous view is borrowed (zero copy);
/// any other layout (Fortran order, strides, negative steps) is copied once
/// in logical order.
pub(crate) fn with_rows<R>(view: ArrayView2<'_, f32>, f: impl FnOnce(&[&[f32]]) -> R) -> R {
    let (n, d) = view.dim();
    let flat: Cow<'_, [f32]> = match view.to_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(view.iter().copied().collect()),
    };
    let rows: Vec<&[f32]> = if d == 0 {
        vec![&[]; n]
    } else {
        flat.chunks_exact(d).collect()
    };
    f(&rows)
}

/// A 1-d view as a slice (borrowed when contiguous).
pub(crate) fn vector<T: Copy>(view: ArrayView1<'_, T>) -> Cow<'_, [T]> {
    match view.to_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(view.iter().copied().collect()),
    }
}
