import { describe, expect, it } from "vitest";
import { UsageError, parseOrUsage, usageLine } from "../src/cli/common";
import { NODE_USAGE, parseNodeArgs } from "../src/cli/node-args";
import { SIM_USAGE, parseSimArgs } from "../src/cli/sim-args";

const GPU_NODE = ["--id", "nrt-gpu-1", "--kind", "gpu", "--gpu", "h100", "--region", "nrt"];

function usageError(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof UsageError) return error.message;
    throw error;
  }
  throw new Error("no usage error");
}

describe("meridian-node command line", () => {
  it("answers --help, which lists every flag and puts the join token first", () => {
    expect(parseNodeArgs(["--help"], {})).toEqual({ help: true });
    expect(parseNodeArgs(["-h", "--port", "nonsense"], {})).toEqual({ help: true });
    expect(NODE_USAGE.indexOf("--join-token")).toBeLessThan(NODE_USAGE.indexOf("--admin-token"));
    expect(NODE_USAGE).toMatch(/--admin-token T\s+admins only/);
  });

  it("enrolls with a join token from the flag or MERIDIAN_JOIN_TOKEN, an admin token only when asked", () => {
    const flag = parseNodeArgs([...GPU_NODE, "--join-token", "jt"], { ADMIN_TOKEN: "ambient" });
    expect(flag.help === false && flag.config.source).toEqual({ kind: "join", joinToken: "jt" });
    const env = parseNodeArgs(GPU_NODE, { MERIDIAN_JOIN_TOKEN: "jt2", ADMIN_TOKEN: "ambient" });
    expect(env.help === false && env.config.source).toEqual({ kind: "join", joinToken: "jt2" });
    const admin = parseNodeArgs([...GPU_NODE, "--admin-token", "at"], { MERIDIAN_JOIN_TOKEN: "jt2" });
    expect(admin.help === false && admin.config.source).toEqual({ kind: "admin", adminToken: "at" });
    const credential = parseNodeArgs(GPU_NODE, { MERIDIAN_NODE_CREDENTIAL: "c" });
    expect(credential.help === false && credential.config.source).toEqual({ kind: "credential", credential: "c" });
    expect(usageError(() => parseNodeArgs(GPU_NODE, {}))).toMatch(/--join-token/);
    expect(usageError(() => parseNodeArgs([...GPU_NODE, "--join-token", "a", "--admin-token", "b"], {}))).toMatch(/not both/);
    expect(usageError(() => parseNodeArgs(["--id", "nrt-gpu-1", "--kind", "gpu", "--gpu", "h100", "--join-token", "jt"], {}))).toMatch(/--region is required/);
  });

  it("refuses bad values with one clear line", () => {
    expect(usageError(() => parseNodeArgs([...GPU_NODE, "--join-token", "t", "--port", "abc"], {}))).toBe('--port must be an integer, got "abc"');
    expect(usageError(() => parseNodeArgs([...GPU_NODE, "--join-token", "t", "--gateway", "ftp://x"], {}))).toMatch(/--gateway must be an http\(s\) URL/);
    expect(usageError(() => parseNodeArgs(["--kind", "gpu"], {}))).toBe("--id is required");
    expect(usageError(() => parseNodeArgs(["--bogus"], {}))).toMatch(/^Unknown option '--bogus'\.?$/);
    expect(usageError(() => parseNodeArgs(["--port"], {}))).toMatch(/^Option '--port <value>' argument missing/);
    expect(usageError(() => parseNodeArgs(["extra"], {}))).toMatch(/^Unexpected argument 'extra'/);
    const line = usageLine("meridian-node", new UsageError('--port must be an integer, got "abc"'));
    expect(line).toBe('meridian-node: --port must be an integer, got "abc" (see meridian-node --help)');
    expect(line).not.toContain("\n");
  });
});

describe("meridian-sim command line", () => {
  it("answers --help and reads its flags", () => {
    expect(parseSimArgs(["--help"], {})).toEqual({ help: true });
    expect(SIM_USAGE).toMatch(/--chaos-kill-pct/);
    const parsed = parseSimArgs(["--nodes", "12", "--seed", "7", "--loss", "2.5"], { ADMIN_TOKEN: "t" });
    expect(parsed.help === false && parsed.config).toMatchObject({ nodes: 12, seed: 7, lossRate: 0.025, adminToken: "t" });
  });

  it("refuses bad values with one clear line", () => {
    expect(usageError(() => parseSimArgs(["--seed", "abc"], {}))).toBe('--seed must be an integer, got "abc"');
    expect(usageError(() => parseSimArgs(["--loss", "101"], {}))).toBe("--loss must be in 0..100, got 101");
    expect(usageError(() => parseSimArgs(["--chaos-kill-pct", "60", "--chaos-freeze-pct", "50"], {}))).toMatch(/must not exceed 100/);
    expect(usageError(() => parseSimArgs(["--prefix", "Bad"], {}))).toMatch(/--prefix/);
  });

  it("keeps parseArgs' first sentence only", () => {
    expect(usageError(() => parseOrUsage(() => { throw new TypeError("First part. Second part."); }))).toBe("First part.");
  });
});
