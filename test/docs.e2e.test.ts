/**
 * The API description as the local gateway (wrangler dev) serves it: /openapi.json validates
 * against the OpenAPI 3.1 schema (a validator that needs Node, hence here and not in the
 * workerd project), and /docs renders it in a real browser (Debian's Chromium driven by
 * playwright-core) with every operation listed and nothing loaded from another origin.
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, ensureDevVars, freePort, startGateway, type LocalGateway } from "../scripts/dev-gateway";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = join(REPO_ROOT, "test/screenshots");

let gateway: LocalGateway;
let stateDir: string;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  mkdirSync(SHOTS, { recursive: true });
  ensureDevVars();
  stateDir = mkdtempSync(join(tmpdir(), "meridian-docs-e2e-"));
  [gateway, browser] = await Promise.all([
    startGateway({ port: await freePort(), persistTo: stateDir, output: "ignore" }),
    chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] }),
  ]);
});

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

async function servedDocument(): Promise<{ paths: Record<string, Record<string, unknown>> }> {
  const res = await fetch(`${gateway.url}/openapi.json`);
  expect(res.status).toBe(200);
  return (await res.json()) as { paths: Record<string, Record<string, unknown>> };
}

describe("API reference", () => {
  it("serves an OpenAPI 3.1 document that validates", async () => {
    const document = await servedDocument();
    const validator = new Validator();
    const result = await validator.validate(document);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
    const operations = Object.values(document.paths).reduce((n, item) => n + Object.keys(item).length, 0);
    console.log(`[docs-e2e] /openapi.json: ${Object.keys(document.paths).length} paths, ${operations} operations, valid OpenAPI ${validator.version}`);
  });

  it("renders every operation at /docs with nothing from another origin", async () => {
    const document = await servedDocument();
    const operations = Object.values(document.paths).reduce((n, item) => n + Object.keys(item).length, 0);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(60_000);
    const foreign: string[] = [];
    const problems: string[] = [];
    const origin = new URL(gateway.url).origin;
    page.on("request", (request) => {
      const url = new URL(request.url());
      if (url.protocol.startsWith("http") && url.origin !== origin) foreign.push(request.url());
    });
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`);
    });
    await page.goto(`${gateway.url}/docs`, { waitUntil: "domcontentloaded" });
    expect(new URL(page.url()).pathname).toBe("/docs/");
    await page.getByRole("heading", { name: "Meridian gateway", exact: false }).first().waitFor();
    const blocks = page.locator(".opblock");
    await expect.poll(() => blocks.count(), { timeout: 60_000 }).toBe(operations);
    // One operation opened: its parameters and the error shape are there.
    await page.locator('.opblock-summary-path[data-path="/admin/nodes/{id}/revoke"]').click();
    await page.locator(".parameters-col_name", { hasText: "x-meridian-reason" }).waitFor();
    await page.getByText("node_not_found").first().waitFor();
    await page.screenshot({ path: join(SHOTS, "docs.png") });
    console.log(`[docs-e2e] /docs rendered ${await blocks.count()} operations; foreign requests: ${foreign.length}; problems: ${problems.length}`);
    expect(foreign).toEqual([]);
    expect(problems).toEqual([]);
    await context.close();
  });
});
