import { CredentialClaimsSchema, type CredentialClaims } from "@meridian/protocol";
import { z } from "zod";

/**
 * What the gateway tells a RegionHub about a node socket it forwards: the claims it already
 * verified, the cell of its region the registry assigned the node (the hub refuses a socket
 * meant for another cell), and where the socket arrived when that is far from the enrolled
 * region. It travels as one header on the internal upgrade request; the gateway drops any
 * such header a client sent, so only the gateway can set it.
 */
export const CONNECT_TICKET_HEADER = "x-meridian-connect-ticket";

const GeoFlagSchema = z.strictObject({ colo: z.string().max(8), km: z.number().min(0) });
const TicketSchema = z.strictObject({ claims: CredentialClaimsSchema, cell: z.number().int().min(0), gatewayHost: z.string().max(300), geoFlag: GeoFlagSchema.optional() });
export type ConnectTicket = z.infer<typeof TicketSchema>;

export function writeTicket(headers: Headers, claims: CredentialClaims, cell: number, gatewayHost: string, geoFlag: ConnectTicket["geoFlag"] | null): void {
  headers.set(CONNECT_TICKET_HEADER, JSON.stringify({ claims, cell, gatewayHost, ...(geoFlag ? { geoFlag } : {}) }));
}

export function readTicket(headers: Headers): ConnectTicket | null {
  const raw = headers.get(CONNECT_TICKET_HEADER);
  if (raw === null) return null;
  try {
    const parsed = TicketSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
