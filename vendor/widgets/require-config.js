// The widget manager's bundles locate their lazy chunks and icon fonts from their RequireJS module
// URIs, which RequireJS resolves against the page's folder by default. Resolve every one of them
// into this folder's copy of the manager (vendor/README.md), so pages at any depth find the files.
// RequireJS matches the longest prefix, so the libembed-amd entry keeps its own path.
(function () {
  var dist = "@jupyter-widgets/html-manager/dist/";
  require.config({
    baseUrl: document.currentScript.src.replace(/[^/]*$/, ""),
    paths: {
      "@jupyter-widgets/html-manager": dist + "html-manager",
      "@jupyter-widgets/html-manager/dist/libembed-amd": dist + "libembed-amd",
      "@jupyter-widgets/base": dist + "base",
      "@jupyter-widgets/controls": dist + "controls",
    },
  });
})();
