// Starts Swagger UI on the API documentation page (templates/swagger.html). A static
// file rather than an inline script, so the page runs under a Content-Security-Policy
// without 'unsafe-inline'; the document's address comes from the page's data-spec-url.
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    validatorUrl: null,
    filter: true
  });
});
