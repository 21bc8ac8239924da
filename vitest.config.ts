import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        // Pure packages: no I/O, plain Node.
        // Test timeouts are ~10x what a quiet machine needs: CI is a busy 2-core machine.
        test: { name: "packages", include: ["packages/*/test/**/*.test.ts"], environment: "node", testTimeout: 30_000 },
      },
      {
        // The gateway inside workerd with real Durable Object bindings from wrangler.toml.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            // Test-only secrets; production sets them with `wrangler secret put`.
            miniflare: { bindings: { ADMIN_TOKEN: "test-admin-token-0123456789", EDITOR_TOKEN: "test-editor-token-0123456789", VIEWER_TOKEN: "test-viewer-token-0123456789", NODE_CREDENTIAL_KEY: "test-credential-key-0123456789abcdef0123", DEV_TRUST_CLIENT_GEO: "true", DEV_NODE_ENDPOINTS: "loopback,.test", UPSTREAM_HEADERS_TIMEOUT_MS: "300" } },
          }),
        ],
        // tenant-setup.ts gives each test file a tenant whose key the shared client headers carry;
        // FUZZ_CASES sizes the fuzz properties (10k in CI, `npm run fuzz` runs a million).
        test: {
          name: "gateway",
          include: ["workers/gateway/test/**/*.test.ts"],
          exclude: [...configDefaults.exclude, "workers/gateway/test/cells/**"],
          setupFiles: ["workers/gateway/test/tenant-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          provide: { fuzzCases: Number(process.env.FUZZ_CASES ?? 10_000) },
        },
      },
      {
        // The gateway again with hub cells of 3 nodes, so a handful of nodes splits a region
        // into cells (workers/gateway/test/cells; docs/scale.md, "Hubs for crowded regions").
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: { bindings: { ADMIN_TOKEN: "test-admin-token-0123456789", NODE_CREDENTIAL_KEY: "test-credential-key-0123456789abcdef0123", DEV_TRUST_CLIENT_GEO: "true", DEV_NODE_ENDPOINTS: "loopback,.test", HUB_CELL_CAPACITY: "3" } },
          }),
        ],
        test: {
          name: "gateway-cells",
          include: ["workers/gateway/test/cells/**/*.test.ts"],
          setupFiles: ["workers/gateway/test/tenant-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        // Real processes and sockets on 127.0.0.1: wrangler dev, ws agents, HTTP clients.
        test: {
          name: "e2e",
          include: ["test/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
