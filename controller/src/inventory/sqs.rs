//! One region's SQS queue identities: name (or ARN) → URL and ARN. A queue's backlog is never
//! cached here: validation measures it on every reconcile. Also how the event feed's poll of
//! each queue last went ([`QueueFeed`]), for the objects naming the queue to report.

use std::time::Duration;

use super::IDENTITY_RECHECK;
use super::cached::{Cached, NEVER};
use crate::aws::AwsError;
use crate::aws::sqs::{QueueRef, Sqs};

/// How the event feed's last poll of a queue went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueFeed {
    /// The last `ReceiveMessage` answered.
    Polling,
    /// It did not: `reason` is a CamelCase word (`QueueNotFound`, `AccessDenied`,
    /// `PollFailed`), `message` says what to fix.
    Failing { reason: String, message: String },
}

/// How long the controller-wide event queue may stay silent and still count as healthy. The
/// template's heartbeat rule sends an event every 5 minutes: three missed beats (a rule
/// disabled, a queue policy broken, EventBridge not delivering) and polling takes over again.
pub const FEED_SILENCE_LIMIT: Duration = Duration::from_secs(15 * 60);

/// Whether the controller-wide event queue (`--event-queue`) can be relied on to announce
/// changes, as the objects relying on it report it (`EventFeedReady`) and as their drift-only
/// reads decide their cadence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum EventFeed {
    /// No `--event-queue`: polling as always.
    #[default]
    NotConfigured,
    /// Configured, not polled yet (the feed starts a poller when the first object relies on it).
    Starting,
    /// Polls answer, and a message (an event or the heartbeat) arrived within
    /// [`FEED_SILENCE_LIMIT`] of now or of the first answer.
    Healthy,
    /// Polls answer but nothing arrived for [`FEED_SILENCE_LIMIT`]: events are not delivered.
    Silent,
    /// Polls fail.
    Failing { reason: String, message: String },
}

impl EventFeed {
    /// Whether changes are announced: drift-only reads may slow down.
    pub fn is_healthy(&self) -> bool {
        *self == Self::Healthy
    }

    /// How old a region-wide listing (functions, event-source mappings, layer versions) may be
    /// while the feed stands like this: `backstop` (`--feed-backstop-max-age`, never less than
    /// `max_age`) while it is healthy, since CloudTrail then announces every write the listing
    /// would find (a new function, a mapping, a layer version) and the consumer drops or
    /// corrects the entry it concerns; `max_age` (`--inventory-max-age`) in every other state,
    /// so a listing older than that is read again at its next use the moment the feed falters.
    pub fn listing_age(&self, max_age: Duration, backstop: Duration) -> Duration {
        if self.is_healthy() {
            backstop.max(max_age)
        } else {
            max_age
        }
    }
}

/// The region of the controller-wide queue for objects of `region`: an ARN's own region, a
/// name's in every region where objects rely on it (one queue per region, as EventBridge
/// delivers each region's events there).
pub fn event_queue_region<'a>(queue: &'a str, region: &'a str) -> &'a str {
    let parts: Vec<&str> = queue.split(':').collect();
    match parts.as_slice() {
        ["arn", _partition, "sqs", arn_region, _account, _name] if !arn_region.is_empty() => {
            arn_region
        }
        _ => region,
    }
}

/// The SQS inventory of one region.
#[derive(Debug)]
pub struct SqsInventory {
    sqs: Sqs,
    /// By the name or ARN the spec uses: (URL, ARN), or `None` for a queue that does not exist.
    queues: Cached<String, Option<(String, String)>>,
    /// By the name or ARN the spec uses: the event feed's last poll, kept until the next one
    /// (the poller is the only writer and knows when it stops).
    feeds: Cached<String, QueueFeed>,
    /// By the name or ARN the spec uses: when a message last arrived (or polls first answered),
    /// trusted for [`FEED_SILENCE_LIMIT`].
    heard: Cached<String, ()>,
}

impl SqsInventory {
    /// A queue that exists is trusted for [`IDENTITY_RECHECK`] (its URL and ARN follow from its
    /// name); one that does not may be created any time: looked up again after `max_age`.
    pub fn new(sqs: Sqs, max_age: Duration) -> Self {
        Self {
            sqs,
            queues: Cached::new(max_age).with_ttl_per_value(
                |found: &Option<(String, String)>, max_age| {
                    if found.is_some() {
                        IDENTITY_RECHECK
                    } else {
                        max_age
                    }
                },
            ),
            feeds: Cached::new(NEVER),
            heard: Cached::new(FEED_SILENCE_LIMIT),
        }
    }

    /// Drops the queue lookups nobody read for `unused` (see [`Cached::sweep`]); the feeds'
    /// polls are the pollers' to keep.
    pub fn sweep(&self, unused: Duration) -> usize {
        self.queues.sweep(unused)
    }

    /// Messages arrived on `name_or_arn` (or its polls started answering): proof of life.
    pub fn feed_heard(&self, name_or_arn: &str) {
        self.heard.insert(name_or_arn.to_owned(), ());
    }

    /// How the event queue `name_or_arn` stands as a feed to rely on.
    pub fn feed_health(&self, name_or_arn: &str) -> EventFeed {
        match self.feed(name_or_arn) {
            None => EventFeed::Starting,
            Some(QueueFeed::Failing { reason, message }) => EventFeed::Failing { reason, message },
            Some(QueueFeed::Polling) if self.heard.get(&name_or_arn.to_owned()).is_some() => {
                EventFeed::Healthy
            }
            Some(QueueFeed::Polling) => EventFeed::Silent,
        }
    }

    /// The event feed polled `name_or_arn` with this outcome.
    pub fn feed_polled(&self, name_or_arn: &str, outcome: QueueFeed) {
        self.feeds.insert(name_or_arn.to_owned(), outcome);
    }

    /// The event feed stopped polling `name_or_arn` (nothing names it any more).
    pub fn feed_stopped(&self, name_or_arn: &str) {
        self.feeds.invalidate(&name_or_arn.to_owned());
        self.heard.invalidate(&name_or_arn.to_owned());
    }

    /// How the event feed's last poll of `name_or_arn` went; `None` before the first one.
    pub fn feed(&self, name_or_arn: &str) -> Option<QueueFeed> {
        self.feeds.get(&name_or_arn.to_owned())
    }

    /// A queue's URL and ARN (`GetQueueUrl` + `GetQueueAttributes` when not trusted).
    pub async fn queue(&self, name_or_arn: &str) -> Result<Option<(String, String)>, AwsError> {
        self.queues
            .get_or_load(&name_or_arn.to_owned(), || async {
                let Some(url) = self.sqs.queue_url(&QueueRef::parse(name_or_arn)).await? else {
                    return Ok(None);
                };
                Ok(self
                    .sqs
                    .queue_attributes(&url)
                    .await?
                    .map(|info| (info.url, info.arn)))
            })
            .await
    }

    /// The queue no longer answers at its cached URL: look it up again next time.
    pub fn queue_gone(&self, name_or_arn: &str) {
        self.queues.invalidate(&name_or_arn.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::tests::provider;

    #[test]
    fn a_queue_arn_names_its_region_a_name_serves_every_region() {
        assert_eq!(
            event_queue_region("arn:aws:sqs:eu-west-1:123456789012:events", "us-east-1"),
            "eu-west-1"
        );
        assert_eq!(event_queue_region("events", "us-east-1"), "us-east-1");
    }

    #[test]
    fn listings_stretch_only_while_the_feed_is_healthy() {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        let (max_age, backstop) = (Duration::from_secs(30), minutes(10));
        assert_eq!(EventFeed::Healthy.listing_age(max_age, backstop), backstop);
        let failing = EventFeed::Failing {
            reason: "QueueNotFound".into(),
            message: "m".into(),
        };
        for feed in [
            EventFeed::NotConfigured,
            EventFeed::Starting,
            EventFeed::Silent,
            failing,
        ] {
            assert_eq!(feed.listing_age(max_age, backstop), max_age, "{feed:?}");
        }
        // A backstop below the max age (0 turns the stretch off) never shortens it.
        assert_eq!(
            EventFeed::Healthy.listing_age(minutes(5), Duration::ZERO),
            minutes(5)
        );
        assert_eq!(
            EventFeed::Healthy.listing_age(minutes(5), minutes(2)),
            minutes(5)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_feed_is_healthy_while_polls_answer_and_messages_arrive() {
        let sqs = SqsInventory::new(provider().sqs("r"), Duration::from_secs(30));
        assert_eq!(sqs.feed_health("q"), EventFeed::Starting);
        sqs.feed_polled("q", QueueFeed::Polling);
        assert_eq!(sqs.feed_health("q"), EventFeed::Silent, "nothing heard yet");
        sqs.feed_heard("q");
        assert!(sqs.feed_health("q").is_healthy());
        tokio::time::advance(FEED_SILENCE_LIMIT).await;
        assert_eq!(sqs.feed_health("q"), EventFeed::Silent, "no heartbeat");
        sqs.feed_heard("q");
        assert!(sqs.feed_health("q").is_healthy());
        let failing = QueueFeed::Failing {
            reason: "AccessDenied".into(),
            message: "m".into(),
        };
        sqs.feed_polled("q", failing);
        assert!(matches!(sqs.feed_health("q"), EventFeed::Failing { .. }));
        sqs.feed_stopped("q");
        assert_eq!(sqs.feed_health("q"), EventFeed::Starting);
    }
}
