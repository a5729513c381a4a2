//! `devenv xdebug on|off|status [SERVICE]`: Xdebug in the running app,
//! toggled the way DDEV does it — an ini file in PHP's scan folders and a
//! graceful PHP-FPM reload — so nothing is rebuilt or recreated. The IDE is
//! reached at `host.docker.internal` (mapped to the host by the laravel
//! preset's `extra_hosts`, on Linux too).

use super::shortcuts::app_service;
use super::{service_container, Context, Failure, Outcome};
use crate::cli::{XdebugAction, XdebugArgs};

/// The ini file devenv writes, in every PHP scan folder the image has.
const INI: &str = "99-devenv-xdebug.ini";

/// PHP's scan folders in Debian's and the official images' layouts.
const SCAN_DIRS: &str = "/etc/php/*/fpm/conf.d /etc/php/*/cli/conf.d /usr/local/etc/php/conf.d";

pub async fn run(ctx: &Context, args: XdebugArgs) -> Outcome {
    let stack = ctx.stack()?;
    let service = match args.service {
        Some(s) => s,
        None => app_service(&stack)?,
    };
    let engine = ctx.engine().await?;
    let stack = ctx.named(&engine, stack, false).await?;
    let id = service_container(&engine, &stack, &service).await?;
    let reporter = ctx.reporter();
    let script = match args.action {
        XdebugAction::On => format!(
            "php -m | grep -qix xdebug || {{ echo 'no-xdebug'; exit 3; }}; \
             for d in {SCAN_DIRS}; do [ -d \"$d\" ] && printf '%s\\n' \
             'xdebug.mode = debug' 'xdebug.start_with_request = yes' \
             'xdebug.client_host = host.docker.internal' 'xdebug.client_port = {port}' \
             > \"$d/{INI}\"; done; {RELOAD}",
            port = args.port
        ),
        // Only the file devenv wrote goes; the image's own settings stay.
        XdebugAction::Off => format!("for d in {SCAN_DIRS}; do rm -f \"$d/{INI}\"; done; {RELOAD}"),
        XdebugAction::Status => String::new(),
    };
    let mut output = String::new();
    if !script.is_empty() {
        let code = engine
            .exec(
                &id,
                vec!["sh".into(), "-c".into(), script],
                vec![],
                Some("root".into()),
                |s| output.push_str(s),
            )
            .await?;
        if code == 3 && output.contains("no-xdebug") {
            return Err(Failure::new(
                NotInstalled {
                    service: service.clone(),
                },
                1,
            ));
        }
        if code != 0 {
            return Err(Failure::new(
                Failed {
                    service: service.clone(),
                    output: output.trim().to_string(),
                },
                1,
            ));
        }
    }
    // What the web server's PHP now has (php-fpm -i reads the FPM ini files).
    let mut mode = String::new();
    engine
        .exec(
            &id,
            vec![
                "sh".into(),
                "-c".into(),
                "fpm=$(ls /usr/sbin/php-fpm* /usr/local/sbin/php-fpm 2>/dev/null | head -n1); \
                 if [ -n \"$fpm\" ]; then \"$fpm\" -i 2>/dev/null; else php -i; fi \
                 | sed -n 's/^xdebug.mode => \\([^ ]*\\) .*/\\1/p' | head -n1"
                    .into(),
            ],
            vec![],
            Some("root".into()),
            |s| mode.push_str(s),
        )
        .await?;
    let mode = match mode.trim() {
        "" => "not installed".to_string(),
        m => m.to_string(),
    };
    let on = mode.split(',').any(|m| m == "debug");
    reporter.done(
        &service,
        &format!(
            "Xdebug is {} (xdebug.mode = {mode}){}",
            if on { "on" } else { "off" },
            if on && args.action == XdebugAction::On {
                format!(": listen on port {} in your IDE", args.port)
            } else {
                String::new()
            }
        ),
        true,
    );
    Ok(0)
}

/// A graceful PHP-FPM reload: the master re-reads its ini files, requests in
/// flight finish. Without FPM (a CLI-only image) there is nothing to reload.
const RELOAD: &str = "pkill -USR2 -o -f 'php-fpm: master' || true";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("Xdebug is not installed in the image of service `{service}`")]
#[diagnostic(
    code(devenv::xdebug::not_installed),
    help("install it in the image's dev stage (Debian: `php8.2-xdebug`; official images: `pecl install xdebug`)")
)]
struct NotInstalled {
    service: String,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("turning Xdebug over in service `{service}` failed: {output}")]
#[diagnostic(code(devenv::xdebug::failed))]
struct Failed {
    service: String,
    output: String,
}
