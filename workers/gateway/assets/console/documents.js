// @ts-check
/**
 * A versioned, audited document (the region policy, the carrier partners): the live version
 * in an editor with validation as you type, the diff against live, the dry-run, publish with
 * a reason and If-Match (a 412 shows what changed meanwhile and re-diffs), versions, rollback
 * and the audit log. Write controls exist only for roles that may use them.
 */
import { ApiError, announce, api, checkSchema, h, isObject, jsonErrorAt, lineDiff, objects, replace, str, table } from "./lib.js";

/**
 * @typedef {{ title: string, name: string, base: string, auditUrl: string, schema: string,
 *   writeRole: import("./app.js").Role, validateUrl?: string, dryRunUrl?: string }} DocumentSpec
 */

/** @param {unknown} doc */
const pretty = (doc) => JSON.stringify(doc, null, 2);

/** @param {import("./app.js").PageContext} ctx @param {DocumentSpec} spec @param {HTMLElement} [into] */
export async function documentPage(ctx, spec, into = ctx.main) {
  const canWrite = ctx.can(spec.writeRole);
  const schema = ctx.catalog.schemas[spec.schema];
  let live = await loadLive();
  const editor = h("textarea", { id: `${spec.name}-editor`, class: "code", spellcheck: "false", rows: 24, "aria-describedby": `${spec.name}-validation`, ...(canWrite ? {} : { readonly: true }) });
  editor.value = live.text;
  const validation = h("div", { id: `${spec.name}-validation`, class: "validation", "aria-live": "polite" });
  const diff = h("div", { id: `${spec.name}-diff` });
  const notice = h("div", { id: `${spec.name}-notice`, role: "alert" });
  const dryRun = h("div", { id: `${spec.name}-dry-run`, "aria-live": "polite" });
  const history = h("div", { id: `${spec.name}-history` });
  const audit = h("div", { id: `${spec.name}-audit` });
  const liveLabel = h("p", { class: "help", id: `${spec.name}-live` });
  const reason = h("input", { id: `${spec.name}-reason`, name: "reason", required: true, maxlength: 500, autocomplete: "off" });

  const writeControls = canWrite
    ? h(
        "form",
        { class: "card publish", "aria-label": `Publish the ${spec.name} document` },
        h("label", { for: `${spec.name}-reason` }, "Reason for the change (goes to the audit log)"),
        reason,
        h("div", { class: "buttons" }, spec.dryRunUrl ? h("button", { type: "button", id: `${spec.name}-dry-run-button`, onclick: () => void runDryRun() }, "Dry-run impact") : null, h("button", { type: "submit", id: `${spec.name}-publish` }, "Publish")),
      )
    : h("p", { class: "readonly", id: `${spec.name}-readonly` }, `You are signed in as ${ctx.session.role}: this document is read only. Publishing and rollback need the ${spec.writeRole} role.`);
  if (writeControls instanceof HTMLFormElement) writeControls.addEventListener("submit", (e) => (e.preventDefault(), void publish()));

  replace(
    into,
    into === ctx.main ? h("h1", {}, spec.title) : h("h2", {}, spec.title),
    liveLabel,
    notice,
    h("div", { class: "split" }, h("div", {}, h("label", { for: `${spec.name}-editor` }, `${spec.title}: JSON document`), editor, validation), h("div", {}, h("h3", {}, "Changes against the live version"), diff, dryRun)),
    writeControls,
    h("h3", {}, "Versions"),
    history,
    h("h3", {}, "Audit log"),
    audit,
  );

  async function loadLive() {
    const res = await api(spec.base);
    return { version: Number(res.body.version), etag: res.headers.get("etag") ?? "", text: pretty(res.body.document), actor: str(res.body.actor), reason: str(res.body.reason), createdAt: str(res.body.createdAt) };
  }

  /** @type {number} */
  let timer = 0;
  let checkSeq = 0;
  editor.addEventListener("input", () => {
    clearTimeout(timer);
    timer = window.setTimeout(() => void check(), 250);
  });

  /** Validation as you type: JSON syntax, the JSON Schema, then (writers) the server's invariants. */
  async function check() {
    const seq = ++checkSeq;
    renderDiff();
    let draft;
    try {
      draft = JSON.parse(editor.value);
    } catch (e) {
      replace(validation, h("p", { class: "error", "data-valid": "false" }, `Not JSON: ${jsonErrorAt(editor.value, e)}`));
      return null;
    }
    const issues = checkSchema(schema, draft);
    if (issues.length > 0) {
      replace(validation, h("p", { class: "error", "data-valid": "false" }, `${issues.length} schema problem(s):`), h("ul", {}, issues.slice(0, 20).map((i) => h("li", {}, h("code", {}, i.path), ` ${i.message}`))));
      return null;
    }
    replace(validation, h("p", { class: "ok", "data-valid": "true" }, "Valid against the schema."));
    if (canWrite && spec.validateUrl) {
      try {
        const res = await api(spec.validateUrl, { method: "POST", body: draft });
        if (seq !== checkSeq) return draft;
        const violations = objects(res.body.violations);
        const errors = objects(res.body.errors);
        const diffSummary = isObject(res.body.diff) ? str(res.body.diff.summary) : "";
        replace(
          validation,
          h("p", { class: errors.length || violations.length ? "error" : "ok", "data-valid": String(errors.length === 0) }, errors.length ? `${errors.length} problem(s) the server found:` : violations.length ? `Valid, but breaks ${violations.length} invariant(s):` : "Valid and publishable."),
          h("ul", {}, [...errors, ...violations].map((f) => h("li", {}, h("code", {}, str(f.path) || str(f.code)), ` ${str(f.message)}`))),
          diffSummary ? h("p", { class: "help" }, `Summary: ${diffSummary}`) : null,
        );
      } catch (e) {
        if (seq === checkSeq) append(validation, `Server validation failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    return draft;
  }

  /** @param {HTMLElement} el @param {string} text */
  function append(el, text) {
    el.appendChild(h("p", { class: "error" }, text));
  }

  /** @param {string} a @param {string} b @param {string} label */
  function diffView(a, b, label) {
    const lines = lineDiff(a, b);
    if (!lines.some((l) => l.op === "+" || l.op === "-")) return h("p", { class: "help" }, "No difference.");
    return h("pre", { class: "diff", tabindex: 0, "aria-label": label }, lines.map((l) => h("span", { class: l.op === "+" ? "add" : l.op === "-" ? "del" : l.op === "…" ? "gap" : "same" }, `${l.op === "…" ? "…" : l.op} ${l.text}\n`)));
  }

  function renderDiff() {
    liveLabel.textContent = `Live: version ${live.version}, published ${new Date(live.createdAt).toLocaleString()} by ${live.actor}: ${live.reason}`;
    replace(diff, diffView(live.text, editor.value, `Diff of the draft against live version ${live.version}`));
  }

  async function runDryRun() {
    const draft = await check();
    if (draft === null || !spec.dryRunUrl) return;
    try {
      const res = await api(spec.dryRunUrl, { method: "POST", body: draft });
      const impact = isObject(res.body.impact) ? res.body.impact : {};
      const connected = isObject(res.body.connectedNodes) ? res.body.connectedNodes : {};
      const cells = objects(impact.changes);
      const nodes = objects(connected.changes);
      replace(
        dryRun,
        h("h3", {}, `Dry-run against live version ${str(res.body.liveVersion)}`),
        h("p", {}, isObject(res.body.diff) ? str(res.body.diff.summary) : ""),
        h("h4", {}, `Client countries that gain or lose node classes (${cells.length} of ${str(impact.cells)} cells change)`),
        cells.length ? table("Impact by client and node class", ["Client", "Node class", "Before", "After"], cells.map((c) => [str(c.client), str(c.nodeClass), c.before ? "allowed" : "refused", c.after ? "allowed" : "refused"]), { id: "impact-table" }) : h("p", {}, "No client gains or loses a node class everywhere."),
        h("h4", {}, `Connected nodes each client may use (${nodes.length} client(s) change, of ${str(connected.total)} nodes)`),
        nodes.length ? table("Connected nodes by client", ["Client", "Before", "After", "Change"], nodes.map((c) => [str(c.client), str(c.before), str(c.after), h("span", { "data-delta": str(c.delta) }, Number(c.delta) > 0 ? `+${str(c.delta)}` : str(c.delta))]), { id: "connected-impact" }) : h("p", {}, "No connected node changes for any client."),
      );
      announce("Dry-run done");
    } catch (e) {
      replace(dryRun, h("p", { class: "error", role: "alert" }, e instanceof Error ? e.message : String(e)));
    }
  }

  /** @param {() => Promise<unknown>} write @param {string} done */
  async function writeWithConflictCheck(write, done) {
    if (!reason.value.trim()) {
      replace(notice, h("p", { class: "error" }, "A reason is required."));
      reason.focus();
      return;
    }
    try {
      await write();
      const before = live.version;
      live = await loadLive();
      editor.value = live.text;
      reason.value = "";
      replace(dryRun);
      await Promise.all([loadHistory(), loadAudit(), check()]);
      // Set last: the marker means the history and audit log shown already include this write.
      replace(notice, h("p", { class: "ok", "data-published": String(live.version) }, `${done}: version ${live.version} is live (was ${before}).`));
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) {
        // Someone published meanwhile: show what changed, rebase the draft's diff on the new live.
        const started = live;
        live = await loadLive();
        await Promise.all([loadHistory(), loadAudit(), check()]);
        replace(
          notice,
          h("div", { class: "conflict", "data-conflict": String(live.version) }, h("p", { class: "error" }, `Version ${live.version} was published while you edited version ${started.version} (by ${live.actor}: ${live.reason}). Nothing was published. What changed meanwhile:`), diffView(started.text, live.text, "Changes published meanwhile"), h("p", {}, "Your draft is now compared with the new live version; review the diff and publish again.")),
        );
      } else {
        const issues = e instanceof ApiError ? [...objects(isObject(e.body.error) ? e.body.error.violations : []), ...objects(isObject(e.body.error) ? e.body.error.issues : [])] : [];
        replace(notice, h("p", { class: "error" }, e instanceof ApiError ? `${e.status} ${e.code}: ${e.message}` : String(e)), issues.length ? h("ul", {}, issues.map((i) => h("li", {}, `${str(i.path) || str(i.code)} ${str(i.message)}`))) : null);
      }
    }
  }

  async function publish() {
    let draft;
    try {
      draft = JSON.parse(editor.value);
    } catch (e) {
      replace(notice, h("p", { class: "error" }, `Not JSON: ${jsonErrorAt(editor.value, e)}`));
      return;
    }
    await writeWithConflictCheck(() => api(spec.base, { method: "PUT", body: draft, headers: { "if-match": live.etag, "x-meridian-reason": reason.value.trim() } }), "Published");
  }

  /** @param {number} version */
  async function rollback(version) {
    await writeWithConflictCheck(() => api(`${spec.base}/rollback`, { method: "POST", body: { version }, headers: { "if-match": live.etag, "x-meridian-reason": reason.value.trim() } }), `Rolled back to version ${version}`);
  }

  /** @param {number} version */
  async function viewVersion(version) {
    const res = await api(`${spec.base}/versions/${version}`);
    replace(notice, h("div", { class: "card" }, h("p", {}, `Version ${version} against live version ${live.version}:`), diffView(live.text, pretty(res.body.document), `Version ${version} against live`)));
  }

  async function loadHistory() {
    const res = await api(`${spec.base}/versions`);
    const rows = objects(res.body.versions).map((v) => {
      const version = Number(v.version);
      return [
        String(version),
        new Date(str(v.createdAt)).toLocaleString(),
        str(v.actor),
        str(v.reason),
        h(
          "span",
          { class: "buttons" },
          h("button", { type: "button", class: "small", onclick: () => void viewVersion(version), "aria-label": `Compare version ${version} with live` }, "Compare"),
          canWrite && version !== live.version ? h("button", { type: "button", class: "small", "data-rollback": String(version), onclick: () => void rollback(version), "aria-label": `Roll back to version ${version} (uses the reason above)` }, "Roll back") : null,
        ),
      ];
    });
    replace(history, table(`${spec.title} versions`, ["Version", "Published", "By", "Reason", ""], rows));
  }

  async function loadAudit() {
    const res = await api(spec.auditUrl);
    const rows = objects(res.body.entries).slice(0, 50).map((a) => [new Date(str(a.at)).toLocaleString(), str(a.actor), str(a.action), String(a.version), str(a.reason), str(a.summary)]);
    replace(audit, table(`${spec.title} audit log`, ["When", "Who", "Action", "Version", "Reason", "What changed"], rows, { id: `${spec.name}-audit-table` }));
  }

  renderDiff();
  await Promise.all([loadHistory(), loadAudit(), check()]);
}
