//! Writing the profile: TOML values quoted by the `toml` crate, each key with its comment.

use std::collections::BTreeMap;

/// The TOML being written, section by section.
#[derive(Default)]
pub(super) struct Out {
    pub(super) text: String,
    pub(super) notes: Vec<String>,
}

impl Out {
    pub(super) fn line(&mut self, l: &str) {
        self.text.push_str(l);
        self.text.push('\n');
    }
    pub(super) fn note(&mut self, l: &str) {
        self.notes.push(l.to_owned());
    }
    pub(super) fn section(&mut self, name: &str) {
        self.text.push_str(&format!("\n[{name}]\n"));
    }
    pub(super) fn kv(&mut self, k: &str, v: &str, why: Option<&str>) {
        match why {
            Some(w) => self.line(&format!("{k} = {v}  # {}", w.replace('\n', " "))),
            None => self.line(&format!("{k} = {v}")),
        }
    }
}

/// A TOML basic string.
pub(super) fn s(v: &str) -> String {
    toml::Value::String(v.to_owned()).to_string()
}

/// A TOML literal string when possible (regular expressions read better), else basic.
pub(super) fn lit(v: &str) -> String {
    if v.contains('\'') || v.contains('\n') {
        s(v)
    } else {
        format!("'{v}'")
    }
}

pub(super) fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_owned()
    } else {
        s(k)
    }
}

pub(super) fn inline_table(m: &BTreeMap<String, String>) -> String {
    format!(
        "{{ {} }}",
        m.iter()
            .map(|(k, v)| format!("{} = {}", toml_key(k), s(v)))
            .collect::<Vec<_>>()
            .join(", ")
    )
}
