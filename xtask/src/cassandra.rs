//! A single-node Cassandra on loopback.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::layout::Layout;
use crate::maven::{self, Artifact};
use crate::servers::{self, Spec};

const VERSION: &str = "5.0.6";

pub const SPEC: Spec = Spec {
    name: "cassandra",
    addr: "127.0.0.1:9042",
    marker: "org.apache.cassandra.service.CassandraDaemon",
    ready_line: "Starting listening for CQL clients",
    prepare,
};

const ARTIFACTS: [Artifact; 1] = [Artifact::new(
    "org.apache.cassandra",
    "cassandra-all",
    VERSION,
)];

/// From Cassandra 5.0's `conf/jvm17-server.options`: the JDK internals it
/// (and its jamm, chronicle and netty dependencies) reach into.
const JPMS_OPTIONS: &[&str] = &[
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports=java.sql/java.sql=ALL-UNNAMED",
    "--add-exports=java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports=jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "-Djdk.attach.allowAttachSelf=true",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
];

/// Heap, GC and single-node start-up shortcuts.
const JVM_OPTIONS: &[&str] = &[
    // Cassandra always calls mlockall(MCL_CURRENT); where that succeeds (as
    // root), an -Xms of 1g means faulting in the whole heap: ~5 s on 2 cores.
    "-Xms256m",
    // Every test makes a keyspace of its own: a server kept running across many runs holds
    // hundreds of tables, whose memtables and metadata outgrew a 1 GiB heap.
    "-Xmx3g",
    "-Xss512k",
    "-XX:+UseG1GC",
    "-XX:+ParallelRefProcEnabled",
    "-XX:MaxTenuringThreshold=1",
    "-XX:G1HeapRegionSize=16m",
    "-XX:MaxGCPauseMillis=300",
    "-XX:+PerfDisableSharedMem",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.net.preferIPv4Stack=true",
    "-Dchronicle.analytics.disable=true",
    "-Dcassandra-foreground=yes",
    "-Dcassandra.ring_delay_ms=0",
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    "-Dcassandra.superuser_setup_delay_ms=0",
];

fn prepare(layout: &Layout, dir: &Path) -> Result<Command> {
    let libs = maven::fetch(
        &layout.cache.join(format!("cassandra-{VERSION}")),
        &ARTIFACTS,
    )?;
    let jamm = maven::find_jar(&libs, "jamm")?;
    let conf = dir.join("conf");
    let data = dir.join("data");
    let triggers = conf.join("triggers");
    fs::create_dir_all(&triggers).context("could not create the cassandra conf dir")?;
    let yaml = conf.join("cassandra.yaml");
    fs::write(&yaml, cassandra_yaml(&data)).context("could not write cassandra.yaml")?;
    let logback = conf.join("logback.xml");
    fs::write(&logback, LOGBACK).context("could not write logback.xml")?;

    let mut command = servers::java();
    command
        .arg(format!("-javaagent:{}", jamm.display()))
        .args(JVM_OPTIONS)
        .args(JPMS_OPTIONS)
        .arg(format!("-Dcassandra.config=file://{}", yaml.display()))
        .arg(format!("-Dcassandra.logdir={}", dir.display()))
        .arg(format!("-Dcassandra.storagedir={}", data.display()))
        .arg(format!("-Dlogback.configurationFile={}", logback.display()))
        .arg(format!("-Dcassandra.triggers_dir={}", triggers.display()))
        .arg("-cp")
        .arg(format!("{}:{}/*", conf.display(), libs.display()))
        .arg("org.apache.cassandra.service.CassandraDaemon");
    Ok(command)
}

fn cassandra_yaml(data: &Path) -> String {
    let dir = |name: &str| format!("{:?}", data.join(name).display().to_string());
    format!(
        "\
cluster_name: hookline-local
num_tokens: 16
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: \"127.0.0.1:7000\"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: 7000
native_transport_port: 9042
start_native_transport: true
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
# a write is acknowledged once its commit log is on disk: `periodic` would lose the writes of
# the last seconds to a kill -9 (the chaos run's), which a single node has no replica to restore
commitlog_sync: batch
data_file_directories:
  - {data_files}
commitlog_directory: {commitlog}
hints_directory: {hints}
saved_caches_directory: {saved_caches}
cdc_raw_directory: {cdc_raw}
# a fresh single-node cluster: no need to stay readable by 4.x
storage_compatibility_mode: NONE
# tests drop and truncate tables often; snapshots would only cost time and disk
auto_snapshot: false
# the ledger writes the attempts it holds at once in one unlogged batch (at most about 32 KiB,
# across up to 80 partitions): warn only above that
batch_size_warn_threshold: 40KiB
unlogged_batch_across_partitions_warn_threshold: 100
",
        data_files = dir("data"),
        commitlog = dir("commitlog"),
        hints = dir("hints"),
        saved_caches = dir("saved_caches"),
        cdc_raw = dir("cdc_raw"),
    )
}

const LOGBACK: &str = r#"<configuration scan="false">
  <appender name="console" class="ch.qos.logback.core.ConsoleAppender">
    <encoder>
      <pattern>%-5level [%thread] %date{ISO8601} %logger{0} - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="console" />
  </root>
</configuration>
"#;
