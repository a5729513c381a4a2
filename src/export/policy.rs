//! Network policies: deny everything in the namespace, then allow exactly
//! the edges of the stack's `depends_on` graph, DNS, and traffic into the
//! service behind the Ingress. In production, edges to a replaced service
//! leave the cluster, so they become egress to its port anywhere.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::config::Replacement;
use super::objects::{selector, Object, Placed, PortSpec};
use super::settings::{Kind, Settings};
use super::{Env, ExportError};
use crate::config::model::{Condition, Protocol};

const GROUP: &str = "network-policies";

/// The namespace's network policies: the baseline, traffic into each
/// service from its dependents (and the load balancer), each service's own
/// egress; with strict mTLS, the mesh's peer authentications.
pub(crate) fn build(
    placed: &[Placed<'_>],
    replacements: &[Replacement],
    settings: &Settings,
    env: Env,
) -> Result<Vec<Object>, ExportError> {
    let mut policies = baseline(settings);
    for target in placed {
        policies.extend(ingress_policies(placed, target, settings));
    }
    for dependent in placed {
        policies.extend(egress_policy(
            placed,
            dependent,
            replacements,
            settings,
            env,
        ));
    }
    let mut objects: Vec<Object> = policies
        .iter()
        .map(|p| Object::new(GROUP, p))
        .collect::<Result<_, _>>()?;
    if settings.istio && settings.stack.strict_mtls {
        objects.extend(peer_authentications(placed, settings)?);
    }
    Ok(objects)
}

/// What every pod gets: nothing in or out, but DNS (and istiod, under Istio).
fn baseline(settings: &Settings) -> Vec<NetworkPolicy> {
    let all = LabelSelector::default();
    let mut policies = vec![
        policy(
            settings,
            "default-deny",
            all.clone(),
            vec!["Ingress", "Egress"],
            None,
            None,
        ),
        policy(
            settings,
            "allow-dns",
            all.clone(),
            vec!["Egress"],
            None,
            Some(vec![NetworkPolicyEgressRule {
                to: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(by_labels([(
                        "kubernetes.io/metadata.name",
                        "kube-system",
                    )])),
                    pod_selector: Some(by_labels([("k8s-app", "kube-dns")])),
                    ..Default::default()
                }]),
                ports: Some(vec![port(53, "UDP"), port(53, "TCP")]),
            }]),
        ),
    ];
    if settings.istio {
        // The sidecars fetch their configuration and certificates from istiod.
        policies.push(policy(
            settings,
            "allow-istio",
            all,
            vec!["Egress"],
            None,
            Some(vec![NetworkPolicyEgressRule {
                to: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(by_labels([(
                        "kubernetes.io/metadata.name",
                        "istio-system",
                    )])),
                    ..Default::default()
                }]),
                ports: None,
            }]),
        ));
    }
    policies
}

/// Traffic into a service: from the services that depend on it, to its
/// ports, and from anywhere to its TCP ports when it is behind the Ingress.
fn ingress_policies(
    placed: &[Placed<'_>],
    target: &Placed<'_>,
    settings: &Settings,
) -> Vec<NetworkPolicy> {
    let mut policies = Vec::new();
    let dependents: Vec<&str> = placed
        .iter()
        .filter(|p| edges(p).any(|d| d == target.name()))
        .map(|p| p.name())
        .collect();
    if !dependents.is_empty() {
        let from = dependents
            .iter()
            .map(|d| NetworkPolicyPeer {
                pod_selector: Some(pods(settings, d)),
                ..Default::default()
            })
            .collect();
        let rule = NetworkPolicyIngressRule {
            from: Some(from),
            ports: Some(ports(&target.ports)),
        };
        policies.push(policy(
            settings,
            &format!("{}-ingress", target.name()),
            pods(settings, target.name()),
            vec!["Ingress"],
            Some(vec![rule]),
            None,
        ));
    }
    if target.ingress {
        // The load balancer (ALB in IP mode, or an ingress controller) may sit anywhere.
        let rule = NetworkPolicyIngressRule {
            from: None,
            ports: Some(target.tcp_ports().map(|p| port(p.port, "TCP")).collect()),
        };
        policies.push(policy(
            settings,
            &format!("{}-public", target.name()),
            pods(settings, target.name()),
            vec!["Ingress"],
            Some(vec![rule]),
            None,
        ));
    }
    policies
}

/// Traffic out of a service: to each dependency in the cluster, to a
/// replaced one's port anywhere, and to AWS STS for an app with an IRSA role.
fn egress_policy(
    placed: &[Placed<'_>],
    dependent: &Placed<'_>,
    replacements: &[Replacement],
    settings: &Settings,
    env: Env,
) -> Option<NetworkPolicy> {
    let anywhere = NetworkPolicyPeer {
        ip_block: Some(IPBlock {
            cidr: "0.0.0.0/0".into(),
            except: None,
        }),
        ..Default::default()
    };
    let mut rules = Vec::new();
    for dependency in edges(dependent) {
        if let Some(target) = placed.iter().find(|p| p.name() == dependency.as_str()) {
            rules.push(NetworkPolicyEgressRule {
                to: Some(vec![NetworkPolicyPeer {
                    pod_selector: Some(pods(settings, target.name())),
                    ..Default::default()
                }]),
                ports: Some(ports(&target.ports)),
            });
        } else if let Some(replacement) = replacements.iter().find(|r| &r.service == dependency) {
            rules.push(NetworkPolicyEgressRule {
                to: Some(managed_peers(replacement, settings, &anywhere)),
                ports: Some(vec![port(replacement.port, "TCP")]),
            });
        }
    }
    let irsa = dependent.app && settings.stack.env(env).role_arn.is_some();
    let has_https = rules.iter().any(|r| {
        r.ports
            .as_ref()
            .is_some_and(|p| p.contains(&port(443, "TCP")))
    });
    if irsa && !has_https {
        // The SDK trades the IRSA token for credentials at AWS STS.
        rules.push(NetworkPolicyEgressRule {
            to: Some(vec![anywhere]),
            ports: Some(vec![port(443, "TCP")]),
        });
    }
    (!rules.is_empty()).then(|| {
        policy(
            settings,
            &format!("{}-egress", dependent.name()),
            pods(settings, dependent.name()),
            vec!["Egress"],
            None,
            Some(rules),
        )
    })
}

/// Istio `PeerAuthentication`s (a CRD, so JSON): mutual TLS required for
/// every pod of the namespace, but plain traffic allowed on the port behind
/// the Ingress, where the load balancer (outside the mesh) connects.
fn peer_authentications(
    placed: &[Placed<'_>],
    settings: &Settings,
) -> Result<Vec<Object>, ExportError> {
    let labels = BTreeMap::from([
        ("app.kubernetes.io/part-of", settings.project.as_str()),
        ("app.kubernetes.io/managed-by", "devenv"),
    ]);
    let mut objects = vec![Object::new(
        GROUP,
        &serde_json::json!({
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": { "name": "default", "labels": labels },
            "spec": { "mtls": { "mode": "STRICT" } },
        }),
    )?];
    for target in placed.iter().filter(|p| p.ingress) {
        let ports: serde_json::Map<String, serde_json::Value> = target
            .tcp_ports()
            .map(|p| {
                (
                    p.port.to_string(),
                    serde_json::json!({ "mode": "PERMISSIVE" }),
                )
            })
            .collect();
        objects.push(Object::new(
            GROUP,
            &serde_json::json!({
                "apiVersion": "security.istio.io/v1",
                "kind": "PeerAuthentication",
                "metadata": { "name": format!("{}-public", target.name()), "labels": labels },
                "spec": {
                    "selector": { "matchLabels": pods(settings, target.name()).match_labels },
                    "mtls": { "mode": "STRICT" },
                    "portLevelMtls": ports,
                },
            }),
        )?);
    }
    Ok(objects)
}

/// Where a managed service is: inside the VPC's CIDR blocks when
/// `[k8s] vpc_cidrs` names them (RDS, ElastiCache), anywhere otherwise and
/// for the public AWS endpoints (S3, SES).
fn managed_peers(
    replacement: &Replacement,
    settings: &Settings,
    anywhere: &NetworkPolicyPeer,
) -> Vec<NetworkPolicyPeer> {
    let cidrs = &settings.stack.vpc_cidrs;
    if cidrs.is_empty() || matches!(replacement.kind, Kind::S3 | Kind::Mail) {
        return vec![anywhere.clone()];
    }
    cidrs
        .iter()
        .map(|cidr| NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: cidr.get_ref().clone(),
                except: None,
            }),
            ..Default::default()
        })
        .collect()
}

/// The services `placed` reaches; one that runs to completion is reached by nobody.
fn edges<'a>(placed: &'a Placed<'_>) -> impl Iterator<Item = &'a String> {
    placed
        .service
        .depends_on
        .iter()
        .filter(|(_, condition)| **condition != Condition::Completed)
        .map(|(d, _)| d)
}

fn policy(
    settings: &Settings,
    name: &str,
    pod_selector: LabelSelector,
    types: Vec<&str>,
    ingress: Option<Vec<NetworkPolicyIngressRule>>,
    egress: Option<Vec<NetworkPolicyEgressRule>>,
) -> NetworkPolicy {
    let labels = BTreeMap::from([
        (
            "app.kubernetes.io/part-of".to_string(),
            settings.project.clone(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "devenv".to_string(),
        ),
    ]);
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pod_selector),
            policy_types: Some(types.into_iter().map(String::from).collect()),
            ingress,
            egress,
        }),
    }
}

/// All pods of a service, its migration Job's included.
fn pods(settings: &Settings, service: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector(settings, service)),
        ..Default::default()
    }
}

fn by_labels<const N: usize>(labels: [(&str, &str); N]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(
            labels
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

fn port(number: u16, protocol: &str) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(i32::from(number))),
        protocol: Some(protocol.into()),
        end_port: None,
    }
}

fn ports(specs: &[PortSpec]) -> Vec<NetworkPolicyPort> {
    specs
        .iter()
        .map(|p| {
            port(
                p.port,
                if p.protocol == Protocol::Tcp {
                    "TCP"
                } else {
                    "UDP"
                },
            )
        })
        .collect()
}
