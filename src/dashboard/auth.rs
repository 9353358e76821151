//! Who may retry a quarantined file, and how a request proves it.
//!
//! Without `HTTP_TOKEN` the dashboard is read-only: no retry form is shown and the
//! retry route refuses. With it, a person enters the token once on `/login`; the
//! answer sets a session cookie (`HttpOnly`, `SameSite=Strict`, 8 hours, `Secure`
//! behind a TLS proxy that says `X-Forwarded-Proto: https`) whose value is derived
//! from the token, never the token itself. Every state-changing request (login,
//! logout, retry) is a POST that must come from this site (its `Origin` matches the
//! `Host`, and `Sec-Fetch-Site`, when sent, is `same-origin`); a retry also carries a
//! form field derived from the token, so a page on another site cannot forge one even
//! where a browser ignores `SameSite`. All comparisons are constant-time (BLAKE3
//! hashes compare so). Changing `HTTP_TOKEN` and restarting ends every session.

use axum::http::HeaderMap;
use axum::http::header;

use crate::config::HttpToken;

/// The session cookie's name.
pub const COOKIE: &str = "sensor_ingest_session";

/// How long a session lasts, in seconds.
pub const SESSION_SECONDS: u64 = 8 * 3600;

/// Keys derived from `HTTP_TOKEN`; the token itself is not kept.
#[derive(Clone)]
pub struct Auth {
    /// BLAKE3 of the token, to check a login against.
    token_hash: blake3::Hash,
    /// The session cookie's value.
    session: blake3::Hash,
    /// The retry forms' hidden field.
    csrf: blake3::Hash,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth(***)")
    }
}

impl Auth {
    pub fn new(token: &HttpToken) -> Self {
        let secret = token.expose().as_bytes();
        Self {
            token_hash: blake3::hash(secret),
            session: blake3::Hash::from(blake3::derive_key(
                "sensor-ingest dashboard session cookie v1",
                secret,
            )),
            csrf: blake3::Hash::from(blake3::derive_key(
                "sensor-ingest dashboard form token v1",
                secret,
            )),
        }
    }

    /// Whether `offered` is the token (constant time).
    pub fn token_matches(&self, offered: &str) -> bool {
        blake3::hash(offered.as_bytes()) == self.token_hash
    }

    /// Whether the request carries a valid session cookie.
    pub fn has_session(&self, headers: &HeaderMap) -> bool {
        cookie(headers, COOKIE).is_some_and(|v| hex_matches(v, &self.session))
    }

    /// The value a retry form carries.
    pub fn form_token(&self) -> String {
        self.csrf.to_hex().to_string()
    }

    /// Whether a form's token is right (constant time).
    pub fn form_token_matches(&self, offered: &str) -> bool {
        hex_matches(offered, &self.csrf)
    }

    /// The `Set-Cookie` value that opens a session.
    pub fn session_cookie(&self, secure: bool) -> String {
        format!(
            "{COOKIE}={}; Path=/; Max-Age={SESSION_SECONDS}; HttpOnly; SameSite=Strict{}",
            self.session.to_hex(),
            if secure { "; Secure" } else { "" }
        )
    }
}

/// The `Set-Cookie` value that ends a session.
pub fn cleared_cookie() -> String {
    format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
}

/// Whether `hex` spells `expected` (constant time over equal-length input).
fn hex_matches(hex: &str, expected: &blake3::Hash) -> bool {
    blake3::Hash::from_hex(hex.trim()).is_ok_and(|h| h == *expected)
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request came through a TLS proxy (`X-Forwarded-Proto: https`).
pub fn behind_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// Whether a POST came from a page of this site: `Sec-Fetch-Site`, when the browser
/// sends it, is `same-origin`; and `Origin` (which browsers send with every POST) is
/// present and names the host the request was sent to — `X-Forwarded-Host` when a
/// reverse proxy sets it, else `Host`. (A page on another site cannot set either
/// header on a form it submits.)
pub fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site")
        && site != "same-origin"
    {
        return false;
    }
    let host = text("x-forwarded-host").or_else(|| text(header::HOST.as_str()));
    let (Some(origin), Some(host)) = (text(header::ORIGIN.as_str()), host) else {
        return false;
    };
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    origin_host == Some(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn auth() -> Auth {
        Auth::new(&HttpToken::new("0123456789abcdef-secret".into()).unwrap())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_cookie_and_form_token_are_derived_and_never_the_token() {
        let a = auth();
        assert!(a.token_matches("0123456789abcdef-secret"));
        assert!(!a.token_matches("0123456789abcdef-secreT"));
        let set = a.session_cookie(false);
        assert!(!set.contains("secret") && !a.form_token().contains("secret"));
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(!set.contains("Secure") && a.session_cookie(true).ends_with("; Secure"));
        assert_ne!(a.form_token(), a.session.to_hex().to_string());
        let value = set.split(';').next().unwrap();
        assert!(a.has_session(&headers(&[("cookie", &format!("theme=dark; {value}"))])));
        assert!(!a.has_session(&headers(&[("cookie", "sensor_ingest_session=00")])));
        assert!(!a.has_session(&headers(&[])));
        assert!(a.form_token_matches(&a.form_token()));
        assert!(!a.form_token_matches("nope"));
        let other = Auth::new(&HttpToken::new("another token, long enough".into()).unwrap());
        assert!(!other.form_token_matches(&a.form_token()));
        assert!(!format!("{a:?}").contains(&a.form_token()));
    }

    #[test]
    fn only_same_origin_posts_pass() {
        let ok = [
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ];
        assert!(same_origin(&headers(&ok)));
        let proxied = [
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "dash.example"),
            ("origin", "https://dash.example"),
        ];
        assert!(same_origin(&headers(&proxied)));
        let mut fetch = ok.to_vec();
        fetch.push(("sec-fetch-site", "same-origin"));
        assert!(same_origin(&headers(&fetch)));
        for bad in [
            vec![
                ("host", "127.0.0.1:8080"),
                ("origin", "http://evil.example"),
            ],
            vec![("host", "127.0.0.1:8080"), ("origin", "null")],
            vec![("host", "127.0.0.1:8080")],
            vec![
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080"),
                ("sec-fetch-site", "cross-site"),
            ],
        ] {
            assert!(!same_origin(&headers(&bad)), "{bad:?}");
        }
    }
}
