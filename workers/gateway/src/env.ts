import type { Directory } from "./directory";
import type { RegionHub } from "./region-hub";

export interface Env {
  REGION_HUB: DurableObjectNamespace<RegionHub>;
  DIRECTORY: DurableObjectNamespace<Directory>;
  /** Secret. Bearer token of the admin API; when unset the admin API refuses everything. */
  ADMIN_TOKEN?: string;
  /** Secret. HMAC key that signs node credentials; when unset enrollment and node connects are refused. */
  NODE_CREDENTIAL_KEY?: string;
  /**
   * Local development only (set in .dev.vars, never in wrangler.toml): when "true", the
   * x-client-* headers override request.cf so a laptop can play a client anywhere.
   */
  DEV_TRUST_CLIENT_GEO?: string;
}
