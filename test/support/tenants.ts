/**
 * Tenants for end-to-end tests: each test file makes its own through the admin API, as an
 * operator would, and sends its key the way OpenAI clients do.
 */
export interface TenantKey {
  tenant: string;
  keyId: string;
  key: string;
  /** The header a client sends: Authorization: Bearer <key>. */
  auth: { authorization: string };
}

/** Limits far above what a test sends, for tests that are not about limits. */
export const GENEROUS_LIMITS = { requestsPerMinute: 1_000_000, concurrentRequests: 10_000 };

export async function createTenantKey(gatewayUrl: string, adminToken: string, tenant: Record<string, unknown> & { id: string }): Promise<TenantKey> {
  const headers = { authorization: `Bearer ${adminToken}`, "content-type": "application/json", "x-meridian-reason": "end-to-end test tenant" };
  const created = await fetch(`${gatewayUrl}/admin/tenants`, { method: "POST", headers, body: JSON.stringify({ name: tenant.id, hqCountry: "US", limits: GENEROUS_LIMITS, ...tenant }) });
  if (created.status !== 201 && created.status !== 409) throw new Error(`create tenant ${tenant.id}: ${created.status} ${await created.text()}`);
  const res = await fetch(`${gatewayUrl}/admin/tenants/${tenant.id}/keys`, { method: "POST", headers, body: "{}" });
  if (res.status !== 201) throw new Error(`create key for ${tenant.id}: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { id: string; key: string };
  return { tenant: tenant.id, keyId: body.id, key: body.key, auth: { authorization: `Bearer ${body.key}` } };
}
