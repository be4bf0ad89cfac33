//! Thread pools and deterministic coordinate chunking.
//!
//! Every parallel kernel splits the `d` coordinates into fixed chunks of
//! [`CHUNK`] (never "one chunk per thread"), reduces inside a chunk in a fixed
//! order, and combines chunk results in chunk order. The result is therefore
//! bit-identical whatever the pool size.

use crate::error::{CoreError, Result};
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Coordinates per parallel task; independent of the thread count.
pub const CHUNK: usize = 4096;

/// Most threads one explicit pool may have.
pub const MAX_THREADS: usize = 1024;

/// Number of [`CHUNK`]-sized chunks that cover `d` coordinates.
pub fn num_chunks(d: usize) -> usize {
    d.div_ceil(CHUNK)
}

/// The coordinates of chunk `c`.
pub fn chunk_range(c: usize, d: usize) -> Range<usize> {
    c * CHUNK..((c + 1) * CHUNK).min(d)
}

/// Validates a caller's `num_threads` (`None` = the available parallelism unless
/// `RAYON_NUM_THREADS` says otherwise).
pub fn threads_from(num_threads: Option<i64>) -> Result<Option<usize>> {
    match num_threads {
        None => Ok(None),
        Some(t) => match usize::try_from(t) {
            Ok(t) if (1..=MAX_THREADS).contains(&t) => Ok(Some(t)),
            _ => Err(CoreError::invalid(
                "num_threads",
                t,
                format!("None or an integer in [1, {MAX_THREADS}]"),
            )),
        },
    }
}

/// A cached pool of exactly `threads` workers.
///
/// The cache is keyed by process id as well: a process forked after it built a
/// pool inherits the pool's bookkeeping but none of its threads, and `install`
/// on it would wait forever. A forked child therefore builds its own pools (the
/// parent's stale entries are dropped without being joined).
fn pool(threads: usize) -> Result<Arc<ThreadPool>> {
    type Pools = (u32, HashMap<usize, Arc<ThreadPool>>);
    static POOLS: OnceLock<Mutex<Pools>> = OnceLock::new();
    let mut guard = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let (owner, pools) = &mut *guard;
    let pid = std::process::id();
    if *owner != pid {
        // Leak the parent's pools: dropping one would wait on threads that do not exist here.
        std::mem::forget(std::mem::take(pools));
        *owner = pid;
    }
    if let Some(p) = pools.get(&threads) {
        return Ok(Arc::clone(p));
    }
    let built = ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("velocity-{i}"))
        .build()
        .map_err(|e| CoreError::Runtime {
            message: format!("could not start a pool of {threads} threads: {e}"),
        })?;
    let built = Arc::new(built);
    pools.insert(threads, Arc::clone(&built));
    Ok(built)
}

/// Threads used when the caller gives none: `RAYON_NUM_THREADS` if set, else
/// the available parallelism.
fn default_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|t| (1..=MAX_THREADS).contains(t))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Runs `f` with `num_threads` workers (`None`: [`default_threads`]). Never
/// uses rayon's global pool, which a forked child could not use.
pub fn install<R: Send>(num_threads: Option<usize>, f: impl FnOnce() -> R + Send) -> Result<R> {
    let threads = num_threads.unwrap_or_else(default_threads);
    Ok(pool(threads)?.install(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_exactly() {
        assert_eq!(num_chunks(0), 0);
        assert_eq!(num_chunks(1), 1);
        assert_eq!(num_chunks(CHUNK), 1);
        assert_eq!(num_chunks(CHUNK + 1), 2);
        assert_eq!(chunk_range(1, CHUNK + 5), CHUNK..CHUNK + 5);
    }

    #[test]
    fn thread_counts_are_validated() {
        assert_eq!(threads_from(None).unwrap(), None);
        assert_eq!(threads_from(Some(3)).unwrap(), Some(3));
        assert!(threads_from(Some(0)).is_err());
        assert!(threads_from(Some(-2)).is_err());
        assert_eq!(install(Some(2), rayon::current_num_threads).unwrap(), 2);
    }
}
