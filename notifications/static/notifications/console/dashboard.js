// The dashboard's live updates: every data-refresh-seconds, fetch the numbers (the JSON of dashboard_numbers) and
// put them in place: the elements marked data-stat (a dotted path into the JSON), the tables marked data-rows (a
// list in the JSON; data-columns names the cells, data-link the field whose URL the first cell links to) and the
// two charts. The page is complete without this script: the server rendered the same numbers.
(function () {
  "use strict";

  const root = document.getElementById("console-dashboard");
  if (!root) return;
  const COLORS = { published: "#417690", delivered: "#2e8540", failed: "#ba2121", outcome: "#79aec8" };

  function valueAt(numbers, path) {
    return path.split(".").reduce((value, key) => (value == null ? undefined : value[key]), numbers);
  }

  function fillStats(numbers) {
    root.querySelectorAll("[data-stat]").forEach((element) => {
      const value = valueAt(numbers, element.dataset.stat);
      if (value !== undefined) element.textContent = String(value);
    });
  }

  function fillRows(numbers) {
    root.querySelectorAll("tbody[data-rows]").forEach((body) => {
      const rows = valueAt(numbers, body.dataset.rows) || [];
      const columns = body.dataset.columns.split(" ");
      const linkField = body.dataset.link;
      const fresh = rows.map((row) => {
        const tr = document.createElement("tr");
        columns.forEach((column, index) => {
          const td = document.createElement("td");
          if (index === 0 && linkField && row[linkField]) {
            const a = document.createElement("a");
            a.href = row[linkField];
            a.textContent = String(row[column]);
            td.append(a);
          } else {
            td.textContent = String(row[column]);
          }
          tr.append(td);
        });
        return tr;
      });
      if (!fresh.length && body.dataset.empty) {
        const tr = document.createElement("tr");
        const td = document.createElement("td");
        td.colSpan = columns.length;
        td.textContent = body.dataset.empty;
        tr.append(td);
        fresh.push(tr);
      }
      body.replaceChildren(...fresh);
    });
  }

  function seriesChart(numbers) {
    const canvas = document.getElementById("console-series-chart");
    const data = {
      labels: numbers.series.labels,
      datasets: [
        { type: "bar", label: "Delivered", data: numbers.series.delivered, backgroundColor: COLORS.delivered, stack: "deliveries", yAxisID: "deliveries" },
        { type: "bar", label: "Failed", data: numbers.series.failed, backgroundColor: COLORS.failed, stack: "deliveries", yAxisID: "deliveries" },
        { type: "line", label: "Notifications published", data: numbers.series.published, borderColor: COLORS.published, backgroundColor: COLORS.published, yAxisID: "published", tension: 0.2 },
      ],
    };
    return new window.Chart(canvas, {
      data,
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          deliveries: { position: "left", beginAtZero: true, stacked: true, ticks: { precision: 0 }, title: { display: true, text: "deliveries" } },
          published: { position: "right", beginAtZero: true, ticks: { precision: 0 }, grid: { drawOnChartArea: false }, title: { display: true, text: "notifications" } },
          x: { stacked: true },
        },
      },
    });
  }

  function pushChart(numbers) {
    const canvas = document.getElementById("console-push-chart");
    return new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: numbers.push_outcomes.map((row) => row.outcome.replace("_", " ")),
        datasets: [{ label: "Attempts", data: numbers.push_outcomes.map((row) => row.count), backgroundColor: COLORS.outcome }],
      },
      options: { animation: false, maintainAspectRatio: false, indexAxis: "y", plugins: { legend: { display: false } },
        scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
  }

  let charts = null;

  function drawCharts(numbers) {
    if (!window.Chart) return;
    if (!charts) {
      charts = { series: seriesChart(numbers), push: pushChart(numbers) };
      root.dataset.chartsDrawn = "true";
      return;
    }
    const series = charts.series.data;
    series.labels = numbers.series.labels;
    series.datasets[0].data = numbers.series.delivered;
    series.datasets[1].data = numbers.series.failed;
    series.datasets[2].data = numbers.series.published;
    charts.series.update();
    charts.push.data.datasets[0].data = numbers.push_outcomes.map((row) => row.count);
    charts.push.update();
  }

  async function refresh() {
    try {
      const response = await fetch(root.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return; // signed out or a server error: keep the last numbers; the next refresh tries again
      const numbers = await response.json();
      fillStats(numbers);
      fillRows(numbers);
      drawCharts(numbers);
    } catch (error) {
      // offline for a moment: same as above
    }
  }

  drawCharts(JSON.parse(document.getElementById("console-dashboard-numbers").textContent));
  window.setInterval(refresh, Number(root.dataset.refreshSeconds || 10) * 1000);
})();
