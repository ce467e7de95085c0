//! Work over many files spread over every CPU: a command that reads
//! 100,000 task or status files spends most of its time in system calls of
//! a few microseconds each, which threads overlap.

/// `f` of every item, in order; on as many threads as there are CPUs
/// (`available_parallelism`, which counts a cgroup's quota), each over a
/// contiguous share. A few items are mapped here, where a thread would
/// cost more than it saves.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    const WORTH_A_THREAD: usize = 512;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cpus.min(items.len() / WORTH_A_THREAD).max(1);
    if threads == 1 {
        return items.iter().map(&f).collect();
    }
    let share = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(share)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut all = Vec::with_capacity(items.len());
        for worker in workers {
            // A panic in `f` is the caller's bug: passed on as it was.
            all.extend(
                worker
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            );
        }
        all
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_order_of_the_items_however_many_threads() {
        for n in [0, 1, 511, 512, 1025, 10_001] {
            let items: Vec<usize> = (0..n).collect();
            let doubled = super::map(&items, |i| i * 2);
            assert_eq!(doubled, (0..n).map(|i| i * 2).collect::<Vec<_>>(), "n = {n}");
        }
    }
}
