/**
 * Hub cells: a region whose nodes would not fit in one RegionHub (a Durable Object holds at
 * most 32,768 hibernating WebSockets) is split into cells, one hub each. Cell 0's hub keeps
 * the region's own name, so a region that never fills one hub is exactly what it was before
 * cells existed; cell k ≥ 1 is `<region>/<k>`. Routing never sees cells: records carry the
 * region, whichever cell's hub holds the socket.
 */

/** Cloudflare's limit of hibernating WebSockets per Durable Object: no cell may be set above it. */
export const HUB_SOCKET_LIMIT = 32_768;

/**
 * Nodes per cell unless configured: below the socket limit, because a node that reconnects
 * holds two sockets until the hub notices the old one is gone, and after a network blip at
 * a colo many nodes do that at once. About 8 % headroom.
 */
export const DEFAULT_HUB_CELL_CAPACITY = 30_000;

/** Above this many cells a region is refused rather than split further (a runaway guard). */
export const MAX_CELLS_PER_REGION = 1024;

const CELL_SEPARATOR = "/";

/** The Durable Object name of a region's cell. */
export function hubName(region: string, cell: number): string {
  if (!Number.isInteger(cell) || cell < 0) throw new RangeError(`cell ${cell} is not a non-negative integer`);
  return cell === 0 ? region : `${region}${CELL_SEPARATOR}${cell}`;
}

/** The region and cell a hub name stands for; null for a name hubName cannot have made. */
export function parseHubName(name: string): { region: string; cell: number } | null {
  const at = name.indexOf(CELL_SEPARATOR);
  if (at === -1) return name.length > 0 ? { region: name, cell: 0 } : null;
  const region = name.slice(0, at);
  const digits = name.slice(at + 1);
  // Canonical only: "lhr/01" or "lhr/0" would be a second name for some hub.
  if (region.length === 0 || !/^[1-9][0-9]*$/.test(digits)) return null;
  const cell = Number(digits);
  return Number.isSafeInteger(cell) ? { region, cell } : null;
}

/** The hub names of a region that has `cellCount` cells (cell 0 always exists). */
export function hubNamesOf(region: string, cellCount: number): string[] {
  return Array.from({ length: Math.max(1, cellCount) }, (_, cell) => hubName(region, cell));
}

/**
 * A cell capacity from configuration text (the HUB_CELL_CAPACITY var): a positive integer no
 * larger than the socket limit; anything else (unset, a typo) gives the default.
 */
export function parseCellCapacity(raw: string | undefined): number {
  if (raw === undefined || !/^\s*[0-9]+\s*$/.test(raw)) return DEFAULT_HUB_CELL_CAPACITY;
  const value = Number(raw);
  return value >= 1 && value <= HUB_SOCKET_LIMIT ? value : DEFAULT_HUB_CELL_CAPACITY;
}

/**
 * The cell for a node of a region, given how many of the region's other nodes each cell
 * holds now (`counts[k]` for cell k; missing cells hold none) and the capacity of a cell.
 * A node that already has a cell (`current`) keeps it while it has room, so its hub does not
 * change across re-enrollments; otherwise the lowest cell with room, so cells fill in order
 * and freed places are reused before a new hub is woken. Null when every allowed cell is full.
 */
export function assignCell(counts: ReadonlyMap<number, number>, capacity: number, current: number | null = null): number | null {
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity ${capacity} must be a positive integer`);
  const hasRoom = (cell: number) => (counts.get(cell) ?? 0) < capacity;
  if (current !== null && current >= 0 && current < MAX_CELLS_PER_REGION && hasRoom(current)) return current;
  for (let cell = 0; cell < MAX_CELLS_PER_REGION; cell++) if (hasRoom(cell)) return cell;
  return null;
}
