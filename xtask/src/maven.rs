//! Fetches server jars (with their dependencies) from Maven Central, once.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::process;

/// Maven coordinates: group id, artifact id, version.
pub struct Artifact(&'static str, &'static str, &'static str);

impl Artifact {
    pub const fn new(group: &'static str, artifact: &'static str, version: &'static str) -> Self {
        Self(group, artifact, version)
    }
}

/// Returns `<dir>/libs` holding `artifacts` and everything they depend on.
/// The first call runs Maven; later calls only compare a marker file, so they
/// are instant and work offline.
pub fn fetch(dir: &Path, artifacts: &[Artifact]) -> Result<PathBuf> {
    let libs = dir.join("libs");
    let marker = dir.join(".fetched");
    let pom = pom(artifacts);
    if fs::read_to_string(&marker).is_ok_and(|fetched| fetched == pom) {
        return Ok(libs);
    }

    let started = Instant::now();
    say!(
        "fetching jars into {} with maven (first run only)",
        libs.display()
    );
    if libs.exists() {
        fs::remove_dir_all(&libs).with_context(|| format!("could not clear {}", libs.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    fs::write(dir.join("pom.xml"), &pom).context("could not write pom.xml")?;
    // Quiet maven prints only errors (and stray terminal resets); show them on failure.
    process::output(
        Command::new("mvn")
            .args(["-q", "-B", "-f", "pom.xml", "dependency:copy-dependencies"])
            .arg("-DoutputDirectory=libs")
            .current_dir(dir),
    )
    .context("maven could not fetch the jars")?;
    fs::write(&marker, &pom).context("could not write the fetch marker")?;
    say!("fetched jars in {:.1}s", started.elapsed().as_secs_f64());
    Ok(libs)
}

fn pom(artifacts: &[Artifact]) -> String {
    let dependencies: String = artifacts
        .iter()
        .map(|Artifact(group, artifact, version)| {
            format!(
                "    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>\
                 <version>{version}</version></dependency>\n"
            )
        })
        .collect();
    format!(
        r#"<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.hookline.local</groupId>
  <artifactId>servers</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{dependencies}  </dependencies>
</project>
"#
    )
}

/// The jar in `libs` whose file name starts with `prefix` followed by a version.
pub fn find_jar(libs: &Path, prefix: &str) -> Result<PathBuf> {
    let entries =
        fs::read_dir(libs).with_context(|| format!("could not list {}", libs.display()))?;
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let versioned = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|rest| {
                rest.starts_with(|c: char| c.is_ascii_digit()) && rest.ends_with(".jar")
            });
        if versioned {
            return Ok(path);
        }
    }
    anyhow::bail!("no {prefix}-<version>.jar in {}", libs.display())
}
