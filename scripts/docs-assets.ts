/**
 * Copies the interactive API reference (Swagger UI's prebuilt bundle, from the pinned
 * swagger-ui-dist package) into the gateway's static assets, so /docs/ works with nothing
 * loaded from elsewhere. Run by `npm run setup` (postinstall); the copies are not committed.
 */
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const REPO_ROOT = new URL("..", import.meta.url).pathname;
const FILES = ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"] as const;

const source = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
const target = join(REPO_ROOT, "workers/gateway/assets/docs/vendor");
mkdirSync(target, { recursive: true });
for (const file of FILES) copyFileSync(join(source, file), join(target, file));
const manifest: unknown = JSON.parse(readFileSync(join(source, "package.json"), "utf8"));
const version = typeof manifest === "object" && manifest !== null && "version" in manifest ? String(manifest.version) : "?";
console.log(`[docs-assets] Swagger UI ${version} copied to workers/gateway/assets/docs/vendor`);
