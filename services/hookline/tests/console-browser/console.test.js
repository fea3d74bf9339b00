// The console in headless Chromium, against a running Hookline started by
// `services/hookline/tests/it/console_browser.rs` (which passes what it started in the
// environment). The tests run in order, in one browser page, like one person using the
// console: each leaves the page and the data as the next expects them.
//
// Elements are found by role, label and text, never by CSS classes. Every page visited is
// saved as a full-page screenshot.

import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

function setting(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined) {
    throw new Error(`${name} is not set: run these tests through console_browser.rs`);
  }
  return value;
}

const baseUrl = setting("HOOKLINE_TEST_BASE_URL");
const apiKey = setting("HOOKLINE_TEST_API_KEY");
const readerKey = setting("HOOKLINE_TEST_READER_KEY");
const receiverUrl = setting("HOOKLINE_TEST_RECEIVER_URL");
const hostileWebhook = setting("HOOKLINE_TEST_HOSTILE_WEBHOOK");
const hostileScript = setting("HOOKLINE_TEST_HOSTILE_SCRIPT");
const hostileImage = setting("HOOKLINE_TEST_HOSTILE_IMAGE");
const chromiumPath = setting("HOOKLINE_TEST_CHROMIUM", "/usr/bin/chromium");
const screenshotDir = setting(
  "HOOKLINE_TEST_SCREENSHOTS",
  fileURLToPath(new URL("../../../../target/console-screenshots", import.meta.url)),
);

// The receiver path the console's webhook points at; the suite switches its answers.
const sinkPath = "/sink";
const sinkUrl = `${receiverUrl}${sinkPath}`;

let browser;
let page;
let screenshots = 0;
// What the page reported that no test expected: console errors (CSP violations among them),
// uncaught exceptions and dialogs.
const problems = [];
// What the tests learn as they go.
const webhook = { id: undefined, secret: undefined };

before(async () => {
  await mkdir(screenshotDir, { recursive: true });
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // Without the background-networking flags Chromium keeps calling home on a closed network.
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const context = await browser.newContext({ baseURL: baseUrl });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  // Reported as a console error too, but spelt out: which directive refused what.
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      const element = event.target instanceof Element ? event.target.outerHTML.slice(0, 200) : "";
      console.error(
        `csp violation on ${location.pathname}: ${event.violatedDirective} refused ` +
          `${event.blockedURI || "inline"} ${event.sample} ${element}`,
      );
    });
  });
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    problems.push(`console error: ${message.text()} (${message.location().url})`);
  });
  page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  page.on("dialog", (dialog) => {
    problems.push(`dialog: ${dialog.type()} ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
});

after(async () => {
  await browser?.close();
});

/** Saves the page (or `of`, another one) as it is now, numbered in the order visited. */
async function screenshot(name, of = page) {
  screenshots += 1;
  const file = path.join(screenshotDir, `${String(screenshots).padStart(2, "0")}-${name}.png`);
  // `caret: "initial"`: hiding the caret leaves `style=""` on inputs, which htmx then copies
  // while swapping pages in, and the console's CSP rightly refuses.
  await of.screenshot({ path: file, fullPage: true, caret: "initial" });
}

/** Takes back the one problem matching `pattern` that a test provoked on purpose. */
function provoked(pattern) {
  const index = problems.findIndex((problem) => pattern.test(problem));
  assert.ok(index >= 0, `no problem matched ${pattern}: ${problems}`);
  problems.splice(index, 1);
}

/** Waits for the page whose main heading is `title` (htmx swaps pages in without a load). */
async function onPage(title) {
  await page.getByRole("heading", { level: 1, name: title }).waitFor();
}

/** Calls `check` until it returns something truthy, at most `seconds`. */
async function eventually(what, check, seconds = 60) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${seconds}s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Opens `url` again and again until `locator` shows. */
async function reloadUntil(what, url, locator) {
  await eventually(what, async () => {
    await page.goto(url);
    return (await locator.count()) > 0;
  });
}

/** A call to the API itself, with the key the console was signed in with. */
async function api(method, apiPath, body) {
  const response = await fetch(`${baseUrl}${apiPath}`, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${apiPath}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/**
 * Makes the receiver answer the console's webhook with success (with `answer`'s body and
 * headers), or 500 "failing on purpose".
 */
async function sinkSucceeds(succeeds, answer = { body: "", headers: [] }) {
  const failForMs = succeeds ? 0 : 60 * 60 * 1000;
  const response = await fetch(`${receiverUrl}/_configure`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ path: sinkPath, secret: webhook.secret, status: 200, fail_for_ms: failForMs, ...answer }),
  });
  assert.equal(response.status, 204);
}

function detailPath() {
  return `/console/webhooks/${webhook.id}`;
}

/** The attempt on the webhook's page of the event `eventId` that ended in `outcome`. */
function attempt(outcome, eventId) {
  return page
    .getByRole("group")
    .filter({ hasText: eventId })
    .filter({ has: page.getByText(outcome, { exact: true }) });
}

test("signing in: a wrong key is refused beside the form, the tenant's key opens the console", async () => {
  await page.goto("/console/webhooks");
  await onPage("Sign in");
  assert.equal(new URL(page.url()).pathname, "/console/sign-in");
  await screenshot("sign-in");

  await page.getByLabel("Tenant API key").fill("hk_not_a_key");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "unauthorized" }).waitFor();
  provoked(/status of 401 \(Unauthorized\).*\/console\/sign-in/);
  await screenshot("sign-in-refused");

  await page.getByLabel("Tenant API key").fill(apiKey);
  await page.getByRole("button", { name: "Sign in" }).click();
  await onPage("Webhooks");
  assert.equal(new URL(page.url()).pathname, "/console/webhooks");
  assert.equal(await page.evaluate(() => typeof window.htmx), "object", "the CSP lets htmx run");
  assert.deepEqual(
    await page.evaluate(() => [...document.scripts].map((script) => script.src || "inline")),
    [`${baseUrl}/console/assets/htmx.min.js`],
  );
  assert.equal(await page.evaluate(() => document.cookie), "", "the session cookie is HttpOnly");
  await screenshot("webhooks");
});

test("creating a webhook shows its secret once", async () => {
  await page.getByRole("link", { name: "New webhook" }).click();
  await onPage("New webhook");
  await screenshot("new-webhook");
  await page.getByLabel("Endpoint URL").fill(sinkUrl);
  await page.getByLabel(/^Other filters/).fill("order.*");
  await page.getByLabel("Description").fill("the browser's webhook");
  await page.getByRole("button", { name: "Create webhook" }).click();
  await onPage("Webhook created");
  await page.getByRole("alert").filter({ hasText: "shown only this once" }).waitFor();
  webhook.secret = await page.getByLabel("Signing secret").inputValue();
  assert.match(webhook.secret, /^whsec_/);
  await sinkSucceeds(true);
  await screenshot("webhook-created");

  await page.reload();
  assert.ok(!(await page.content()).includes(webhook.secret), "a reload shows the secret again");
  await screenshot("after-reload");

  await page.goto("/console/webhooks");
  await page.getByRole("link", { name: sinkUrl }).click();
  await onPage(sinkUrl);
  webhook.id = new URL(page.url()).pathname.split("/").pop();
  assert.ok(!(await page.content()).includes(webhook.secret), "the webhook's page shows the secret");
  await screenshot("webhook");
});

test("a test event shows the endpoint's answer; a published event's attempt opens to its request and response", async () => {
  // The type can be picked from the catalogue as well as typed.
  assert.ok(
    (await page.evaluate(() => [...document.getElementById("test_type").list.options].map((option) => option.value))).includes("hostile.script"),
    "the catalogue's types are offered",
  );
  await page.getByLabel("Data (JSON, optional)").fill('{"probe": true}');
  await page.getByRole("button", { name: "Send test event" }).click();
  // The answer shows beside the form, on the webhook's page.
  const answer = page.getByRole("status", { name: "The endpoint's answer" }).getByRole("definition");
  await answer.filter({ hasText: "succeeded" }).waitFor();
  await answer.filter({ hasText: /^200$/ }).waitFor();
  await onPage(sinkUrl);
  assert.equal(new URL(page.url()).pathname, detailPath(), "the page stays the webhook's");
  await screenshot("test-event");

  const event = await api("POST", "/v1/events", { type: "order.created", data: { probe: "published" } });
  const entry = attempt("succeeded", event.id);
  await reloadUntil("the published event's attempt", detailPath(), entry);
  await entry.getByText("order.created", { exact: true }).click();
  await entry.getByRole("heading", { name: "Request", exact: true }).waitFor();
  await entry.getByRole("heading", { name: "Response", exact: true }).waitFor();
  await entry.getByText(sinkUrl).waitFor();
  // Recorded headers: the signature is shown, the sink's answer headers too.
  await entry.getByText("webhook-signature", { exact: true }).waitFor();
  await entry.getByRole("heading", { name: "Response headers" }).waitFor();
  await entry.getByText('"probe": "published"').waitFor();
  await entry.getByRole("definition").filter({ hasText: /^200$/ }).waitFor();
  await screenshot("attempt");
});

test("deactivating and activating", async () => {
  await page.getByRole("link", { name: "Webhooks", exact: true }).click();
  await onPage("Webhooks");
  const row = page.getByRole("row").filter({ hasText: sinkUrl });
  await row.getByRole("button", { name: "Deactivate" }).click();
  await row.getByText("inactive", { exact: true }).waitFor();
  await row.getByRole("button", { name: "Activate" }).waitFor();
  assert.equal((await api("GET", `/v1/webhooks/${webhook.id}`)).status, "inactive");
  await screenshot("webhooks-deactivated");

  await row.getByRole("link", { name: sinkUrl }).click();
  await onPage(sinkUrl);
  await page.getByRole("button", { name: "Activate" }).click();
  await page.getByRole("button", { name: "Deactivate" }).waitFor();
  await page.getByRole("definition").filter({ hasText: /^active$/ }).waitFor();
  assert.equal((await api("GET", `/v1/webhooks/${webhook.id}`)).status, "active");
  await screenshot("webhook-activated");
});

test("a failing endpoint: the failure shows, and replaying the delivery succeeds", async () => {
  await sinkSucceeds(false);
  const event = await api("POST", "/v1/events", { type: "order.failed", data: { n: 1 } });
  const failed = attempt("failed", event.id);
  await reloadUntil("the failed attempt", detailPath(), failed);
  await failed.getByText("order.failed", { exact: true }).click();
  await failed.getByRole("definition").filter({ hasText: /^500$/ }).waitFor();
  await failed.getByText("failing on purpose").waitFor();
  await screenshot("attempt-failed");

  await page.getByLabel("Outcome").selectOption("failed");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/status=failed/);
  await failed.waitFor();
  assert.equal(await attempt("succeeded", event.id).count(), 0);
  await screenshot("attempts-failed-only");

  await sinkSucceeds(true);
  await failed.getByText("order.failed", { exact: true }).click();
  // The page stays the same: wait for the replay's answer before reloading, which would cancel it.
  const replayAnswered = page.waitForResponse((response) => response.url().endsWith("/replay"));
  await failed.getByRole("button", { name: "Replay this delivery" }).click();
  await replayAnswered;
  await onPage(sinkUrl);
  const replayed = attempt("succeeded", event.id);
  await reloadUntil("the replayed attempt", detailPath(), replayed);
  await replayed.getByText("order.failed", { exact: true }).click();
  await replayed.getByRole("definition").filter({ hasText: /^200$/ }).waitFor();
  await screenshot("attempt-replayed");
});

test("recovering failed deliveries since a time: the job runs to its end", async () => {
  await sinkSucceeds(false);
  const event = await api("POST", "/v1/events", { type: "order.recovered", data: { n: 2 } });
  await reloadUntil("the attempt to recover", detailPath(), attempt("failed", event.id));
  await sinkSucceeds(true);

  // `datetime-local` in UTC, an hour back.
  const since = new Date(Date.now() - 60 * 60 * 1000).toISOString().slice(0, 16);
  await page.getByLabel("Since (UTC)").fill(since);
  await page.getByRole("button", { name: "Replay failed deliveries since then" }).click();
  await onPage("Recovery");
  await screenshot("recovery");
  // The page follows the job by itself (htmx, every two seconds).
  await page.getByRole("definition").filter({ hasText: /^succeeded$/ }).waitFor({ timeout: 60_000 });
  const progress = await page.getByRole("main").innerText();
  const replayed = Number(progress.match(/Replayed so far\s+(\d+)/)?.[1]);
  assert.ok(replayed >= 1, progress);
  // A finished job: no refresh control, and the deliveries it replayed (once attempted).
  assert.equal(await page.getByRole("link", { name: "Refresh progress" }).count(), 0);
  await reloadUntil("the replayed delivery", page.url(), page.getByRole("row").filter({ hasText: "order.recovered" }));
  await screenshot("recovery-done");

  await reloadUntil("the recovered attempt", detailPath(), attempt("succeeded", event.id));
  await screenshot("webhook-recovered");
});

test("a receiver's hostile answer renders as text and runs nothing", async () => {
  const body = `${hostileScript}${hostileImage}`;
  await sinkSucceeds(true, { body, headers: [["X-Note", hostileImage]] });
  try {
    const event = await api("POST", "/v1/events", { type: "order.answered", data: {} });
    const entry = attempt("succeeded", event.id);
    await reloadUntil("the hostile answer's attempt", detailPath(), entry);
    await entry.getByText("order.answered", { exact: true }).click();
    await entry.getByText(body, { exact: true }).waitFor();
    await entry.getByText("x-note", { exact: true }).waitFor();
    await entry.getByText(hostileImage, { exact: true }).waitFor();
    await ranNothing();
    await screenshot("hostile-answer");
  } finally {
    await sinkSucceeds(true);
  }
});

test("a webhook's hostile settings show as text on its page and as values in its edit form", async () => {
  const settings = {
    url: `${receiverUrl}/settings?note=${hostileImage}`,
    events: ["never.*"],
    name: hostileImage,
    description: `${hostileScript} ${hostileImage}`,
    metadata: { note: hostileImage },
    headers: { "X-Note": hostileImage },
  };
  const created = await api("POST", "/v1/webhooks", settings);
  await page.goto(`/console/webhooks/${created.id}`);
  await onPage(created.url);
  await page.getByRole("definition").filter({ hasText: settings.description }).waitFor();
  await page.getByText(`note=${hostileImage}`, { exact: true }).waitFor();
  await ranNothing();

  await page.getByRole("link", { name: "Edit", exact: true }).click();
  await onPage("Edit webhook");
  assert.equal(await page.getByLabel("Endpoint URL").inputValue(), created.url);
  assert.equal(await page.getByLabel("Name", { exact: true }).inputValue(), hostileImage);
  assert.equal(await page.getByLabel("Description", { exact: true }).inputValue(), settings.description);
  assert.equal(await page.getByLabel(/^Metadata/).inputValue(), `note=${hostileImage}`);
  assert.equal(await page.getByLabel(/^Extra request headers/).inputValue(), `X-Note: ${hostileImage}`);
  await ranNothing();
  await screenshot("edit-hostile-webhook");

  await page.goto(`/console/webhooks/${created.id}`);
  await page.getByRole("link", { name: "Delete…" }).click();
  await onPage("Delete webhook");
  await page.getByText("It stops receiving events at once.").waitFor();
  await ranNothing();
  await screenshot("delete-confirmation");
  await page.getByRole("button", { name: "Delete webhook" }).click();
  await onPage("Webhooks");
  assert.equal(await page.getByRole("link", { name: created.url }).count(), 0);
});

test("rotating the secret asks first, then shows the new one once", async () => {
  await page.goto(detailPath());
  await page.getByRole("link", { name: "Rotate secret…" }).click();
  await onPage("Rotate secret");
  await screenshot("rotate-secret-confirmation");
  await page.getByRole("button", { name: "Rotate secret" }).click();
  await onPage("Secret rotated");
  const rotated = await page.getByLabel("Signing secret").inputValue();
  assert.match(rotated, /^whsec_/);
  assert.notEqual(rotated, webhook.secret);
  webhook.secret = rotated;
  await sinkSucceeds(true);
  await screenshot("secret-rotated");
});

test("a key that may only read sees what it may not do disabled, with the scope it needs", async () => {
  const context = await browser.newContext({ baseURL: baseUrl });
  const reader = await context.newPage();
  reader.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  try {
    await reader.goto("/console/sign-in");
    await reader.getByLabel("Tenant API key").fill(readerKey);
    await reader.getByRole("button", { name: "Sign in" }).click();
    await reader.getByRole("heading", { level: 1, name: "Webhooks" }).waitFor();
    await reader.getByText("needs webhooks:manage").first().waitFor();
    assert.equal(await reader.getByRole("link", { name: "New webhook" }).count(), 0);
    await screenshot("reader-webhooks", reader);

    await reader.goto("/console/events");
    await reader.getByRole("heading", { level: 1, name: "Events" }).waitFor();
    const replays = reader.getByRole("button", { name: "Replay" });
    assert.ok((await replays.count()) > 0, "the events' deliveries are listed");
    for (const replay of await replays.all()) {
      assert.ok(await replay.isDisabled());
    }
    await reader.getByText("needs deliveries:replay").first().waitFor();
    await screenshot("reader-events", reader);
  } finally {
    await context.close();
  }
});

test("hostile payloads render as text and run nothing", async () => {
  await page.goto(`/console/webhooks/${hostileWebhook}`);
  await onPage(/\/hostile$/);
  // Attempts are the groups whose summary names an event type (the chart's table is one too).
  const attempts = page.getByRole("group").filter({ has: page.getByText(/^hostile\./) });
  for (const entry of await attempts.all()) {
    await entry.getByText(/^hostile\./).click();
  }
  // Payloads show as pretty-printed JSON, where the image's quotes are escaped.
  await page.getByText(hostileScript).waitFor();
  await page.getByText(JSON.stringify(hostileImage).slice(1, -1)).waitFor();
  await ranNothing();
  await screenshot("hostile-payloads");

  await page.getByRole("link", { name: "Events", exact: true }).click();
  await onPage("Events");
  // The event type's description, as it was registered.
  await page.getByText(hostileImage).waitFor();
  // Each event's payload, opened.
  for (const payload of await page.getByText("Payload", { exact: true }).all()) {
    await payload.click();
  }
  await page.getByText(`"note": "${hostileScript}"`).first().waitFor();
  await ranNothing();
  await screenshot("events");
});

/** Asserts the page holds no injected image and no payload's script ran. */
async function ranNothing() {
  assert.equal(await page.evaluate(() => window.__xss), undefined, "a payload ran script");
  assert.equal(await page.locator("img").count(), 0, "a payload made an image");
  assert.deepEqual(problems, [], "nothing ran: no dialog, no CSP violation, no error");
}

test("at a phone's width the pages fit the screen", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  try {
    for (const [pathname, name] of [["/console/webhooks", "phone-webhooks"], [detailPath(), "phone-webhook"], ["/console/events", "phone-events"]]) {
      await page.goto(pathname);
      await screenshot(name);
      // Wide tables scroll inside their own box; the page itself never scrolls sideways.
      const overflow = await page.evaluate(() => ({
        pixels: document.documentElement.scrollWidth - window.innerWidth,
        culprits: [...document.querySelectorAll("main *")]
          .filter((element) => element.getBoundingClientRect().left + element.scrollWidth > window.innerWidth + 1)
          .map((element) => element.tagName.toLowerCase() + (element.className ? `.${element.className}` : ""))
          .slice(0, 5),
      }));
      assert.ok(overflow.pixels <= 0, `${pathname} is ${overflow.pixels}px wider than the screen: ${overflow.culprits}`);
      assert.deepEqual(await brokenLabels(), [], `${pathname}: headings and badges break mid-word`);
    }
  } finally {
    await page.setViewportSize({ width: 1280, height: 720 });
  }
});

test("at a laptop's width table headings and badges stay on one line", async () => {
  for (const pathname of ["/console/webhooks", detailPath(), "/console/events"]) {
    await page.goto(pathname);
    assert.deepEqual(await brokenLabels(), [], `${pathname}: headings and badges break mid-word`);
  }
});

/**
 * The table headings and status badges on the page whose text runs over more than one line
 * (so "succeeded" never shows as "succeede / d"), as `text: tops of its lines`.
 */
async function brokenLabels() {
  return page.evaluate(() =>
    [...document.querySelectorAll("main th, main .badge")]
      .map((element) => {
        const range = document.createRange();
        range.selectNodeContents(element);
        const tops = new Set([...range.getClientRects()].map((rect) => Math.round(rect.top)));
        return { text: element.textContent, tops: [...tops] };
      })
      .filter(({ tops }) => tops.length > 1)
      .map(({ text, tops }) => `${text}: ${tops}`),
  );
}

test("signing out: the console's pages send to sign-in", async () => {
  await page.getByRole("button", { name: "Sign out" }).click();
  await onPage("Sign in");
  await screenshot("signed-out");
  for (const pathname of ["/console/webhooks", detailPath(), "/console/events"]) {
    await page.goto(pathname);
    assert.equal(new URL(page.url()).pathname, "/console/sign-in", pathname);
  }
});

test("the page reported no errors and no CSP violations", () => {
  assert.deepEqual(problems, []);
});
