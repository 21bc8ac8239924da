import { importRequestKey, signRequest, toBase64Url } from "@meridian/protocol";
import { secretForCredential, type CredentialKeys } from "./credentials";

const encoder = new TextEncoder();

/**
 * A node's request-signing key, derived from the deployment secret and the node's
 * credential, so every isolate and hub computes the same key without storage, and a new
 * credential (re-enrollment, a move) gets a new key.
 */
export async function requestKeyFor(secret: string, nodeId: string, credentialId: string): Promise<string> {
  const master = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", master, encoder.encode(`meridian request key v1\n${nodeId}\n${credentialId}`));
  return toBase64Url(new Uint8Array(mac));
}

/**
 * Signs forwarded requests and knows the deployment's loop mark; keys are derived once per
 * node and credential in this isolate.
 */
export class RequestSigner {
  private readonly keys = new Map<string, Promise<CryptoKey>>();
  private loopMark: Promise<string> | null = null;

  /** What the gateway stamps on everything it forwards (LOOP_HEADER); secret-derived, so nobody outside can forge it. */
  mark(keys: CredentialKeys): Promise<string> {
    this.loopMark ??= requestKeyFor(keys.active.secret, "loop-mark", "v1").then((key) => key.slice(0, 22));
    return this.loopMark;
  }

  /** The signature headers for one node (keyed by the key that signed its credential). */
  async headers(keys: CredentialKeys, node: { id: string; credentialId?: string }, method: string, pathAndQuery: string, nowMs: number): Promise<Record<string, string>> {
    const credentialId = node.credentialId;
    const secret = credentialId === undefined ? undefined : secretForCredential(keys, credentialId);
    if (credentialId === undefined || secret === undefined) throw new Error(`node ${node.id} has no credential the gateway can sign for`);
    const cacheKey = `${node.id}\n${credentialId}`;
    let key = this.keys.get(cacheKey);
    if (key === undefined) {
      key = requestKeyFor(secret, node.id, credentialId).then(importRequestKey);
      this.keys.set(cacheKey, key);
      key.catch(() => this.keys.delete(cacheKey));
    }
    return signRequest(await key, method, pathAndQuery, node.id, nowMs);
  }
}
