// Renders /openapi.json with Swagger UI's bundle (copied from swagger-ui-dist by `npm run setup`).
// A separate file, not an inline script: the page's CSP allows scripts from this origin only.
const status = document.getElementById("docs-status");
if (typeof window.SwaggerUIBundle !== "function") {
  status.textContent = "The reference bundle is missing: run `npm run setup` (it copies Swagger UI into workers/gateway/assets/docs/vendor). The document itself is at /openapi.json.";
} else {
  status.remove();
  window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#reference",
    deepLinking: true,
    // No call to the public validator badge service: nothing leaves this origin.
    validatorUrl: null,
    tryItOutEnabled: false,
    withCredentials: true,
    layout: "BaseLayout",
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
  });
}
