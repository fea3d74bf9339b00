//! `cargo xtask up`: the servers, hookline and a demo webhook receiver, wired
//! together and ready for curl.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::interrupt::Interrupt;
use crate::layout::Layout;
use crate::process::{self, Managed};
use crate::random;
use crate::servers::Servers;
use crate::{cassandra, kafka};

pub const HOOKLINE: &str = "hookline";
pub const RECEIVER: &str = "demo-receiver";

const LISTEN: &str = "127.0.0.1:8080";
const BASE_URL: &str = "http://127.0.0.1:8080";
const RECEIVER_LISTEN: &str = "127.0.0.1:8090";
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// The data of the event the printed curl publishes.
const INVOICE_PAID_DATA: &str = r#"{"amount":4200,"currency":"eur"}"#;
/// The demo tenant's catalogue, so the console's events page shows types with a schema and an
/// example; `invoice.paid` matches the event the printed curl publishes.
const DEMO_EVENT_TYPES: [&str; 2] = [
    r#"{"name":"invoice.paid","description":"An invoice was paid in full.","schema":{"type":"object","required":["amount","currency"],"properties":{"amount":{"type":"integer","minimum":0,"description":"in the currency's minor unit"},"currency":{"type":"string","pattern":"^[a-z]{3}$"}}},"example":{"amount":4200,"currency":"eur"}}"#,
    r#"{"name":"customer.created","description":"A customer signed up.","schema":{"type":"object","required":["id","email"],"properties":{"id":{"type":"string"},"email":{"type":"string"}}},"example":{"id":"cus_123","email":"ada@example.com"}}"#,
];
/// Hookline finishes in-flight deliveries on SIGTERM; give it time to drain.
const DRAIN_GRACE: Duration = Duration::from_secs(60);

pub fn run(layout: &Layout, interrupt: &Interrupt) -> Result<()> {
    let mut servers = Servers::launch(layout)?;
    servers.wait_ready(interrupt)?;

    let built = process::run(&mut layout.cargo(&["build", "-p", "hookline"]), interrupt)?;
    ensure!(
        built.success(),
        "`cargo build -p hookline` failed ({built})"
    );
    let binary = layout.target_dir().join("debug").join("hookline");

    let admin_token = random::hex_token()?;
    let mut serve = Command::new(&binary);
    serve
        .arg("serve")
        .env("HOOKLINE_LISTEN", LISTEN)
        .env("HOOKLINE_KAFKA_BROKERS", kafka::SPEC.addr)
        .env("HOOKLINE_CASSANDRA_NODES", cassandra::SPEC.addr)
        .env("HOOKLINE_ADMIN_TOKEN", &admin_token)
        .env("HOOKLINE_ALLOW_HTTP_URLS", "true")
        // The demo receiver listens on loopback.
        .env("HOOKLINE_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
        .env("HOOKLINE_ALLOW_DEVELOPMENT_SECRET_KEY", "true")
        // The console is served over plain HTTP here.
        .env("HOOKLINE_CONSOLE_INSECURE_COOKIES", "true");
    let mut hookline = Managed::spawn(
        HOOKLINE,
        "hookline serve",
        &mut serve,
        layout.pid_file(HOOKLINE),
    )?;
    wait_ready(&mut hookline, interrupt)?;

    let tenant = post("/v1/tenants", &admin_token, r#"{"name":"demo"}"#)?;
    let tenant_id = json_string(&tenant, "id")?;
    let scopes = r#"["events:publish","webhooks:manage","deliveries:read","deliveries:replay"]"#;
    let key_response = post(
        &format!("/v1/tenants/{tenant_id}/keys"),
        &admin_token,
        &format!(r#"{{"name":"demo","scopes":{scopes}}}"#),
    )?;
    let key = json_string(&key_response, "key")?;
    for event_type in DEMO_EVENT_TYPES {
        post("/v1/event-types", &key, event_type)?;
    }
    let receiver_url = format!("http://{RECEIVER_LISTEN}/webhook");
    let webhook = post(
        "/v1/webhooks",
        &key,
        &format!(r#"{{"url":"{receiver_url}","events":["*"],"description":"demo receiver"}}"#),
    )?;
    let webhook_id = json_string(&webhook, "id")?;
    let secret = json_string(&webhook, "secret")?;

    let mut receive = Command::new(&binary);
    receive.args([
        "demo-receiver",
        "--listen",
        RECEIVER_LISTEN,
        "--secret",
        &secret,
    ]);
    let mut receiver = Managed::spawn(
        RECEIVER,
        "hookline demo-receiver",
        &mut receive,
        layout.pid_file(RECEIVER),
    )?;

    println!(
        r#"
hookline is up

  base url     {BASE_URL}
  console      {BASE_URL}/console (sign in with the api key)
  admin token  {admin_token}
  api key      {key}
  webhook      {webhook_id} -> {receiver_url}

publish an event:
  curl -sS -X POST {BASE_URL}/v1/events -H "Authorization: Bearer {key}" -H 'Content-Type: application/json' -d '{{"type":"invoice.paid","data":{INVOICE_PAID_DATA}}}'

read a delivery (use a webhook-id logged by the demo receiver):
  curl -sS {BASE_URL}/v1/deliveries/<webhook-id> -H "Authorization: Bearer {key}"

press ctrl-c to stop everything
"#
    );

    while !interrupt.is_set() {
        servers.check_running()?;
        for process in [&mut hookline, &mut receiver] {
            if let Some(status) = process.exited() {
                bail!(
                    "{} exited unexpectedly ({status}); its output is above",
                    process.name
                );
            }
        }
        thread::sleep(Duration::from_millis(500));
    }
    hookline.stop(DRAIN_GRACE);
    receiver.stop(Duration::from_secs(10));
    servers.stop();
    Ok(())
}

/// Polls `GET /readyz` until it answers 200.
fn wait_ready(hookline: &mut Managed, interrupt: &Interrupt) -> Result<()> {
    let started = Instant::now();
    loop {
        if interrupt.is_set() {
            bail!("interrupted while hookline was starting");
        }
        if let Some(status) = hookline.exited() {
            bail!("hookline exited ({status}) before it was ready; its output is above");
        }
        let probe = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "2",
            ])
            .arg(format!("{BASE_URL}/readyz"))
            .output()
            .context("could not run curl; is it installed?")?;
        if probe.stdout == b"200" {
            say!(
                "hookline ready on {BASE_URL} in {:.1}s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        ensure!(
            started.elapsed() < READY_TIMEOUT,
            "hookline was not ready after {}s (GET /readyz)",
            READY_TIMEOUT.as_secs()
        );
        thread::sleep(Duration::from_millis(500));
    }
}

/// `POST <path>` with a bearer token and a JSON body; returns the response body.
fn post(path: &str, token: &str, body: &str) -> Result<String> {
    let output = process::output(
        Command::new("curl")
            .args(["-sS", "-X", "POST", &format!("{BASE_URL}{path}")])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .args([
                "-H",
                "Content-Type: application/json",
                "-d",
                body,
                "-w",
                "\n%{http_code}",
            ]),
    )?;
    let (response, status) = output.rsplit_once('\n').unwrap_or(("", &output));
    ensure!(
        status.starts_with('2'),
        "POST {path} answered {status}: {response}"
    );
    Ok(response.to_owned())
}

/// The first string value of `field` in a JSON document; enough for the
/// flat responses above without a JSON parser.
fn json_string(body: &str, field: &str) -> Result<String> {
    let name = format!("\"{field}\"");
    let mut rest = body;
    while let Some(at) = rest.find(&name) {
        rest = &rest[at + name.len()..];
        let value = rest
            .trim_start()
            .strip_prefix(':')
            .map(str::trim_start)
            .and_then(|value| value.strip_prefix('"'));
        if let Some((value, _)) = value.and_then(|value| value.split_once('"')) {
            return Ok(value.to_owned());
        }
    }
    bail!("no string field \"{field}\" in the response: {body}")
}

#[cfg(test)]
mod tests {
    use super::{json_string, DEMO_EVENT_TYPES, INVOICE_PAID_DATA};

    #[test]
    fn finds_string_fields() {
        let body = r#"{"name": "key", "id" : "wh_1", "key":"hk_abc"}"#;
        assert_eq!(json_string(body, "id").unwrap(), "wh_1");
        // "key" first appears as a value, which is skipped.
        assert_eq!(json_string(body, "key").unwrap(), "hk_abc");
        assert!(json_string(body, "secret").is_err());
    }

    #[test]
    fn the_printed_event_is_the_catalogues_example() {
        let invoice_paid = DEMO_EVENT_TYPES[0];
        assert!(invoice_paid.contains(r#""name":"invoice.paid""#));
        assert!(invoice_paid.contains(&format!(r#""example":{INVOICE_PAID_DATA}"#)));
    }
}
