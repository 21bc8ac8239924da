/**
 * The console in a real browser (Debian's Chromium driven by playwright-core) against the
 * local gateway (wrangler dev) with a simulated fleet and one real meridian-node process:
 * sign in, the fleet map and a region's nodes, a killed agent leaving, a policy edit with
 * dry-run, publish and rollback seen in the route explainer, and a viewer who cannot publish.
 * Screenshots go to test/screenshots/ (git-ignored); UPDATE_DOCS_SCREENSHOTS=1 also refreshes
 * the ones docs/ and the README show.
 */
import { silentLogger, startSimulator, type SimulatorHandle } from "@meridian/node-agent";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, ensureDevVars, freePort, startGateway, type LocalGateway } from "../scripts/dev-gateway";
import { startAgent, stopAgent, type AgentProcess } from "./support/agents";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = join(REPO_ROOT, "test/screenshots");
const DOC_SHOTS = process.env.UPDATE_DOCS_SCREENSHOTS === "1";
const EDITOR_TOKEN = "console-e2e-editor-token-0123456789";
const VIEWER_TOKEN = "console-e2e-viewer-token-0123456789";
const AGENT_ID = "con-agent-nrt-1";

let gateway: LocalGateway;
let fleet: SimulatorHandle;
let agent: AgentProcess;
let stateDir: string;
let adminToken: string;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  mkdirSync(SHOTS, { recursive: true });
  adminToken = ensureDevVars().secrets.ADMIN_TOKEN;
  stateDir = mkdtempSync(join(tmpdir(), "meridian-console-e2e-"));
  gateway = await startGateway({ port: await freePort(), persistTo: stateDir, output: "ignore", vars: { EDITOR_TOKEN, VIEWER_TOKEN } });
  [fleet, agent, browser] = await Promise.all([
    startSimulator({ gatewayUrl: gateway.url, adminToken, nodes: 150, seed: 5, prefix: "con", logger: silentLogger }),
    startAgent(gateway.url, adminToken, { id: AGENT_ID, region: "nrt", kind: "gpu", gpu: { class: "h100", vramGb: 80, count: 8 }, heartbeatMs: 500 }),
    chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] }),
  ]);
});

afterAll(async () => {
  await browser?.close();
  if (agent) stopAgent(agent);
  await fleet?.close({ drain: false });
  await gateway?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

async function signIn(token: string, viewport = { width: 1280, height: 800 }): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on("pageerror", (error) => console.log(`[console-e2e] page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") console.log(`[console-e2e] browser console: ${message.text()}`);
  });
  page.setDefaultTimeout(60_000);
  // The module scripts render the form; "load" can wait long on a busy machine for nothing we need.
  await page.goto(`${gateway.url}/console/`, { waitUntil: "domcontentloaded" });
  await page.getByLabel("Admin, editor or viewer token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#nav:not([hidden])").waitFor();
  return { context, page };
}

/** Edits the policy in the browser's editor: the live document plus one rule. */
async function addRule(page: Page, rule: Record<string, unknown>): Promise<void> {
  const editor = page.getByLabel("Region policy: JSON document");
  const document = JSON.parse(await editor.inputValue()) as { rules: unknown[] };
  document.rules.push(rule);
  await editor.fill(JSON.stringify(document, null, 2));
}

async function explainTokyo(page: Page): Promise<{ region: string | null; rules: string[] }> {
  await page.getByRole("button", { name: "Explain the route" }).click();
  const chosen = page.locator("[data-chosen-region], [data-route-error]").first();
  await chosen.waitFor();
  return { region: await chosen.getAttribute("data-chosen-region"), rules: await page.locator("#deciding-rules [data-rule]").evaluateAll((els) => els.map((e) => e.getAttribute("data-rule") ?? "")) };
}

describe("console in a real browser", () => {
  let editorPage: Page;

  it("signs in without the token in the URL and with a locked-down session cookie", { timeout: 120_000 }, async () => {
    const { context, page } = await signIn(EDITOR_TOKEN);
    editorPage = page;
    expect(page.url()).not.toContain(EDITOR_TOKEN);
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === "meridian_console");
    expect(session).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/" });
    expect(session?.value).not.toContain(EDITOR_TOKEN);
    await expect(page.locator("#who").innerText()).resolves.toContain("editor");
  });

  it("draws at least 90 regions with nodes on the map and opens a region's nodes", { timeout: 120_000 }, async () => {
    const page = editorPage;
    const startedAt = performance.now();
    // Polled through locators: the console's CSP (script-src 'self') forbids evaluating strings in the page.
    const dots = page.locator('.region-dot:not([data-nodes="0"])');
    await expect.poll(() => dots.count(), { timeout: 30_000, interval: 250 }).toBeGreaterThanOrEqual(90);
    const regions = await dots.count();
    console.log(`[console-e2e] ${regions} regions with nodes on the map after ${(performance.now() - startedAt).toFixed(0)} ms`);
    expect(regions).toBeGreaterThanOrEqual(90);
    await page.locator('[data-open-region="nrt"]').click();
    await page.locator(`#node-table [data-node="${AGENT_ID}"]`).waitFor({ timeout: 15_000 });
    expect(await page.locator("#node-table tbody tr").count()).toBeGreaterThanOrEqual(2);
    await page.screenshot({ path: join(SHOTS, "fleet-1280.png"), fullPage: false });
    if (DOC_SHOTS) await page.screenshot({ path: join(REPO_ROOT, "docs/console-fleet.png"), fullPage: true, clip: { x: 0, y: 0, width: 1280, height: 1100 } });
  });

  it("sees a killed agent leave the region's table", async () => {
    const page = editorPage;
    const killedAt = performance.now();
    stopAgent(agent);
    await page.locator(`#node-table [data-node="${AGENT_ID}"]`).waitFor({ state: "detached", timeout: 30_000 });
    console.log(`[console-e2e] killed agent gone from the console ${(performance.now() - killedAt).toFixed(0)} ms after kill -9`);
  });

  it("denies a region in the policy editor: dry-run, publish, the explainer changes, rollback", { timeout: 300_000 }, async () => {
    const page = editorPage;
    await page.goto(`${gateway.url}/console/#/route`, { waitUntil: "domcontentloaded" });
    await page.getByLabel("City from the catalog").selectOption("nrt");
    expect((await explainTokyo(page)).region).toBe("nrt");

    await page.goto(`${gateway.url}/console/#/policy`, { waitUntil: "domcontentloaded" });
    await addRule(page, { id: "deny-nrt", effect: "deny", reason: "datacentre audit", match: { nodeRegion: ["nrt"] } });
    await page.locator("#policy-diff .add", { hasText: '"deny-nrt"' }).waitFor();
    await page.locator('#policy-validation [data-valid="true"]').waitFor();
    await page.getByRole("button", { name: "Dry-run impact" }).click();
    await page.locator("#connected-impact").waitFor();
    const deltas = await page.locator("#connected-impact [data-delta]").evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-delta"))));
    console.log(`[console-e2e] dry-run: ${deltas.length} client(s) lose connected nodes (deltas ${[...new Set(deltas)].join(", ")})`);
    expect(deltas.length).toBeGreaterThan(0);
    expect(deltas.every((d) => d < 0)).toBe(true);
    await page.screenshot({ path: join(SHOTS, "policy-dry-run.png"), fullPage: true });
    if (DOC_SHOTS) await page.screenshot({ path: join(REPO_ROOT, "docs/console-policy.png") });

    // Publishing without a reason is refused in the page; with one it goes live as version 2.
    await page.getByRole("button", { name: "Publish" }).click();
    // The browser's own validation stops the form: the reason field is required.
    expect(await page.locator("#policy-reason:invalid").count()).toBe(1);
    expect(await page.locator("#policy-notice [data-published]").count()).toBe(0);
    await page.getByLabel("Reason for the change").fill("audit of nrt");
    await page.getByRole("button", { name: "Publish" }).click();
    await page.locator('#policy-notice [data-published="2"]').waitFor();

    await page.goto(`${gateway.url}/console/#/route`, { waitUntil: "domcontentloaded" });
    await page.getByLabel("City from the catalog").selectOption("nrt");
    const denyFrom = Date.now();
    let after = await explainTokyo(page);
    for (const deadline = denyFrom + 30_000; after.region === "nrt" && Date.now() < deadline; ) after = await explainTokyo(page);
    console.log(`[console-e2e] the explainer showed the deny ${Date.now() - denyFrom} ms after the publish`);
    expect(after.region).not.toBe("nrt");
    expect(after.rules).toContain("deny-nrt");
    await page.screenshot({ path: join(SHOTS, "explainer-after-deny.png"), fullPage: true });

    await page.goto(`${gateway.url}/console/#/policy`, { waitUntil: "domcontentloaded" });
    await page.getByLabel("Reason for the change").fill("audit done");
    await page.locator('[data-rollback="1"]').click();
    await page.locator('#policy-notice [data-published="3"]').waitFor();
    await expect(page.locator("#policy-audit-table").innerText()).resolves.toContain("rollback");

    await page.goto(`${gateway.url}/console/#/route`, { waitUntil: "domcontentloaded" });
    await page.getByLabel("City from the catalog").selectOption("nrt");
    const rollbackFrom = Date.now();
    let back = await explainTokyo(page);
    for (const deadline = rollbackFrom + 30_000; back.region !== "nrt" && Date.now() < deadline; ) back = await explainTokyo(page);
    console.log(`[console-e2e] the explainer showed nrt again ${Date.now() - rollbackFrom} ms after the rollback`);
    expect(back.region).toBe("nrt");
  });

  it("shows a stale publish as a conflict with what changed meanwhile", { timeout: 120_000 }, async () => {
    const page = editorPage;
    await page.goto(`${gateway.url}/console/#/fleet`, { waitUntil: "domcontentloaded" });
    await page.goto(`${gateway.url}/console/#/policy`, { waitUntil: "domcontentloaded" });
    await page.locator('#policy-validation [data-valid="true"]').waitFor();
    // Someone else publishes version 4 behind the editor's back.
    const live = await fetch(`${gateway.url}/admin/policy`, { headers: { authorization: `Bearer ${adminToken}` } });
    const { document } = (await live.json()) as { document: { rules: unknown[] } };
    const put = await fetch(`${gateway.url}/admin/policy`, {
      method: "PUT",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json", "if-match": live.headers.get("etag") ?? "", "x-meridian-reason": "concurrent edit" },
      body: JSON.stringify({ ...document, rules: [...document.rules, { id: "deny-sin", effect: "deny", reason: "meanwhile", match: { nodeRegion: ["sin"] } }] }),
    });
    expect(put.status).toBe(200);
    const { version } = (await put.json()) as { version: number };
    await addRule(page, { id: "deny-syd", effect: "deny", reason: "mine", match: { nodeRegion: ["syd"] } });
    await page.getByLabel("Reason for the change").fill("stale edit");
    await page.getByRole("button", { name: "Publish" }).click();
    await page.locator(`#policy-notice [data-conflict="${version}"]`).waitFor();
    await expect(page.locator("#policy-notice").innerText()).resolves.toContain("deny-sin");
  });

  it("refuses cookie writes without the CSRF token", async () => {
    const status = await editorPage.evaluate(async () => (await fetch("/admin/policy/validate", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status);
    expect(status).toBe(403);
  });

  it("gives a viewer no write controls, and the server refuses a viewer's publish (403)", { timeout: 120_000 }, async () => {
    const { context, page } = await signIn(VIEWER_TOKEN, { width: 390, height: 844 });
    await page.screenshot({ path: join(SHOTS, "fleet-phone.png"), fullPage: true });
    await page.goto(`${gateway.url}/console/#/policy`, { waitUntil: "domcontentloaded" });
    await page.locator("#policy-readonly").waitFor();
    expect(await page.getByRole("button", { name: "Publish" }).count()).toBe(0);
    expect(await page.locator("[data-rollback]").count()).toBe(0);
    expect(await page.getByLabel("Region policy: JSON document").getAttribute("readonly")).not.toBeNull();
    const status = await page.evaluate(async () => {
      const session = (await (await fetch("/console/api/session")).json()) as { csrf: string };
      const res = await fetch("/admin/policy", { method: "PUT", headers: { "content-type": "application/json", "x-meridian-csrf": session.csrf, "if-match": '"v1"', "x-meridian-reason": "viewer try" }, body: "{}" });
      return res.status;
    });
    expect(status).toBe(403);
    await page.screenshot({ path: join(SHOTS, "policy-viewer-phone.png"), fullPage: true });
    await context.close();
  });

  it("keeps the tenants page a marked placeholder outside the navigation", async () => {
    await editorPage.goto(`${gateway.url}/console/#/tenants`);
    await expect(editorPage.locator("main").innerText()).resolves.toContain("issue 11");
    expect(await editorPage.locator('#nav a[href="#/tenants"]').count()).toBe(0);
  });
});
