// maild web: refresh the queue overview's counts every 15 seconds without a reload.
"use strict";
(function () {
  const table = document.querySelector("table[data-poll]");
  if (!table) { return; }
  async function refresh() {
    try {
      const response = await fetch(table.dataset.poll, { credentials: "same-origin" });
      if (!response.ok) { return; }
      for (const row of await response.json()) {
        const line = table.querySelector(`tr[data-queue="${CSS.escape(row.queue)}"]`);
        if (!line) { continue; }
        for (const cell of line.querySelectorAll("td[data-key]")) {
          const value = row[cell.dataset.key];
          cell.textContent = String(value);
          if (cell.dataset.key === "overdue") { cell.classList.toggle("late", value > 0); }
        }
      }
    } catch (error) { /* the next poll tries again */ }
  }
  setInterval(refresh, 15000);
})();
