//! Coalescing of per-file statements: many callers each ask for one small thing (claim
//! this file, note that one's archive name), and one statement answers all of those
//! that are waiting.
//!
//! A [`Coalescer`] owns a bounded queue and one task. The task takes every request
//! waiting (up to a bound), runs one statement for them ([`Batch::run`]) and gives
//! each caller its own answer; the requests that arrive while that statement is in
//! flight go together in the next one. Nothing waits for company: a request that finds
//! the task idle is sent at once, alone, so an idle agent's latency is one statement's,
//! as before. A busy agent pays one round trip per batch instead of one per file.
//!
//! A statement that fails fails every caller of its batch with the same
//! [`SinkError`], class included: a transient failure stays transient for each of
//! them, and each retries on its own.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::{ErrorClass, SinkError};

/// One statement that serves many requests at once.
#[async_trait]
pub trait Batch: Send + Sync + 'static {
    type Request: Send + 'static;
    type Answer: Send + 'static;

    /// Runs one statement for `requests`; on success returns exactly one answer per
    /// request, in their order.
    async fn run(&self, requests: &[Self::Request]) -> Result<Vec<Self::Answer>, SinkError>;
}

/// Coalesces concurrent calls of one kind into statements of up to `max` requests.
pub struct Coalescer<B: Batch> {
    batch: Arc<B>,
    max: usize,
    /// The task's queue; a task is started when there is none (first use) or when it
    /// is gone (the runtime that ran it ended).
    queue: Mutex<Option<mpsc::Sender<Waiting<B>>>>,
}

impl<B: Batch> std::fmt::Debug for Coalescer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("batch", &std::any::type_name::<B>())
            .field("max", &self.max)
            .finish()
    }
}

/// A request in the queue, with where its answer goes.
struct Waiting<B: Batch> {
    request: B::Request,
    reply: oneshot::Sender<Result<B::Answer, SinkError>>,
}

impl<B: Batch> Coalescer<B> {
    /// A coalescer running `batch` for up to `max` requests at a time (at least 1). Its
    /// queue holds up to `4 × max` requests; callers beyond that wait to be queued.
    pub fn new(batch: B, max: usize) -> Self {
        Self {
            batch: Arc::new(batch),
            max: max.max(1),
            queue: Mutex::new(None),
        }
    }

    /// Sends `request` with the others waiting and returns its own answer, once the
    /// statement that carried it has finished. Call it inside a Tokio runtime.
    pub async fn call(&self, request: B::Request) -> Result<B::Answer, SinkError> {
        let (reply, answer) = oneshot::channel();
        if self.queue().send(Waiting { request, reply }).await.is_err() {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// The task's queue, starting the task if needed.
    fn queue(&self) -> mpsc::Sender<Waiting<B>> {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        match &*queue {
            Some(tx) if !tx.is_closed() => tx.clone(),
            _ => {
                let (tx, rx) = mpsc::channel(4 * self.max);
                tokio::spawn(serve(self.batch.clone(), rx, self.max));
                *queue = Some(tx.clone());
                tx
            }
        }
    }
}

/// The task: runs one statement at a time for all the requests waiting (up to `max`),
/// until every sender is gone (its [`Coalescer`] was dropped).
async fn serve<B: Batch>(batch: Arc<B>, mut queue: mpsc::Receiver<Waiting<B>>, max: usize) {
    let mut waiting = Vec::with_capacity(max);
    // `recv_many` waits for the first request only, then takes whatever else is queued.
    while queue.recv_many(&mut waiting, max).await > 0 {
        let (requests, replies): (Vec<_>, Vec<_>) =
            waiting.drain(..).map(|w| (w.request, w.reply)).unzip();
        // A caller that stopped waiting (its task was dropped) needs no answer.
        match batch.run(&requests).await {
            Ok(answers) if answers.len() == replies.len() => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(Ok(answer));
                }
            }
            Ok(answers) => {
                let e = SinkError {
                    class: ErrorClass::Transient,
                    context: "answering a batch of requests",
                    detail: format!("{} answers to {} requests", answers.len(), replies.len()),
                };
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// The task stopped (its runtime is ending): the caller's work is retried.
fn stopped() -> SinkError {
    SinkError {
        class: ErrorClass::Transient,
        context: "batching statements",
        detail: "the batching task stopped".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;
    use std::time::Duration;

    use tokio::sync::Notify;

    use super::*;

    /// Doubles numbers, one "statement" per call, noting each batch's size; holds the
    /// first statement until released, so that the others queue meanwhile. A request
    /// of 0 fails its whole batch with a transient error, one of 1 with a data error.
    #[derive(Default)]
    struct Doubling {
        batches: StdMutex<Vec<usize>>,
        gate: Notify,
    }

    #[async_trait]
    impl Batch for Arc<Doubling> {
        type Request = u32;
        type Answer = u32;

        async fn run(&self, requests: &[u32]) -> Result<Vec<u32>, SinkError> {
            let first = {
                let mut batches = self.batches.lock().unwrap();
                batches.push(requests.len());
                batches.len() == 1
            };
            if first {
                self.gate.notified().await;
            }
            for (n, class) in [(0, ErrorClass::Transient), (1, ErrorClass::Data)] {
                if requests.contains(&n) {
                    return Err(SinkError {
                        class,
                        context: "doubling",
                        detail: format!("{n} in the batch"),
                    });
                }
            }
            Ok(requests.iter().map(|n| n * 2).collect())
        }
    }

    /// Calls `requests` at once on a coalescer of batches of `max`, once the first
    /// statement is under way, then lets it finish; every answer, in request order.
    async fn call_at_once(
        doubling: &Arc<Doubling>,
        max: usize,
        requests: Vec<u32>,
    ) -> Vec<Result<u32, SinkError>> {
        let coalescer = Arc::new(Coalescer::new(doubling.clone(), max));
        let mut tasks = Vec::new();
        let first = tokio::spawn({
            let c = coalescer.clone();
            async move { c.call(100).await }
        });
        while doubling.batches.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        for n in requests {
            let c = coalescer.clone();
            tasks.push(tokio::spawn(async move { c.call(n).await }));
        }
        // Let every caller reach the queue before the first statement ends.
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        doubling.gate.notify_one();
        assert_eq!(first.await.unwrap().unwrap(), 200);
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        answers
    }

    #[tokio::test]
    async fn concurrent_callers_share_statements_and_each_gets_its_own_answer() {
        let doubling = Arc::new(Doubling::default());
        let answers = call_at_once(&doubling, 64, (2..202).collect()).await;
        let doubled: Vec<u32> = answers.into_iter().map(Result::unwrap).collect();
        assert_eq!(doubled, (2..202).map(|n| n * 2).collect::<Vec<_>>());
        // The first alone (it found the task idle), then 200 waiting in batches of 64.
        assert_eq!(*doubling.batches.lock().unwrap(), [1, 64, 64, 64, 8]);
    }

    #[tokio::test]
    async fn a_failed_statement_fails_each_of_its_callers_with_its_class() {
        for (bad, class) in [(0, ErrorClass::Transient), (1, ErrorClass::Data)] {
            let doubling = Arc::new(Doubling::default());
            let answers = call_at_once(&doubling, 64, vec![5, bad, 7]).await;
            assert_eq!(*doubling.batches.lock().unwrap(), [1, 3]);
            for answer in answers {
                let e = answer.unwrap_err();
                assert_eq!((e.class, e.context), (class, "doubling"));
                assert_eq!(e.is_transient(), class != ErrorClass::Data);
            }
        }
    }

    #[tokio::test]
    async fn a_lone_request_is_sent_at_once() {
        let doubling = Arc::new(Doubling::default());
        doubling.gate.notify_one();
        let coalescer = Coalescer::new(doubling.clone(), 64);
        let answer = tokio::time::timeout(Duration::from_secs(5), coalescer.call(21)).await;
        assert_eq!(answer.unwrap().unwrap(), 42);
        let again = tokio::time::timeout(Duration::from_secs(5), coalescer.call(4)).await;
        assert_eq!(again.unwrap().unwrap(), 8);
        assert_eq!(*doubling.batches.lock().unwrap(), [1, 1]);
    }

    /// A batch that answers the wrong number of times is a bug: every caller is told,
    /// none is left waiting or given another's answer.
    #[tokio::test]
    async fn a_short_answer_fails_every_caller() {
        struct Short;
        #[async_trait]
        impl Batch for Short {
            type Request = u32;
            type Answer = u32;
            async fn run(&self, requests: &[u32]) -> Result<Vec<u32>, SinkError> {
                Ok(requests.iter().skip(1).copied().collect())
            }
        }
        let coalescer = Coalescer::new(Short, 8);
        let e = coalescer.call(1).await.unwrap_err();
        assert_eq!(e.class, ErrorClass::Transient);
    }
}
