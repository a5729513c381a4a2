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

    /// The server answered but refused the credentials: the usual cause is
    /// a data volume initialised with another password than today's.
    #[error("cannot log in to the database of service `{service}` as `{user}`: {message}")]
    #[diagnostic(
        code(devenv::database::login),
        help(
            "the password devenv has for `{user}` (from dev.toml, .env or the environment, e.g. a `DB_PASSWORD` set in this shell) differs from the one the server was initialised with: a volume keeps the password it was created with. Use that password, or change it on the server (`devenv exec {service} -- psql -U {user} -c \"ALTER USER {user} PASSWORD '…'\"`)"
        )
    )]
    Login {
        service: String,
        user: String,
        message: String,
    },
}

/// SQLSTATEs of a refused login: `invalid_password` and
/// `invalid_authorization_specification` (a user the server does not know).
const LOGIN_REFUSED: [&str; 2] = ["28P01", "28000"];

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

    /// An error reaching the server, named after its service: a refused
    /// login told apart from a server the host cannot reach.
    pub fn connect_error(&self, e: sqlx::Error) -> DatabaseError {
        let code = e
            .as_database_error()
            .and_then(|d| d.code().map(|c| c.into_owned()));
        self.classify(code.as_deref(), e.to_string())
    }

    fn classify(&self, sqlstate: Option<&str>, message: String) -> DatabaseError {
        if sqlstate.is_some_and(|c| LOGIN_REFUSED.contains(&c)) {
            DatabaseError::Login {
                service: self.service.clone(),
                user: self.user.clone(),
                message,
            }
        } else {
            DatabaseError::Connect {
                service: self.service.clone(),
                message,
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use miette::Diagnostic;

    fn db() -> Database {
        Database {
            project: "shop".into(),
            service: "db".into(),
            container: "c0".into(),
            name: "app".into(),
            user: "app".into(),
            password: crate::config::Secret::new("secret"),
            host: "127.0.0.1".into(),
            port: 5432,
        }
    }

    #[test]
    fn a_refused_password_says_the_volume_keeps_its_own_not_publish_the_port() {
        let refused = "password authentication failed for user \"app\"";
        let e = db().classify(Some("28P01"), refused.into());
        assert_eq!(
            e.to_string(),
            "cannot log in to the database of service `db` as `app`: password authentication failed for user \"app\""
        );
        let help = e.help().unwrap().to_string();
        assert_eq!(
            help,
            "the password devenv has for `app` (from dev.toml, .env or the environment, e.g. a `DB_PASSWORD` set in this shell) differs from the one the server was initialised with: a volume keeps the password it was created with. Use that password, or change it on the server (`devenv exec db -- psql -U app -c \"ALTER USER app PASSWORD '…'\"`)"
        );
        assert!(matches!(
            db().classify(Some("28000"), "role \"app\" does not exist".into()),
            DatabaseError::Login { .. }
        ));
        // Anything else is still the host not reaching the server.
        for (code, message) in [(None, "connection refused"), (Some("57P03"), "starting up")] {
            let e = db().classify(code, message.into());
            assert!(matches!(e, DatabaseError::Connect { .. }), "{e}");
            assert!(e.help().unwrap().to_string().contains("publish its port"));
        }
    }
}
