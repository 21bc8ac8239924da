import { DurableObject } from "cloudflare:workers";
import { diffPolicies, validatePolicy } from "@meridian/policy";
import { diffCarriers, validateCarriers } from "@meridian/routing";
import type { CarrierDocument, PolicyDocument } from "@meridian/protocol";
import baseline from "../../../infra/policies/baseline.json";
import { VersionedDocuments, type AuditEntry, type DocumentType, type DocumentVersion, type PublishRequest, type PublishResult } from "./versioned-store";
import { directory } from "./durable";

export type { AuditEntry, PublishRequest, PublishResult } from "./versioned-store";
export type PolicyVersion = DocumentVersion<PolicyDocument>;
export type CarrierVersion = DocumentVersion<CarrierDocument>;

/** Which versioned document the Directory should announce a new version of. */
export type DocumentName = "policy" | "carriers";

/**
 * One versioned, audited document per Durable Object class: immutable versions, compare-and-
 * swap publishing, rollback as a new version. Every publish tells the Directory, whose
 * snapshots carry the version to the gateway isolates, which then reload.
 */
abstract class DocumentStore<D> extends DurableObject<Env> {
  protected readonly docs: VersionedDocuments<D>;

  constructor(ctx: DurableObjectState, env: Env, type: DocumentType<D>, private readonly name: DocumentName, seed: unknown, seedReason: string) {
    super(ctx, env);
    this.docs = new VersionedDocuments(ctx.storage.sql, type);
    this.docs.seed(seed, seedReason);
  }

  current(): DocumentVersion<D> {
    return this.docs.current();
  }

  get(version: number): DocumentVersion<D> | null {
    return this.docs.get(version);
  }

  list(): Omit<DocumentVersion<D>, "document">[] {
    return this.docs.list();
  }

  audit(limit = 200): AuditEntry[] {
    return this.docs.audit(limit);
  }

  async publish(request: PublishRequest): Promise<PublishResult> {
    const result = this.docs.publish(request);
    if (result.ok) await directory(this.env).setDocumentVersion(this.name, result.version);
    return result;
  }
}

/** The routing policy; a fresh install starts from the baseline in infra/policies/. */
export class PolicyStore extends DocumentStore<PolicyDocument> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, { validate: validatePolicy, diff: (before, after) => diffPolicies(before, after).summary }, "policy", baseline, "baseline from infra/policies/baseline.json");
  }
}

/** Carrier partners and their offload rules; a fresh install has none. */
export class CarrierStore extends DocumentStore<CarrierDocument> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, { validate: validateCarriers, diff: diffCarriers }, "carriers", { partners: [] }, "no carrier partners yet");
  }
}
