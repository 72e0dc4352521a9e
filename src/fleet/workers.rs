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
use std::sync::{Arc, Mutex};

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
/// outcome (an application left alone) or runs `work(app)` on one of `concurrency` workers. At
/// most one page and `2 × concurrency` queued applications are held.
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
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = tokio::sync::mpsc::channel::<Value>(concurrency * 2);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let work = Arc::new(work);
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (rx, outcomes, progress, work) = (rx.clone(), outcomes.clone(), progress.clone(), work.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let next = rx.lock().await.recv().await;
                let Some(app) = next else { break };
                let o = work(app).await;
                progress.finished(&o);
                outcomes.lock().expect("outcomes lock").push(o);
            }
        }));
    }
    let (mut selected, mut interrupted) = (0, false);
    let listing: Result<()> = async {
        let mut objects = Objects::new(g, Collection::Applications, ids);
        while let Some(app) = objects.next().await? {
            if stop.load(Ordering::Relaxed) {
                interrupted = true;
                break;
            }
            if let Some(o) = leave(&app) {
                outcomes.lock().expect("outcomes lock").push(o);
                continue;
            }
            selected += 1;
            progress.selected();
            if tx.send(app).await.is_err() {
                break;
            }
        }
        Ok(())
    }
    .await;
    drop(tx);
    for w in workers {
        w.await.map_err(|e| Error::internal("a fleet worker stopped").caused_by(e))?;
    }
    listing?;
    let outcomes = std::mem::take(&mut *outcomes.lock().expect("outcomes lock"));
    Ok(Listed { outcomes, selected, interrupted })
}
