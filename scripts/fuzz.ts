/**
 * `npm run fuzz [-- --cases N]`: the fuzz properties of workers/gateway/test/fuzz.test.ts in
 * workerd with a million cases (or N, or FUZZ_CASES); the test prints the count of cases and the
 * outcomes per code. workerd warns once per non-ASCII header value the fuzzer sends: those lines
 * are counted and dropped, everything else is passed through. Exits with vitest's status.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
const flag = process.argv.indexOf("--cases");
const cases = Number(flag >= 0 ? process.argv[flag + 1] : (process.env.FUZZ_CASES ?? 1_000_000));
if (!Number.isInteger(cases) || cases < 100) {
  console.error("usage: npm run fuzz [-- --cases N]   (N: an integer of at least 100)");
  process.exit(2);
}

const NON_ASCII_WARNING = /^A header value for ".*" contains non-ASCII characters/;
let dropped = 0;
const startedAt = performance.now();
const child = spawn(process.execPath, [join(ROOT, "node_modules/vitest/vitest.mjs"), "run", "--project", "gateway", "workers/gateway/test/fuzz.test.ts"], {
  cwd: ROOT,
  env: { ...process.env, FUZZ_CASES: String(cases) },
  stdio: ["ignore", "pipe", "pipe"],
});
for (const [stream, out] of [[child.stdout, process.stdout], [child.stderr, process.stderr]] as const) {
  let buffered = "";
  stream.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) {
      if (NON_ASCII_WARNING.test(line)) dropped++;
      else out.write(`${line}\n`);
    }
  });
  stream.on("end", () => {
    if (buffered !== "") out.write(`${buffered}\n`);
  });
}
child.on("exit", (code, signal) => {
  console.log(`[fuzz] ${cases} cases asked for; ${dropped} workerd warnings about non-ASCII header values dropped; ${((performance.now() - startedAt) / 1000).toFixed(0)} s`);
  process.exit(code ?? (signal ? 1 : 0));
});
