import { endpointProblem, type Enrollment } from "@meridian/protocol";
import { carrierStore } from "./durable";
import { endpointRules } from "./endpoints";
import { HttpError } from "./errors";
import type { EnrollOutcome } from "./registry";

/** What every enrollment must pass before the registry sees it, whoever asks (admin or join token). */
export async function checkEnrollment(env: Env, enrollment: Enrollment, gatewayHost: string): Promise<void> {
  if (enrollment.endpoint !== undefined) {
    const problem = endpointProblem(enrollment.endpoint, endpointRules(env, gatewayHost));
    if (problem !== null) throw new HttpError(400, "endpoint_refused", `endpoint ${enrollment.endpoint}: ${problem}`);
  }
  if (enrollment.partner !== undefined) {
    const carriers = await carrierStore(env).current();
    if (!carriers.document.partners.some((p) => p.id === enrollment.partner)) {
      throw new HttpError(400, "unknown_partner", `no carrier partner "${enrollment.partner}" in carriers v${carriers.version}; add it with PUT /admin/carriers/${enrollment.partner} first`);
    }
  }
}

/** The 201 body of an accepted enrollment (the credential is shown this once), or the refusal. */
export function credentialAnswer(outcome: EnrollOutcome) {
  if (!outcome.ok) throw new HttpError(outcome.status, outcome.code, outcome.message, {}, outcome.status === 401 ? { "www-authenticate": "Bearer" } : {});
  const { v: _version, iat: _issued, exp, jti, ...node } = outcome.claims;
  return { credential: outcome.credential, credentialId: jti, node, expiresAt: new Date(exp * 1000).toISOString() };
}
