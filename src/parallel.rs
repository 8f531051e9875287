//! Work spread over the machine's cores, results in input order. Used where each item costs
//! file-system time of its own (a worktree's status, its removal, a blob diff).

fn workers(len: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(len)
}

/// Maps `f` over `items` on up to `available_parallelism` threads, keeping the order.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    map_chunks(items, |chunk| chunk.iter().map(&f).collect())
}

/// Like [`map`], but `f` gets a whole chunk, so each thread can set up its state once.
pub fn map_chunks<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> Vec<R> + Sync) -> Vec<R> {
    let workers = workers(items.len());
    if workers <= 1 {
        return f(items);
    }
    let chunk = items.len().div_ceil(workers);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| f(part)))
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| match handle.join() {
                Ok(results) => results,
                // A worker only panics on a bug; surface it where it happened.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}
