//! The one worker pool behind every `--jobs`: a fixed number of threads
//! take items in order; results come back in the items' order.

use std::collections::VecDeque;
use std::sync::Mutex;

/// Runs `work` on every item, at most `jobs` at a time, and returns the
/// results in the order of `items`. `work` may report progress itself.
pub fn run<I: Send, R: Send>(items: Vec<I>, jobs: usize, work: impl Fn(I) -> R + Sync) -> Vec<R> {
    let count = items.len();
    let queue = Mutex::new(items.into_iter().enumerate().collect::<VecDeque<_>>());
    let results = Mutex::new((0..count).map(|_| None).collect::<Vec<Option<R>>>());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, count.max(1)) {
            s.spawn(|| {
                loop {
                    let next = queue.lock().expect("the queue lock").pop_front();
                    let Some((i, item)) = next else { break };
                    let result = work(item);
                    results.lock().expect("the results lock")[i] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("the results lock")
        .into_iter()
        .map(|r| r.expect("every item was worked on"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_keep_the_order_and_jobs_bound_concurrency() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let out = super::run((0..20).collect(), 3, |i: u32| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(5));
            running.fetch_sub(1, Ordering::SeqCst);
            i * 2
        });
        assert_eq!(out, (0..20).map(|i| i * 2).collect::<Vec<_>>());
        // At most `jobs` at once, and more than one (a pool that ran them
        // one by one would pass the bound).
        let most = most.load(Ordering::SeqCst);
        assert!((2..=3).contains(&most), "{most} ran at once");
        assert!(super::run(Vec::<u8>::new(), 4, |x| x).is_empty());
    }
}
