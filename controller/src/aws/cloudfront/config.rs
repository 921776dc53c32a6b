//! [`DistributionSettings`] to and from the SDK's `DistributionConfig`.
//!
//! An update starts from the configuration CloudFront returned and changes only the managed
//! fields, so whatever else is set on the distribution (certificates, logging, WAF, other
//! behaviours) survives.

use aws_sdk_cloudfront::types::{
    Aliases, AllowedMethods, CachedMethods, CookiePreference, CustomErrorResponse,
    CustomErrorResponses, DefaultCacheBehavior, DistributionConfig, ForwardedValues, ItemSelection,
    Method, Origin, Origins, PriceClass, S3OriginConfig, ViewerProtocolPolicy,
};
use aws_smithy_types::error::operation::BuildError;

use super::types::{CacheSettings, DistributionSettings, ErrorResponse, SiteOrigin};

/// A new configuration with exactly `settings`.
pub(super) fn new_config(
    settings: &DistributionSettings,
) -> Result<DistributionConfig, BuildError> {
    let mut config = DistributionConfig::builder()
        .caller_reference(&settings.caller_reference)
        .comment(&settings.comment)
        .enabled(settings.enabled)
        .build()?;
    apply(&mut config, settings)?;
    Ok(config)
}

/// Writes the managed settings into `config` (the caller reference never changes).
pub(super) fn apply(
    config: &mut DistributionConfig,
    settings: &DistributionSettings,
) -> Result<(), BuildError> {
    config.comment.clone_from(&settings.comment);
    config.enabled = settings.enabled;
    config.default_root_object = Some(settings.default_root_object.clone());
    config.price_class = Some(PriceClass::from(settings.price_class.as_str()));
    config.aliases = Some(
        Aliases::builder()
            .quantity(quantity(settings.aliases.len()))
            .set_items(Some(settings.aliases.clone()))
            .build()?,
    );
    apply_origin(config, &settings.origin)?;
    apply_default_behavior(config, settings)?;
    let responses = settings
        .error_responses
        .iter()
        .map(|r| {
            CustomErrorResponse::builder()
                .error_code(r.error_code)
                .set_response_page_path(r.response_page_path.clone())
                .set_response_code(r.response_code.clone())
                .set_error_caching_min_ttl(r.caching_min_ttl)
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    config.custom_error_responses = Some(
        CustomErrorResponses::builder()
            .quantity(quantity(responses.len()))
            .set_items(Some(responses))
            .build()?,
    );
    Ok(())
}

/// Replaces the origin with the same id (or adds it): an S3 origin read through OAC, so the
/// legacy origin access identity is empty.
fn apply_origin(config: &mut DistributionConfig, wanted: &SiteOrigin) -> Result<(), BuildError> {
    let origin = Origin::builder()
        .id(&wanted.id)
        .domain_name(&wanted.domain_name)
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .set_origin_access_control_id(wanted.origin_access_control_id.clone())
        .build()?;
    let mut items: Vec<Origin> = config
        .origins
        .as_ref()
        .map(|o| o.items().to_vec())
        .unwrap_or_default();
    match items.iter_mut().find(|o| o.id == wanted.id) {
        Some(existing) => {
            existing.domain_name = origin.domain_name;
            existing.s3_origin_config = origin.s3_origin_config;
            existing.custom_origin_config = None;
            existing.origin_access_control_id = origin.origin_access_control_id;
        }
        None => items.push(origin),
    }
    config.origins = Some(
        Origins::builder()
            .quantity(quantity(items.len()))
            .set_items(Some(items))
            .build()?,
    );
    Ok(())
}

// The legacy cache fields are deprecated in the SDK, but distributions made before cache
// policies carry them (and moto fills them in on every read): they are read, and cleared when
// a cache policy is set, since CloudFront refuses both at once.
#[allow(deprecated)]
fn apply_default_behavior(
    config: &mut DistributionConfig,
    settings: &DistributionSettings,
) -> Result<(), BuildError> {
    let mut behavior = match config.default_cache_behavior.take() {
        Some(existing) => existing,
        None => DefaultCacheBehavior::builder()
            .target_origin_id(&settings.origin.id)
            .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
            .allowed_methods(read_only_methods()?)
            .build()?,
    };
    behavior.target_origin_id.clone_from(&settings.origin.id);
    behavior.viewer_protocol_policy =
        ViewerProtocolPolicy::from(settings.viewer_protocol_policy.as_str());
    behavior.compress = Some(settings.compress);
    match &settings.cache {
        CacheSettings::Policy(id) => {
            // A cache policy excludes the legacy fields (CloudFront refuses both).
            behavior.cache_policy_id = Some(id.clone());
            behavior.forwarded_values = None;
            behavior.min_ttl = None;
            behavior.default_ttl = None;
            behavior.max_ttl = None;
        }
        CacheSettings::Legacy {
            min_ttl,
            default_ttl,
            max_ttl,
        } => {
            behavior.cache_policy_id = None;
            behavior.forwarded_values = Some(
                ForwardedValues::builder()
                    .query_string(false)
                    .cookies(
                        CookiePreference::builder()
                            .forward(ItemSelection::None)
                            .build()?,
                    )
                    .build()?,
            );
            behavior.min_ttl = Some(*min_ttl);
            behavior.default_ttl = Some(*default_ttl);
            behavior.max_ttl = Some(*max_ttl);
        }
    }
    config.default_cache_behavior = Some(behavior);
    Ok(())
}

/// GET and HEAD, both cached: a static site takes no writes.
fn read_only_methods() -> Result<AllowedMethods, BuildError> {
    let methods = vec![Method::Get, Method::Head];
    AllowedMethods::builder()
        .quantity(2)
        .set_items(Some(methods.clone()))
        .cached_methods(
            CachedMethods::builder()
                .quantity(2)
                .set_items(Some(methods))
                .build()?,
        )
        .build()
}

/// The managed settings as CloudFront reports them. The origin is the one the default
/// behaviour serves.
pub(super) fn read(config: &DistributionConfig) -> DistributionSettings {
    let behavior = config.default_cache_behavior();
    let target = behavior.map(|b| b.target_origin_id.as_str());
    let origins = config.origins().map(Origins::items).unwrap_or_default();
    let origin = origins
        .iter()
        .find(|o| Some(o.id.as_str()) == target)
        .or_else(|| origins.first())
        .map(|o| SiteOrigin {
            id: o.id.clone(),
            domain_name: o.domain_name.clone(),
            origin_access_control_id: o
                .origin_access_control_id
                .clone()
                .filter(|id| !id.is_empty()),
        })
        .unwrap_or_default();
    let mut aliases: Vec<String> = config
        .aliases()
        .map(|a| a.items().to_vec())
        .unwrap_or_default();
    aliases.sort();
    let mut error_responses: Vec<ErrorResponse> = config
        .custom_error_responses()
        .map(CustomErrorResponses::items)
        .unwrap_or_default()
        .iter()
        .map(|r| ErrorResponse {
            error_code: r.error_code,
            response_page_path: r.response_page_path.clone().filter(|p| !p.is_empty()),
            response_code: r.response_code.clone().filter(|c| !c.is_empty()),
            caching_min_ttl: r.error_caching_min_ttl,
        })
        .collect();
    error_responses.sort();
    DistributionSettings {
        caller_reference: config.caller_reference.clone(),
        comment: config.comment.clone(),
        enabled: config.enabled,
        origin,
        default_root_object: config.default_root_object.clone().unwrap_or_default(),
        aliases,
        viewer_protocol_policy: behavior
            .map(|b| b.viewer_protocol_policy.as_str().to_owned())
            .unwrap_or_default(),
        compress: behavior.and_then(|b| b.compress).unwrap_or(false),
        cache: behavior.map_or_else(CacheSettings::default, read_cache),
        error_responses,
        price_class: config
            .price_class()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
    }
}

#[allow(deprecated)]
fn read_cache(behavior: &DefaultCacheBehavior) -> CacheSettings {
    match behavior.cache_policy_id.as_deref() {
        Some(id) if !id.is_empty() => CacheSettings::Policy(id.to_owned()),
        _ => CacheSettings::Legacy {
            min_ttl: behavior.min_ttl.unwrap_or(0),
            default_ttl: behavior.default_ttl.unwrap_or(0),
            max_ttl: behavior.max_ttl.unwrap_or(0),
        },
    }
}

/// CloudFront's `Quantity` fields (lists here are a handful of entries).
fn quantity(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}
