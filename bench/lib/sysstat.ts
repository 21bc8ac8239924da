/**
 * What a server process costs the machine, read from the kernel: CPU time from
 * /proc/<pid>/stat, the machine's iowait share from /proc/stat, and the storage syscalls
 * (fsync, fdatasync, pwrite) of one process from the kernel's syscall tracepoints.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system, all threads) a process has used so far; NaN when unknown. */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

export interface CpuTimes {
  iowait: number;
  total: number;
}

/** The machine's aggregate CPU ticks (the "cpu" line of /proc/stat). */
export function machineCpuTimes(): CpuTimes {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
    return { iowait: ticks[4] ?? Number.NaN, total: ticks.reduce((a, b) => a + b, 0) };
  } catch {
    return { iowait: Number.NaN, total: Number.NaN };
  }
}

/** Percent of the machine's CPU time spent waiting for I/O between two readings. */
export function iowaitPercent(before: CpuTimes, after: CpuTimes): number {
  const total = after.total - before.total;
  return total > 0 ? ((after.iowait - before.iowait) / total) * 100 : Number.NaN;
}

export interface StorageSyscalls {
  /** fsync + fdatasync: one per durable commit of the runtime's SQLite storage. */
  fsyncs: number;
  /** pwrite64 + pwritev: file writes (sockets use write/writev/sendmsg, not these). */
  fileWrites: number;
  seconds: number;
}

const EVENTS = ["fsync", "fdatasync", "pwrite64", "pwritev"];
const hasPerf = () => spawnSync("sh", ["-c", "command -v perf"]).status === 0;

/**
 * Counts a process's storage syscalls over `seconds`, in the kernel (perf's syscall
 * tracepoints: no ptrace stop per syscall, so the measured process runs at full speed).
 * Start it, run the load, then await the result. Resolves to null where perf or the
 * tracepoints are unavailable (not root, no tracefs).
 */
export function countStorageSyscalls(pid: number | undefined, seconds: number): Promise<StorageSyscalls | null> {
  if (pid === undefined || !hasPerf()) return Promise.resolve(null);
  const events = EVENTS.map((e) => `syscalls:sys_enter_${e}`).join(",");
  const child: ChildProcess = spawn("perf", ["stat", "-x", ",", "-e", events, "-p", String(pid), "--", "sleep", String(seconds)], { stdio: ["ignore", "ignore", "pipe"] });
  let out = "";
  child.stderr?.on("data", (chunk: Buffer) => (out += chunk.toString()));
  return new Promise((resolve) => {
    child.once("error", () => resolve(null));
    child.once("exit", () => {
      const counts = new Map<string, number>();
      for (const line of out.split("\n")) {
        const [value, , event] = line.split(",");
        const name = event?.replace("syscalls:sys_enter_", "");
        if (name !== undefined && EVENTS.includes(name) && value !== undefined && /^\d+$/.test(value)) counts.set(name, Number(value));
      }
      if (counts.size === 0) return resolve(null);
      const n = (e: string) => counts.get(e) ?? 0;
      resolve({ fsyncs: n("fsync") + n("fdatasync"), fileWrites: n("pwrite64") + n("pwritev"), seconds });
    });
  });
}
