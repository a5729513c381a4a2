//! How traffic reaches a service: its cluster Service and, for the one
//! facing users, the Ingress (an ALB in staging and production).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service as K8sService, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::settings::Settings;
use super::Env;
use crate::config::model::Probe;

use super::objects::{meta, Placed};
use super::workloads::{protocol, selector_with};

pub(crate) fn cluster_service(
    placed: &Placed<'_>,
    labels: &BTreeMap<String, String>,
    settings: &Settings,
    headless: bool,
) -> K8sService {
    K8sService {
        metadata: meta(placed.name(), labels),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            // A StatefulSet's pods get stable DNS names through a headless Service.
            cluster_ip: headless.then(|| "None".into()),
            selector: Some(selector_with(settings, placed.name(), placed.component())),
            ports: Some(
                placed
                    .ports
                    .iter()
                    .map(|p| ServicePort {
                        name: Some(p.name.clone()),
                        port: i32::from(p.port),
                        target_port: Some(IntOrString::String(p.name.clone())),
                        protocol: Some(protocol(p.protocol).into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) fn ingress(
    placed: &Placed<'_>,
    labels: &BTreeMap<String, String>,
    settings: &Settings,
    env: Env,
) -> Ingress {
    let env_settings = settings.stack.env(env);
    let class = settings.ingress_class(env);
    let port = placed.tcp_ports().next().map(|p| p.name.clone());
    let mut annotations = BTreeMap::new();
    if class == "alb" {
        // AWS Load Balancer Controller: route straight to pod IPs, TLS at the ALB.
        let alb = |key: &str| format!("alb.ingress.kubernetes.io/{key}");
        annotations.insert(alb("scheme"), "internet-facing".to_string());
        annotations.insert(alb("target-type"), "ip".to_string());
        if let Some(Probe::Http { path, .. }) = &placed.service.ready {
            annotations.insert(alb("healthcheck-path"), path.clone());
        }
        match &env_settings.certificate_arn {
            Some(arn) => {
                annotations.insert(alb("certificate-arn"), arn.clone());
                annotations.insert(
                    alb("listen-ports"),
                    r#"[{"HTTP": 80}, {"HTTPS": 443}]"#.to_string(),
                );
                annotations.insert(alb("ssl-redirect"), "443".to_string());
            }
            None => {
                annotations.insert(alb("listen-ports"), r#"[{"HTTP": 80}]"#.to_string());
            }
        }
    }
    let mut metadata = meta(placed.name(), labels);
    metadata.annotations = Some(annotations).filter(|a| !a.is_empty());
    Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: Some(class),
            rules: Some(vec![IngressRule {
                host: env_settings.host.clone(),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: placed.name().to_string(),
                                port: Some(ServiceBackendPort {
                                    name: port,
                                    number: None,
                                }),
                            }),
                            ..Default::default()
                        },
                    }],
                }),
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}
