//! STS: who Stagehand is, so the event feed can tell its own CloudTrail calls from everyone
//! else's (`crate::feed::change`). `GetCallerIdentity` needs no IAM permission (an explicit
//! deny cannot block it).

use aws_sdk_sts::Client;

use super::call::Caller;
use super::{AwsError, Service};

/// The STS adapter of one region.
#[derive(Clone, Debug)]
pub struct Sts {
    client: Client,
    caller: Caller,
}

impl Sts {
    pub(super) fn new(client: Client, caller: Caller) -> Self {
        Self { client, caller }
    }

    /// The ARN of the credentials in use: a user, or an assumed-role session
    /// (`arn:aws:sts::<account>:assumed-role/<role>/<session>`, IRSA and Pod Identity).
    pub async fn caller_arn(&self) -> Result<String, AwsError> {
        let output = self
            .caller
            .call(
                "GetCallerIdentity",
                None,
                self.client.get_caller_identity().send(),
            )
            .await?;
        super::required(output.arn(), Service::Sts, "GetCallerIdentity", None, "Arn")
            .map(str::to_owned)
    }
}
