//! The feed's counters. Registered (and named) with every other metric in
//! `runtime::metrics`, as the AWS call metrics are; the feed only counts.

use prometheus::{IntCounterVec, IntGaugeVec};

use super::consumer::Disposition;
use super::demand::EventQueue;
use super::effect::EventKind;

/// What the feed counts.
#[derive(Clone, Debug)]
pub struct FeedMetrics {
    /// `{kind, result}`: every message received, by event kind (`unknown`, `unparsable` when
    /// there is none) and what became of it.
    pub messages: IntCounterVec,
    /// `{kind}`: EC2 events about Stagehand's instances, acted on.
    pub interruptions: IntCounterVec,
    /// `{queue, reason}`: polls that failed.
    pub poll_errors: IntCounterVec,
    /// `{queue}`: 1 while the last poll of the queue answered, 0 while it fails.
    pub queue_up: IntGaugeVec,
    /// `{queue}`: 1 while the queue can be relied on to announce changes
    /// (`inventory::EventFeed::Healthy`), 0 otherwise.
    pub healthy: IntGaugeVec,
}

impl FeedMetrics {
    pub(super) fn message(&self, kind: &str, disposition: Disposition) {
        self.messages
            .with_label_values(&[kind, disposition.as_str()])
            .inc();
    }

    pub(super) fn interruption(&self, kind: EventKind) {
        self.interruptions.with_label_values(&[kind.as_str()]).inc();
    }

    pub(super) fn poll_error(&self, queue: &EventQueue, reason: &str) {
        self.poll_errors
            .with_label_values(&[queue.to_string().as_str(), reason])
            .inc();
    }

    pub(super) fn queue_up(&self, queue: &EventQueue, up: bool) {
        self.queue_up
            .with_label_values(&[queue.to_string().as_str()])
            .set(i64::from(up));
    }

    pub(super) fn healthy(&self, queue: &EventQueue, healthy: bool) {
        self.healthy
            .with_label_values(&[queue.to_string().as_str()])
            .set(i64::from(healthy));
    }

    /// The queue is no longer polled: its series go, rather than keep their last values.
    pub(super) fn queue_stopped(&self, queue: &EventQueue) {
        let label = queue.to_string();
        // An error only says the series was never set.
        let _ = self.queue_up.remove_label_values(&[label.as_str()]);
        let _ = self.healthy.remove_label_values(&[label.as_str()]);
    }
}
