// Keeps "5 minutes ago" true while the page stays open, and shows exact times in the reader's own time zone.
// The words match the server's (web/templatetags/web_time.py `ago`).
const UNITS = [
  ["day", 86400],
  ["hour", 3600],
  ["minute", 60],
];
const exactFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function ago(date, now = Date.now()) {
  const seconds = (now - date.getTime()) / 1000;
  if (seconds < 45) return "just now";
  for (const [unit, length] of UNITS) {
    if (seconds >= length) {
      const count = Math.floor(seconds / length);
      return `${count} ${unit}${count === 1 ? "" : "s"} ago`;
    }
  }
  return "1 minute ago";
}

/** Fill a <time datetime> made by web/_time.html (or a copy of it) from its datetime attribute. */
export function renderTime(element) {
  const date = new Date(element.getAttribute("datetime"));
  if (Number.isNaN(date.getTime())) return;
  const relative = element.querySelector("[data-relative]");
  const exact = element.querySelector(".exact");
  if (relative) relative.textContent = ago(date);
  if (exact) exact.textContent = exactFormat.format(date);
}

export function renderTimes(root = document) {
  root.querySelectorAll("time[datetime]").forEach(renderTime);
}

export function keepTimesCurrent() {
  renderTimes();
  setInterval(() => renderTimes(), 30_000);
}
