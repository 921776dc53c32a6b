//! SQS: the queues of event-source mappings, their backlog for post-deploy validation, and the
//! long-poll receive and batch delete of the AWS event feed (`crate::feed`).

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};

use super::call::Caller;
use super::{AwsError, Service};

/// A queue's identity and backlog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueInfo {
    pub url: String,
    pub arn: String,
    /// `ApproximateNumberOfMessages`: waiting to be received.
    pub visible: u64,
    /// `ApproximateNumberOfMessagesNotVisible`: received, not yet deleted (in flight).
    pub in_flight: u64,
}

/// A queue as a spec names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueRef<'a> {
    Name(&'a str),
    /// `arn:aws:sqs:<region>:<account>:<name>`.
    Arn {
        name: &'a str,
        account: &'a str,
    },
}

impl<'a> QueueRef<'a> {
    /// A queue given as a name or an ARN.
    pub fn parse(name_or_arn: &'a str) -> Self {
        let parts: Vec<&str> = name_or_arn.split(':').collect();
        match parts.as_slice() {
            ["arn", _partition, "sqs", _region, account, name] => Self::Arn { name, account },
            _ => Self::Name(name_or_arn),
        }
    }

    pub fn name(&self) -> &'a str {
        match self {
            Self::Name(name) | Self::Arn { name, .. } => name,
        }
    }
}

/// How long one `ReceiveMessage` waits for a message: SQS's maximum. A long poll costs one call
/// per 20 s on an idle queue (about 130,000 calls a month per queue, well inside the free tier)
/// and returns as soon as a message arrives, so waiting longer costs nothing in latency.
pub const LONG_POLL_WAIT: Duration = Duration::from_secs(20);

/// How many messages one `ReceiveMessage` (and one `DeleteMessageBatch`) takes: SQS's maximum.
pub const MAX_MESSAGES_PER_CALL: usize = 10;

/// How much longer than its wait one `ReceiveMessage` attempt may take (connect, answer).
const RECEIVE_ATTEMPT_MARGIN: Duration = Duration::from_secs(10);

/// One message received from a queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    /// What deleting (or keeping) this delivery of the message takes.
    pub receipt_handle: String,
    pub body: String,
    /// `ApproximateReceiveCount`: how many times it was delivered, this time included (1 the
    /// first time); `None` when SQS did not say.
    pub receive_count: Option<u32>,
}

/// A message `DeleteMessageBatch` did not delete, with SQS's reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteFailure {
    pub message_id: String,
    pub code: String,
    pub message: Option<String>,
}

/// The SQS adapter of one region.
#[derive(Clone, Debug)]
pub struct Sqs {
    client: Client,
    caller: Caller,
}

impl Sqs {
    pub(crate) fn new(client: Client, caller: Caller) -> Self {
        Self { client, caller }
    }

    /// The queue's URL; `None` when it does not exist.
    pub async fn queue_url(&self, queue: &QueueRef<'_>) -> Result<Option<String>, AwsError> {
        let mut request = self.client.get_queue_url().queue_name(queue.name());
        if let QueueRef::Arn { account, .. } = queue {
            request = request.queue_owner_aws_account_id(*account);
        }
        let output = self
            .caller
            .call_optional("GetQueueUrl", Some(queue.name()), request.send())
            .await?;
        output
            .map(|o| {
                super::required(
                    o.queue_url(),
                    Service::Sqs,
                    "GetQueueUrl",
                    Some(queue.name()),
                    "QueueUrl",
                )
                .map(str::to_owned)
            })
            .transpose()
    }

    /// ARN and backlog of the queue at `url`; `None` when it no longer exists.
    pub async fn queue_attributes(&self, url: &str) -> Result<Option<QueueInfo>, AwsError> {
        let request = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send();
        let Some(output) = self
            .caller
            .call_optional("GetQueueAttributes", Some(url), request)
            .await?
        else {
            return Ok(None);
        };
        let attribute = |name: &QueueAttributeName| {
            output
                .attributes()
                .and_then(|a| a.get(name))
                .map(String::as_str)
        };
        let count = |name: &QueueAttributeName| {
            attribute(name)
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(Some(QueueInfo {
            url: url.to_owned(),
            arn: super::required(
                attribute(&QueueAttributeName::QueueArn),
                Service::Sqs,
                "GetQueueAttributes",
                Some(url),
                "QueueArn",
            )?
            .to_owned(),
            visible: count(&QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: count(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        }))
    }

    /// Waits up to `wait` (at most [`LONG_POLL_WAIT`]) for up to [`MAX_MESSAGES_PER_CALL`]
    /// messages of the queue at `url`. An empty answer means none arrived in time. The
    /// messages stay invisible to other receivers for the queue's visibility timeout and come
    /// back unless deleted: that is how a message whose handling failed is redelivered.
    pub async fn receive_messages(
        &self,
        url: &str,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, AwsError> {
        let wait = wait.min(LONG_POLL_WAIT);
        let wait_seconds = i32::try_from(wait.as_secs()).unwrap_or(20);
        // The wait is part of the call: its attempt may take that long plus the usual, whatever
        // the attempt timeout of the other calls (`--aws-attempt-timeout`) is.
        let timeouts = aws_smithy_types::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(wait + RECEIVE_ATTEMPT_MARGIN)
            .build();
        let request = self
            .client
            .receive_message()
            .queue_url(url)
            .wait_time_seconds(wait_seconds)
            .max_number_of_messages(i32::try_from(MAX_MESSAGES_PER_CALL).unwrap_or(10))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .customize()
            .config_override(aws_sdk_sqs::config::Builder::default().timeout_config(timeouts))
            .send();
        let output = self
            .caller
            .call("ReceiveMessage", Some(url), request)
            .await?;
        output
            .messages()
            .iter()
            .map(|message| {
                let field = |value: Option<&str>, name: &str| {
                    super::required(value, Service::Sqs, "ReceiveMessage", Some(url), name)
                        .map(str::to_owned)
                };
                Ok(ReceivedMessage {
                    message_id: field(message.message_id(), "MessageId")?,
                    receipt_handle: field(message.receipt_handle(), "ReceiptHandle")?,
                    // An empty body is a message too (an unparsable one).
                    body: message.body().unwrap_or_default().to_owned(),
                    receive_count: message
                        .attributes()
                        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                        .and_then(|count| count.parse().ok()),
                })
            })
            .collect()
    }

    /// Deletes `messages` (at most [`MAX_MESSAGES_PER_CALL`]; more are an invalid request) of
    /// the queue at `url` in one `DeleteMessageBatch`; returns those SQS refused (an expired
    /// receipt handle, ...), which will be delivered again.
    pub async fn delete_messages(
        &self,
        url: &str,
        messages: &[&ReceivedMessage],
    ) -> Result<Vec<DeleteFailure>, AwsError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        // Batch entry ids need only be unique within the call: the index is, and maps back.
        let entries = messages
            .iter()
            .enumerate()
            .map(|(index, message)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(&message.receipt_handle)
                    .build()
                    .map_err(|e| {
                        AwsError::invalid_request(
                            Service::Sqs,
                            "DeleteMessageBatch",
                            Some(url.to_owned()),
                            e.to_string(),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let request = self
            .client
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send();
        let output = self
            .caller
            .call("DeleteMessageBatch", Some(url), request)
            .await?;
        Ok(output
            .failed()
            .iter()
            .map(|failed| DeleteFailure {
                message_id: failed
                    .id()
                    .parse::<usize>()
                    .ok()
                    .and_then(|index| messages.get(index))
                    .map_or_else(|| failed.id().to_owned(), |m| m.message_id.clone()),
                code: failed.code().to_owned(),
                message: failed.message().map(str::to_owned),
            })
            .collect())
    }

    /// Resolves a queue given as a name or an ARN to its URL, ARN and backlog (two calls);
    /// `None` when it does not exist.
    pub async fn resolve(&self, name_or_arn: &str) -> Result<Option<QueueInfo>, AwsError> {
        let queue = QueueRef::parse(name_or_arn);
        match self.queue_url(&queue).await? {
            Some(url) => self.queue_attributes(&url).await,
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_are_named_by_name_or_arn() {
        assert_eq!(QueueRef::parse("orders"), QueueRef::Name("orders"));
        let arn = QueueRef::parse("arn:aws:sqs:eu-west-1:123456789012:orders");
        assert_eq!(
            arn,
            QueueRef::Arn {
                name: "orders",
                account: "123456789012"
            }
        );
        assert_eq!(arn.name(), "orders");
        // Not an SQS ARN: taken as a name (GetQueueUrl will say it does not exist).
        assert_eq!(
            QueueRef::parse("arn:aws:sns:eu-west-1:1:topic").name(),
            "arn:aws:sns:eu-west-1:1:topic"
        );
    }
}
