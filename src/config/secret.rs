//! A value that must never be printed. Its `Display`, `Debug` and
//! `Serialize` all show a mask, so `devenv config`, error messages and debug
//! logs cannot leak it by accident; the raw value is reached only through
//! [`Secret::expose`], where it is handed to what needs it (a database
//! driver, a container's env, a build).
//!
//! Secrets also travel inside other text: `postgres://app:${DB_PASSWORD}@db`,
//! `--requirepass ${REDIS_PASSWORD}`, a hook, a log line. [`Masker`] is the
//! one place that hides them there; a stack builds it once (from its secret
//! values and the spans secret variables filled) and every output uses it.
//! [`is_secret_name`] is the one rule for which names hold secrets.

use std::borrow::Cow;
use std::fmt;

/// What every masked value prints as.
pub const MASK: &str = "********";

#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The raw value, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(MASK)
    }
}

/// Whether a name (an env key, a build arg, a variable) holds a secret: any
/// of its `_`/`-`/`.`-separated words is a secret word (`TOKEN`, `NPM_AUTH`,
/// `DB_PWD`, `SENTRY_DSN`), a secret word is inside it (`DBPASSWORD`), or it
/// ends in `KEY` (`APP_KEY`, `STRIPE_KEY`, `AWS_ACCESS_KEY_ID` too). Fails
/// closed: a false positive costs a masked value, a miss leaks a password.
/// Config, `devenv config`, export and its check all ask this one rule.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    // The shell's working folders, not passwords (`${PWD}/data`).
    if matches!(upper.as_str(), "PWD" | "OLDPWD") {
        return false;
    }
    const INSIDE: [&str; 6] = [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "CREDENTIAL",
        "PRIVATE",
    ];
    if INSIDE.iter().any(|word| upper.contains(word)) {
        return true;
    }
    let words: Vec<&str> = upper.split(['_', '-', '.']).collect();
    words.iter().any(|w| {
        matches!(
            *w,
            "PASS" | "PWD" | "PW" | "KEY" | "AUTH" | "DSN" | "SALT" | "APIKEY" | "CREDS"
        )
    }) || words.last().is_some_and(|w| w.ends_with("KEY"))
        || upper.ends_with("KEY_ID")
}

/// Below this many characters a secret is masked only as a whole token (not
/// inside a word): a one-letter password must not turn every `a` of a log
/// into the mask.
pub const WHOLE_TOKEN_BELOW: usize = 8;

/// Default passwords every preset and tutorial prints (Sail's `password`,
/// the Laravel docs' `secret`, MinIO's `minio` and `minioadmin`, the images'
/// own `postgres`, `root`, `admin`): a stack masks them where they stand as a
/// secret (their own field, the spans they filled, a URL's user info) but
/// does not hunt them through other text, where they are ordinary words: the
/// image `minio/minio`, the probe path `/minio/health/live`, `describe`'s
/// label `secret key`. Hunting them there hides nothing (a reader who sees
/// the mask beside `MINIO_ROOT_PASSWORD` guesses `password` first) and
/// garbles the output. Any other value is hunted everywhere.
pub const WELL_KNOWN_DEFAULTS: [&str; 14] = [
    "password",
    "secret",
    "minio",
    "minioadmin",
    "sail",
    "root",
    "admin",
    "postgres",
    "mysql",
    "redis",
    "laravel",
    "homestead",
    "changeme",
    "guest",
];

/// Hides a stack's secrets in any text: each secret value, each text a secret
/// variable was interpolated into (with exactly those spans masked, however
/// short the value), and the password of any URL's user info. Built once per
/// stack; `devenv config`, `up` and its dry run, `ps`, `ls`, `logs`, hooks and
/// errors all print through it.
#[derive(Clone, Default)]
pub struct Masker {
    /// Interpolated texts holding a secret's span, with their masked form;
    /// longest first, so a text inside another cannot leave a tail.
    texts: Vec<(String, String)>,
    /// Secret values, longest first.
    values: Vec<String>,
    /// One automaton over every value and text, built on first
    /// use: a line with none of them (most log lines) is passed through
    /// after one scan instead of one search per secret.
    matcher: std::sync::OnceLock<Option<aho_corasick::AhoCorasick>>,
}

impl PartialEq for Masker {
    fn eq(&self, other: &Masker) -> bool {
        self.texts == other.texts && self.values == other.values
    }
}

impl Eq for Masker {}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Masker({} values, {} texts)",
            self.values.len(),
            self.texts.len()
        )
    }
}

/// Values that only say yes or no (`MP_SMTP_AUTH_ACCEPT_ANY = "1"`): shown
/// masked under their own secret name, but not hunted in other text, where
/// every `1` and `true` would turn into the mask.
fn is_flag(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "0" | "1" | "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "none"
    )
}

impl Masker {
    /// A masker for these secret values alone.
    pub fn of<'a>(values: impl IntoIterator<Item = &'a str>) -> Masker {
        let mut m = Masker::default();
        for v in values {
            m.add_value(v);
        }
        m
    }

    /// Hides `value` wherever it appears.
    pub fn add_value(&mut self, value: &str) {
        if value.is_empty() || value == MASK || is_flag(value) {
            return;
        }
        self.matcher = std::sync::OnceLock::new();
        if let Err(at) = self.values.binary_search_by(|v| {
            value
                .len()
                .cmp(&v.len())
                .then_with(|| v.as_str().cmp(value))
        }) {
            self.values.insert(at, value.to_string());
        }
    }

    /// Records that `text` came out of interpolation with the secret
    /// variables' values at `spans`: those spans are masked wherever the text
    /// is shown, and each value wherever it appears.
    pub fn add_spans(&mut self, text: &str, spans: &[std::ops::Range<usize>]) {
        let spans: Vec<_> = spans.iter().filter(|r| !r.is_empty()).collect();
        if spans.is_empty() {
            return;
        }
        let mut masked = String::with_capacity(text.len());
        let mut at = 0;
        let mut sorted = spans.clone();
        sorted.sort_by_key(|r| r.start);
        for r in sorted {
            if r.start < at {
                continue;
            }
            masked.push_str(&text[at..r.start]);
            masked.push_str(MASK);
            at = r.end;
            self.add_value(&text[r.clone()]);
        }
        masked.push_str(&text[at..]);
        // A text that is all secret is a value like any other (and may be
        // spared); only one with written parts around its spans is a text.
        if masked != text && masked != MASK && !self.texts.iter().any(|(t, _)| t == text) {
            self.matcher = std::sync::OnceLock::new();
            let at = self.texts.partition_point(|(t, _)| t.len() >= text.len());
            self.texts.insert(at, (text.to_string(), masked));
        }
    }

    /// Stops hunting these words as values elsewhere: a password that is
    /// also a service's name (`REDIS_PASSWORD=redis`) stays masked where it
    /// is the password (its own field, the spans it filled), while `ps`,
    /// `REDIS_HOST = "redis"` and the JSON keys keep naming the service.
    /// The [`WELL_KNOWN_DEFAULTS`] are always spared with them.
    pub fn spare<'a>(&mut self, words: impl IntoIterator<Item = &'a str>) {
        let words: Vec<&str> = words.into_iter().chain(WELL_KNOWN_DEFAULTS).collect();
        self.matcher = std::sync::OnceLock::new();
        self.values.retain(|v| !words.contains(&v.as_str()));
        self.texts.retain(|(t, _)| !words.contains(&t.as_str()));
    }

    /// Everything `other` hides, hidden here too.
    pub fn extend(&mut self, other: &Masker) {
        for v in &other.values {
            self.add_value(v);
        }
        for (text, masked) in &other.texts {
            if !self.texts.iter().any(|(t, _)| t == text) {
                self.matcher = std::sync::OnceLock::new();
                let at = self.texts.partition_point(|(t, _)| t.len() >= text.len());
                self.texts.insert(at, (text.clone(), masked.clone()));
            }
        }
    }

    /// Whether there is nothing to hide but URL passwords.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.texts.is_empty()
    }

    /// Whether `text` may hold a secret value (a text's span is one too).
    fn may_hold_secret(&self, text: &str) -> bool {
        let matcher = self.matcher.get_or_init(|| {
            let needles = self.values.iter().chain(self.texts.iter().map(|(t, _)| t));
            // Built from a few short strings: it cannot fail; if it did,
            // every text is searched the slow way.
            aho_corasick::AhoCorasick::new(needles).ok()
        });
        match matcher {
            Some(m) => m.is_match(text),
            None => !self.values.is_empty() || !self.texts.is_empty(),
        }
    }

    /// `text` with every secret masked.
    pub fn mask<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if !self.may_hold_secret(text) {
            return match mask_url_passwords(text) {
                Some(new) => Cow::Owned(new),
                None => Cow::Borrowed(text),
            };
        }
        let mut out = Cow::Borrowed(text);
        for (whole, masked) in &self.texts {
            if let Some(new) = replace(&out, whole, masked) {
                out = Cow::Owned(new);
            }
        }
        for value in &self.values {
            if let Some(new) = replace(&out, value, MASK) {
                out = Cow::Owned(new);
            }
        }
        match mask_url_passwords(&out) {
            Some(new) => Cow::Owned(new),
            None => out,
        }
    }

    /// Masks every string in a JSON tree (what `--json` outputs print): a
    /// secret with a quote or backslash in it is found before JSON escapes it.
    pub fn mask_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(s) => {
                if let Cow::Owned(masked) = self.mask(s) {
                    *s = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.mask_json(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.mask_json(v)),
            _ => {}
        }
    }
}

impl Masker {
    /// What a container holds: each value of its env under a secret name,
    /// and the password its command gives Redis. The well-known defaults
    /// are spared in other text, as the stack's own masker spares them.
    pub fn of_held(env: &[(String, String)], command: &[String]) -> Masker {
        let mut m = Masker::default();
        for (name, value) in env {
            if is_secret_name(name) {
                m.add_value(value);
            }
        }
        if let Some(password) = redis_password(command, |_| None) {
            m.add_value(password);
        }
        m.spare([]);
        m
    }
}

/// A Redis server's password: `--requirepass X` in its command, else
/// `REDIS_PASSWORD` in its env (`env` looks a name up); `None` when empty.
/// The one rule for `describe`, `redis-cli` and what a container holds,
/// read alike from the stack file and from a running container.
pub fn redis_password<'a>(
    command: &'a [String],
    env: impl Fn(&str) -> Option<&'a str>,
) -> Option<&'a str> {
    let from_command = command
        .iter()
        .position(|a| a == "--requirepass")
        .and_then(|i| command.get(i + 1))
        .map(String::as_str);
    from_command
        .filter(|p| !p.is_empty())
        .or_else(|| env("REDIS_PASSWORD").filter(|p| !p.is_empty()))
}

/// `text` with each occurrence of `needle` replaced by `with`, or `None` when
/// there is none. A needle shorter than [`WHOLE_TOKEN_BELOW`] counts only as
/// a whole token: not where a letter or digit touches it on either side.
fn replace(text: &str, needle: &str, with: &str) -> Option<String> {
    let whole = needle.chars().count() < WHOLE_TOKEN_BELOW;
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    let mut out: Option<String> = None;
    let mut from = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find(needle) {
        let start = search + found;
        let end = start + needle.len();
        let clear = !whole
            || !(word(text[..start].chars().next_back()) && word(needle.chars().next())
                || word(text[end..].chars().next()) && word(needle.chars().next_back()));
        if clear {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[from..start]);
            o.push_str(with);
            from = end;
            search = end;
        } else {
            search = start + needle.chars().next().map_or(1, char::len_utf8);
        }
    }
    out.map(|mut o| {
        o.push_str(&text[from..]);
        o
    })
}

/// The password of each URL's user info (`scheme://user:PASSWORD@host`)
/// masked, or `None` when there is none to mask.
fn mask_url_passwords(text: &str) -> Option<String> {
    if !text.contains("://") {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at a path, query, fragment, space or quote.
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '`' | '<' | '>') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@').and_then(|at| {
            let info = &authority[..at];
            info.find(':').map(|colon| (colon, at))
        }) {
            Some((colon, at)) if &authority[colon + 1..at] != MASK && colon + 1 < at => {
                out.push_str(&authority[..=colon]);
                out.push_str(MASK);
                out.push_str(&authority[at..]);
                changed = true;
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// What this process must not print: the maskers of every stack it loaded.
/// The UI writes each line through [`scrub`], so an output path that forgot
/// to mask (a new message, an engine error quoting a command) still cannot
/// print a secret of a stack devenv read.
static LOADED: std::sync::RwLock<Option<Masker>> = std::sync::RwLock::new(None);

/// Adds a loaded stack's masker to what [`scrub`] hides.
pub fn register(masker: &Masker) {
    if masker.is_empty() {
        return;
    }
    let mut loaded = LOADED.write().unwrap_or_else(|e| e.into_inner());
    loaded.get_or_insert_with(Masker::default).extend(masker);
}

/// `text` with every secret of every loaded stack, and any URL's password,
/// masked: what the UI does to each line it prints.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let loaded = LOADED.read().unwrap_or_else(|e| e.into_inner());
    match loaded.as_ref() {
        Some(masker) => masker.mask(text),
        None => match mask_url_passwords(text) {
            Some(new) => Cow::Owned(new),
            None => Cow::Borrowed(text),
        },
    }
}

/// Whether [`scrub`] leaves `text`, and so every part of it, as it is:
/// neither a secret nor a URL is anywhere in it. A log chunk of hundreds
/// of lines is checked with one scan instead of one per line; a part of
/// `text` cannot hold what `text` does not.
pub fn leaves_alone(text: &str) -> bool {
    if text.contains("://") {
        return false;
    }
    let loaded = LOADED.read().unwrap_or_else(|e| e.into_inner());
    loaded.as_ref().is_none_or(|m| !m.may_hold_secret(text))
}

/// As [`scrub`], for each string of a JSON tree (`--json` outputs).
pub fn scrub_json(value: &mut serde_json::Value) {
    let loaded = LOADED.read().unwrap_or_else(|e| e.into_inner());
    match loaded.as_ref() {
        Some(masker) => masker.mask_json(value),
        None => Masker::default().mask_json(value),
    }
}

/// Replaces every occurrence of each non-empty secret in `text` with the mask,
/// by the same rules as [`Masker`].
pub fn mask_in<'a>(text: &str, secrets: impl IntoIterator<Item = &'a str>) -> String {
    Masker::of(secrets).mask(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printed_form_is_masked() {
        let s = Secret::new("hunter2");
        assert_eq!(s.to_string(), MASK);
        assert_eq!(format!("{s:?}"), MASK);
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{MASK}\""));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn secrets_are_masked_inside_text() {
        assert_eq!(
            mask_in("psql postgres://app:hunter2@db/app", ["hunter2", ""]),
            format!("psql postgres://app:{MASK}@db/app")
        );
        assert_eq!(mask_in("ab abc", ["ab", "abc"]), format!("{MASK} {MASK}"));
    }

    #[test]
    fn r22_names_with_a_secret_word_anywhere_are_secret() {
        for name in [
            "TOKEN",
            "NPM_AUTH",
            "PASSWORD",
            "DB_PASSWORD",
            "SMTP_PASS",
            "DB_PWD",
            "APP_KEY",
            "KEY",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ACCESS_KEY_ID",
            "SENTRY_DSN",
            "GOOGLE_CREDENTIALS",
            "AUTH_TOKEN_X",
            "github-token",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "DB_HOST",
            "APP_ENV",
            "PWD",
            "OLDPWD",
            "OAUTH_CLIENT_ID",
            "KEYBOARD",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn r22_short_secrets_mask_whole_tokens_only() {
        let m = Masker::of(["a", "pw12"]);
        assert_eq!(
            m.mask("a cat ran at -a"),
            format!("{MASK} cat ran at -{MASK}")
        );
        assert_eq!(m.mask("pw12x pw12 xpw12"), format!("pw12x {MASK} xpw12"));
        // Long ones go wherever they are.
        let m = Masker::of(["longsecret"]);
        assert_eq!(m.mask("xlongsecretx"), format!("x{MASK}x"));
        // A flag value is not hunted elsewhere.
        assert_eq!(Masker::of(["1", "true"]).mask("1 of 1 true"), "1 of 1 true");
    }

    #[test]
    fn r22_spans_a_secret_filled_are_masked_however_short() {
        let mut m = Masker::default();
        // `postgres://app:${DB_PASSWORD}@db/app` with a one-letter password,
        // and `prefix${PASS}suffix` where no token edge helps.
        m.add_spans("x-p-y", std::slice::from_ref(&(2..3)));
        assert_eq!(m.mask("run x-p-y now"), format!("run x-{MASK}-y now"));
        m.add_spans("abcpdef", std::slice::from_ref(&(3..4)));
        assert_eq!(m.mask("abcpdef"), format!("abc{MASK}def"));
        // Elsewhere a short value is still a whole token only.
        assert_eq!(m.mask("p is pretty"), format!("{MASK} is pretty"));
        // A password that is a service's name: only where it was filled in.
        let mut m = Masker::default();
        m.add_spans(
            "redis-server --requirepass redis",
            std::slice::from_ref(&(27..32)),
        );
        m.spare(["redis"]);
        assert_eq!(
            m.mask("redis-server --requirepass redis"),
            format!("redis-server --requirepass {MASK}")
        );
        assert_eq!(m.mask("REDIS_HOST=redis"), "REDIS_HOST=redis");
    }

    #[test]
    fn the_redis_password_is_the_commands_else_the_envs() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cmd = words(&["redis-server", "--requirepass", "from-cmd", "--quiet"]);
        let bare = words(&["redis-server"]);
        let cut = words(&["redis-server", "--requirepass"]);
        let empty = words(&["--requirepass", ""]);
        for (command, want) in [
            (&cmd, Some("from-cmd")),
            (&bare, Some("from-env")),
            (&empty, Some("from-env")),
        ] {
            let found = redis_password(command, |n| (n == "REDIS_PASSWORD").then_some("from-env"));
            assert_eq!(found, want, "{command:?}");
        }
        // A flag without its value, or an empty one, is no password.
        assert_eq!(redis_password(&cut, |_| None), None);
        assert_eq!(redis_password(&empty, |_| Some("")), None);
    }

    #[test]
    fn what_a_container_holds_under_secret_names_is_masked() {
        let env = [
            ("DB_PASSWORD".to_string(), "Trial42LongPass".to_string()),
            ("DB_HOST".to_string(), "db-host-name".to_string()),
            ("POSTGRES_PASSWORD".to_string(), "secret".to_string()),
        ];
        let cmd = [
            "redis-server".to_string(),
            "--requirepass".into(),
            "Rd-9f2e-long".into(),
        ];
        let m = Masker::of_held(&env, &cmd);
        assert_eq!(
            m.mask("pw Trial42LongPass at db-host-name, Rd-9f2e-long"),
            format!("pw {MASK} at db-host-name, {MASK}")
        );
        // A well-known default is not hunted in other text.
        assert_eq!(m.mask("a secret key"), "a secret key");
    }

    #[test]
    fn r22_url_passwords_are_masked() {
        let m = Masker::default();
        assert_eq!(
            m.mask("DATABASE_URL=postgres://app:s3cr3t@db:5432/app ok"),
            format!("DATABASE_URL=postgres://app:{MASK}@db:5432/app ok")
        );
        assert_eq!(
            m.mask("redis://:pw@cache:6379 and https://example.org/a:b@c"),
            format!("redis://:{MASK}@cache:6379 and https://example.org/a:b@c")
        );
        assert_eq!(m.mask("postgres://app@db/app"), "postgres://app@db/app");
    }
}
