// /docs: Swagger UI on the center's own OpenAPI schema. A file of its own, not an inline
// script, because the Content-Security-Policy runs scripts from the center's files only.
// "Authorize" takes the access_token of POST /api/v1/auth/login (the bearer scheme).
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null, // the public validator is another site (and offline, unreachable)
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
