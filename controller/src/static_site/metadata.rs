//! The HTTP metadata every object is stored with: `Content-Type` from its file name,
//! `Cache-Control` from the first `cacheControl` rule whose glob matches its key.
//!
//! Decisions:
//! - The type comes from `mime_guess` (the extension table every Rust web server uses); an
//!   unknown extension is `application/octet-stream`, as S3 would store it anyway.
//! - Textual types get `; charset=utf-8`: a browser otherwise guesses the encoding of HTML and
//!   JavaScript served without a `<meta charset>` (a built site is UTF-8 by every bundler's
//!   default). Textual means `text/*`, JavaScript, JSON, XML and SVG.
//! - Globs follow the spec's documented grammar: `*` stays within one path segment, `**`
//!   crosses segments (globset with `literal_separator(true)`), so `*.html` is the top-level
//!   HTML only and `**/*.html` every HTML file. They are compiled once per spec into one set.
//! - No matching rule: no `Cache-Control` (CloudFront's default TTL applies).

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use stagehand_crds::static_site::CacheControlRule;

use crate::base::{Classify, ErrorClass};

/// Used when the extension says nothing.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// What a key is stored with.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectMetadata {
    pub content_type: String,
    pub cache_control: Option<String>,
}

/// A `cacheControl` rule that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("cacheControl[{index}] pattern {pattern:?} is not a valid glob: {message}")]
pub struct InvalidRule {
    pub index: usize,
    pub pattern: String,
    pub message: String,
}

impl Classify for InvalidRule {
    fn class(&self) -> ErrorClass {
        ErrorClass::Stalled
    }

    fn reason(&self) -> &'static str {
        "InvalidCacheControlRule"
    }
}

/// The spec's metadata rules, compiled.
#[derive(Clone, Debug)]
pub struct MetadataRules {
    globs: GlobSet,
    values: Vec<String>,
}

impl MetadataRules {
    /// Compiles `rules` in order (first match wins).
    pub fn compile(rules: &[CacheControlRule]) -> Result<Self, InvalidRule> {
        let mut set = GlobSetBuilder::new();
        for (index, rule) in rules.iter().enumerate() {
            let glob = GlobBuilder::new(&rule.pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| InvalidRule {
                    index,
                    pattern: rule.pattern.clone(),
                    message: e.kind().to_string(),
                })?;
            set.add(glob);
        }
        let globs = set.build().map_err(|e| InvalidRule {
            index: 0,
            pattern: String::new(),
            message: e.to_string(),
        })?;
        Ok(Self {
            globs,
            values: rules.iter().map(|r| r.value.clone()).collect(),
        })
    }

    /// The metadata `key` is stored with.
    pub fn for_key(&self, key: &str) -> ObjectMetadata {
        ObjectMetadata {
            content_type: content_type(key),
            cache_control: self.cache_control(key).map(str::to_owned),
        }
    }

    /// The value of the first rule matching `key`.
    pub fn cache_control(&self, key: &str) -> Option<&str> {
        let first = self.globs.matches(key).into_iter().min()?;
        self.values.get(first).map(String::as_str)
    }
}

/// The `Content-Type` for `key`, by its extension.
pub fn content_type(key: &str) -> String {
    let Some(guessed) = mime_guess::from_path(key).first() else {
        return DEFAULT_CONTENT_TYPE.to_owned();
    };
    let essence = guessed.essence_str();
    if is_textual(&guessed) {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_owned()
    }
}

fn is_textual(mime: &mime_guess::Mime) -> bool {
    mime.type_() == mime_guess::mime::TEXT
        || matches!(
            mime.subtype().as_str(),
            "javascript" | "json" | "xml" | "manifest+json" | "ld+json"
        )
        || mime.suffix().is_some_and(|s| s == "xml" || s == "json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str, value: &str) -> CacheControlRule {
        CacheControlRule {
            pattern: pattern.to_owned(),
            value: value.to_owned(),
        }
    }

    #[test]
    fn content_types_follow_the_extension_with_a_charset_for_text() {
        let cases = [
            ("index.html", "text/html; charset=utf-8"),
            ("assets/app.3f9c.js", "text/javascript; charset=utf-8"),
            ("assets/app.css", "text/css; charset=utf-8"),
            ("manifest.json", "application/json; charset=utf-8"),
            ("logo.svg", "image/svg+xml; charset=utf-8"),
            ("feed.xml", "text/xml; charset=utf-8"),
            ("logo.png", "image/png"),
            ("photo.JPG", "image/jpeg"),
            ("fonts/inter.woff2", "font/woff2"),
            ("app.wasm", "application/wasm"),
            ("LICENSE", DEFAULT_CONTENT_TYPE),
            ("data.unknownext", DEFAULT_CONTENT_TYPE),
        ];
        for (key, expected) in cases {
            assert_eq!(content_type(key), expected, "{key}");
        }
    }

    #[test]
    fn the_first_matching_rule_wins_and_star_stays_in_its_segment() {
        let rules = MetadataRules::compile(&[
            rule("assets/**", "public, max-age=31536000, immutable"),
            rule("*.html", "no-cache"),
            rule("**/*.html", "no-cache, must-revalidate"),
            rule("**", "public, max-age=300"),
        ])
        .unwrap();
        let cases = [
            ("assets/app.js", "public, max-age=31536000, immutable"),
            ("assets/deep/a/b.png", "public, max-age=31536000, immutable"),
            // Matched by `assets/**` before `**/*.html`: order is the user's to choose.
            ("assets/x.html", "public, max-age=31536000, immutable"),
            ("index.html", "no-cache"),
            ("docs/index.html", "no-cache, must-revalidate"),
            ("robots.txt", "public, max-age=300"),
        ];
        for (key, expected) in cases {
            assert_eq!(rules.cache_control(key), Some(expected), "{key}");
        }
        let only_top = MetadataRules::compile(&[rule("*.html", "no-cache")]).unwrap();
        assert_eq!(only_top.cache_control("docs/index.html"), None);
        assert_eq!(
            only_top.for_key("index.html"),
            ObjectMetadata {
                content_type: "text/html; charset=utf-8".into(),
                cache_control: Some("no-cache".into()),
            }
        );
    }

    #[test]
    fn an_invalid_glob_names_its_rule() {
        let error =
            MetadataRules::compile(&[rule("**", "a"), rule("assets/[a-", "b")]).unwrap_err();
        assert_eq!(error.index, 1);
        let message = error.to_string();
        assert!(
            message.contains("cacheControl[1]") && message.contains("assets/[a-"),
            "{message}"
        );
        assert_eq!(error.class(), ErrorClass::Stalled);
    }
}
