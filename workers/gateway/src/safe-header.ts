import { isSafeText, UNSAFE_TEXT_MESSAGE } from "@meridian/protocol";
import type { Context } from "hono";
import { HttpError } from "./errors";

/**
 * A header that goes to the audit log or into messages: refused with 400 when it carries
 * control characters, bidi overrides or lone surrogates (they would forge or hide log lines).
 */
export function safeHeader(c: Context, name: string): string | undefined {
  const value = c.req.header(name)?.trim();
  if (value !== undefined && !isSafeText(value)) throw new HttpError(400, "unsafe_text", `${name}: ${UNSAFE_TEXT_MESSAGE}`);
  return value;
}

