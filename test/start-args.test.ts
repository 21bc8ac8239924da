import { describe, expect, it } from "vitest";
import { UsageError } from "@meridian/node-agent/cli";
import { START_USAGE, parseStartArgs } from "../scripts/start-args";

describe("npm start command line", () => {
  it("answers --help with its flags", () => {
    expect(parseStartArgs(["--help"])).toEqual({ help: true });
    for (const flag of ["--port", "--nodes", "--seed", "--help"]) expect(START_USAGE).toContain(flag);
  });

  it("reads flags with their defaults", () => {
    expect(parseStartArgs([])).toEqual({ help: false, config: { port: 8787, nodes: 300, seed: 1 } });
    expect(parseStartArgs(["--nodes", "0", "--seed", "9", "--port", "9000"])).toEqual({ help: false, config: { port: 9000, nodes: 0, seed: 9 } });
  });

  it("refuses a bad value instead of turning it into 0", () => {
    expect(() => parseStartArgs(["--seed", "abc"])).toThrow(new UsageError('--seed must be an integer, got "abc"'));
    expect(() => parseStartArgs(["--nodes", "-1"])).toThrow(UsageError);
    expect(() => parseStartArgs(["--frobnicate"])).toThrow(/Unknown option '--frobnicate'/);
  });
});
