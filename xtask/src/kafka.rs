//! A single-node KRaft Kafka broker on loopback.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::layout::Layout;
use crate::maven::{self, Artifact};
use crate::servers::{self, Spec};
use crate::{process, random};

const VERSION: &str = "4.1.1";

pub const SPEC: Spec = Spec {
    name: "kafka",
    addr: "127.0.0.1:9092",
    marker: "kafka.Kafka",
    ready_line: "Kafka Server started",
    prepare,
};

const ARTIFACTS: [Artifact; 4] = [
    Artifact::new("org.apache.kafka", "kafka_2.13", VERSION),
    Artifact::new("org.apache.kafka", "kafka-storage", VERSION),
    // Kafka's own jars carry no logging backend, and they pull slf4j-api 1.7,
    // which only binds through log4j-slf4j-impl (not the slf4j2 variant).
    Artifact::new("org.apache.logging.log4j", "log4j-slf4j-impl", "2.24.3"),
    Artifact::new("org.apache.logging.log4j", "log4j-core", "2.24.3"),
];

fn prepare(layout: &Layout, dir: &Path) -> Result<Command> {
    let libs = maven::fetch(&layout.cache.join(format!("kafka-{VERSION}")), &ARTIFACTS)?;
    let classpath = format!("{}/*", libs.display());
    let properties = dir.join("server.properties");
    fs::write(&properties, server_properties(&dir.join("data")))
        .context("could not write server.properties")?;
    let log4j = dir.join("log4j2.properties");
    fs::write(&log4j, LOG4J).context("could not write log4j2.properties")?;
    let log4j_option = format!("-Dlog4j2.configurationFile={}", log4j.display());

    let started = Instant::now();
    process::output(
        servers::java()
            .args([
                "-Xmx256m",
                &log4j_option,
                "-cp",
                &classpath,
                "kafka.tools.StorageTool",
            ])
            .args([
                "format",
                "--standalone",
                "-t",
                &random::kafka_cluster_id()?,
                "-c",
            ])
            .arg(&properties),
    )
    .context("could not format the kafka storage")?;
    say!(
        "formatted kafka storage in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let mut command = servers::java();
    command
        .args([
            "-Xms512m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
        ])
        .args([
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
        ])
        .args([
            "-Djava.awt.headless=true",
            &log4j_option,
            "-cp",
            &classpath,
            "kafka.Kafka",
        ])
        .arg(&properties);
    Ok(command)
}

fn server_properties(data: &Path) -> String {
    format!(
        "\
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:9093
listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
advertised.listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
",
        data = data.display()
    )
}

const LOG4J: &str = "\
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
# every client and server logs its full configuration at info
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = warn
";
