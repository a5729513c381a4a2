//! The stack's PostgreSQL as devenv itself talks to it: the service with a
//! `postgres` readiness probe, its credentials (the probe's), its running
//! container, and connections from the host to any database on it. Seeds
//! and snapshots both start here.

use sqlx::{ConnectOptions, PgConnection};

use crate::config::model::{Probe, Stack};
use crate::engine::{Engine, EngineError};
use crate::probe::Target;

/// What devenv's database commands call their sessions on the server, so
/// that the next command can end those a killed devenv left running.
pub const APPLICATION_NAME: &str = "devenv-db";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DatabaseError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Engine(#[from] EngineError),

    #[error(
        "no service has a `postgres` readiness probe, so devenv does not know the stack's database"
    )]
    #[diagnostic(
        code(devenv::database::none),
        help("give the database service `ready = {{ postgres = {{}} }}` (the postgres preset has it)")
    )]
    NoDatabase,

    #[error("service `{service}` is not running")]
    #[diagnostic(
        code(devenv::database::not_running),
        help("start it with `devenv up -d {service}`")
    )]
    NotRunning { service: String },

    #[error("cannot reach the database of service `{service}`: {message}")]
    #[diagnostic(
        code(devenv::database::connect),
        help("publish its port in `ports` if the host cannot reach the container")
    )]
    Connect { service: String, message: String },
}

/// The stack's running PostgreSQL server, located.
#[derive(Debug, Clone)]
pub struct Database {
    /// The project's name on the engine (its journal in devenv's private folder).
    pub project: String,
    pub service: String,
    pub container: String,
    /// The database the app uses (`POSTGRES_DB`, or the probe's `database`).
    pub name: String,
    pub user: String,
    password: crate::config::Secret,
    /// Where the host reaches the server.
    host: String,
    port: u16,
}

impl Database {
    /// Finds the stack's PostgreSQL service and its running container.
    pub async fn locate(engine: &Engine, stack: &Stack) -> Result<Database, DatabaseError> {
        let (service, port, user, password, name) = stack
            .services
            .values()
            .find_map(|s| match &s.ready {
                Some(Probe::Postgres {
                    port,
                    user,
                    password,
                    database,
                }) => Some((
                    s.name.clone(),
                    *port,
                    user.clone(),
                    password.clone(),
                    database.clone(),
                )),
                _ => None,
            })
            .ok_or(DatabaseError::NoDatabase)?;
        let container = engine
            .list_containers(&stack.project)
            .await?
            .into_iter()
            .find(|c| c.service == service && !c.oneoff && c.state == "running")
            .ok_or_else(|| DatabaseError::NotRunning {
                service: service.clone(),
            })?;
        let status = engine
            .inspect_container(&container.id, &stack.project)
            .await?;
        let (host, port) = Target::from_status(&container.id, &status)
            .addr(port)
            .ok_or_else(|| DatabaseError::Connect {
                service: service.clone(),
                message: "no address reaches it".into(),
            })?;
        Ok(Database {
            project: stack.project.clone(),
            service,
            container: container.id,
            name,
            user,
            password,
            host,
            port,
        })
    }

    /// A connection to `database` on the server, as the stack's user.
    pub async fn connect(&self, database: &str) -> Result<PgConnection, DatabaseError> {
        self.connect_as(database, "devenv").await
    }

    /// A connection to `database` that shows as `application` on the server.
    pub async fn connect_as(
        &self,
        database: &str,
        application: &str,
    ) -> Result<PgConnection, DatabaseError> {
        sqlx::postgres::PgConnectOptions::new()
            .application_name(application)
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .password(self.password.expose())
            .database(database)
            .connect()
            .await
            .map_err(|e| self.connect_error(e))
    }

    /// An error reaching the server, named after its service.
    pub fn connect_error(&self, e: sqlx::Error) -> DatabaseError {
        DatabaseError::Connect {
            service: self.service.clone(),
            message: e.to_string(),
        }
    }

    /// `PGPASSWORD` for client programs run inside the container, and the
    /// name devenv's own sessions go by (an import's client left running by
    /// a killed devenv is then found and ended by the next command).
    pub fn client_env(&self) -> Vec<String> {
        vec![
            format!("PGPASSWORD={}", self.password.expose()),
            format!("PGAPPNAME={}", APPLICATION_NAME),
        ]
    }
}
