//! What every fleet run shares: the tenant's applications streamed from Graph one page at a
//! time, each either left alone with its reason or queued for one of N workers, and Ctrl-C
//! honoured between applications. `fleet rotate` and `fleet retire` differ only in what they
//! decide and do for one application.

use crate::graph::call::Collection;
use crate::graph::pager::Objects;
use crate::graph::GraphClient;
use crate::{ClientId, Error, Result};
use serde_json::Value;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Told as the run goes (progress bars).
pub trait Progress<T>: Send + Sync {
    /// One more application selected.
    fn selected(&self) {}
    /// An application finished.
    fn finished(&self, _o: &T) {}
}

/// No progress shown.
pub struct Quiet;
impl<T> Progress<T> for Quiet {}

/// What a listing gave: every outcome (those left alone included), how many applications were
/// handed to workers, and whether Ctrl-C stopped the listing.
pub struct Listed<T> {
    /// Outcomes, in no particular order.
    pub outcomes: Vec<T>,
    /// Applications handed to workers.
    pub selected: u64,
    /// Whether the listing stopped early.
    pub interrupted: bool,
}

/// Lists the applications (all, or those of `ids`) and, for each, either takes `leave(app)`'s
/// outcome (an application left alone) or runs `work(app)` as a task of a [`JoinSet`], at most
/// `concurrency` at a time (a [`Semaphore`]'s permits). At most one page and `concurrency`
/// applications are held.
pub async fn for_each_app<T, L, W, F>(
    g: &GraphClient,
    ids: &[ClientId],
    concurrency: usize,
    stop: &AtomicBool,
    progress: Arc<dyn Progress<T>>,
    mut leave: L,
    work: W,
) -> Result<Listed<T>>
where
    T: Send + 'static,
    L: FnMut(&Value) -> Option<T>,
    W: Fn(Value) -> F + Send + Sync + 'static,
    F: Future<Output = T> + Send,
{
    // A permit per application in flight: the listing waits for one before it spawns the next,
    // so at most `concurrency` applications (and one page) are held however large the tenant.
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let work = Arc::new(work);
    let mut running = JoinSet::new();
    let mut outcomes = Vec::new();
    let (mut selected, mut interrupted) = (0, false);
    let listing: Result<()> = async {
        let mut objects = Objects::new(g, Collection::Applications, ids);
        while let Some(app) = objects.next().await? {
            if stop.load(Ordering::Relaxed) {
                interrupted = true;
                break;
            }
            if let Some(o) = leave(&app) {
                outcomes.push(o);
                continue;
            }
            selected += 1;
            progress.selected();
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| Error::internal("the fleet workers stopped").caused_by(e))?;
            let (work, progress) = (work.clone(), progress.clone());
            running.spawn(async move {
                let o = work(app).await;
                progress.finished(&o);
                drop(permit);
                o
            });
            // Collect what has finished meanwhile, so outcomes do not wait in the set.
            while let Some(done) = running.try_join_next() {
                outcomes.push(done.map_err(|e| Error::internal("a fleet worker stopped").caused_by(e))?);
            }
        }
        Ok(())
    }
    .await;
    while let Some(done) = running.join_next().await {
        outcomes.push(done.map_err(|e| Error::internal("a fleet worker stopped").caused_by(e))?);
    }
    listing?;
    Ok(Listed { outcomes, selected, interrupted })
}
