import { formatUsage, intFlag, parseFlags } from "@meridian/node-agent/cli";

export const START_COMMAND = "npm start --";

export const START_USAGE = formatUsage(
  `${START_COMMAND} [options]`,
  "Starts the gateway (wrangler dev: workerd with local Durable Objects) on 127.0.0.1 and a simulated\n" +
    "fleet in every region. Creates ./.dev.vars with local secrets on first run. Ctrl-C drains the\n" +
    "fleet and stops the gateway.",
  [
    { flag: "--port N", description: "gateway port (default 8787)" },
    { flag: "--nodes N", description: "simulated nodes; 0 starts the gateway alone (default 300)" },
    { flag: "--seed N", description: "fleet seed; the same seed gives the same fleet (default 1)" },
    { flag: "-h, --help", description: "show this help" },
  ],
);

export interface StartConfig {
  port: number;
  nodes: number;
  seed: number;
}

/** Reads `npm start`'s command line (pure); throws UsageError for any bad value. */
export function parseStartArgs(argv: readonly string[]): { help: true } | { help: false; config: StartConfig } {
  const values = parseFlags(argv, {
    help: { type: "boolean", short: "h" },
    port: { type: "string" },
    nodes: { type: "string" },
    seed: { type: "string" },
  } as const);
  if (values.help === true) return { help: true };
  const port = intFlag("port", values.port, 1, 65_535) ?? 8787;
  const nodes = intFlag("nodes", values.nodes, 0, 100_000) ?? 300;
  const seed = intFlag("seed", values.seed, 0, 2 ** 32 - 1) ?? 1;
  return { help: false, config: { port, nodes, seed } };
}
