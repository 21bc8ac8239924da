/** Minimal leveled logger; every line carries a context prefix such as `[node nrt-gpu-1]`. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Logs to stderr so stdout stays free for machine-readable lines (READY ...). */
export function createLogger(context: string, options: { quietInfo?: boolean } = {}): Logger {
  const prefix = `[${context}]`;
  return {
    info: (message) => {
      if (!options.quietInfo) console.error(`${prefix} ${message}`);
    },
    warn: (message) => console.error(`${prefix} warning: ${message}`),
    error: (message) => console.error(`${prefix} error: ${message}`),
  };
}

export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };

/** Message of any thrown value, for log lines. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
