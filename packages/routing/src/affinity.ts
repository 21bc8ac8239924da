/**
 * Rendezvous (highest random weight) hashing for session affinity: a key goes to the node of
 * highest weight(key, node) among the candidates. A node leaving moves only the keys it held;
 * a node joining takes ~1/N of the keys. Pure and allocation-free: ids are hashed once (the
 * fleet index keeps each node's id hash), a decision hashes only its key.
 */

/** FNV-1a, 32 bits, over UTF-16 code units: stable across runtimes, cheap for short ids. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3's finaliser: spreads every input bit over the output. */
function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The weight of a node (by its id hash) for a key (by its hash); the highest weight wins. */
export function rendezvousWeight(keyHash: number, idHash: number): number {
  return fmix32(Math.imul(keyHash, 0x9e3779b1) ^ idHash);
}

/** The id of highest weight for `key` among `ids` (ties: the smaller id), or undefined when empty. */
export function rendezvousPick(key: string, ids: readonly string[]): string | undefined {
  const keyHash = hash32(key);
  let best: string | undefined;
  let bestWeight = -1;
  for (const id of ids) {
    const w = rendezvousWeight(keyHash, hash32(id));
    if (w > bestWeight || (w === bestWeight && best !== undefined && id < best)) {
      best = id;
      bestWeight = w;
    }
  }
  return best;
}
