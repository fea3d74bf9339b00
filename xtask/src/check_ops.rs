//! `cargo xtask check-ops`: checks the deployment files without a cluster or a container
//! engine, with tools from package registries only:
//!
//! - `promtool` (Debian's `prometheus` package): the Prometheus config and alert rules parse,
//!   and the alert rules pass their unit tests (`deploy/prometheus/alerts_test.yml`);
//! - `kubectl kustomize` (or kustomize from the Go module proxy when kubectl is missing):
//!   every overlay of `deploy/k8s` renders;
//! - `check_ops.py` in a virtualenv with `kubernetes-validate` (the Kubernetes OpenAPI schemas)
//!   and `jsonschema`: the rendered objects validate strictly, `docker-compose.yml` validates
//!   against the Compose specification schema (from the compose-go module) and agrees with
//!   the Kubernetes config, and every PromQL expression of the dashboards parses and names
//!   metrics the services register.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

use anyhow::{ensure, Context, Result};

use crate::interrupt::Interrupt;
use crate::layout::Layout;
use crate::{check_ops_live, debian, process, python};

const PYTHON_REQUIREMENTS: &[&str] = &[
    "kubernetes-validate==1.37.0",
    "jsonschema==4.26.0",
    "PyYAML==6.0.3",
];
/// The Go module that carries the Compose specification's JSON schema.
const COMPOSE_GO: &str = "github.com/compose-spec/compose-go/v2@v2.16.2";
const KUSTOMIZE: &str = "sigs.k8s.io/kustomize/kustomize/v5@v5.5.0";
/// Kustomize roots rendered and validated, by the name of their output file.
const OVERLAYS: &[(&str, &str)] = &[
    ("base", "deploy/k8s/base"),
    ("production", "deploy/k8s/overlays/production"),
    ("production-keda", "deploy/k8s/overlays/production-keda"),
];

/// The offline checks; with `live`, then the checks against a running stack
/// ([`check_ops_live`]).
pub fn run(layout: &Layout, interrupt: &Interrupt, live: bool) -> Result<()> {
    let promtool = debian::ensure_program("promtool", "prometheus", interrupt)?;
    let prometheus = layout.root.join("deploy/prometheus");
    for args in [
        &["check", "config", "prometheus.yml"][..],
        &["test", "rules", "alerts_test.yml"][..],
    ] {
        let status = process::run(
            Command::new(&promtool).args(args).current_dir(&prometheus),
            interrupt,
        )?;
        ensure!(status.success(), "promtool {} failed", args.join(" "));
    }

    let rendered = layout.local.join("ops");
    fs::create_dir_all(&rendered)?;
    let kustomize = kustomize_command(layout, interrupt)?;
    for (name, root) in OVERLAYS {
        let mut command = Command::new(&kustomize[0]);
        command.args(&kustomize[1..]).arg(layout.root.join(root));
        let manifests = process::output(&mut command)?;
        fs::write(rendered.join(format!("{name}.yaml")), manifests)?;
    }

    let python = python::ensure_named_venv(layout, interrupt, "ops-venv", PYTHON_REQUIREMENTS)?;
    let compose_schema = go_module_dir(COMPOSE_GO)?.join("schema/compose-spec.json");
    let status = process::run(
        Command::new(&python)
            .arg(layout.root.join("xtask/src/check_ops.py"))
            .arg("offline")
            .arg(&layout.root)
            .arg(&rendered)
            .arg(compose_schema)
            .arg(&promtool),
        interrupt,
    )?;
    ensure!(status.success(), "deployment checks failed");
    say!("deployment files ok");
    if live {
        check_ops_live::run(layout, interrupt, &python, &promtool)?;
        say!("dashboards and alert rules ok against a running stack");
    }
    Ok(())
}

/// `kubectl kustomize` when kubectl is installed, else kustomize built once from the Go module
/// proxy into `target/hookline-local/bin`.
fn kustomize_command(layout: &Layout, interrupt: &Interrupt) -> Result<Vec<PathBuf>> {
    if let Some(kubectl) = debian::on_path("kubectl") {
        return Ok(vec![kubectl, "kustomize".into()]);
    }
    let bin = layout.local.join("bin");
    let kustomize = bin.join("kustomize");
    if !kustomize.is_file() {
        let status = process::run(
            Command::new("go")
                .args(["install", KUSTOMIZE])
                .env("GOBIN", &bin),
            interrupt,
        )?;
        ensure!(status.success(), "go install {KUSTOMIZE} failed");
    }
    Ok(vec![kustomize, "build".into()])
}

/// Where the Go module cache holds `module` (downloaded through the module proxy when missing).
fn go_module_dir(module: &str) -> Result<PathBuf> {
    // Outside any Go module, so no go.mod is read or written.
    let json = process::output(
        Command::new("go")
            .args(["mod", "download", "-json", module])
            .current_dir(env::temp_dir()),
    )?;
    let dir = json
        .lines()
        .find_map(|line| line.trim().strip_prefix("\"Dir\": \""))
        .and_then(|rest| rest.strip_suffix("\","))
        .with_context(|| format!("`go mod download` did not tell where {module} is"))?;
    Ok(Path::new(dir).to_path_buf())
}
