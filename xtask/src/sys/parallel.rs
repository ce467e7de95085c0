//! Work over many files spread over every CPU: a command that reads
//! 100,000 task or status files spends most of its time in system calls of
//! a few microseconds each, which threads overlap.

/// `f` of every item, in order; on as many threads as there are CPUs
/// (`available_parallelism`, which counts a cgroup's quota), each over a
/// contiguous share.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let mut refs: Vec<&T> = items.iter().collect();
    map_mut(&mut refs, |item| f(item))
}

/// `map`, where `f` may take what it needs out of an item.
pub fn map_mut<T: Send, R: Send>(items: &mut [T], f: impl Fn(&mut T) -> R + Sync) -> Vec<R> {
    // Fewer items are mapped here: a thread (tens of µs to start and join)
    // would cost more than it saves. Every item is at least a system call
    // or two; a task file to parse is about 25 µs.
    const WORTH_A_THREAD: usize = 64;
    let threads = cpus().min(items.len() / WORTH_A_THREAD).max(1);
    if threads == 1 {
        return items.iter_mut().map(f).collect();
    }
    let share = items.len().div_ceil(threads);
    // Each thread fills its share of one vector: with 100,000 tasks, a
    // vector per thread and their concatenation would weigh twice as much.
    let mut out: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    let f = &f;
    std::thread::scope(|scope| {
        for (part, slots) in items.chunks_mut(share).zip(out.chunks_mut(share)) {
            let _ = std::thread::Builder::new().spawn_scoped(scope, move || {
                for (item, slot) in part.iter_mut().zip(slots) {
                    *slot = Some(f(item));
                }
            });
        }
    });
    // A share whose thread could not start (a limit of threads reached)
    // is mapped here.
    for (item, slot) in items.iter_mut().zip(out.iter_mut()) {
        if slot.is_none() {
            *slot = Some(f(item));
        }
    }
    // Every slot is filled; collected in the same allocation.
    out.into_iter().map_while(|r| r).collect()
}

/// `a()` and `b()`, `a` on a thread of its own while `b` runs here (both
/// here, one after the other, when no thread can start: a limit of threads
/// reached). A panic in either is this thread's.
pub fn both<A: Send, B>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B) -> (A, B) {
    let a = std::sync::Mutex::new(Some(a));
    let take = || super::lock(&a).take();
    std::thread::scope(|scope| {
        let aside = std::thread::Builder::new().spawn_scoped(scope, || take().map(|a| a()));
        let b = b();
        let a = aside
            .ok()
            .and_then(|t| t.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .or_else(|| take().map(|a| a()))
            .expect("a ran, aside or here");
        (a, b)
    })
}

/// The CPUs this process may use, asked once: `available_parallelism`
/// reads the cgroup's quota files at every call (five calls before a run's
/// first task).
fn cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_order_of_the_items_however_many_threads() {
        for n in [0, 1, 63, 64, 129, 1025, 10_001] {
            let items: Vec<usize> = (0..n).collect();
            let doubled = super::map(&items, |i| i * 2);
            assert_eq!(
                doubled,
                (0..n).map(|i| i * 2).collect::<Vec<_>>(),
                "n = {n}"
            );
        }
    }
}
