//! Shared by the benches: a paired measurement that alternates two operations in short rounds
//! and reports the median of per-round time ratios, which cancels drift on a shared machine.

use std::time::{Duration, Instant};

/// A benchmarked operation.
pub type Op = Box<dyn Fn()>;

/// Alternates ours and the baseline in rounds; returns the median of per-round time ratios.
pub fn paired_ratio(ours: &Op, theirs: &Op, per_round: u32) -> (f64, Duration, Duration) {
    const ROUNDS: usize = 41;
    let mut ratios = Vec::with_capacity(ROUNDS);
    let (mut ours_total, mut theirs_total) = (Duration::ZERO, Duration::ZERO);
    for round in 0..ROUNDS {
        let time = |f: &Op| {
            let start = Instant::now();
            for _ in 0..per_round {
                f();
            }
            start.elapsed()
        };
        let (a, b) = if round % 2 == 0 {
            let a = time(ours);
            (a, time(theirs))
        } else {
            let b = time(theirs);
            (time(ours), b)
        };
        ours_total += a;
        theirs_total += b;
        ratios.push(a.as_secs_f64() / b.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let per_call = |total: Duration| total / (ROUNDS as u32 * per_round);
    (
        ratios[ROUNDS / 2],
        per_call(ours_total),
        per_call(theirs_total),
    )
}
