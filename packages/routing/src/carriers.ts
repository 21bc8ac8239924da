import { CarrierDocumentSchema, formatIssues, type CarrierDocument, type CarrierPartner } from "@meridian/protocol";

/**
 * A problem found in a carrier document. The same shape as a policy finding, so one document
 * store (the gateway's versioned store) publishes and audits both kinds of document.
 */
export interface CarrierFinding {
  code: string;
  message: string;
  path?: string;
}

export type CarrierValidation = { ok: true; document: CarrierDocument; violations: CarrierFinding[] } | { ok: false; errors: CarrierFinding[] };

/** Schema, unique ids, known regions and sane offload rules; carrier documents have no soft violations. */
export function validateCarriers(input: unknown): CarrierValidation {
  const parsed = CarrierDocumentSchema.safeParse(input);
  if (!parsed.success) return { ok: false, errors: formatIssues(parsed.error).map((issue) => ({ code: "schema", ...issue })) };
  return { ok: true, document: parsed.data, violations: [] };
}

/** One line for the audit log: which partners were added, removed or changed (and which fields). */
export function diffCarriers(before: CarrierDocument | null, after: CarrierDocument): string {
  const old = new Map((before?.partners ?? []).map((p) => [p.id, p]));
  const now = new Map(after.partners.map((p) => [p.id, p]));
  const parts: string[] = [];
  const added = [...now.keys()].filter((id) => !old.has(id));
  const removed = [...old.keys()].filter((id) => !now.has(id));
  const changed = [...now.values()].flatMap((p) => {
    const prior = old.get(p.id);
    if (prior === undefined) return [];
    const fields = changedFields(prior, p);
    return fields.length === 0 ? [] : [`${p.id} (${fields.join(", ")})`];
  });
  if (added.length > 0) parts.push(`added ${added.join(", ")}`);
  if (removed.length > 0) parts.push(`removed ${removed.join(", ")}`);
  if (changed.length > 0) parts.push(`changed ${changed.join("; ")}`);
  return parts.length === 0 ? "no change" : parts.join("; ");
}

function changedFields(a: CarrierPartner, b: CarrierPartner): string[] {
  const fields: string[] = [];
  if (a.name !== b.name) fields.push("name");
  if (JSON.stringify(a.regions) !== JSON.stringify(b.regions)) fields.push("regions");
  for (const key of Object.keys(b.offload) as (keyof CarrierPartner["offload"])[]) {
    if (JSON.stringify(a.offload[key]) !== JSON.stringify(b.offload[key])) fields.push(`offload.${key}`);
  }
  return fields;
}
