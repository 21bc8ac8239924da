import type { z } from "zod";

export interface FormattedIssue {
  /** Dotted path into the input ("rules.0.reason"); "" for the input itself. */
  path: string;
  message: string;
}

/** Every issue of a zod error as { path, message }: the one shape error bodies carry. */
export function formatIssues(error: z.ZodError): FormattedIssue[] {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join("."), message: issue.message }));
}

/** The first issue as "path: message"; `root` names the input itself when the path is empty. */
export function firstIssue(error: z.ZodError, root = "value"): string {
  const issue = error.issues[0];
  if (issue === undefined) return `${root}: invalid`;
  return `${issue.path.map(String).join(".") || root}: ${issue.message}`;
}

/** Every issue as "path: message", joined by "; " (for thrown errors and log lines). */
export function issuesText(error: z.ZodError, root = "value"): string {
  return formatIssues(error)
    .map((issue) => `${issue.path || root}: ${issue.message}`)
    .join("; ");
}
