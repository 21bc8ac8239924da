/**
 * Every gateway test file starts with one tenant whose key the shared headers carry
 * (helpers.ts: CLIENT_KEY, TOKYO_HEADERS), so tests that are about routing need not make one.
 * It is put straight into the TenantStore through its binding: no production path takes a
 * chosen secret, and the store keeps only the key's hash as it does for every key.
 */
import { env } from "cloudflare:test";
import { beforeAll } from "vitest";
import { tenantStore } from "../src/tenants/durable";
import { TEST_TENANT_ID, TEST_TENANT_KEY } from "./helpers";

beforeAll(async () => {
  const store = tenantStore(env);
  const created = await store.create({ id: TEST_TENANT_ID, name: "Test tenant", hqCountry: "US", limits: { requestsPerMinute: 1_000_000, concurrentRequests: 100_000 } }, "test", "test harness");
  if (!created.ok && created.status !== 409) throw new Error(created.message);
  const key = await store.createKey(TEST_TENANT_ID, "test", "test harness", "shared test key", TEST_TENANT_KEY);
  if (!key.ok && key.code !== "key_exists") throw new Error(key.message);
});
