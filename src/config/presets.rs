//! Presets (`use = "postgres"`): a service table from the project's own
//! `stacks/` folder, or else the copy embedded in devenv.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{ConfigError, Src};
use super::raw::RawService;
use crate::assets;

pub struct Preset {
    pub src: Src,
    pub service: RawService,
    /// Folder the preset's relative paths (its fallback context) start from.
    pub base: PathBuf,
}

/// Names of the presets devenv itself carries.
pub fn embedded_names() -> Vec<&'static str> {
    assets::FILES
        .iter()
        .filter_map(|(p, _)| p.strip_prefix("stacks/")?.strip_suffix(".toml"))
        .collect()
}

/// Loads preset `name`, `Ok(None)` if there is no such preset.
pub fn find(root: &Path, name: &str) -> Result<Option<Preset>, ConfigError> {
    let local = root.join("stacks").join(format!("{name}.toml"));
    let (text, display, base) = if local.is_file() {
        let text = std::fs::read_to_string(&local).map_err(|source| ConfigError::Read {
            path: local.clone(),
            source,
        })?;
        (text, local.display().to_string(), root.to_path_buf())
    } else if let Some(bytes) = assets::get(&format!("stacks/{name}.toml")) {
        let text = String::from_utf8_lossy(bytes).into_owned();
        (text, format!("<devenv>/stacks/{name}.toml"), assets::dir())
    } else {
        return Ok(None);
    };
    let src = Src {
        name: display,
        text: Arc::from(text.as_str()),
    };
    let service: RawService =
        toml::from_str(&text).map_err(|e| ConfigError::from_toml(&src, &e))?;
    Ok(Some(Preset { src, service, base }))
}
