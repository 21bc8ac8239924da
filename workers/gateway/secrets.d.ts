// Secrets and local-only settings: `wrangler types` cannot see them (they live in `wrangler
// secret put` and .dev.vars), so they are declared here and merged into the generated Env.
interface Env {
  /** Bearer token of the admin role (everything, incl. enrollment, join tokens, forced publishes). */
  ADMIN_TOKEN?: string;
  /** Optional. Bearer token of the editor role: validate, dry-run, publish, rollback. */
  EDITOR_TOKEN?: string;
  /** Optional. Bearer token of the viewer role: read-only admin API. */
  VIEWER_TOKEN?: string;
  /** HMAC key that signs node credentials; when unset enrollment and node connects are refused. */
  NODE_CREDENTIAL_KEY?: string;
  /**
   * Local development only (set in .dev.vars, never in wrangler.toml): when "true", the
   * x-client-* headers override request.cf so a laptop can play a client anywhere.
   */
  DEV_TRUST_CLIENT_GEO?: string;
  /**
   * Opt-in: "true" sends each node the client's country (x-meridian-client-country, ISO code
   * or XX/T1) and nothing finer. By default nodes learn nothing about the client.
   */
  FORWARD_CLIENT_COUNTRY?: string;
  /** Older credential keys, comma-separated: still verified (rotation with overlap), never used to sign. */
  NODE_CREDENTIAL_KEYS_PREVIOUS?: string;
  /**
   * Local runs only: "loopback" lets nodes serve on 127.0.0.1 over http (production demands
   * https on a public hostname); extra entries admit host suffixes, e.g. "loopback,.test".
   */
  DEV_NODE_ENDPOINTS?: string;
  /** Local chaos tests only: "true" enables POST /admin/offload/ledger/:id/crash. */
  DEV_CHAOS_HOOKS?: string;
}
