//! Lambda: functions, code, configuration, layers, event-source mappings, versions, aliases.
//!
//! Listing is the cheap way to observe: one `ListFunctions` page carries 50 functions with their
//! code hash, layers and environment, against Lambda's 15 calls/s for the whole account.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_lambda::Client;
use aws_sdk_lambda::types::{
    AliasRoutingConfiguration, Environment, EventSourceMappingConfiguration, FunctionConfiguration,
    LastUpdateStatus, Runtime, ScalingConfig,
};

pub use self::types::*;
use super::call::Caller;
use super::{AwsError, Service};

mod types;

/// Default `MaxItems` of list calls (Lambda's maximum for ListFunctions is 50).
const PAGE_SIZE: i32 = 50;

impl FunctionInfo {
    fn from_sdk(f: &FunctionConfiguration) -> Self {
        Self {
            name: f.function_name().unwrap_or_default().to_owned(),
            arn: f.function_arn().unwrap_or_default().to_owned(),
            code_sha256: f.code_sha256().map(str::to_owned),
            last_update_status: f.last_update_status().map(|s| s.as_str().to_owned()),
            last_update_status_reason: f.last_update_status_reason().map(str::to_owned),
            state: f.state().map(|s| s.as_str().to_owned()),
            package_type: f.package_type().map(|p| p.as_str().to_owned()),
            layers: f
                .layers()
                .iter()
                .filter_map(|l| l.arn().map(str::to_owned))
                .collect(),
            environment: f
                .environment()
                .and_then(|e| e.variables())
                .map(|vars| sorted(vars.clone()))
                .unwrap_or_default(),
            runtime: f.runtime().map(|r| r.as_str().to_owned()),
            handler: f.handler().map(str::to_owned),
            memory_mb: f.memory_size(),
            timeout_seconds: f.timeout(),
            revision_id: f.revision_id().map(str::to_owned),
            version: f.version().map(str::to_owned),
            description: f.description().map(str::to_owned),
        }
    }
}

impl EventSourceMapping {
    fn from_sdk(m: &EventSourceMappingConfiguration) -> Self {
        Self {
            uuid: m.uuid().unwrap_or_default().to_owned(),
            event_source_arn: m.event_source_arn().map(str::to_owned),
            function_arn: m.function_arn().map(str::to_owned),
            batch_size: m.batch_size(),
            batching_window_seconds: m.maximum_batching_window_in_seconds(),
            state: m.state().map(str::to_owned),
            max_concurrency: m
                .scaling_config()
                .and_then(ScalingConfig::maximum_concurrency),
        }
    }
}

fn sorted(map: HashMap<String, String>) -> BTreeMap<String, String> {
    map.into_iter().collect()
}

/// The Lambda adapter of one region.
#[derive(Clone, Debug)]
pub struct Lambda {
    client: Client,
    caller: Caller,
    page_size: i32,
}

impl Lambda {
    pub(crate) fn new(client: Client, caller: Caller) -> Self {
        Self {
            client,
            caller,
            page_size: PAGE_SIZE,
        }
    }

    /// Smaller pages (tests of paging).
    #[must_use]
    pub fn with_page_size(mut self, page_size: i32) -> Self {
        self.page_size = page_size.clamp(1, PAGE_SIZE);
        self
    }

    /// Every function of the region (all pages).
    pub async fn list_functions(&self) -> Result<Vec<FunctionInfo>, AwsError> {
        let mut functions = Vec::new();
        self.list_functions_into(&mut functions).await?;
        Ok(functions)
    }

    /// Every function of the region (all pages), each page added to `functions` as it arrives:
    /// the region's listing is built in its own shape, never held whole as `FunctionInfo`s too.
    pub async fn list_functions_into(
        &self,
        functions: &mut impl Extend<FunctionInfo>,
    ) -> Result<(), AwsError> {
        let mut marker: Option<String> = None;
        loop {
            let request = self
                .client
                .list_functions()
                .max_items(self.page_size)
                .set_marker(marker.take())
                .send();
            let page = self.caller.call("ListFunctions", None, request).await?;
            functions.extend(page.functions().iter().map(FunctionInfo::from_sdk));
            match page.next_marker() {
                Some(next) if !next.is_empty() => marker = Some(next.to_owned()),
                _ => return Ok(()),
            }
        }
    }

    /// One function with image URIs and tags; `None` when it does not exist.
    pub async fn get_function(&self, name: &str) -> Result<Option<FunctionDetails>, AwsError> {
        let request = self.client.get_function().function_name(name).send();
        let Some(output) = self
            .caller
            .call_optional("GetFunction", Some(name), request)
            .await?
        else {
            return Ok(None);
        };
        let configuration = super::required(
            output.configuration(),
            Service::Lambda,
            "GetFunction",
            Some(name),
            "Configuration",
        )?;
        Ok(Some(FunctionDetails {
            function: FunctionInfo::from_sdk(configuration),
            image_uri: output.code().and_then(|c| c.image_uri()).map(str::to_owned),
            resolved_image_uri: output
                .code()
                .and_then(|c| c.resolved_image_uri())
                .map(str::to_owned),
            tags: output.tags().cloned().map(sorted).unwrap_or_default(),
        }))
    }

    /// Tags of a function (by ARN).
    pub async fn list_tags(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let request = self.client.list_tags().resource(arn).send();
        let output = self.caller.call("ListTags", Some(arn), request).await?;
        Ok(output.tags().cloned().map(sorted).unwrap_or_default())
    }

    /// Adds or overwrites tags on a function (by ARN).
    pub async fn tag_resource(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let request = self
            .client
            .tag_resource()
            .resource(arn)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send();
        self.caller.call("TagResource", Some(arn), request).await?;
        Ok(())
    }

    /// Points the function at new code (S3 object or image); returns the function as updated
    /// (its `code_sha256` is the new hash).
    pub async fn update_function_code(
        &self,
        name: &str,
        code: &CodeSource,
        revision_id: Option<&str>,
    ) -> Result<FunctionInfo, AwsError> {
        let request = self
            .client
            .update_function_code()
            .function_name(name)
            .set_revision_id(revision_id.map(str::to_owned));
        let request = match code {
            CodeSource::S3 {
                bucket,
                key,
                version_id,
            } => request
                .s3_bucket(bucket)
                .s3_key(key)
                .set_s3_object_version(version_id.clone()),
            CodeSource::Image { uri } => request.image_uri(uri),
        };
        let output = self
            .caller
            .call("UpdateFunctionCode", Some(name), request.send())
            .await?;
        Ok(function_from_update(
            output.function_name(),
            output.function_arn(),
            output.code_sha256(),
            output.last_update_status().map(LastUpdateStatus::as_str),
            output.revision_id(),
        ))
    }

    /// Changes only the fields given in `update`.
    pub async fn update_function_configuration(
        &self,
        name: &str,
        update: &ConfigUpdate,
    ) -> Result<FunctionInfo, AwsError> {
        let request = self
            .client
            .update_function_configuration()
            .function_name(name)
            .set_layers(update.layers.clone())
            .set_environment(update.environment.as_ref().map(|vars| {
                Environment::builder()
                    .set_variables(Some(vars.clone().into_iter().collect()))
                    .build()
            }))
            .set_runtime(update.runtime.as_deref().map(Runtime::from))
            .set_handler(update.handler.clone())
            .set_memory_size(update.memory_mb)
            .set_timeout(update.timeout_seconds)
            .set_revision_id(update.revision_id.clone())
            .send();
        let output = self
            .caller
            .call("UpdateFunctionConfiguration", Some(name), request)
            .await?;
        Ok(function_from_update(
            output.function_name(),
            output.function_arn(),
            output.code_sha256(),
            output.last_update_status().map(LastUpdateStatus::as_str),
            output.revision_id(),
        ))
    }

    /// The newest version of a layer (by name or ARN); `None` when it has none.
    pub async fn latest_layer_version(
        &self,
        layer: &str,
    ) -> Result<Option<LayerVersion>, AwsError> {
        let mut latest: Option<LayerVersion> = None;
        let mut marker: Option<String> = None;
        loop {
            let request = self
                .client
                .list_layer_versions()
                .layer_name(layer)
                .set_marker(marker.take())
                .send();
            let Some(page) = self
                .caller
                .call_optional("ListLayerVersions", Some(layer), request)
                .await?
            else {
                return Ok(None);
            };
            for item in page.layer_versions() {
                if let Some(arn) = item.layer_version_arn()
                    && latest.as_ref().is_none_or(|l| item.version() > l.version)
                {
                    latest = Some(LayerVersion {
                        arn: arn.to_owned(),
                        version: item.version(),
                    });
                }
            }
            match page.next_marker() {
                Some(next) if !next.is_empty() => marker = Some(next.to_owned()),
                _ => return Ok(latest),
            }
        }
    }

    /// The mappings of a function, optionally only those from `event_source_arn` (filtered
    /// here as well: emulators ignore the filter).
    pub async fn list_event_source_mappings(
        &self,
        function: &str,
        event_source_arn: Option<&str>,
    ) -> Result<Vec<EventSourceMapping>, AwsError> {
        let mut mappings = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let request = self
                .client
                .list_event_source_mappings()
                .function_name(function)
                .set_event_source_arn(event_source_arn.map(str::to_owned))
                .set_marker(marker.take())
                .send();
            let page = self
                .caller
                .call("ListEventSourceMappings", Some(function), request)
                .await?;
            mappings.extend(
                page.event_source_mappings()
                    .iter()
                    .map(EventSourceMapping::from_sdk)
                    .filter(|m| {
                        event_source_arn
                            .is_none_or(|arn| m.event_source_arn.as_deref() == Some(arn))
                    }),
            );
            match page.next_marker() {
                Some(next) if !next.is_empty() => marker = Some(next.to_owned()),
                _ => return Ok(mappings),
            }
        }
    }

    /// Every mapping of the region (all pages, 100 per page): one listing serves every stage.
    pub async fn list_all_event_source_mappings(
        &self,
    ) -> Result<Vec<EventSourceMapping>, AwsError> {
        let mut mappings = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let request = self
                .client
                .list_event_source_mappings()
                .max_items(100)
                .set_marker(marker.take())
                .send();
            let page = self
                .caller
                .call("ListEventSourceMappings", None, request)
                .await?;
            mappings.extend(
                page.event_source_mappings()
                    .iter()
                    .map(EventSourceMapping::from_sdk),
            );
            match page.next_marker() {
                Some(next) if !next.is_empty() => marker = Some(next.to_owned()),
                _ => return Ok(mappings),
            }
        }
    }

    /// The mapping from `event_source_arn` to `function`, if one exists. When duplicates exist
    /// (made by hand or by a tool), the oldest-looking one by UUID order is returned, so the
    /// answer is stable across reconciles.
    pub async fn find_event_source_mapping(
        &self,
        function: &str,
        event_source_arn: &str,
    ) -> Result<Option<EventSourceMapping>, AwsError> {
        let mut found = self
            .list_event_source_mappings(function, Some(event_source_arn))
            .await?;
        found.sort_by(|a, b| a.uuid.cmp(&b.uuid));
        Ok(found.into_iter().next())
    }

    /// Creates a mapping with `tags` (none when empty). Callers look first
    /// ([`Lambda::find_event_source_mapping`]): AWS rejects a duplicate, emulators silently
    /// create one.
    pub async fn create_event_source_mapping(
        &self,
        function: &str,
        event_source_arn: &str,
        settings: &MappingSettings,
        tags: &BTreeMap<String, String>,
    ) -> Result<EventSourceMapping, AwsError> {
        let request = self
            .client
            .create_event_source_mapping()
            .function_name(function)
            .event_source_arn(event_source_arn)
            .set_batch_size(settings.batch_size)
            .set_maximum_batching_window_in_seconds(settings.batching_window_seconds)
            .set_enabled(settings.enabled)
            .set_scaling_config(scaling(settings.max_concurrency))
            .set_tags((!tags.is_empty()).then(|| tags.clone().into_iter().collect()))
            .send();
        let output = self
            .caller
            .call("CreateEventSourceMapping", Some(function), request)
            .await?;
        Ok(EventSourceMapping {
            uuid: super::required(
                output.uuid(),
                Service::Lambda,
                "CreateEventSourceMapping",
                Some(function),
                "UUID",
            )?
            .to_owned(),
            event_source_arn: output.event_source_arn().map(str::to_owned),
            function_arn: output.function_arn().map(str::to_owned),
            batch_size: output.batch_size(),
            batching_window_seconds: output.maximum_batching_window_in_seconds(),
            state: output.state().map(str::to_owned),
            max_concurrency: output
                .scaling_config()
                .and_then(ScalingConfig::maximum_concurrency),
        })
    }

    /// Changes a mapping in place (its UUID stays).
    pub async fn update_event_source_mapping(
        &self,
        uuid: &str,
        settings: &MappingSettings,
    ) -> Result<EventSourceMapping, AwsError> {
        let request = self
            .client
            .update_event_source_mapping()
            .uuid(uuid)
            .set_batch_size(settings.batch_size)
            .set_maximum_batching_window_in_seconds(settings.batching_window_seconds)
            .set_enabled(settings.enabled)
            .set_scaling_config(scaling(settings.max_concurrency))
            .send();
        let output = self
            .caller
            .call("UpdateEventSourceMapping", Some(uuid), request)
            .await?;
        Ok(EventSourceMapping {
            uuid: output.uuid().unwrap_or(uuid).to_owned(),
            event_source_arn: output.event_source_arn().map(str::to_owned),
            function_arn: output.function_arn().map(str::to_owned),
            batch_size: output.batch_size(),
            batching_window_seconds: output.maximum_batching_window_in_seconds(),
            state: output.state().map(str::to_owned),
            max_concurrency: output
                .scaling_config()
                .and_then(ScalingConfig::maximum_concurrency),
        })
    }

    /// Deletes a mapping; an already deleted one is not an error.
    pub async fn delete_event_source_mapping(&self, uuid: &str) -> Result<(), AwsError> {
        let request = self.client.delete_event_source_mapping().uuid(uuid).send();
        self.caller
            .call_optional("DeleteEventSourceMapping", Some(uuid), request)
            .await?;
        Ok(())
    }

    /// Publishes `$LATEST` as a version, only if its code still has `expected_code_sha256`
    /// (Lambda refuses otherwise, so a version never holds code we did not check).
    pub async fn publish_version(
        &self,
        function: &str,
        expected_code_sha256: Option<&str>,
        description: Option<&str>,
    ) -> Result<PublishedVersion, AwsError> {
        let request = self
            .client
            .publish_version()
            .function_name(function)
            .set_code_sha256(expected_code_sha256.map(str::to_owned))
            .set_description(description.map(str::to_owned))
            .send();
        let output = self
            .caller
            .call("PublishVersion", Some(function), request)
            .await?;
        Ok(PublishedVersion {
            version: super::required(
                output.version(),
                Service::Lambda,
                "PublishVersion",
                Some(function),
                "Version",
            )?
            .to_owned(),
            arn: output.function_arn().unwrap_or_default().to_owned(),
            code_sha256: output.code_sha256().map(str::to_owned),
            description: output.description().map(str::to_owned),
        })
    }

    /// Deletes one published version (`DeleteFunction` with the version as qualifier).
    /// Lambda refuses (`ResourceConflictException`) while an alias or a mapping uses it.
    pub async fn delete_version(&self, function: &str, version: &str) -> Result<(), AwsError> {
        let request = self
            .client
            .delete_function()
            .function_name(function)
            .qualifier(version)
            .send();
        self.caller
            .call_optional("DeleteFunction", Some(function), request)
            .await?;
        Ok(())
    }

    /// Every version of a function (`$LATEST` included), all pages.
    pub async fn list_versions(&self, function: &str) -> Result<Vec<FunctionInfo>, AwsError> {
        let mut versions = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let request = self
                .client
                .list_versions_by_function()
                .function_name(function)
                .max_items(self.page_size)
                .set_marker(marker.take())
                .send();
            let page = self
                .caller
                .call("ListVersionsByFunction", Some(function), request)
                .await?;
            versions.extend(page.versions().iter().map(FunctionInfo::from_sdk));
            match page.next_marker() {
                Some(next) if !next.is_empty() => marker = Some(next.to_owned()),
                _ => return Ok(versions),
            }
        }
    }

    /// An alias; `None` when it does not exist.
    pub async fn get_alias(&self, function: &str, name: &str) -> Result<Option<Alias>, AwsError> {
        let request = self
            .client
            .get_alias()
            .function_name(function)
            .name(name)
            .send();
        let output = self
            .caller
            .call_optional("GetAlias", Some(function), request)
            .await?;
        Ok(output.map(|o| {
            alias(
                o.name(),
                o.alias_arn(),
                o.function_version(),
                o.routing_config(),
                o.revision_id(),
            )
        }))
    }

    pub async fn create_alias(
        &self,
        function: &str,
        name: &str,
        target: &AliasTarget,
    ) -> Result<Alias, AwsError> {
        let request = self
            .client
            .create_alias()
            .function_name(function)
            .name(name)
            .function_version(&target.function_version)
            .routing_config(routing(&target.routing_weights))
            .send();
        let o = self
            .caller
            .call("CreateAlias", Some(function), request)
            .await?;
        Ok(alias(
            o.name(),
            o.alias_arn(),
            o.function_version(),
            o.routing_config(),
            o.revision_id(),
        ))
    }

    /// Points an alias at `target`. With `revision_id`, fails with a conflict when the alias
    /// changed since it was read.
    pub async fn update_alias(
        &self,
        function: &str,
        name: &str,
        target: &AliasTarget,
        revision_id: Option<&str>,
    ) -> Result<Alias, AwsError> {
        let request = self
            .client
            .update_alias()
            .function_name(function)
            .name(name)
            .function_version(&target.function_version)
            .routing_config(routing(&target.routing_weights))
            .set_revision_id(revision_id.map(str::to_owned))
            .send();
        let o = self
            .caller
            .call("UpdateAlias", Some(function), request)
            .await?;
        Ok(alias(
            o.name(),
            o.alias_arn(),
            o.function_version(),
            o.routing_config(),
            o.revision_id(),
        ))
    }
}

fn scaling(max_concurrency: Option<i32>) -> Option<ScalingConfig> {
    max_concurrency.map(|n| ScalingConfig::builder().maximum_concurrency(n).build())
}

fn routing(weights: &BTreeMap<String, f64>) -> AliasRoutingConfiguration {
    // An empty map is sent on purpose: it removes an existing canary.
    AliasRoutingConfiguration::builder()
        .set_additional_version_weights(Some(
            weights.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        ))
        .build()
}

fn alias(
    name: Option<&str>,
    arn: Option<&str>,
    function_version: Option<&str>,
    routing: Option<&AliasRoutingConfiguration>,
    revision_id: Option<&str>,
) -> Alias {
    Alias {
        name: name.unwrap_or_default().to_owned(),
        arn: arn.unwrap_or_default().to_owned(),
        function_version: function_version.unwrap_or_default().to_owned(),
        routing_weights: routing
            .and_then(AliasRoutingConfiguration::additional_version_weights)
            .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default(),
        revision_id: revision_id.map(str::to_owned),
    }
}

/// The few fields update responses carry that callers need right away.
fn function_from_update(
    name: Option<&str>,
    arn: Option<&str>,
    code_sha256: Option<&str>,
    last_update_status: Option<&str>,
    revision_id: Option<&str>,
) -> FunctionInfo {
    FunctionInfo {
        name: name.unwrap_or_default().to_owned(),
        arn: arn.unwrap_or_default().to_owned(),
        code_sha256: code_sha256.map(str::to_owned),
        last_update_status: last_update_status.map(str::to_owned),
        revision_id: revision_id.map(str::to_owned),
        ..FunctionInfo::default()
    }
}
