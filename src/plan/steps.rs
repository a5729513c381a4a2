//! The plan as data: what `up` asks for, and the steps it will take
//! (images, removals, objects, per service what happens to its container
//! and why, host ports to check), serialised for `up --dry-run --json`.

use serde::Serialize;

use super::{Binding, ContainerSpec, NetworkSpec, NewPath, PortMove, PortTaken, VolumeSpec};
use crate::config::model::Condition;
use crate::image_ref::ImageRef;

/// What `up` asks for.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Services to bring up (with their dependencies); empty means all.
    pub services: Vec<String>,
    /// Rebuild images of services with `build`.
    pub build: bool,
    /// Create missing bind-mount sources (files or folders) instead of refusing.
    pub create_paths: bool,
    /// Publish no host ports on the containers this plan makes (`devenv
    /// test` reaches its services on the project network); a container
    /// made with its ports is as good and is kept.
    pub no_ports: bool,
}

/// What `up` will do, in the order it does it: images, folders, removals,
/// the network and volumes, then every container created (or recreated) up
/// front and each started as soon as its own dependencies are met. Its JSON
/// form (`up --dry-run --json`) is documented in the README.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub project: String,
    pub images: Vec<ImageStep>,
    /// Missing bind sources to create as folders (`--create-paths`).
    pub folders: Vec<NewPath>,
    /// Missing bind sources to create as empty files: their names say they
    /// are files (see [`paths`]).
    pub files: Vec<NewPath>,
    pub removals: Vec<Removal>,
    /// The project network, when a container is to be made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<ObjectStep<NetworkSpec>>,
    /// The stack's named volumes, when a container is to be made.
    pub volumes: Vec<ObjectStep<VolumeSpec>>,
    /// One per selected service, in start order.
    pub services: Vec<ServiceStep>,
    /// Host ports to check before anything changes.
    pub port_checks: Vec<PortCheck>,
    /// Things to tell the user (volume options that no longer apply).
    pub notices: Vec<String>,
}

/// How a service gets its image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageStep {
    pub service: String,
    /// The reference the container will run.
    pub image: ImageRef,
    #[serde(flatten)]
    pub action: ImageAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ImageAction {
    /// The engine has it.
    Present { id: String },
    /// Built from the service's `build`.
    Build,
    /// Pulled from its registry.
    Pull,
    /// Pulled, or, when no registry answers, the local stand-in built and run instead.
    PullOrStandin { standin: ImageRef },
}

/// An object to make unless it exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectStep<T> {
    pub exists: bool,
    #[serde(flatten)]
    pub spec: T,
}

/// A container to remove before anything starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removal {
    pub service: String,
    pub id: String,
    pub name: String,
    pub why: RemoveWhy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoveWhy {
    /// Its service is no longer in the stack file.
    Orphan,
    /// A second container of one service (an interrupted run left it).
    Duplicate,
}

/// One selected service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceStep {
    pub service: String,
    /// Its container's name.
    pub container: String,
    #[serde(flatten)]
    pub action: ContainerAction,
    /// What it waits for before it starts.
    pub after: Vec<Dependency>,
    /// The container as it is wanted (what a create or recreate makes),
    /// its host ports as chosen.
    pub spec: ContainerSpec,
    /// Mappings published on another host port than the declared one, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<PortMove>,
    /// A stopped container recreated rather than started: the host port it
    /// was made with is taken now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_taken: Option<PortTaken>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    pub service: String,
    pub condition: Condition,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ContainerAction {
    /// No container yet.
    Create,
    /// A container with another config: removed (its volumes kept), made anew.
    Recreate {
        id: String,
        /// The parts of the config that changed (`env`, `image`, `ports`, …;
        /// `config` when the container predates per-part labels).
        changes: Vec<String>,
    },
    /// The right container, not running (stopped, or created by an interrupted run).
    Start { id: String },
    /// The right container, running: left alone.
    Keep { id: String },
    /// Its image is still to be built or pulled, and the rest of its config
    /// is unchanged: recreated only if the new image differs from the one it runs.
    KeepUnlessImageChanges { id: String, running: bool },
}

impl ContainerAction {
    /// The existing container this acts on, if any.
    pub fn id(&self) -> Option<&str> {
        match self {
            ContainerAction::Create => None,
            ContainerAction::Recreate { id, .. }
            | ContainerAction::Start { id }
            | ContainerAction::Keep { id }
            | ContainerAction::KeepUnlessImageChanges { id, .. } => Some(id),
        }
    }

    /// A new container is (or may be) made.
    pub fn makes_container(&self) -> bool {
        matches!(
            self,
            ContainerAction::Create
                | ContainerAction::Recreate { .. }
                | ContainerAction::KeepUnlessImageChanges { .. }
        )
    }
}

/// A host port the lifecycle checks is free before anything changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortCheck {
    pub service: String,
    #[serde(flatten)]
    pub binding: Binding,
    /// `{ port = "…", fixed = true }`: this port or none (else `up`
    /// publishes on a free one).
    pub fixed: bool,
    /// The port dev.toml declares, where this one differs: it had to move
    /// once, and stays on the port it moved to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared: Option<u16>,
    /// The service's own container, about to be replaced or started: if it
    /// holds the port, that is no conflict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub own: Option<String>,
    /// Filled in by the check (a dry run shows it): free, or who holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
}
