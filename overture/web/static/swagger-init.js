// Starts Swagger UI on the API documentation page (templates/swagger.html). A static
// file rather than an inline script, so the page runs under a Content-Security-Policy
// without 'unsafe-inline'; the document's address comes from the page's data-spec-url.
//
// The tags start closed (docExpansion "none"). Since 5.33 Swagger UI virtualizes the
// operations list once it holds 150 rows or more (a row is a tag heading or an operation
// of an open tag): only the rows in the viewport are mounted, the rest appear on
// scrolling and the browser's find cannot see them (swagger-ui#11056). With every tag
// open our document is past that (19 tags + 132 operations) and the page showed one
// tag. Closed, the page opens as the full list of tags, each opening its operations
// in place, and the list stays short enough to be drawn whole. The filter narrows the
// tags by name; it is a convenience, not the way in.
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    validatorUrl: null,
    docExpansion: "none",
    filter: true
  });
});
