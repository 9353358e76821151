//! `SOURCE=s3://bucket/prefix/` and the variables that go with it: where the bucket
//! is (`S3_ENDPOINT`, `AWS_REGION`), who the agent is there (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, kept secret), and what becomes of an object afterwards.

use std::path::PathBuf;
use std::time::Duration;

use super::env::Env;
use super::{ConfigError, parse_duration};
use crate::source::s3::{After, S3Config, SecretKey};

impl Env<'_> {
    /// The bucket source when `SOURCE` names one; `None` reads the data folder.
    pub(super) fn s3_source(&mut self, retry_max_delay: Duration) -> Option<S3Config> {
        let source = self.value("SOURCE")?;
        if source == "folder" {
            return None;
        }
        let Some((bucket, prefix)) = S3Config::parse_url(&source) else {
            self.errors.push(ConfigError::new(
                "SOURCE",
                &source,
                "folder, or s3://bucket/prefix/ (a bucket name of 3 to 63 lower-case \
                 letters, digits, dots and hyphens)",
            ));
            return None;
        };
        let endpoint = self.value("S3_ENDPOINT");
        if let Some(e) = &endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            self.errors.push(ConfigError::new(
                "S3_ENDPOINT",
                e,
                "an http:// or https:// URL such as http://127.0.0.1:9000",
            ));
        }
        let region = self
            .value("AWS_REGION")
            .or_else(|| self.value("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_owned());
        let after = self.parse("S3_AFTER", After::Move, "move or keep", |v| match v {
            "move" => Some(After::Move),
            "keep" => Some(After::Keep),
            _ => None,
        });
        let reconcile = self.parse(
            "S3_RECONCILE",
            Duration::from_secs(3600),
            "a positive duration such as 1h, 15m or 30s",
            |v| parse_duration(v, 1000).filter(|d| !d.is_zero()),
        );
        let processed_prefix = self.key_prefix("S3_PROCESSED_PREFIX", "processed/");
        let quarantine_prefix = self.key_prefix("S3_QUARANTINE_PREFIX", "quarantine/");
        Some(S3Config {
            bucket,
            prefix,
            endpoint,
            region,
            access_key_id: self.value("AWS_ACCESS_KEY_ID"),
            secret_access_key: self.value("AWS_SECRET_ACCESS_KEY").map(SecretKey::new),
            processed_prefix,
            quarantine_prefix,
            after,
            reconcile,
            spool_dir: self.value("S3_SPOOL_DIR").map(PathBuf::from),
            retry_max_delay,
        })
    }

    /// A key prefix for a folder of the bucket: not empty, ending in `/`.
    fn key_prefix(&mut self, var: &'static str, default: &str) -> String {
        self.parse(
            var,
            default.to_owned(),
            "a key prefix such as processed/",
            |v| {
                let v = v.trim_start_matches('/');
                (!v.is_empty()).then(|| {
                    if v.ends_with('/') {
                        v.to_owned()
                    } else {
                        format!("{v}/")
                    }
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::settings;
    use crate::source::s3::After;

    #[test]
    fn the_folder_is_the_default_source() {
        assert!(settings(&[]).unwrap().s3.is_none());
        assert!(settings(&[("SOURCE", "folder")]).unwrap().s3.is_none());
    }

    #[test]
    fn an_s3_source_takes_its_settings_and_keeps_the_secret() {
        let s = settings(&[
            ("SOURCE", "s3://fleet/incoming"),
            ("S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG"),
            ("S3_AFTER", "keep"),
            ("S3_RECONCILE", "15m"),
        ])
        .unwrap();
        let s3 = s.s3.clone().unwrap();
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str()),
            ("fleet", "incoming/")
        );
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(s3.region, "us-east-1");
        assert_eq!(s3.after, After::Keep);
        assert_eq!(s3.reconcile, std::time::Duration::from_secs(900));
        assert_eq!(s3.processed_prefix, "processed/");
        assert!(!format!("{s:?}").contains("wJalr"));
    }

    #[test]
    fn bad_s3_settings_are_named() {
        let errors = settings(&[
            ("SOURCE", "s3://Bad_Bucket/x"),
            ("S3_ENDPOINT", "127.0.0.1:9000"),
        ])
        .unwrap_err();
        assert!(errors.iter().any(|e| e.var == "SOURCE"), "{errors:?}");
        let errors = settings(&[
            ("SOURCE", "s3://fleet/"),
            ("S3_ENDPOINT", "127.0.0.1:9000"),
            ("S3_AFTER", "tag"),
        ])
        .unwrap_err();
        let vars: Vec<_> = errors.iter().map(|e| e.var).collect();
        assert_eq!(vars, ["S3_ENDPOINT", "S3_AFTER"]);
    }
}
