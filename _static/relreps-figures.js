// Figures of the built book in dark mode: plotly draws text and grid lines in the colours of the
// relreps template (dark on a transparent background); when the page is dark (pydata-sphinx-theme's
// html[data-theme="dark"]) they are redrawn light, and back when the reader switches again.
// relreps.notebook.figure_html calls window.relrepsFigureTheme(div) after drawing each figure.
(function () {
  "use strict";
  var DARK = { font: "#d6d6d6", grid: "#3b3b3b", zeroline: "#5a5a5a" };

  function isDark() {
    return document.documentElement.getAttribute("data-theme") === "dark";
  }

  function apply(gd) {
    if (!window.Plotly || !gd || !gd.layout) {
      return;
    }
    var dark = isDark();
    if (gd.relrepsDark === dark) {
      return;
    }
    gd.relrepsDark = dark;
    // null restores the template's value (light mode)
    var update = { "font.color": dark ? DARK.font : null };
    Object.keys(gd.layout).forEach(function (key) {
      if (/^[xy]axis\d*$/.test(key)) {
        update[key + ".gridcolor"] = dark ? DARK.grid : null;
        update[key + ".zerolinecolor"] = dark ? DARK.zeroline : null;
      }
    });
    window.Plotly.relayout(gd, update);
  }

  window.relrepsFigureTheme = apply;

  function applyAll() {
    document.querySelectorAll(".relreps-figure .js-plotly-plot").forEach(apply);
  }

  new MutationObserver(applyAll).observe(document.documentElement, {
    attributes: true,
    attributeFilter: ["data-theme"],
  });
})();
