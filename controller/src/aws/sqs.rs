//! SQS: the queues of event-source mappings, and their backlog for post-deploy validation.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::QueueAttributeName;

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
