//! A workload's Jobs: a one-off service's, once per release, and the
//! migration Job of its `after_up` hooks; each named after what it runs
//! (and the app image's tag), since a Job's template cannot change.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};

use super::env::Commands;
use super::{checkov_skips, note_secret, Workload};
use crate::export::objects::{labels, meta, Object, Placed};
use crate::export::settings::Settings;
use crate::export::ExportError;

/// A one-off service as a Job object, naming the Secret keys to provide.
pub(super) fn one_off(
    work: &Workload<'_>,
    pod: PodSpec,
    provide: Option<&str>,
) -> Result<Object, ExportError> {
    let mut job = one_off_job(
        work.placed,
        pod,
        &work.labels,
        work.settings,
        work.has_secrets(),
    );
    note_secret(&mut job.metadata, &work.env_name, provide);
    job_object(work.placed, &job)
}

/// The migration Job of the service's `after_up` hooks as an object, if
/// it has hooks to run in this environment.
pub(super) fn migration(
    work: &Workload<'_>,
    pod: PodSpec,
    commands: &Commands<'_>,
) -> Result<Option<Object>, ExportError> {
    let (settings, env) = (work.settings, work.env);
    let hooks = work
        .placed
        .service
        .hooks
        .after_up
        .iter()
        .filter(|hook| settings.seed(env) || !is_seed(hook))
        .map(|hook| commands.reference("`after_up` hook", hook))
        .collect::<Result<Vec<_>, _>>()?;
    migration_job(work.placed, pod, settings, &hooks, work.has_secrets())?
        .map(|job| job_object(work.placed, &job))
        .transpose()
}

/// Whether a hook seeds the database (which production skips by default).
fn is_seed(hook: &str) -> bool {
    hook.contains("db:seed")
}

/// A Job's name: the service's, then a short hash of what it runs, so that
/// a changed Job is a new object (a Job's template cannot be changed) and
/// an unchanged one is left alone by every apply. A Job running the app's
/// image ends in the image's tag instead of hashing it, so that the usual
/// CI bump (`kustomize edit set image`, `--set image.tag`) names a new Job
/// too: the overlays carry a replacement that appends the rendered tag.
fn job_name(prefix: &str, pod: &PodSpec, tag: Option<&str>) -> String {
    let mut hashed = pod.clone();
    if tag.is_some() {
        for container in &mut hashed.containers {
            container.image = None;
        }
    }
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_string(&hashed).unwrap_or_default());
    let digest: String = hasher
        .finalize()
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    // The `job-name` label of its pods holds the name: 63 characters at most.
    let suffix = tag.map_or(String::new(), |tag| format!("-{tag}"));
    let mut prefix = prefix.to_string();
    prefix.truncate(63usize.saturating_sub(9 + suffix.len()).max(1));
    format!("{}-{digest}{suffix}", prefix.trim_end_matches('-'))
}

/// The tag of the app image a Job runs, which ends its name (see [`job_name`]).
fn app_tag(placed: &Placed<'_>, pod: &PodSpec) -> Option<String> {
    let image = pod.containers.first()?.image.as_deref()?;
    placed
        .app
        .then(|| {
            crate::image_ref::ImageRef::parse(image)
                .ok()?
                .tag()
                .map(String::from)
        })
        .flatten()
}

/// A Job as an object, with the tag its name ends in, if any.
fn job_object(placed: &Placed<'_>, job: &Job) -> Result<Object, ExportError> {
    let pod = job
        .spec
        .as_ref()
        .and_then(|spec| spec.template.spec.as_ref());
    let mut object = Object::new(placed.name(), job)?;
    object.name_tag = pod.and_then(|pod| app_tag(placed, pod));
    if let Some(tag) = &object.name_tag {
        // The name is a DNS subdomain, and its pods' `job-name` label holds it.
        let name = object.name();
        let fits = tag
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-'))
            && !tag.ends_with(['.', '-'])
            && name.len() <= 63;
        if !fits {
            return Err(ExportError::JobTag {
                tag: tag.clone(),
                job: name.to_string(),
            });
        }
    }
    Ok(object)
}

/// Finished Jobs go after a week: long enough to read their logs, short
/// enough that releases do not pile them up. An apply of the same release
/// after that creates the Job again, which finds nothing to migrate.
const JOB_TTL_SECONDS: i32 = 7 * 24 * 3600;

/// A Job running the pod to completion once, retried three times, kept a week.
fn job(
    name: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    pod: PodSpec,
    settings: &Settings,
) -> Job {
    let mut pod = pod;
    pod.restart_policy = Some("Never".into());
    let mut pod_annotations = BTreeMap::new();
    if settings.istio {
        // A sidecar never exits, so the Job would never complete.
        pod_annotations.insert("sidecar.istio.io/inject".to_string(), "false".to_string());
    }
    let mut metadata = meta(&name, &labels);
    metadata.annotations = Some(annotations);
    Job {
        metadata,
        spec: Some(JobSpec {
            backoff_limit: Some(3),
            active_deadline_seconds: Some(900),
            ttl_seconds_after_finished: Some(JOB_TTL_SECONDS),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: Some(pod_annotations).filter(|a| !a.is_empty()),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A service that runs to completion (others wait on it with `completed`,
/// or `[services.<name>.k8s] job = true`) as a Job, once per release.
fn one_off_job(
    placed: &Placed<'_>,
    pod: PodSpec,
    labels: &BTreeMap<String, String>,
    settings: &Settings,
    secrets: bool,
) -> Job {
    let name = job_name(placed.name(), &pod, app_tag(placed, &pod).as_deref());
    job(
        name,
        labels.clone(),
        checkov_skips(placed, secrets),
        pod,
        settings,
    )
}

/// The `after_up` hooks as a Job named after what it runs, so that each
/// release runs them once. It needs no hook annotations: the app pods wait
/// for its migrations (see [`wait_for_migrations`]), and nothing else waits
/// for it, so it is ordered the same under `kubectl apply -k`, Argo CD,
/// Flux and Helm, and is created with the ConfigMap and Secret it reads.
/// Seeders run in dev and staging only, unless `[k8s.<env>] seed` says.
fn migration_job(
    placed: &Placed<'_>,
    pod: PodSpec,
    settings: &Settings,
    hooks: &[String],
    secrets: bool,
) -> Result<Option<Job>, ExportError> {
    if hooks.is_empty() {
        return Ok(None);
    }
    let name = placed.name();
    let labels = labels(settings, name, "migration");
    let mut pod = pod;
    let container = &mut pod.containers[0];
    container.name = "migrate".into();
    // Through the image's entrypoint, as `devenv up` runs them (it prepares storage/).
    container.args = Some(vec!["sh".into(), "-c".into(), hooks.join(" && ")]);
    container.ports = None;
    let tag = app_tag(placed, &pod);
    let job_name = job_name(&format!("{name}-migrate"), &pod, tag.as_deref());
    Ok(Some(job(
        job_name,
        labels,
        checkov_skips(placed, secrets),
        pod,
        settings,
    )))
}
