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

/// The SQS inventory of one region.
#[derive(Debug)]
pub struct SqsInventory {
    sqs: Sqs,
    /// By the name or ARN the spec uses: (URL, ARN), or `None` for a queue that does not exist.
    queues: Cached<String, Option<(String, String)>>,
    /// By the name or ARN the spec uses: the event feed's last poll, kept until the next one
    /// (the poller is the only writer and knows when it stops).
    feeds: Cached<String, QueueFeed>,
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
        }
    }

    /// The event feed polled `name_or_arn` with this outcome.
    pub fn feed_polled(&self, name_or_arn: &str, outcome: QueueFeed) {
        self.feeds.insert(name_or_arn.to_owned(), outcome);
    }

    /// The event feed stopped polling `name_or_arn` (nothing names it any more).
    pub fn feed_stopped(&self, name_or_arn: &str) {
        self.feeds.invalidate(&name_or_arn.to_owned());
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
