import type { CredentialClaims } from "./api";
import type { Hello } from "./node-messages";

/** Why a hello does not match the credential it came with, or null when it does. */
export function identityMismatch(claims: CredentialClaims, hello: Hello): string | null {
  if (hello.node !== claims.id) return `credential is for node ${claims.id}, hello claims ${hello.node}`;
  if (hello.kind !== claims.kind) return `credential is for kind ${claims.kind}, hello claims ${hello.kind}`;
  if (hello.capacity > claims.capacity) return `enrolled capacity is ${claims.capacity}, hello claims ${hello.capacity}`;
  const a = claims.gpu;
  const b = hello.gpu;
  if ((a === undefined) !== (b === undefined)) return "hello hardware does not match the enrolled hardware";
  if (a !== undefined && b !== undefined && (a.class !== b.class || a.vramGb !== b.vramGb || a.count !== b.count)) {
    return `enrolled hardware is ${a.count}x ${a.class} ${a.vramGb} GB, hello claims ${b.count}x ${b.class} ${b.vramGb} GB`;
  }
  return null;
}
