// The built book's own script (loaded on every page by _ext/relreps_site.py).
//
// 1. Figures in dark mode: plotly draws text and grid lines in the colours of the
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

  // 2. The sidebar buttons. sphinx-book-theme 1.3 puts a second pair of sidebar toggles in the
  // article header, but pydata-sphinx-theme 0.17 (and sphinx-book-theme's desktop collapse) bind
  // their handlers to the first pair only, in the page header, which this theme hides: the visible
  // buttons did nothing, and a phone had no way to the chapter list. Visible buttons click the bound one.
  function forwardToggles() {
    [".primary-toggle", ".secondary-toggle"].forEach(function (selector) {
      var all = document.querySelectorAll(selector);
      for (var i = 1; i < all.length; i++) {
        all[i].addEventListener("click", function (event) {
          event.preventDefault();
          event.stopPropagation();
          all[0].click();
        });
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", forwardToggles);
  } else {
    forwardToggles();
  }
})();
