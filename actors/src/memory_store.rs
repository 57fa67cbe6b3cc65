//! An in-memory [`Store`], for the actors' own tests and for tests of code built on them: each
//! actor can be started alone against it. Nothing survives the process; the application uses its
//! SQLite store.

use crate::ids::{InboxSeq, JobId, WaId, Wamid};
use crate::model::{AuditEntry, Conversation, InboundMessage, QueuedJob, StatusUpdate, Timer};
use crate::ports::{AuditInbound, Store, StoreResult};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// What the store holds; tests read it through [`MemoryStore::snapshot`].
#[derive(Clone, Debug, Default)]
pub struct Contents {
    /// Message ids seen.
    pub seen: HashSet<String>,
    /// Statuses recorded, in order.
    pub statuses: Vec<StatusUpdate>,
    /// Inbox rows (message ids, in the order they were kept) and whether each is done.
    pub inbox: Vec<(Wamid, Option<String>)>,
    /// Conversations by person.
    pub conversations: HashMap<WaId, Conversation>,
    /// Queued jobs by id, in the order they were queued.
    pub queue: Vec<QueuedJob>,
    /// Sent jobs with their wamid.
    pub sent: Vec<(QueuedJob, Wamid)>,
    /// When each send started (epoch ms), by recipient, oldest first.
    pub sent_at: Vec<(WaId, i64)>,
    /// Folded jobs with the digest that said them.
    pub folded: Vec<(JobId, JobId)>,
    /// Given-up jobs with the reason.
    pub failed: Vec<(QueuedJob, String)>,
    /// Ids of queued jobs whose send has started.
    pub sending: HashSet<JobId>,
    /// Template sends per day.
    pub templates: HashMap<String, u32>,
    /// Timers not finished.
    pub timers: Vec<Timer>,
    /// Audit records, in order.
    pub audit: Vec<AuditEntry>,
    /// Keeps that answer late, by message id (see [`MemoryStore::answer_late`]).
    pub late: HashMap<String, std::time::Duration>,
}

/// The in-memory store; cheap to clone (clones share their contents).
#[derive(Clone, Debug, Default)]
pub struct MemoryStore(Arc<Mutex<Contents>>);

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of what it holds now.
    pub fn snapshot(&self) -> Contents {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Contents> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes a keep that holds the message `id` answer only after `by` (its contents are changed
    /// at once): a slow commit, to test what waits for it.
    pub fn answer_late(&self, id: &str, by: std::time::Duration) {
        self.lock().late.insert(id.to_owned(), by);
    }

    /// Runs `change` on the contents and answers its result at once.
    fn with<T: Send + 'static>(&self, change: impl FnOnce(&mut Contents) -> T) -> StoreResult<T> {
        let value = change(&mut self.lock());
        Box::pin(futures_util::future::ready(Ok(value)))
    }
}

impl Store for MemoryStore {
    fn accept(
        &self,
        messages: Vec<InboundMessage>,
        statuses: Vec<StatusUpdate>,
        audit: AuditInbound,
    ) -> StoreResult<Vec<Option<InboxSeq>>> {
        let mut late = None;
        let rows = self.with(|c| {
            c.statuses.extend(statuses);
            let mut rows = Vec::with_capacity(messages.len());
            for message in messages {
                late = late.or_else(|| c.late.get(&message.id.0).copied());
                if !c.seen.insert(message.id.0.clone()) {
                    rows.push(None);
                    continue;
                }
                c.audit.extend(audit.entry(&message));
                c.inbox.push((message.id, None));
                rows.push(Some(InboxSeq(c.inbox.len() as i64 - 1)));
            }
            rows
        });
        match late {
            None => rows,
            Some(by) => Box::pin(async move {
                tokio::time::sleep(by).await;
                rows.await
            }),
        }
    }

    fn inbox_done(&self, seq: InboxSeq, outcome: String) -> StoreResult<()> {
        self.with(|c| {
            if let Some(row) = usize::try_from(seq.0).ok().and_then(|i| c.inbox.get_mut(i)) {
                row.1 = Some(outcome);
            }
        })
    }

    fn load_conversation(&self, who: WaId) -> StoreResult<Conversation> {
        self.with(|c| c.conversations.get(&who).cloned().unwrap_or_default())
    }

    fn save_conversation(&self, who: WaId, conversation: Conversation) -> StoreResult<()> {
        self.with(|c| {
            let kept = c.conversations.entry(who).or_default();
            if conversation.version >= kept.version {
                *kept = conversation;
            }
        })
    }

    fn enqueue(&self, job: QueuedJob) -> StoreResult<bool> {
        self.with(|c| {
            let known = c.queue.iter().any(|j| j.id == job.id)
                || c.sent.iter().any(|(j, _)| j.id == job.id)
                || c.failed.iter().any(|(j, _)| j.id == job.id);
            if !known {
                c.queue.push(job);
            }
            !known
        })
    }

    fn job_sending(&self, id: JobId) -> StoreResult<()> {
        self.with(|c| {
            if let Some(job) = c.queue.iter().find(|j| j.id == id) {
                c.sent_at
                    .push((job.message.to.clone(), crate::model::now_ms()));
                c.sending.insert(id);
            }
        })
    }

    fn job_folding(&self, job: QueuedJob) -> StoreResult<()> {
        self.with(|c| {
            let folds: HashSet<&JobId> = job.folds.iter().collect();
            let mut folded = Vec::new();
            c.queue.retain(|j| {
                let gone = folds.contains(&j.id) && !c.sending.contains(&j.id);
                if gone {
                    folded.push((j.id.clone(), job.id.clone()));
                }
                !gone
            });
            c.folded.extend(folded);
            if !c.queue.iter().any(|j| j.id == job.id) {
                c.queue.push(job.clone());
            }
            c.sending.insert(job.id);
        })
    }

    fn unconfirmed_jobs(&self) -> StoreResult<Vec<QueuedJob>> {
        self.with(|c| {
            let sending = |j: &&QueuedJob| c.sending.contains(&j.id);
            c.queue.iter().filter(sending).cloned().collect()
        })
    }

    fn still_sending(&self, ids: Vec<JobId>) -> StoreResult<Vec<bool>> {
        self.with(|c| ids.iter().map(|id| c.sending.contains(id)).collect())
    }

    fn update_job(&self, job: QueuedJob) -> StoreResult<()> {
        self.with(|c| {
            c.sending.remove(&job.id);
            if let Some(kept) = c.queue.iter_mut().find(|j| j.id == job.id) {
                *kept = job;
            }
        })
    }

    fn job_sent(&self, job: QueuedJob, wamid: Wamid) -> StoreResult<()> {
        self.with(|c| {
            c.sending.remove(&job.id);
            c.queue.retain(|j| j.id != job.id);
            c.sent.push((job, wamid));
        })
    }

    fn job_failed(&self, job: QueuedJob, _code: Option<i64>, reason: String) -> StoreResult<()> {
        self.with(|c| {
            c.sending.remove(&job.id);
            c.queue.retain(|j| j.id != job.id);
            c.failed.push((job, reason));
        })
    }

    fn recent_sends(&self, since_ms: i64) -> StoreResult<Vec<(WaId, i64)>> {
        self.with(|c| {
            let recent = c.sent_at.iter().filter(|(_, at)| *at >= since_ms);
            recent.cloned().collect()
        })
    }

    fn pending_jobs(&self) -> StoreResult<Vec<QueuedJob>> {
        self.with(|c| {
            let queued = |j: &&QueuedJob| !c.sending.contains(&j.id);
            c.queue.iter().filter(queued).cloned().collect()
        })
    }

    fn take_template_quota(&self, day: String, limit: u32) -> StoreResult<bool> {
        self.with(|c| {
            let used = c.templates.entry(day).or_default();
            let ok = *used < limit;
            if ok {
                *used += 1;
            }
            ok
        })
    }

    fn save_timer(&self, timer: Timer) -> StoreResult<()> {
        self.with(|c| c.timers.push(timer))
    }

    fn finish_timer(&self, id: String) -> StoreResult<()> {
        self.with(|c| c.timers.retain(|t| t.id != id))
    }

    fn pending_timers(&self) -> StoreResult<Vec<Timer>> {
        self.with(|c| c.timers.clone())
    }

    fn audit(&self, entry: AuditEntry) -> StoreResult<()> {
        self.with(|c| c.audit.push(entry))
    }
}
