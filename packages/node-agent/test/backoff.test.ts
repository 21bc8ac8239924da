import { describe, expect, it } from "vitest";
import {
  BACKOFF_BASE_MS,
  BACKOFF_CAP_MS,
  HEARTBEAT_EVERY_INTERVALS,
  backoffDelayMs,
  nodeSocketUrl,
  shouldSendHeartbeat,
} from "../src/connection";

const almostOne = (): number => 0.999_999_9;

describe("backoffDelayMs", () => {
  it("starts below the base and grows by a factor of 2 per attempt", () => {
    expect(backoffDelayMs(0, () => 0)).toBe(0);
    expect(backoffDelayMs(0, almostOne)).toBe(BACKOFF_BASE_MS - 1);
    expect(backoffDelayMs(1, almostOne)).toBe(2 * BACKOFF_BASE_MS - 1);
    expect(backoffDelayMs(2, almostOne)).toBe(4 * BACKOFF_BASE_MS - 1);
    expect(backoffDelayMs(3, () => 0.5)).toBe(4 * BACKOFF_BASE_MS);
  });

  it("is capped at 15 s however many attempts failed", () => {
    for (const attempt of [6, 7, 10, 50, 1_000, 1e9]) {
      const delay = backoffDelayMs(attempt, almostOne);
      expect(delay).toBeLessThan(BACKOFF_CAP_MS);
      expect(delay).toBeGreaterThanOrEqual(BACKOFF_CAP_MS - 1);
    }
    expect(BACKOFF_CAP_MS).toBe(15_000);
  });

  it("stays within [0, ceiling) with real randomness (full jitter)", () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
      for (let i = 0; i < 200; i++) {
        const delay = backoffDelayMs(attempt);
        expect(Number.isInteger(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThan(ceiling);
      }
    }
  });

  it("treats a negative attempt like the first", () => {
    expect(backoffDelayMs(-3, almostOne)).toBe(BACKOFF_BASE_MS - 1);
  });
});

describe("shouldSendHeartbeat", () => {
  const idle = { inFlight: 0, free: 10, load: 0 };

  it("sends the first heartbeat and whenever in-flight or free changes", () => {
    expect(shouldSendHeartbeat(undefined, idle, 0)).toBe(true);
    expect(shouldSendHeartbeat(idle, idle, 1)).toBe(false);
    expect(shouldSendHeartbeat(idle, { inFlight: 1, free: 9, load: 0.1 }, 1)).toBe(true);
    expect(shouldSendHeartbeat(idle, { inFlight: 0, free: 9, load: 0 }, 1)).toBe(true);
  });

  it("sends when load moved by at least 0.05, pings for smaller moves", () => {
    const base = { inFlight: 3, free: 5, load: 0.5 };
    expect(shouldSendHeartbeat(base, { ...base, load: 0.549 }, 1)).toBe(false);
    expect(shouldSendHeartbeat(base, { ...base, load: 0.55 }, 1)).toBe(true);
    expect(shouldSendHeartbeat(base, { ...base, load: 0.45 }, 1)).toBe(true);
  });

  it("sends after 5 quiet intervals", () => {
    expect(shouldSendHeartbeat(idle, idle, HEARTBEAT_EVERY_INTERVALS - 1)).toBe(false);
    expect(shouldSendHeartbeat(idle, idle, HEARTBEAT_EVERY_INTERVALS)).toBe(true);
  });
});

describe("nodeSocketUrl", () => {
  it("maps http(s) to ws(s) and keeps a base path", () => {
    expect(nodeSocketUrl("http://127.0.0.1:8787")).toBe("ws://127.0.0.1:8787/nodes/connect");
    expect(nodeSocketUrl("https://edge.example.com/meridian/")).toBe("wss://edge.example.com/meridian/nodes/connect");
    expect(nodeSocketUrl("wss://edge.example.com")).toBe("wss://edge.example.com/nodes/connect");
    expect(() => nodeSocketUrl("ftp://edge.example.com")).toThrow(/http\(s\) or ws\(s\)/);
  });
});
