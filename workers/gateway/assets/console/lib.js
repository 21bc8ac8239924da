// @ts-check
/**
 * Shared helpers of the console: DOM building, the API client (session cookie + CSRF
 * header), a JSON Schema checker for the subset zod's z.toJSONSchema emits, a line diff.
 */

/** @typedef {string | number | boolean | null | undefined | EventListener} AttrValue */
/** @typedef {Node | string | number | null | undefined | false} Leaf */
/** @typedef {Leaf | Leaf[] | Leaf[][]} Child */

/**
 * An HTML element. Attributes starting with "on" are listeners; false/null/undefined are left out.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, AttrValue>} [attrs]
 * @param {Child[]} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";
/**
 * An SVG element.
 * @param {string} tag
 * @param {Record<string, AttrValue>} [attrs]
 * @param {Child[]} children
 * @returns {SVGElement}
 */
export function s(tag, attrs = {}, ...children) {
  const el = /** @type {SVGElement} */ (document.createElementNS(SVG_NS, tag));
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** @param {Element} el @param {Record<string, AttrValue>} attrs */
function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === "function") el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
}

/** @param {Node} el @param {Child[]} children */
export function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
  }
}

/** @param {Element} el @param {Child[]} children */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** A scrollable table wrapper that keyboard users can scroll too. */
/** @param {string} label @param {string[]} head @param {Child[][]} rows @param {Record<string, AttrValue>} [attrs] */
export function table(label, head, rows, attrs = {}) {
  return h(
    "div",
    { class: "table-wrap", tabindex: 0, role: "region", "aria-label": label },
    h("table", attrs, h("caption", { class: "visually-hidden" }, label), h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))), h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c)))))),
  );
}

// ---- the API ----------------------------------------------------------------------------

export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message @param {Record<string, unknown>} body @param {Headers} headers */
  constructor(status, code, message, body, headers) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
    this.headers = headers;
  }
}

/** The CSRF token of the session, kept in memory only (the cookie itself is HttpOnly). */
let csrf = "";
/** @param {string} token */
export function setCsrf(token) {
  csrf = token;
}

/**
 * Calls the gateway with the session cookie; writes carry the CSRF header.
 * @param {string} path
 * @param {{ method?: string, body?: unknown, headers?: Record<string, string>, allow?: number[] }} [init]
 * @returns {Promise<{ status: number, headers: Headers, body: Record<string, unknown> }>}
 */
export async function api(path, init = {}) {
  const method = init.method ?? "GET";
  /** @type {Record<string, string>} */
  const headers = { accept: "application/json", ...(init.headers ?? {}) };
  if (method !== "GET") headers["x-meridian-csrf"] = csrf;
  if (init.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, { method, headers, credentials: "same-origin", ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}) });
  const text = await res.text();
  /** @type {unknown} */
  let parsed = {};
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = { raw: text };
  }
  const body = isObject(parsed) ? parsed : { value: parsed };
  if (!res.ok && !(init.allow ?? []).includes(res.status)) {
    const error = isObject(body.error) ? body.error : {};
    throw new ApiError(res.status, String(error.code ?? `http_${res.status}`), String(error.message ?? res.statusText), body, res.headers);
  }
  return { status: res.status, headers: res.headers, body };
}

/** @param {unknown} v @returns {v is Record<string, unknown>} */
export function isObject(v) {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
/** @param {unknown} v @returns {Record<string, unknown>[]} */
export function objects(v) {
  return Array.isArray(v) ? v.filter(isObject) : [];
}
/** @param {unknown} v */
export const str = (v) => (typeof v === "string" ? v : v === undefined || v === null ? "" : String(v));
/** @param {unknown} v */
export const num = (v) => (typeof v === "number" ? v : Number.NaN);

/** "3 s ago" style, for state-since columns. @param {unknown} iso */
export function ago(iso) {
  const t = Date.parse(str(iso));
  if (!Number.isFinite(t)) return "";
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  return s < 90 ? `${s} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

/** Announces a message to screen readers (and shows it briefly). @param {string} message */
export function announce(message) {
  const status = document.getElementById("status");
  if (status) status.textContent = message;
}

// ---- JSON Schema (the subset z.toJSONSchema emits) -----------------------------------------

/** @typedef {{ path: string, message: string }} SchemaIssue */

/**
 * Every issue of `value` against `schema`.
 * @param {unknown} schema @param {unknown} value
 * @returns {SchemaIssue[]}
 */
export function checkSchema(schema, value) {
  /** @type {SchemaIssue[]} */
  const issues = [];
  const root = isObject(schema) ? schema : {};
  walk(root, value, "", issues, root);
  return issues;
}

/** @param {Record<string, unknown>} schema @param {unknown} value @param {string} path @param {SchemaIssue[]} issues @param {Record<string, unknown>} root */
function walk(schema, value, path, issues, root) {
  const at = path || "(document)";
  if (typeof schema.$ref === "string") {
    const target = schema.$ref === "#" ? root : schema.$ref.replace(/^#\//, "").split("/").reduce((/** @type {unknown} */ node, key) => (isObject(node) ? node[key] : undefined), root);
    if (isObject(target)) walk(target, value, path, issues, root);
  }
  for (const key of ["anyOf", "oneOf"]) {
    const options = objects(schema[key]);
    if (options.length > 0) {
      const results = options.map((option) => checkSchema({ ...root, ...option }, value));
      if (!results.some((r) => r.length === 0)) {
        const best = results.reduce((a, b) => (b.length < a.length ? b : a));
        issues.push(...(best.length === 1 ? best.map((i) => ({ path: joinPath(path, i.path), message: i.message })) : [{ path: at, message: "matches none of the allowed forms" }]));
      }
    }
  }
  for (const option of objects(schema.allOf)) walk(option, value, path, issues, root);
  if (schema.const !== undefined && value !== schema.const) issues.push({ path: at, message: `must be ${JSON.stringify(schema.const)}` });
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) issues.push({ path: at, message: `must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(", ")}` });
  const type = schema.type;
  if (type !== undefined) {
    const types = Array.isArray(type) ? type : [type];
    const actual = value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
    const fits = types.some((t) => t === actual || (t === "integer" && typeof value === "number" && Number.isInteger(value)) || (t === "number" && actual === "number"));
    if (!fits) {
      issues.push({ path: at, message: `must be ${types.join(" or ")}, not ${actual}` });
      return;
    }
  }
  if (typeof value === "string") {
    if (typeof schema.minLength === "number" && value.length < schema.minLength) issues.push({ path: at, message: `must have at least ${schema.minLength} characters` });
    if (typeof schema.maxLength === "number" && value.length > schema.maxLength) issues.push({ path: at, message: `must have at most ${schema.maxLength} characters` });
    if (typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(value)) issues.push({ path: at, message: `does not match ${schema.pattern.length > 40 ? `the ${str(schema.format) || "expected"} format` : schema.pattern}` });
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) issues.push({ path: at, message: `must be at least ${schema.minimum}` });
    if (typeof schema.maximum === "number" && value > schema.maximum) issues.push({ path: at, message: `must be at most ${schema.maximum}` });
    if (typeof schema.exclusiveMinimum === "number" && value <= schema.exclusiveMinimum) issues.push({ path: at, message: `must be above ${schema.exclusiveMinimum}` });
    if (typeof schema.exclusiveMaximum === "number" && value >= schema.exclusiveMaximum) issues.push({ path: at, message: `must be below ${schema.exclusiveMaximum}` });
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === "number" && value.length < schema.minItems) issues.push({ path: at, message: `needs at least ${schema.minItems} item(s)` });
    if (typeof schema.maxItems === "number" && value.length > schema.maxItems) issues.push({ path: at, message: `allows at most ${schema.maxItems} items` });
    const items = schema.items;
    if (isObject(items)) value.forEach((item, i) => walk(items, item, joinPath(path, String(i)), issues, root));
  }
  if (isObject(value)) {
    const properties = isObject(schema.properties) ? schema.properties : {};
    for (const name of Array.isArray(schema.required) ? schema.required : []) {
      if (typeof name === "string" && !(name in value)) issues.push({ path: joinPath(path, name), message: "is required" });
    }
    const names = isObject(schema.propertyNames) ? schema.propertyNames : null;
    for (const [name, child] of Object.entries(value)) {
      if (names !== null) for (const issue of checkSchema(names, name)) issues.push({ path: joinPath(path, name), message: `key ${issue.message}` });
      const own = properties[name];
      if (isObject(own)) walk(own, child, joinPath(path, name), issues, root);
      else if (schema.additionalProperties === false) issues.push({ path: joinPath(path, name), message: "is not a known field" });
      else if (isObject(schema.additionalProperties)) walk(schema.additionalProperties, child, joinPath(path, name), issues, root);
    }
  }
}

/** @param {string} a @param {string} b */
const joinPath = (a, b) => (a && b ? `${a}.${b}` : a || b);

/** "line 3, column 7" for a JSON.parse error, when the engine says where. @param {string} text @param {unknown} error */
export function jsonErrorAt(text, error) {
  const message = error instanceof Error ? error.message : String(error);
  const position = /position (\d+)/.exec(message);
  if (position?.[1] === undefined) return message;
  const before = text.slice(0, Number(position[1]));
  const line = before.split("\n").length;
  return `${message.replace(/ in JSON at position \d+.*$/, "")} (line ${line}, column ${before.length - before.lastIndexOf("\n")})`;
}

// ---- line diff --------------------------------------------------------------------------

/** @typedef {{ op: " " | "+" | "-", text: string }} DiffLine */

/**
 * Lines of `a` and `b` with + / - marks (longest common subsequence), reduced to the
 * changed hunks with `context` lines around them.
 * @param {string} a @param {string} b @param {number} [context]
 * @returns {(DiffLine | { op: "…", text: string })[]}
 */
export function lineDiff(a, b, context = 3) {
  const x = a.split("\n");
  const y = b.split("\n");
  // Common prefix and suffix first: edits are usually small and local.
  let start = 0;
  while (start < x.length && start < y.length && x[start] === y[start]) start++;
  let endX = x.length;
  let endY = y.length;
  while (endX > start && endY > start && x[endX - 1] === y[endY - 1]) {
    endX--;
    endY--;
  }
  const mx = x.slice(start, endX);
  const my = y.slice(start, endY);
  const n = mx.length;
  const m = my.length;
  /** @type {DiffLine[]} */
  const middle = [];
  if (n * m > 4_000_000) {
    for (const t of mx) middle.push({ op: "-", text: t });
    for (const t of my) middle.push({ op: "+", text: t });
  } else {
    const lcs = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
    for (let i = n - 1; i >= 0; i--) {
      const row = /** @type {Uint16Array} */ (lcs[i]);
      const next = /** @type {Uint16Array} */ (lcs[i + 1]);
      for (let j = m - 1; j >= 0; j--) row[j] = mx[i] === my[j] ? (next[j + 1] ?? 0) + 1 : Math.max(next[j] ?? 0, row[j + 1] ?? 0);
    }
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && mx[i] === my[j]) {
        middle.push({ op: " ", text: mx[i] ?? "" });
        i++;
        j++;
      } else if (j < m && (i >= n || (lcs[i]?.[j + 1] ?? 0) >= (lcs[i + 1]?.[j] ?? 0))) middle.push({ op: "+", text: my[j++] ?? "" });
      else middle.push({ op: "-", text: mx[i++] ?? "" });
    }
  }
  /** @type {DiffLine[]} */
  const all = [...x.slice(0, start).map((t) => ({ op: /** @type {" "} */ (" "), text: t })), ...middle, ...x.slice(endX).map((t) => ({ op: /** @type {" "} */ (" "), text: t }))];
  const keep = all.map(() => false);
  all.forEach((line, k) => {
    if (line.op !== " ") for (let d = Math.max(0, k - context); d <= Math.min(all.length - 1, k + context); d++) keep[d] = true;
  });
  /** @type {(DiffLine | { op: "…", text: string })[]} */
  const out = [];
  all.forEach((line, k) => {
    if (keep[k]) out.push(line);
    else if (out.length === 0 || out[out.length - 1]?.op !== "…") out.push({ op: "…", text: "" });
  });
  return out;
}
