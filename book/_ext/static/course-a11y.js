/* The course website's accessibility fixes for what scripts draw after the page loads (widgets, bertviz views).
   The build (book/_ext/accessible_site.py) fixes the written HTML; this names what only exists once drawn:
   - a widget's slider is named by its label and announces the number its readout shows;
   - bertviz's layer and attention pickers are named;
   - an image a widget draws gets the alt text written for its cell (the cell's "mystnb.image.alt" metadata);
   - a box that scrolls and holds nothing focusable becomes a named region a keyboard can reach and scroll;
   - a table a widget draws scrolls in its own named box, like the tables of the page. */
(function () {
  "use strict";
  const article = () => document.querySelector(".bd-article") || document.body;
  const text = (el) => (el ? el.textContent.replace(/\s+/g, " ").trim() : "");

  function nameSliders(root) {
    root.querySelectorAll(".widget-slider, .jupyter-widget-slider, .widget-hslider, .widget-vslider").forEach((box) => {
      const label = text(box.querySelector(".widget-label, label"));
      const readout = box.querySelector(".widget-readout");
      box.querySelectorAll('[role="slider"]').forEach((handle) => {
        if (label && handle.getAttribute("aria-label") !== label) handle.setAttribute("aria-label", label);
        const shown = readout ? (readout.value !== undefined && readout.value !== "" ? readout.value : text(readout)) : "";
        if (shown && handle.getAttribute("aria-valuetext") !== shown) handle.setAttribute("aria-valuetext", shown);
      });
    });
  }

  function nameBertvizPickers(root) {
    root.querySelectorAll('div[id^="bertviz-"] select:not([aria-label])').forEach((select) => {
      const before = select.previousSibling && select.previousSibling.textContent || select.parentElement.textContent;
      const words = (before || select.id || "").replace(/[:\s]+$/, "").trim().split(/\s+/);
      select.setAttribute("aria-label", words[words.length - 1] || select.id || "view");
    });
  }

  function nameWidgetImages(root) {
    root.querySelectorAll(".cell_output img:not([alt])").forEach((img) => {
      const marker = img.closest(".cell_output").querySelector(".widget-alt[data-alt]");
      img.setAttribute("alt", marker ? marker.dataset.alt : (img.title || "figure drawn by the widget above"));
    });
  }

  function boxTables(root) {
    root.querySelectorAll("table").forEach((table) => {
      if (table.closest(".course-table-scroll")) return;
      const box = document.createElement("div");
      box.className = "course-table-scroll";
      box.setAttribute("role", "region");
      box.tabIndex = 0;
      const caption = table.querySelector("caption");
      const heads = [...table.querySelectorAll("th")].slice(0, 4).map(text).filter(Boolean).join(" · ");
      box.setAttribute("aria-label", "Table" + (text(caption) || heads ? ": " + (text(caption) || heads) : ""));
      table.parentNode.insertBefore(box, table);
      box.appendChild(table);
    });
  }

  const FOCUSABLE = "a[href], button, input, select, textarea, [tabindex]";
  function labelScrollBoxes(root) {
    root.querySelectorAll("div, pre, section").forEach((el) => {
      if (el.hasAttribute("tabindex") || el.querySelector(FOCUSABLE)) return;
      const style = getComputedStyle(el);
      const scrolls = (["auto", "scroll"].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1) ||
                      (["auto", "scroll"].includes(style.overflowY) && el.scrollHeight > el.clientHeight + 1);
      if (!scrolls) return;
      el.tabIndex = 0;
      if (!el.getAttribute("role")) el.setAttribute("role", "region");
      if (!el.getAttribute("aria-label")) el.setAttribute("aria-label", "Scrollable output");
    });
  }

  let pending = null;
  function fixAll() {
    pending = null;
    const root = article();
    nameSliders(root);
    nameBertvizPickers(root);
    nameWidgetImages(root);
    boxTables(root);
    labelScrollBoxes(root);
  }
  const soon = () => { if (pending === null) pending = setTimeout(fixAll, 50); };
  document.addEventListener("DOMContentLoaded", () => {
    fixAll();
    new MutationObserver(soon).observe(article(), {childList: true, subtree: true, attributes: true,
                                                   attributeFilter: ["aria-valuenow", "value"]});
  });
  window.addEventListener("load", soon);
  document.addEventListener("load", (event) => { if (event.target.tagName === "IMG") soon(); }, true);
  window.addEventListener("resize", soon);
})();
