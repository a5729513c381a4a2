//! Reading `dev.toml`: parse, apply presets and `.env`, interpolate, resolve
//! profiles and validate, producing one [`model::Stack`].

pub mod model;
