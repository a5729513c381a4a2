#!/usr/bin/env bash
# Validates what `devenv export --k8s` wrote to OUTDIR: every overlay renders
# with kustomize, every rendered object passes the Kubernetes schemas in
# strict mode, and checkov fails no check (the checks a workload accepts on
# purpose carry a `checkov.io/skipN` annotation with the reason, so checkov
# lists them as skipped). A chart (`--format helm`, OUTDIR holds Chart.yaml)
# passes `helm lint --strict` and is rendered with each values-<env>.yaml.
#
# Usage: scripts/validate-k8s.sh OUTDIR
# Needs on PATH: kubectl (or helm, for a chart), kubernetes-validate, checkov.
# K8S_VERSION picks the schema version (default 1.33.0, as k8s-openapi's v1_33).
set -euo pipefail

out=${1:?usage: scripts/validate-k8s.sh OUTDIR}
version=${K8S_VERSION:-1.33.0}
rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT

shopt -s nullglob
overlays=("$out"/overlays/*/)
plain=("$out"/*.yaml)
values=()
if [[ -f "$out/Chart.yaml" ]]; then
    plain=()
    values=("$out"/values-*.yaml)
fi
if (( ${#overlays[@]} == 0 && ${#plain[@]} == 0 && ${#values[@]} == 0 )); then
    echo "error: \`$out\` holds neither overlays, a plain export nor a chart" >&2
    exit 2
fi

if (( ${#values[@]} > 0 )); then
    echo "helm lint --strict"
    helm lint --strict --quiet "$out"
fi
for file in "${values[@]}"; do
    env=$(basename "$file" .yaml)
    env=${env#values-}
    # Into a namespace, as `helm upgrade --install -n NS` does (the chart holds none).
    helm template release "$out" -n "release-$env" -f "$file" > "$rendered/helm-$env.yaml"
    echo "helm template: $env renders $(grep -c '^kind:' "$rendered/helm-$env.yaml") objects"
done

for overlay in "${overlays[@]}"; do
    env=$(basename "$overlay")
    kubectl kustomize "$overlay" > "$rendered/$env.yaml"
    echo "kustomize: overlays/$env renders $(grep -c '^kind:' "$rendered/$env.yaml") objects"
done
for file in "${plain[@]}"; do
    cp "$file" "$rendered/plain-$(basename "$file")"
done

echo "kubernetes-validate --strict -k $version"
kubernetes-validate --strict --quiet -k "$version" "$rendered"/*.yaml

echo "checkov --framework kubernetes"
checkov --framework kubernetes --skip-download --quiet --compact -d "$rendered"
