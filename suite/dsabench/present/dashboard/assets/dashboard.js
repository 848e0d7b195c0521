/* dsabench dashboard: filters over the JSON embedded in the page.

   The page embeds a JSON block (id dsabench-data, type application/json) holding
   {"axes": [...], "items": [{"el": "ELEMENT ID", "AXIS": "VALUE", ...}]}. For each axis
   with values, a <select> goes into #filters; an item whose values all match the selects stays
   visible, the others get the `hidden` attribute. A section ([data-filter-section]) whose items
   are all hidden is hidden too. The URL hash (#phase=decode&graph=graph) sets the selects on load
   and on hashchange; #filter-link always links to the current selection. At the end the script
   sets <html data-ready="1">: the browser test waits for it. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("dsabench-data").textContent);
  var axes = data.axes || [];
  var items = data.items || [];
  var bar = document.getElementById("filters");
  var selects = {};

  function distinct(axis) {
    var found = {};
    items.forEach(function (item) {
      if (item[axis] !== null && item[axis] !== undefined && item[axis] !== "") {
        found[String(item[axis])] = true;
      }
    });
    return Object.keys(found).sort(function (a, b) {
      return a.localeCompare(b, undefined, { numeric: true });
    });
  }

  function currentQuery() {
    var parts = [];
    axes.forEach(function (axis) {
      if (selects[axis] && selects[axis].value !== "") {
        parts.push(encodeURIComponent(axis) + "=" + encodeURIComponent(selects[axis].value));
      }
    });
    return parts.join("&");
  }

  function apply() {
    var shown = 0;
    items.forEach(function (item) {
      var keep = axes.every(function (axis) {
        var s = selects[axis];
        return !s || s.value === "" || String(item[axis]) === s.value;
      });
      var el = document.getElementById(item.el);
      if (el) { el.hidden = !keep; }
      if (keep) { shown += 1; }
    });
    document.querySelectorAll("[data-filter-section]").forEach(function (section) {
      var members = section.querySelectorAll("[data-filter-item]");
      var visible = Array.prototype.some.call(members, function (m) { return !m.hidden; });
      section.hidden = members.length > 0 && !visible;
    });
    var count = document.getElementById("filter-count");
    if (count) { count.textContent = shown + " of " + items.length + " shown"; }
    var link = document.getElementById("filter-link");
    if (link) { link.setAttribute("href", "#" + currentQuery()); }
    document.documentElement.setAttribute("data-shown", String(shown));
  }

  function readHash() {
    var unknown = [];
    var params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    axes.forEach(function (axis) {
      var s = selects[axis];
      if (!s) { return; }
      var wanted = params.has(axis) ? params.get(axis) : "";
      var exists = Array.prototype.some.call(s.options, function (o) { return o.value === wanted; });
      if (exists) {
        s.value = wanted;
      } else {
        s.value = "";
        unknown.push(axis + "=" + wanted);
      }
    });
    var note = document.getElementById("filter-note");
    if (note) {
      note.textContent = unknown.length ? "ignored (no such value): " + unknown.join(", ") : "";
    }
    apply();
  }

  if (bar && axes.length && items.length) {
    axes.forEach(function (axis) {
      var values = distinct(axis);
      if (!values.length) { return; }
      var label = document.createElement("label");
      label.textContent = axis + " ";
      var select = document.createElement("select");
      select.name = axis;
      select.setAttribute("data-axis", axis);
      var all = document.createElement("option");
      all.value = "";
      all.textContent = "all (" + values.length + ")";
      select.appendChild(all);
      values.forEach(function (v) {
        var option = document.createElement("option");
        option.value = v;
        option.textContent = v;
        select.appendChild(option);
      });
      select.addEventListener("change", apply);
      label.appendChild(select);
      bar.appendChild(label);
      selects[axis] = select;
    });
    var reset = document.createElement("button");
    reset.type = "button";
    reset.textContent = "show all";
    reset.addEventListener("click", function () {
      axes.forEach(function (axis) { if (selects[axis]) { selects[axis].value = ""; } });
      apply();
    });
    bar.appendChild(reset);
    window.addEventListener("hashchange", readHash);
    readHash();
  }
  document.documentElement.setAttribute("data-ready", "1");
})();
