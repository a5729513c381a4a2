#!/usr/bin/env bash
# Validates what `devenv export --k8s` wrote to OUTDIR: every overlay renders
# with kustomize, every rendered object passes the Kubernetes schemas in
# strict mode, and checkov fails no check (the checks a workload accepts on
# purpose carry a `checkov.io/skipN` annotation with the reason, so checkov
# lists them as skipped). A chart (`--format helm`, OUTDIR holds Chart.yaml)
# passes `helm lint --strict` and is rendered with each values-<env>.yaml.
#
# Then trivy's misconfiguration checks (`trivy config`, its embedded checks,
# offline) run on the same rendered objects: a HIGH or CRITICAL finding
# fails, and so does a "ConfigMap with sensitive content" (AVD-KSV-01010)
# naming a key other than the two its heuristics misread (below); the counts
# per severity are printed.
#
# Usage: scripts/validate-k8s.sh OUTDIR
# Needs on PATH: kubectl (or helm, for a chart), kubernetes-validate, checkov,
# trivy, python3.
# K8S_VERSION picks the schema version (default 1.33.0, as k8s-openapi's v1_33).
set -euo pipefail

out=${1:?usage: scripts/validate-k8s.sh OUTDIR}
version=${K8S_VERSION:-1.33.0}
rendered=$(mktemp -d)
report=$(mktemp)
trap 'rm -rf "$rendered" "$report"' EXIT

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

echo "trivy config (embedded checks, offline)"
trivy config --quiet --skip-check-update --format json --output "$report" "$rendered"
python3 - "$report" <<'PY'
import collections, json, re, sys

# AVD-KSV-01010 flags a ConfigMap by regular expressions over its keys and
# values. Two of its matches are not secrets, and stay in the ConfigMap:
# - `*_PORT` (`DB_PORT: "3306"`): its passport/IBAN pattern `^[A-Z0-9<]{3,20}$`
#   matches any number of three digits or more;
# - `*_USERNAME` (`DB_USERNAME`): a login name, not a credential; its password
#   is in the Secret (SES's SMTP username, an access key ID, is moved there).
# Any other key it names (an e-mail address, a `*KEY`) fails.
explained = re.compile(r"^[A-Z0-9_]*(_PORT|USERNAME)$")
report = json.load(open(sys.argv[1]))
counts, failed, waived = collections.Counter(), [], 0
for result in report.get("Results") or []:
    for finding in result.get("Misconfigurations") or []:
        if finding.get("Status") != "FAIL":
            continue
        severity, message = finding["Severity"], finding["Message"]
        counts[severity] += 1
        line = f"{result['Target']}: {finding['AVDID']} ({severity}): {message}"
        if finding["AVDID"] == "AVD-KSV-01010":
            keys = re.findall(r'"([^"]+)"', message.rsplit("value(s)", 1)[-1])
            if keys and all(explained.match(key) for key in keys):
                waived += 1
                continue
            failed.append(line)
        elif severity in ("HIGH", "CRITICAL"):
            failed.append(line)
        else:
            print(f"  note: {line}")
summary = ", ".join(f"{s}: {counts[s]}" for s in ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"))
print(f"trivy: {summary}; {waived} ConfigMap findings explained (ports, usernames); {len(failed)} failing")
for line in failed:
    print(f"  FAIL {line}")
sys.exit(1 if failed else 0)
PY
