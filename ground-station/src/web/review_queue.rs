//! The review queue's rules, shared by every [`super::ConsoleBackend`]: leased claims (two reviewers never hold
//! the same item), skip (the item goes behind the others for that reviewer), and each reviewer's verdict history
//! for undo. Pure: the caller gives the pending items and the time; what a verdict does to the hazard is the
//! caller's business.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use super::api::{ReviewRecord, Severity, Verdict};
use super::backend::BackendError;

/// How long an undone item stays claimed by the reviewer who undid it.
pub const UNDO_LEASE: Duration = Duration::from_secs(300);

/// A pending item as the queue orders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The hazard id (as the API shows it).
    pub hazard_id: String,
    /// Most severe first.
    pub severity: Severity,
    /// Then oldest first (Unix ms).
    pub first_seen_unix_ms: i64,
}

/// An item the queue gave to a reviewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The hazard id.
    pub hazard_id: String,
    /// The lease ends then.
    pub expires: SystemTime,
    /// Pending items other than this one.
    pub remaining: u32,
}

#[derive(Debug, Clone)]
struct Claim {
    reviewer: String,
    expires: SystemTime,
}

/// Claims, skips and the verdict history.
#[derive(Debug, Default)]
pub struct ReviewQueue {
    claims: BTreeMap<String, Claim>,
    /// (reviewer, hazard id) pairs skipped and not yet undone.
    skipped: BTreeSet<(String, String)>,
    records: Vec<ReviewRecord>,
}

impl ReviewQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives `reviewer` the item they already hold (renewing the lease), else the first pending item nobody
    /// holds: not skipped by them first, then most severe, then oldest. `None` when nothing is free.
    pub fn claim(
        &mut self,
        reviewer: &str,
        pending: &[Candidate],
        lease: Duration,
        now: SystemTime,
    ) -> Option<Claimed> {
        self.claims.retain(|id, claim| claim.expires > now && pending.iter().any(|c| &c.hazard_id == id));
        let held = self.claims.iter().find(|(_, c)| c.reviewer == reviewer).map(|(id, _)| id.clone());
        let chosen = held.or_else(|| {
            pending
                .iter()
                .filter(|c| !self.claims.contains_key(&c.hazard_id))
                .min_by_key(|c| {
                    let skipped = self.skipped.contains(&(reviewer.to_owned(), c.hazard_id.clone()));
                    (skipped, c.severity, c.first_seen_unix_ms)
                })
                .map(|c| c.hazard_id.clone())
        })?;
        let expires = now + lease;
        self.claims.insert(chosen.clone(), Claim { reviewer: reviewer.to_owned(), expires });
        let remaining = u32::try_from(pending.iter().filter(|c| c.hazard_id != chosen).count()).unwrap_or(u32::MAX);
        Some(Claimed { hazard_id: chosen, expires, remaining })
    }

    /// Checks that `reviewer` holds a live claim on `hazard_id`, as a verdict requires.
    ///
    /// # Errors
    /// [`BackendError::Conflict`] when someone else holds it, or nobody does (never claimed, or the lease lapsed).
    pub fn check_claim(&self, reviewer: &str, hazard_id: &str, now: SystemTime) -> Result<(), BackendError> {
        match self.claims.get(hazard_id) {
            Some(claim) if claim.expires > now && claim.reviewer == reviewer => Ok(()),
            Some(claim) if claim.expires > now => {
                Err(BackendError::Conflict(format!("{hazard_id} is claimed by another reviewer; claim the next item")))
            }
            _ => Err(BackendError::Conflict(format!("claim {hazard_id} first (the claim may have lapsed)"))),
        }
    }

    /// Records a verdict the caller has applied: the claim is released, a skip puts the item behind the others
    /// for this reviewer, and the record joins the reviewer's history for undo.
    pub fn record(&mut self, record: ReviewRecord) {
        self.claims.remove(&record.hazard_id);
        if record.verdict == Verdict::Skip {
            self.skipped.insert((record.reviewer.clone(), record.hazard_id.clone()));
        }
        self.records.push(record);
    }

    /// The latest verdict of `reviewer` not undone yet: what [`ReviewQueue::undo`] would undo.
    pub fn last_verdict(&self, reviewer: &str) -> Option<&ReviewRecord> {
        self.records.iter().rev().find(|r| r.reviewer == reviewer && !r.undone)
    }

    /// Marks the latest verdict of `reviewer` undone and gives the item back to them (unless someone else holds
    /// it by now); returns the undone record. The caller reverses what the verdict did to the hazard first.
    pub fn undo(&mut self, reviewer: &str, now: SystemTime) -> Option<ReviewRecord> {
        let record = self.records.iter_mut().rev().find(|r| r.reviewer == reviewer && !r.undone)?;
        record.undone = true;
        let record = record.clone();
        self.skipped.remove(&(reviewer.to_owned(), record.hazard_id.clone()));
        self.claims.retain(|_, c| c.reviewer != reviewer);
        self.claims
            .entry(record.hazard_id.clone())
            .or_insert(Claim { reviewer: reviewer.to_owned(), expires: now + UNDO_LEASE });
        Some(record)
    }

    /// Every verdict recorded (undone ones included), oldest first.
    pub fn records(&self) -> &[ReviewRecord] {
        &self.records
    }
}

/// Unix milliseconds of `time` (0 before the epoch).
pub fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(60);

    fn candidate(id: &str, severity: Severity, first_seen: i64) -> Candidate {
        Candidate { hazard_id: id.into(), severity, first_seen_unix_ms: first_seen }
    }

    fn pending() -> Vec<Candidate> {
        vec![candidate("old-b", Severity::B, 1), candidate("new-a", Severity::A, 5), candidate("old-a", Severity::A, 2)]
    }

    fn record(reviewer: &str, id: &str, verdict: Verdict) -> ReviewRecord {
        ReviewRecord {
            hazard_id: id.into(),
            reviewer: reviewer.into(),
            verdict,
            note: None,
            at_unix_ms: 0,
            undone: false,
        }
    }

    #[test]
    fn most_severe_then_oldest_and_two_reviewers_never_share_an_item() {
        let mut queue = ReviewQueue::new();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let ann = queue.claim("ann", &pending(), LEASE, now).unwrap();
        assert_eq!((ann.hazard_id.as_str(), ann.remaining), ("old-a", 2));
        assert_eq!(queue.claim("bob", &pending(), LEASE, now).unwrap().hazard_id, "new-a");
        assert_eq!(queue.claim("cat", &pending(), LEASE, now).unwrap().hazard_id, "old-b");
        assert_eq!(queue.claim("dan", &pending(), LEASE, now), None, "everything is held");
        assert_eq!(queue.claim("ann", &pending(), LEASE, now).unwrap().hazard_id, "old-a", "a claim is kept");
        assert!(queue.check_claim("ann", "old-a", now).is_ok());
        assert!(matches!(queue.check_claim("bob", "old-a", now), Err(BackendError::Conflict(_))));
        assert!(matches!(queue.check_claim("dan", "nobody-holds", now), Err(BackendError::Conflict(_))));
    }

    #[test]
    fn a_lapsed_lease_frees_the_item() {
        let mut queue = ReviewQueue::new();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        queue.claim("ann", &pending(), LEASE, now).unwrap();
        let later = now + LEASE + Duration::from_secs(1);
        assert!(matches!(queue.check_claim("ann", "old-a", later), Err(BackendError::Conflict(_))));
        assert_eq!(queue.claim("bob", &pending(), LEASE, later).unwrap().hazard_id, "old-a");
    }

    #[test]
    fn an_item_that_left_the_pending_list_is_no_longer_held() {
        let mut queue = ReviewQueue::new();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        queue.claim("ann", &pending(), LEASE, now).unwrap();
        let rest: Vec<Candidate> = pending().into_iter().filter(|c| c.hazard_id != "old-a").collect();
        assert_eq!(queue.claim("ann", &rest, LEASE, now).unwrap().hazard_id, "new-a");
    }

    #[test]
    fn skip_moves_the_item_behind_for_that_reviewer_only_and_undo_restores_it() {
        let mut queue = ReviewQueue::new();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        queue.claim("ann", &pending(), LEASE, now).unwrap();
        queue.record(record("ann", "old-a", Verdict::Skip));
        assert_eq!(queue.claim("ann", &pending(), LEASE, now).unwrap().hazard_id, "new-a");
        assert_eq!(queue.claim("bob", &pending(), LEASE, now).unwrap().hazard_id, "old-a");
        queue.record(record("bob", "old-a", Verdict::Confirm));
        let undone = queue.undo("ann", now).unwrap();
        assert_eq!((undone.hazard_id.as_str(), undone.verdict, undone.undone), ("old-a", Verdict::Skip, true));
        assert!(queue.records()[0].undone);
        assert!(queue.check_claim("ann", "old-a", now).is_ok(), "the skipped item comes back first");
    }

    #[test]
    fn undo_takes_the_latest_verdict_and_gives_the_item_back() {
        let mut queue = ReviewQueue::new();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(queue.undo("ann", now), None, "nothing to undo");
        queue.claim("ann", &pending(), LEASE, now).unwrap();
        queue.record(record("ann", "old-a", Verdict::Confirm));
        queue.claim("ann", &pending(), LEASE, now).unwrap();
        queue.record(record("ann", "new-a", Verdict::Reject));
        assert_eq!(queue.last_verdict("ann").unwrap().hazard_id, "new-a");
        let undone = queue.undo("ann", now).unwrap();
        assert_eq!(undone.hazard_id, "new-a");
        assert!(undone.undone);
        assert!(queue.check_claim("ann", "new-a", now).is_ok(), "the undone item is the reviewer's again");
        assert_eq!(queue.undo("ann", now).unwrap().hazard_id, "old-a");
        assert_eq!(queue.undo("ann", now), None);
        assert_eq!(queue.records().iter().filter(|r| r.undone).count(), 2);
    }
}
