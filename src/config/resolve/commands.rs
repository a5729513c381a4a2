//! A service's commands: `command` and `entrypoint` as words, and its
//! `hooks`, each interpolated with where its variables went noted (export
//! names secrets in them by key).

use std::cell::RefCell;

use super::syntax::{parse_duration, split_words};
use super::{Ctx, Pick};
use crate::config::error::ConfigError;
use crate::config::model::{Hooks, Interpolated};
use crate::config::raw::{RawHooks, StrOrList, S};

/// `command` or `entrypoint` as words (a string is split as a shell
/// would), each interpolated and noted.
pub(super) fn resolve_words(
    ctx: &Ctx,
    field: Option<Pick<S<StrOrList>>>,
    noted: &RefCell<Vec<Interpolated>>,
) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(f) = field else { return Ok(None) };
    let items = match f.value.get_ref() {
        StrOrList::Str(s) => split_words(s).ok_or_else(|| {
            ConfigError::invalid(
                f.src,
                f.value.span(),
                "unbalanced quotes",
                "in this command",
                None,
            )
        })?,
        StrOrList::List(v) => v.clone(),
    };
    items
        .iter()
        .map(|w| ctx.interp_noted(f.src, f.value.span(), w, noted))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `hooks`: each command interpolated and noted; without explicit lists,
/// `devenv migrate`/`seed` pick their `after_up` commands.
pub(super) fn resolve_hooks(
    ctx: &Ctx,
    h: Pick<RawHooks>,
    noted: &RefCell<Vec<Interpolated>>,
) -> Result<Hooks, ConfigError> {
    let list = |cmds: &[S<String>]| -> Result<Vec<String>, ConfigError> {
        cmds.iter()
            .map(|c| ctx.interp_noted(h.src, c.span(), c.get_ref(), noted))
            .collect()
    };
    let after_up = list(&h.value.after_up)?;
    // Without explicit lists, `devenv migrate`/`seed` pick their after_up commands.
    let pick_up = |word: &str| {
        after_up
            .iter()
            .filter(|c| c.contains(word))
            .cloned()
            .collect()
    };
    let timeout = match &h.value.timeout {
        Some(t) => parse_duration(t.get_ref()).map_err(|why| {
            ConfigError::invalid(
                h.src,
                t.span(),
                format!("invalid `hooks.timeout`: {why}"),
                "here",
                Some("write seconds (`90`) or a duration (`90s`, `2m`, `500ms`)".into()),
            )
        })?,
        None => Hooks::default().timeout,
    };
    Ok(Hooks {
        timeout,
        masker: Default::default(),
        migrate: h
            .value
            .migrate
            .as_deref()
            .map(list)
            .transpose()?
            .unwrap_or_else(|| pick_up("migrate")),
        seed: h
            .value
            .seed
            .as_deref()
            .map(list)
            .transpose()?
            .unwrap_or_else(|| pick_up("seed")),
        after_up,
    })
}
