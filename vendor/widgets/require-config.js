// The widget manager locates its lazy chunks and icon fonts from its RequireJS module URI, which
// RequireJS resolves against the page's folder by default. Resolve it against this folder instead,
// so that pages at any depth load them from the book's own copy (vendor/README.md).
require.config({ baseUrl: document.currentScript.src.replace(/[^/]*$/, "") });
