// The shape of a territory outline: its own module, so the generated data and the code that
// reads it both depend on it rather than on each other.

/** A position as GeoJSON orders it: [longitude, latitude] in decimal degrees. */
export type Position = readonly [lon: number, lat: number];
/** A closed ring (first position repeated last). */
export type Ring = readonly Position[];

/** GeoJSON-like polygon: the first ring is the outline, any further rings are holes. */
export interface PolygonGeometry {
  readonly type: "Polygon";
  readonly coordinates: readonly Ring[];
}

/**
 * A sanctioned territory that geo-IP may place in another country: the shape wins over the
 * reported country. Generated from infra/territories/*.json (see scripts/territories.ts).
 */
export interface TerritoryFeature {
  readonly type: "Feature";
  /** Stable id, e.g. "crimea"; named in client decisions and logs. */
  readonly id: string;
  readonly properties: {
    readonly name: string;
    /** ISO 3166-1 country the territory belongs to (de jure). */
    readonly country: string;
    /** ISO 3166-2 subdivision the policy judges it as, e.g. UA-43. */
    readonly subdivision: string;
    /** Non-ISO subdivision codes some geo-IP databases report for it (e.g. RU-CR). */
    readonly geoIpAliases: readonly string[];
    readonly legalBasis: string;
    /** Where the outline comes from. */
    readonly source: string;
    /** Date the outline was drawn, or of the data it comes from (YYYY-MM-DD). */
    readonly date: string;
    readonly note: string;
    /** For a hand-drawn outline: the place behind each vertex, in ring order (the closing repeat excluded). */
    readonly landmarks?: readonly string[];
  };
  readonly geometry: PolygonGeometry;
}
