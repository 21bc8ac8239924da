// @ts-check
/**
 * The console shell: sign-in, the session, navigation between pages (#/fleet, #/route,
 * #/policy, #/carriers; #/tenants is a placeholder until tenants exist).
 */
import { carriersPage } from "./carriers.js";
import { documentPage } from "./documents.js";
import { explainPage } from "./explain.js";
import { fleetPage } from "./fleet.js";
import { ApiError, announce, api, h, isObject, objects, replace, setCsrf, str } from "./lib.js";

/** @typedef {"viewer" | "editor" | "admin"} Role */
/** @typedef {import("./map.js").Region} Region */
/** @typedef {{ role: Role, expiresAt: string }} Session */
/** @typedef {{ regions: Region[], gpuClasses: string[], nodeKinds: string[], schemas: Record<string, unknown> }} Catalog */
/** @typedef {{ session: Session, catalog: Catalog, main: HTMLElement, can: (role: Role) => boolean, onLeave: (stop: () => void) => void }} PageContext */

const main = /** @type {HTMLElement} */ (document.getElementById("main"));
const nav = /** @type {HTMLElement} */ (document.getElementById("nav"));
const who = /** @type {HTMLElement} */ (document.getElementById("who"));
const RANK = { viewer: 1, editor: 2, admin: 3 };

/** @type {Session | null} */
let session = null;
/** @type {Catalog | null} */
let catalog = null;
/** Stops the current page's timers when another page opens. @type {(() => void)[]} */
let leaving = [];

/** @param {unknown} body @returns {Session | null} */
function sessionOf(body) {
  if (!isObject(body)) return null;
  const role = body.role;
  if (role !== "viewer" && role !== "editor" && role !== "admin") return null;
  setCsrf(str(body.csrf));
  return { role, expiresAt: str(body.expiresAt) };
}

/** @param {unknown} body @returns {Catalog} */
function catalogOf(body) {
  const b = isObject(body) ? body : {};
  const regions = objects(b.regions).map((r) => ({
    id: str(r.id),
    city: str(r.city),
    country: str(r.country),
    ...(typeof r.subdivision === "string" ? { subdivision: r.subdivision } : {}),
    lat: Number(r.lat),
    lon: Number(r.lon),
    continent: str(r.continent),
  }));
  const strings = (/** @type {unknown} */ v) => (Array.isArray(v) ? v.map(str) : []);
  return { regions, gpuClasses: strings(b.gpuClasses), nodeKinds: strings(b.nodeKinds), schemas: isObject(b.schemas) ? b.schemas : {} };
}

function signInView(/** @type {string} */ problem = "") {
  nav.hidden = true;
  who.replaceChildren();
  const token = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true, "aria-describedby": "token-help" });
  const error = h("p", { id: "signin-error", class: "error", role: "alert" }, problem);
  const form = h(
    "form",
    { class: "card signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in to the Meridian console"),
    h("label", { for: "token" }, "Admin, editor or viewer token"),
    token,
    h("p", { id: "token-help", class: "help" }, "The token is checked once and not kept: the browser gets a signed session cookie for 8 hours."),
    h("button", { type: "submit" }, "Sign in"),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const res = await api("/console/api/session", { method: "POST", body: { token: token.value } });
      token.value = "";
      session = sessionOf(res.body);
      await start();
    } catch (e) {
      token.value = "";
      error.textContent = e instanceof ApiError ? e.message : "Sign-in failed";
      token.focus();
    }
  });
  replace(main, form);
  token.focus();
}

async function signOut() {
  await api("/console/api/session", { method: "DELETE" }).catch(() => undefined);
  session = null;
  catalog = null;
  location.hash = "#/fleet";
  signInView();
}

async function start() {
  if (session === null) return signInView();
  try {
    catalog ??= catalogOf((await api("/console/api/catalog")).body);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return signInView("Your session has ended; sign in again.");
    throw e;
  }
  nav.hidden = false;
  replace(who, h("span", { class: "role", "data-role": session.role }, `Signed in as ${session.role}`), " ", h("button", { type: "button", class: "link", onclick: () => void signOut() }, "Sign out"));
  await show();
}

const PAGES = ["fleet", "route", "policy", "carriers", "tenants"];

async function show() {
  if (session === null || catalog === null) return;
  for (const stop of leaving) stop();
  leaving = [];
  const page = /^#\/(\w+)/.exec(location.hash)?.[1] ?? "fleet";
  const name = PAGES.includes(page) ? page : "fleet";
  for (const link of nav.querySelectorAll("a")) {
    if (link.getAttribute("href") === `#/${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const current = session;
  /** @type {PageContext} */
  const ctx = { session: current, catalog, main, can: (role) => RANK[current.role] >= RANK[role], onLeave: (stop) => leaving.push(stop) };
  main.replaceChildren();
  try {
    if (name === "fleet") await fleetPage(ctx);
    else if (name === "route") await explainPage(ctx);
    else if (name === "policy") await documentPage(ctx, POLICY);
    else if (name === "carriers") await carriersPage(ctx);
    else tenantsPlaceholder();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return signInView("Your session has ended; sign in again.");
    replace(main, h("p", { class: "error", role: "alert" }, `This page failed to load: ${e instanceof Error ? e.message : String(e)}`));
  }
  document.title = `${name[0]?.toUpperCase()}${name.slice(1)} · Meridian console`;
  const heading = main.querySelector("h1");
  if (heading instanceof HTMLElement) {
    heading.tabIndex = -1;
    heading.focus();
  }
  announce(`${document.title} loaded`);
}

/** @type {import("./documents.js").DocumentSpec} */
const POLICY = {
  title: "Region policy",
  name: "policy",
  base: "/admin/policy",
  auditUrl: "/admin/audit",
  schema: "policy",
  writeRole: "editor",
  validateUrl: "/admin/policy/validate",
  dryRunUrl: "/admin/policy/dry-run",
};

function tenantsPlaceholder() {
  replace(
    main,
    h("h1", {}, "Tenants (not built yet)"),
    h("p", { class: "placeholder" }, "Placeholder: tenants (keys, limits, usage) arrive with issue 11. Nothing on this page works yet, and it is not in the navigation on purpose."),
  );
}

window.addEventListener("hashchange", () => void show());

// A session cookie from earlier may still be valid; the server says.
api("/console/api/session")
  .then((res) => {
    session = sessionOf(res.body);
    return start();
  })
  .catch(() => signInView());
