//! Reading a `zuliprc`: the INI file Zulip's clients keep their credentials in.
//!
//! The file is what Zulip's "Download zuliprc" button produces and what the
//! official Python client reads with Python's `configparser`:
//!
//! ```ini
//! [api]
//! email=alice@example.com
//! key=0123456789abcdefghijABCDEFGHIJ01
//! site=https://chat.example.com
//! ```
//!
//! This parser accepts the same syntax as `configparser`'s defaults, so one
//! file works for both: `key = value` or `key: value`, whitespace around
//! names and values ignored, option names case-insensitive, whole-line
//! comments starting with `#` or `;`, indented continuation lines, and
//! duplicate sections or options refused. Only `%` interpolation is left
//! out; no setting the presence client reads needs it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// The section that holds the connection settings.
pub const API_SECTION: &str = "api";

/// A parsed zuliprc: its sections and their options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zuliprc {
    /// The file it was read from (used in error messages).
    pub path: PathBuf,
    /// Section name (case-sensitive, as in `configparser`) to options
    /// (names lowercased) to values.
    pub sections: BTreeMap<String, BTreeMap<String, String>>,
}

impl Zuliprc {
    /// Reads and parses the file at `path`.
    ///
    /// A missing file is [`ConfigError::NotFound`], an unreadable one
    /// [`ConfigError::Read`], a malformed one [`ConfigError::Syntax`].
    pub fn read(path: impl AsRef<Path>) -> Result<Zuliprc, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ConfigError::NotFound {
                    path: path.to_path_buf(),
                }
            } else {
                ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        Zuliprc::parse(path, &text)
    }

    /// Parses `text` as the contents of the file at `path`.
    ///
    /// ```
    /// use presence_client::config::Zuliprc;
    ///
    /// let rc = Zuliprc::parse("zuliprc", "[api]\nEmail = a@b.c\nkey=abc\n").unwrap();
    /// assert_eq!(rc.api("email"), Some("a@b.c"));
    /// assert_eq!(rc.api("site"), None);
    /// ```
    pub fn parse(path: impl AsRef<Path>, text: &str) -> Result<Zuliprc, ConfigError> {
        let path = path.as_ref().to_path_buf();
        let syntax = |line: usize, message: String| ConfigError::Syntax {
            path: path.clone(),
            line,
            message,
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut section: Option<String> = None;
        // The option a continuation line would extend, with its indentation:
        // only a line indented deeper continues it, as in `configparser`.
        let mut last_option: Option<(String, usize)> = None;

        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let trimmed = line.trim();
            if trimmed.is_empty() {
                last_option = None;
                continue;
            }
            if trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            if let (Some(section), Some((option, option_indent))) = (&section, &last_option)
                && indent > *option_indent
            {
                let value = sections
                    .get_mut(section)
                    .and_then(|options| options.get_mut(option))
                    .expect("the option being continued exists");
                value.push('\n');
                value.push_str(trimmed);
                continue;
            }
            if let Some(rest) = trimmed.strip_prefix('[') {
                let Some(name) = rest.strip_suffix(']') else {
                    return Err(syntax(
                        number,
                        format!("`{trimmed}` is not a [section] header"),
                    ));
                };
                if sections.contains_key(name) {
                    return Err(syntax(number, format!("section [{name}] appears twice")));
                }
                sections.insert(name.to_owned(), BTreeMap::new());
                section = Some(name.to_owned());
                last_option = None;
                continue;
            }
            let Some(split) = trimmed.find(['=', ':']) else {
                return Err(syntax(
                    number,
                    format!("`{trimmed}` is not of the form `name = value`"),
                ));
            };
            let name = trimmed[..split].trim().to_lowercase();
            let value = trimmed[split + 1..].trim().to_owned();
            if name.is_empty() {
                return Err(syntax(number, format!("`{trimmed}` has no option name")));
            }
            let Some(current) = &section else {
                return Err(syntax(
                    number,
                    format!("`{name}` comes before any [section] header"),
                ));
            };
            let options = sections
                .get_mut(current)
                .expect("the current section exists");
            if options.contains_key(&name) {
                return Err(syntax(
                    number,
                    format!("`{name}` appears twice in section [{current}]"),
                ));
            }
            options.insert(name.clone(), value);
            last_option = Some((name, indent));
        }
        Ok(Zuliprc { path, sections })
    }

    /// A value of the `[api]` section (`email`, `key`, `site`, ...), by
    /// lowercase option name.
    pub fn api(&self, option: &str) -> Option<&str> {
        self.sections
            .get(API_SECTION)
            .and_then(|options| options.get(option))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Zuliprc, ConfigError> {
        Zuliprc::parse("/home/a/.zuliprc", text)
    }

    fn syntax_line(text: &str) -> usize {
        match parse(text) {
            Err(ConfigError::Syntax { line, .. }) => line,
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn the_downloaded_file_parses() {
        let rc =
            parse("[api]\nemail=alice@example.com\nkey=abc123\nsite=https://chat.example.com\n")
                .unwrap();
        assert_eq!(rc.api("email"), Some("alice@example.com"));
        assert_eq!(rc.api("key"), Some("abc123"));
        assert_eq!(rc.api("site"), Some("https://chat.example.com"));
    }

    #[test]
    fn configparser_syntax_variants_are_accepted() {
        let text = "\u{feff}# a comment\n; another\n\n[api]\n  EMAIL : alice@example.com  \n\
                    key =  abc\n    # indented comment\nsite=http://localhost:9991\n\n\
                    [other]\nkey=zzz\nnote=first\n  second\n";
        let rc = parse(text).unwrap();
        assert_eq!(rc.api("email"), Some("alice@example.com"));
        assert_eq!(rc.api("key"), Some("abc"));
        assert_eq!(rc.api("site"), Some("http://localhost:9991"));
        assert_eq!(rc.sections["other"]["key"], "zzz");
        assert_eq!(rc.sections["other"]["note"], "first\nsecond");
    }

    #[test]
    fn values_may_contain_delimiters() {
        let rc = parse("[api]\nsite = https://chat.example.com:8443/x=y\n").unwrap();
        assert_eq!(rc.api("site"), Some("https://chat.example.com:8443/x=y"));
    }

    #[test]
    fn section_names_are_case_sensitive() {
        let rc = parse("[API]\nkey=abc\n").unwrap();
        assert_eq!(rc.api("key"), None);
    }

    #[test]
    fn malformed_files_name_the_line() {
        assert_eq!(syntax_line("email=a@b.c\n"), 1);
        assert_eq!(syntax_line("[api]\nemail\n"), 2);
        assert_eq!(syntax_line("[api\n"), 1);
        assert_eq!(syntax_line("[api]\nkey=a\nKEY=b\n"), 3);
        assert_eq!(syntax_line("[api]\n[api]\n"), 2);
        assert_eq!(syntax_line("[api]\n= value\n"), 2);
    }

    #[test]
    fn a_missing_file_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent");
        match Zuliprc::read(&path) {
            Err(ConfigError::NotFound { path: p }) => assert_eq!(p, path),
            other => panic!("{other:?}"),
        }
    }
}
