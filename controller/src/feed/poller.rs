//! One long-poll loop per queue: resolve the queue (through the SQS inventory, which caches its
//! URL), wait up to 20 s for up to ten messages, handle each, delete in one batch all but those
//! whose handling failed, and again. A failed poll (queue missing, access denied, throttled,
//! unreachable) backs off exponentially and is recorded for the objects naming the queue to
//! show; each change of the queue's health is logged and makes those objects reconcile now, so
//! their status says it at once. Health as a feed to rely on (`inventory::EventFeed`) also
//! counts silence: every message, the heartbeat included, is proof of life; so is the first
//! answer (a grace period of `FEED_SILENCE_LIMIT` for the first heartbeat).

use std::time::Duration;

use tokio::sync::watch;

use super::consumer::Consumer;
use super::demand::{Demand, EventQueue};
use crate::aws::sqs::{LONG_POLL_WAIT, ReceivedMessage};
use crate::aws::{AwsError, ErrorKind};
use crate::inventory::sqs::QueueFeed;

/// The wait after the first failed poll; it doubles with each failure after it.
pub const POLL_BACKOFF_FIRST: Duration = Duration::from_secs(1);

/// The longest wait between failed polls: a queue created or a permission granted is picked up
/// within a minute, and a queue that stays broken costs one call a minute.
pub const POLL_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// The wait after `failures` consecutive failed polls (1 = the first).
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    POLL_BACKOFF_FIRST
        .saturating_mul(1 << doublings)
        .min(POLL_BACKOFF_MAX)
}

/// Polls one queue until told to stop.
#[derive(Debug)]
pub struct Poller {
    pub queue: EventQueue,
    pub consumer: Consumer,
    /// Who names the queue, to tell them when its health changes.
    pub demand: watch::Receiver<Demand>,
}

impl Poller {
    /// Polls until `stop` turns true. A poll in flight is abandoned then (what it would have
    /// received stays on the queue); a batch being handled is finished first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::info!(queue = %self.queue, "polling event queue");
        let mut failures: u32 = 0;
        let mut last: Option<QueueFeed> = None;
        let mut was_healthy: Option<bool> = None;
        loop {
            // Until a poll has answered, poll without waiting: whether the queue can be polled
            // is known (and shown on the objects naming it) at once, not after 20 s of silence.
            let wait = if last == Some(QueueFeed::Polling) {
                LONG_POLL_WAIT
            } else {
                Duration::ZERO
            };
            let polled = tokio::select! {
                biased;
                _ = stop.wait_for(|stopped| *stopped) => break,
                polled = self.receive(wait) => polled,
            };
            let outcome = match polled {
                Ok((url, messages)) => {
                    failures = 0;
                    self.handle(&url, &messages).await;
                    QueueFeed::Polling
                }
                Err(problem) => {
                    failures = failures.saturating_add(1);
                    problem
                }
            };
            self.report(&mut last, outcome);
            self.report_health(&mut was_healthy);
            if failures > 0 {
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|stopped| *stopped) => break,
                    () = tokio::time::sleep(backoff(failures)) => {}
                }
            }
        }
        self.consumer
            .inventory
            .sqs(&self.queue.region)
            .feed_stopped(&self.queue.queue);
        self.consumer.metrics.queue_stopped(&self.queue);
        tracing::info!(queue = %self.queue, "stopped polling event queue");
    }

    /// One poll: the queue's URL (cached) and what arrived within `wait`.
    async fn receive(&self, wait: Duration) -> Result<(String, Vec<ReceivedMessage>), QueueFeed> {
        let region = &self.queue.region;
        let name = &self.queue.queue;
        let queues = self.consumer.inventory.sqs(region);
        let url = match queues.queue(name).await {
            Ok(Some((url, _arn))) => url,
            Ok(None) => {
                // Not remembered as missing for the inventory's max age: the next poll, after
                // the backoff, looks again (a queue created meanwhile is found within a minute).
                queues.queue_gone(name);
                return Err(self.problem(
                    "QueueNotFound",
                    format!("SQS queue {name} does not exist in {region}"),
                ));
            }
            Err(error) => return Err(self.failed(&error)),
        };
        let sqs = self.consumer.inventory.aws().sqs(region);
        match sqs.receive_messages(&url, wait).await {
            Ok(messages) => Ok((url, messages)),
            Err(error) => {
                if error.is_not_found() {
                    queues.queue_gone(name);
                }
                Err(self.failed(&error))
            }
        }
    }

    /// Handles each message, then deletes in one batch all whose handling did not fail.
    async fn handle(&self, url: &str, messages: &[ReceivedMessage]) {
        if !messages.is_empty() {
            self.consumer
                .inventory
                .sqs(&self.queue.region)
                .feed_heard(&self.queue.queue);
        }
        let mut delete = Vec::new();
        for message in messages {
            let disposition = self
                .consumer
                .handle(&self.queue.queue, &message.message_id, &message.body)
                .await;
            if disposition.deletes() {
                delete.push(message);
            }
        }
        let sqs = self.consumer.inventory.aws().sqs(&self.queue.region);
        match sqs.delete_messages(url, &delete).await {
            Ok(refused) => {
                for failure in refused {
                    tracing::warn!(queue = %self.queue, message_id = %failure.message_id, code = %failure.code, "SQS did not delete a handled message; it will be delivered again");
                }
            }
            Err(error) => {
                self.consumer
                    .metrics
                    .poll_error(&self.queue, "DeleteFailed");
                tracing::warn!(queue = %self.queue, %error, "deleting handled messages failed; they will be delivered again");
            }
        }
    }

    fn failed(&self, error: &AwsError) -> QueueFeed {
        let reason = match error.kind {
            ErrorKind::NotFound => "QueueNotFound",
            ErrorKind::AccessDenied => "AccessDenied",
            _ => "PollFailed",
        };
        self.problem(reason, error.to_string())
    }

    fn problem(&self, reason: &str, message: String) -> QueueFeed {
        self.consumer.metrics.poll_error(&self.queue, reason);
        QueueFeed::Failing {
            reason: reason.to_owned(),
            message,
        }
    }

    /// Records the poll's outcome for the objects naming the queue; on a change of health,
    /// logs it and asks them to reconcile now.
    fn report(&self, last: &mut Option<QueueFeed>, outcome: QueueFeed) {
        self.consumer
            .metrics
            .queue_up(&self.queue, outcome == QueueFeed::Polling);
        self.consumer
            .inventory
            .sqs(&self.queue.region)
            .feed_polled(&self.queue.queue, outcome.clone());
        if last.as_ref() == Some(&outcome) {
            return;
        }
        if outcome == QueueFeed::Polling {
            // Polls answer again: the grace period for the first heartbeat starts.
            self.consumer
                .inventory
                .sqs(&self.queue.region)
                .feed_heard(&self.queue.queue);
        }
        match &outcome {
            QueueFeed::Polling => tracing::info!(queue = %self.queue, "event queue answers"),
            QueueFeed::Failing { reason, message } => {
                tracing::warn!(queue = %self.queue, reason, %message, "event queue cannot be polled");
            }
        }
        self.tell_users();
        *last = Some(outcome);
    }

    /// Whether the queue can be relied on to announce changes: a gauge, and on every change a
    /// log line and a reconcile of the objects naming the queue (their `EventFeedReady` and the
    /// cadence of their drift-only reads follow it).
    fn report_health(&self, was_healthy: &mut Option<bool>) {
        let health = self
            .consumer
            .inventory
            .sqs(&self.queue.region)
            .feed_health(&self.queue.queue);
        let healthy = health.is_healthy();
        self.consumer.metrics.healthy(&self.queue, healthy);
        if *was_healthy == Some(healthy) {
            return;
        }
        if healthy {
            tracing::info!(queue = %self.queue, "event feed healthy: drift-only reads move to the slow backstop cadence");
        } else if was_healthy.is_some() {
            tracing::warn!(queue = %self.queue, ?health, "event feed unhealthy: polling at the usual cadence");
        }
        if was_healthy.is_some() {
            self.tell_users();
        }
        *was_healthy = Some(healthy);
    }

    fn tell_users(&self) {
        for target in self.demand.borrow().users(&self.queue) {
            self.consumer.triggers.send(target);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_polls_back_off_to_a_minute() {
        let waits: Vec<u64> = (1..=8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(u32::MAX), POLL_BACKOFF_MAX);
    }
}
