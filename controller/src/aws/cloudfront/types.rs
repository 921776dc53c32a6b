//! What the CloudFront adapter returns and takes: plain data, no SDK types. A distribution's
//! managed settings are one struct, [`DistributionSettings`], used both ways: built from the
//! spec to create or update, and read back from CloudFront, so drift is a comparison.

/// CloudFront's managed cache policy `Managed-CachingOptimized`: the same id in every account.
pub const CACHING_OPTIMIZED_POLICY: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";

/// The id of the S3 origin in distributions Stagehand creates.
pub const SITE_ORIGIN_ID: &str = "site-bucket";

/// The S3 origin domain of a bucket: the *regional* name, so CloudFront reaches the bucket in
/// its region from the first request (the global name redirects for a while after creation).
pub fn bucket_regional_domain_name(bucket: &str, region: &str) -> String {
    format!("{bucket}.s3.{region}.amazonaws.com")
}

/// The origin a distribution's default behaviour serves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SiteOrigin {
    pub id: String,
    pub domain_name: String,
    /// The Origin Access Control CloudFront signs its S3 requests with.
    pub origin_access_control_id: Option<String>,
}

/// How the default behaviour caches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheSettings {
    /// A cache policy by id (the managed [`CACHING_OPTIMIZED_POLICY`] for sites).
    Policy(String),
    /// The legacy per-behaviour settings (`ForwardedValues` + TTLs), as older distributions
    /// have: no query strings, no cookies forwarded.
    Legacy {
        min_ttl: i64,
        default_ttl: i64,
        max_ttl: i64,
    },
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self::Policy(CACHING_OPTIMIZED_POLICY.to_owned())
    }
}

/// An error CloudFront answers with another page (a single-page app's fallback: 403 and 404 →
/// `/index.html` with 200, so client-side routes load the app).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ErrorResponse {
    pub error_code: i32,
    pub response_page_path: Option<String>,
    pub response_code: Option<String>,
    /// How long CloudFront caches the error answer, in seconds.
    pub caching_min_ttl: Option<i64>,
}

impl ErrorResponse {
    /// How long a fallback answer is cached: short, so a page published after a 404 appears
    /// within seconds.
    pub const FALLBACK_TTL_SECONDS: i64 = 10;

    /// The SPA fallback: 403 (what S3 answers through OAC for a missing key) and 404 serve
    /// `/<root_object>` with 200.
    pub fn spa_fallback(root_object: &str) -> Vec<Self> {
        [403, 404]
            .into_iter()
            .map(|error_code| Self {
                error_code,
                response_page_path: Some(format!("/{}", root_object.trim_start_matches('/'))),
                response_code: Some("200".to_owned()),
                caching_min_ttl: Some(Self::FALLBACK_TTL_SECONDS),
            })
            .collect()
    }
}

/// The settings Stagehand manages on a distribution; everything else (certificates, logging,
/// geo restrictions, other behaviours) is left as it is on update.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DistributionSettings {
    /// Set once at creation: derived from the object's uid, so a retried create finds the
    /// first distribution instead of making a second.
    pub caller_reference: String,
    /// Names the owner (`stagehand.dev/owner=<namespace>/StaticSite/<name>`): the listing shows
    /// comments, not tags, so it is how a lost distribution is found again.
    pub comment: String,
    pub enabled: bool,
    pub origin: SiteOrigin,
    pub default_root_object: String,
    /// Alternate domain names (CNAMEs), sorted.
    pub aliases: Vec<String>,
    /// `redirect-to-https` for sites.
    pub viewer_protocol_policy: String,
    pub compress: bool,
    pub cache: CacheSettings,
    /// Sorted by error code.
    pub error_responses: Vec<ErrorResponse>,
    /// `PriceClass_All` (CloudFront's default), `PriceClass_200`, `PriceClass_100`.
    pub price_class: String,
}

/// What a site's distribution is made from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SiteDistribution {
    pub caller_reference: String,
    pub comment: String,
    pub bucket: String,
    pub bucket_region: String,
    pub origin_access_control_id: String,
    pub default_root_object: String,
    pub aliases: Vec<String>,
    pub spa_fallback: bool,
}

impl DistributionSettings {
    /// The settings of a site's distribution: the private bucket through its OAC,
    /// HTTPS-only viewers, compression, CachingOptimized, the SPA fallback when asked.
    pub fn for_site(site: &SiteDistribution) -> Self {
        let mut aliases = site.aliases.clone();
        aliases.sort();
        aliases.dedup();
        Self {
            caller_reference: site.caller_reference.clone(),
            comment: site.comment.clone(),
            enabled: true,
            origin: SiteOrigin {
                id: SITE_ORIGIN_ID.to_owned(),
                domain_name: bucket_regional_domain_name(&site.bucket, &site.bucket_region),
                origin_access_control_id: Some(site.origin_access_control_id.clone()),
            },
            default_root_object: site.default_root_object.clone(),
            aliases,
            viewer_protocol_policy: "redirect-to-https".to_owned(),
            compress: true,
            cache: CacheSettings::default(),
            error_responses: if site.spa_fallback {
                ErrorResponse::spa_fallback(&site.default_root_object)
            } else {
                Vec::new()
            },
            price_class: "PriceClass_All".to_owned(),
        }
    }
}

/// A distribution's identity and deployment state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistributionInfo {
    pub id: String,
    pub arn: String,
    pub domain_name: String,
    /// `InProgress` or `Deployed`.
    pub status: String,
    /// The version for `If-Match` on updates and deletes (absent from listings).
    pub e_tag: Option<String>,
    pub settings: DistributionSettings,
    pub in_progress_invalidations: i32,
}

impl DistributionInfo {
    /// Deployed to every edge location: the last change is live (and a disabled distribution
    /// may be deleted).
    pub fn is_deployed(&self) -> bool {
        self.status.eq_ignore_ascii_case("Deployed")
    }
}

/// What `CloudFront::create_distribution` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedDistribution {
    pub distribution: DistributionInfo,
    /// An earlier create with the same `CallerReference` had made it (a retry after a crash).
    pub already_existed: bool,
}

/// A distribution's configuration and the ETag it was read at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistributionConfigRead {
    pub settings: DistributionSettings,
    pub e_tag: String,
}

/// One entry of `ListDistributions` (no caller reference and no ETag there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistributionSummary {
    pub id: String,
    pub arn: String,
    pub domain_name: String,
    pub status: String,
    pub comment: String,
    pub enabled: bool,
    pub aliases: Vec<String>,
}

/// One page of distributions and where the next starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DistributionPage {
    pub distributions: Vec<DistributionSummary>,
    pub next_marker: Option<String>,
}

/// An Origin Access Control (sigv4, always signing, S3 origins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginAccessControlInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub signing_protocol: String,
    pub signing_behavior: String,
    pub origin_type: String,
    /// For updates and deletes (absent from listings).
    pub e_tag: Option<String>,
}

/// An invalidation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidationInfo {
    pub id: String,
    /// `InProgress` or `Completed` (moto: `COMPLETED`).
    pub status: String,
    /// The paths and the caller reference (absent from listings).
    pub paths: Vec<String>,
    pub caller_reference: Option<String>,
    pub create_time: Option<jiff::Timestamp>,
}

impl InvalidationInfo {
    /// Compared case-insensitively: AWS says `Completed`, emulators `COMPLETED`.
    pub fn is_completed(&self) -> bool {
        self.status.eq_ignore_ascii_case("Completed")
    }
}

/// One page of invalidations and where the next starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InvalidationPage {
    pub invalidations: Vec<InvalidationInfo>,
    pub next_marker: Option<String>,
}
