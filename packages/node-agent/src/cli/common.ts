import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs, type ParseArgsConfig, parseEnv } from "node:util";
import { describeError } from "../log";

/** Environment variables as a CLI reads them (process.env, or a test's object). */
export type Env = Readonly<Record<string, string | undefined>>;

/** Flags both agent CLIs take, in node:util parseArgs form. */
export const COMMON_OPTIONS = {
  help: { type: "boolean", short: "h" },
  gateway: { type: "string" },
  "admin-token": { type: "string" },
  host: { type: "string" },
  port: { type: "string" },
  "public-url": { type: "string" },
  "heartbeat-ms": { type: "string" },
  "token-ms": { type: "string" },
  "drain-timeout-ms": { type: "string" },
} as const;

/** A problem with the command line: reported with a hint to --help, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

export interface FlagHelp {
  flag: string;
  description: string;
}

export function formatUsage(synopsis: string, summary: string, flags: readonly FlagHelp[]): string {
  const width = Math.max(...flags.map((f) => f.flag.length)) + 2;
  const lines = flags.map((f) => `  ${f.flag.padEnd(width)}${f.description}`);
  return `Usage: ${synopsis}\n\n${summary}\n\nOptions:\n${lines.join("\n")}\n`;
}

/** Parses a decimal flag value within bounds; undefined stays undefined. */
export function numberFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(value.trim())) throw new UsageError(`--${name} must be a number, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`--${name} must be in ${min}..${max}, got ${n}`);
  return n;
}

/** Parses an integer flag value within bounds; undefined stays undefined. */
export function intFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value.trim())) throw new UsageError(`--${name} must be an integer, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`--${name} must be in ${min}..${max}, got ${n}`);
  return n;
}

export function httpUrlFlag(name: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--${name} must be a URL, got "${value}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`--${name} must be an http(s) URL, got "${value}"`);
  }
  return value.replace(/\/+$/, "");
}

/**
 * The variables of a wrangler-style `.dev.vars` (dotenv syntax, read with Node's own
 * parser), or an empty map when the file is missing. The one reader of that file.
 */
export function readDevVars(path: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return new Map();
  }
  return new Map(Object.entries(parseEnv(text)).filter((entry): entry is [string, string] => typeof entry[1] === "string"));
}

/** Reads one variable from `.dev.vars` in `directory`. */
export function readDevVar(name: string, directory = process.cwd()): string | undefined {
  return readDevVars(join(directory, ".dev.vars")).get(name);
}

/**
 * First SIGINT/SIGTERM runs `onFirst` (a graceful drain); a second one exits at once.
 * `onFirst` decides the exit itself.
 */
export function onShutdownSignal(onFirst: (signal: NodeJS.Signals) => void): void {
  let received = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (received) {
      console.error(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
    received = true;
    onFirst(signal);
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
}

/** The one line a usage error prints (then the CLI exits 2, without a stack trace). */
export function usageLine(command: string, error: UsageError): string {
  return `${command}: ${error.message} (see ${command} --help)`;
}

/** Runs a CLI main: usage errors exit 2 with one line, anything else exits 1. */
export function runMain(command: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    if (error instanceof UsageError) {
      console.error(usageLine(command, error));
      process.exit(2);
    }
    console.error(`${command}: ${describeError(error)}`);
    process.exit(1);
  });
}

/**
 * `parseArgs` throws plain TypeErrors for unknown or malformed flags; make them usage errors,
 * keeping their first sentence (the rest explains `--` positionals, which no CLI here takes).
 */
export function parseOrUsage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    const message = describeError(error);
    throw new UsageError(/^(.*?\.)(\s|$)/.exec(message)?.[1] ?? message);
  }
}

/** Strict parseArgs of `argv` (no positionals) with usage errors. */
export function parseFlags<O extends NonNullable<ParseArgsConfig["options"]>>(argv: readonly string[], options: O) {
  return parseOrUsage(() => parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values);
}

/** A set, non-empty environment variable. */
export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
