import { z } from "zod";

/**
 * Characters no free-text field may hold: C0 controls (NUL, BEL, ESC, CR, LF, TAB ...), DEL
 * and C1 controls; the bidi embeddings, overrides and isolates (U+202A-202E, U+2066-2069)
 * that can make a log line or a 451 message read differently from what it says; and lone
 * surrogates (with the u flag, a paired surrogate is one code point and does not match).
 */
const UNSAFE_TEXT = /[\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069\uD800-\uDFFF]/u;

export const UNSAFE_TEXT_MESSAGE = "must not contain control characters, bidi overrides or isolates, or lone surrogates";

/** Whether `s` is free of control characters, bidi overrides/isolates and lone surrogates. */
export function isSafeText(s: string): boolean {
  return !UNSAFE_TEXT.test(s);
}

/**
 * A string schema that refuses what isSafeText refuses; pass a base to keep its bounds, e.g.
 * `safeText(z.string().min(1).max(500))`.
 */
export function safeText(base: z.ZodString = z.string()): z.ZodString {
  return base.refine(isSafeText, { message: UNSAFE_TEXT_MESSAGE });
}
