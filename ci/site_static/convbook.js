/* The book's own behaviour on every page (loaded with defer, after the theme's script):
   - the colour switch: one tap shows the other theme; choosing the theme the system asks for
     goes back to following the system; the button says what it does and its state;
   - the sidebar buttons say whether their panel is open (aria-expanded);
   - a figure opens at full size on a tap, in a dialog that scrolls (Escape or Close shuts it);
   - tables and explorer pictures that scroll sideways are focusable, labelled regions, shaded
     at the edge that hides more (data-more, read by convbook.css);
   - formulas are not Tab stops, except those too wide for the screen, which scroll;
   - search snippets read formulas as text, not as raw TeX. */
(function () {
  "use strict";
  var root = document.documentElement;
  var prefersDark = window.matchMedia("(prefers-color-scheme: dark)");

  /* ---- colour mode ---------------------------------------------------------------- */
  function systemTheme() { return prefersDark.matches ? "dark" : "light"; }

  function applyTheme(theme, mode) {
    root.dataset.mode = mode;
    root.dataset.theme = theme;
    localStorage.setItem("mode", mode);
    localStorage.setItem("theme", theme);
    document.querySelectorAll(".dropdown-menu").forEach(function (menu) {
      menu.classList.toggle("dropdown-menu-dark", theme === "dark");
    });
    labelThemeSwitches();
  }

  function labelThemeSwitches() {
    var dark = root.dataset.theme === "dark";
    var follows = root.dataset.mode === "auto" ? " (as your system is set)" : "";
    document.querySelectorAll(".theme-switch-button").forEach(function (button) {
      button.setAttribute("aria-label", "Dark mode");
      button.setAttribute("aria-pressed", dark ? "true" : "false");
      button.title = (dark ? "Dark mode" : "Light mode") + follows + ": switch to " +
        (dark ? "light" : "dark") + " mode";
      /* the browser's own tooltip shows the title: Bootstrap's would keep the first one */
      button.removeAttribute("data-bs-toggle");
    });
  }

  /* capture phase: the theme's own handler (a three-way cycle) never sees the click */
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".theme-switch-button");
    if (!button) { return; }
    event.preventDefault();
    event.stopImmediatePropagation();
    var theme = root.dataset.theme === "dark" ? "light" : "dark";
    applyTheme(theme, theme === systemTheme() ? "auto" : theme);
  }, true);

  prefersDark.addEventListener("change", function () {
    /* after the theme's own listener, which follows the system whatever the reader chose */
    setTimeout(function () {
      var mode = root.dataset.mode;
      applyTheme(mode === "auto" ? systemTheme() : mode, mode);
    }, 0);
  });

  /* ---- sidebar buttons ------------------------------------------------------------ */
  function sidebarOpen(side) {
    var panel = document.querySelector(side === "primary" ? ".bd-sidebar-primary" : ".bd-sidebar-secondary");
    if (!panel) { return false; }
    var box = panel.getBoundingClientRect(), style = getComputedStyle(panel);
    return box.width > 0 && box.right > 0 && box.left < window.innerWidth &&
      style.visibility !== "hidden" && Number(style.opacity) > 0;
  }

  function setExpanded(side, open) {
    document.querySelectorAll("." + side + "-toggle").forEach(function (button) {
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  function labelSidebarButtons() {
    ["primary", "secondary"].forEach(function (side) {
      var panel = document.querySelector(side === "primary" ? ".bd-sidebar-primary" : ".bd-sidebar-secondary");
      if (panel && !panel.id) { panel.id = "convbook-" + side + "-sidebar"; }
      setExpanded(side, sidebarOpen(side));
      document.querySelectorAll("." + side + "-toggle").forEach(function (button) {
        if (panel) { button.setAttribute("aria-controls", panel.id); }
        var name = side === "primary" ? "table of contents" : "contents of this page";
        button.setAttribute("aria-label", "Show or hide the " + name);
      });
    });
  }

  /* A panel opens or closes when the theme flips its check box (a sidebar button, the overlay
     or Escape): its button then says the opposite of what the panel was; once the panel has
     moved (a CSS transition), what it shows is read again. Capture phase: the theme's
     handlers stop these events where they land. */
  function watchSidebars() {
    var settle = null;
    function around() {
      var before = {};
      ["primary", "secondary"].forEach(function (side) {
        var box = document.getElementById("pst-" + side + "-sidebar-checkbox");
        before[side] = {open: sidebarOpen(side), checked: box ? box.checked : null};
      });
      setTimeout(function () {
        ["primary", "secondary"].forEach(function (side) {
          var box = document.getElementById("pst-" + side + "-sidebar-checkbox");
          if (box && box.checked !== before[side].checked) { setExpanded(side, !before[side].open); }
        });
      }, 0);
      clearTimeout(settle);  /* only the last event's: an earlier one would read a moving panel */
      settle = setTimeout(labelSidebarButtons, 450);
    }
    document.addEventListener("click", around, true);
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { around(); }
    }, true);
    window.addEventListener("resize", debounce(labelSidebarButtons, 200));
    labelSidebarButtons();
  }

  /* ---- figures at full size ------------------------------------------------------- */
  var dialog = null, opener = null;

  function zoomDialog() {
    if (dialog) { return dialog; }
    dialog = document.createElement("dialog");
    dialog.className = "convbook-zoom-dialog";
    dialog.setAttribute("aria-label", "Figure at full size");
    dialog.innerHTML =
      '<div class="convbook-zoom-bar"><span class="convbook-zoom-hint">Full size: scroll to see all of it.</span>' +
      '<button type="button" class="convbook-zoom-close">Close</button></div>' +
      '<div class="convbook-zoom-body" role="region" tabindex="0" aria-label="The figure at full size">' +
      '<img alt=""></div><p class="convbook-zoom-caption"></p>';
    dialog.querySelector(".convbook-zoom-close").addEventListener("click", function () { dialog.close(); });
    dialog.addEventListener("click", function (event) { if (event.target === dialog) { dialog.close(); } });
    dialog.addEventListener("close", function () {
      if (opener) { opener.focus(); }
    });
    document.body.appendChild(dialog);
    return dialog;
  }

  function openFullSize(img, button) {
    var view = zoomDialog(), big = view.querySelector(".convbook-zoom-body img");
    big.src = img.currentSrc || img.src;
    big.alt = img.alt;
    big.style.width = img.naturalWidth ? img.naturalWidth + "px" : "";
    view.querySelector(".convbook-zoom-caption").textContent = img.alt;
    opener = button;
    view.showModal();
    view.querySelector(".convbook-zoom-body").scrollLeft = 0;
  }

  function makeZoomable(img) {
    if (img.closest("button, a, .convbook-explorer, .convbook-zoom-dialog")) { return; }
    var button = document.createElement("button");
    button.type = "button";
    button.className = "convbook-zoom";
    button.setAttribute("aria-haspopup", "dialog");
    button.title = "Show this figure at full size";
    img.parentNode.insertBefore(button, img);
    button.appendChild(img);  /* the image's alt text names the button */
    var mark = document.createElement("span");  /* a corner sign that says a tap enlarges */
    mark.className = "convbook-zoom-mark";
    mark.setAttribute("aria-hidden", "true");
    mark.innerHTML = '<i class="fa-solid fa-expand"></i>';
    button.appendChild(mark);
    button.addEventListener("click", function () { openFullSize(img, button); });
  }

  /* ---- regions that scroll sideways ----------------------------------------------- */
  var SCROLLERS = ".convbook-scroll, .convbook-table-scroll, .pst-scrollable-table-container";

  function markScrollers() {
    var tables = 0;
    document.querySelectorAll(SCROLLERS).forEach(function (box) {
      var more = box.scrollWidth > box.clientWidth + 1;
      if (more && box.classList.contains("pst-scrollable-table-container") && !box.hasAttribute("tabindex")) {
        tables += 1;
        var caption = box.querySelector("caption");
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", caption ? caption.textContent.trim() + " (table, scrolls sideways)"
                                               : "Table " + tables + " (scrolls sideways)");
      }
      edges(box);
    });
    uniqueRegionLabels();
  }

  /* Two regions with one label are one landmark to a screen reader's list of them (axe:
     landmark-unique): a repeated label gets its position on the page, "(2 of 3)". */
  function uniqueRegionLabels() {
    var byLabel = {};
    document.querySelectorAll('[role="region"][aria-label]').forEach(function (region) {
      var label = region.dataset.convbookLabel || region.getAttribute("aria-label");
      region.dataset.convbookLabel = label;
      (byLabel[label] = byLabel[label] || []).push(region);
    });
    Object.keys(byLabel).forEach(function (label) {
      var regions = byLabel[label];
      if (regions.length < 2) { return; }
      regions.forEach(function (region, i) {
        region.setAttribute("aria-label", label + " (" + (i + 1) + " of " + regions.length + ")");
      });
    });
  }

  function edges(box) {
    var left = box.scrollLeft > 1, right = box.scrollLeft + box.clientWidth < box.scrollWidth - 1;
    box.dataset.more = left && right ? "both" : left ? "left" : right ? "right" : "none";
  }

  /* ---- formulas are read, not tabbed to, unless one must scroll to read them ---------- */
  function tabFormulas() {
    document.querySelectorAll("mjx-container").forEach(function (formula) {
      if (formula.closest("div.math") && formula.scrollWidth > formula.clientWidth + 1) {
        formula.setAttribute("tabindex", "0");
      } else {
        formula.removeAttribute("tabindex");
      }
    });
  }

  function afterMathJax() {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      MathJax.startup.promise.then(tabFormulas);
    }
  }

  /* ---- search snippets ------------------------------------------------------------ */
  var SYMBOLS = {
    times: "×", cdot: "·", le: "≤", leq: "≤", ge: "≥", geq: "≥", approx: "≈", ne: "≠", neq: "≠",
    pm: "±", to: "→", rightarrow: "→", infty: "∞", sum: "Σ", prod: "Π", ldots: "…", dots: "…",
    cdots: "⋯", in: "∈", alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε", eta: "η",
    theta: "θ", lambda: "λ", mu: "μ", pi: "π", rho: "ρ", sigma: "σ", tau: "τ", phi: "φ", chi: "χ",
    omega: "ω", Delta: "Δ", Sigma: "Σ", Omega: "Ω", sqrt: "√", partial: "∂", nabla: "∇"
  };

  function texAsText(tex) {
    var text = tex.trim().replace(/^(\\\(|\\\[|\$\$?)/, "").replace(/(\\\)|\\\]|\$\$?)$/, "");
    for (var i = 0; i < 3; i++) {  /* nested groups, innermost first */
      text = text.replace(/\\(?:text|mathrm|mathbf|mathit|mathsf|operatorname|boldsymbol)\s*\{([^{}]*)\}/g, "$1")
                 .replace(/\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}/g, "($1)/($2)");
    }
    return text.replace(/\\(left|right|displaystyle|[,;:! ]|quad|qquad)/g, " ")
               .replace(/\\([A-Za-z]+)/g, function (all, name) { return SYMBOLS[name] || name; })
               .replace(/[{}]/g, "").replace(/\s+/g, " ").trim();
  }

  function readableSearch() {
    if (typeof Search === "undefined" || !Search.htmlToText || Search.convbookText) { return; }
    var original = Search.htmlToText;
    Search.htmlToText = function (html, anchor) {
      var page = new DOMParser().parseFromString(html, "text/html");
      page.querySelectorAll(".math").forEach(function (math) { math.textContent = texAsText(math.textContent); });
      return original(page.documentElement.outerHTML, anchor);
    };
    Search.convbookText = texAsText;
  }

  function debounce(callback, wait) {
    var timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(callback, wait); };
  }

  readableSearch();  /* before the search page's own start-up handler runs */

  function start() {
    labelThemeSwitches();
    watchSidebars();
    document.querySelectorAll("article.bd-article .cell_output img, article.bd-article figure img")
      .forEach(makeZoomable);
    markScrollers();
    document.addEventListener("scroll", function (event) {
      if (event.target.matches && event.target.matches(SCROLLERS)) { edges(event.target); }
    }, true);
    /* explorer frames change size as their controls move; images load late */
    window.addEventListener("resize", debounce(markScrollers, 200));
    window.addEventListener("load", markScrollers);
    document.querySelectorAll("article img").forEach(function (img) {
      img.addEventListener("load", debounce(markScrollers, 50));
    });
    window.addEventListener("resize", debounce(tabFormulas, 200));
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
  /* MathJax's own deferred script runs after this one: its promise exists from here on */
  if (document.readyState === "complete") {
    afterMathJax();
  } else {
    document.addEventListener("DOMContentLoaded", afterMathJax);
  }
})();
