// Bringing parts of the page up to date from the server: fetch this page's own HTML again and swap the parts
// that changed, so the markup is made in one place (the templates) whether or not JavaScript runs.
import { renderTimes } from "./time.js";

let pending = null;
let again = false;

/** Fetch this page again; resolves with its document, or null if it could not be read (signed out, offline). */
export async function fetchThisPage() {
  try {
    const response = await fetch(location.href, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok || response.redirected) return null;
    return new DOMParser().parseFromString(await response.text(), "text/html");
  } catch {
    return null;
  }
}

/**
 * Replace each element with one of the given ids by its fresh copy, unless keep(current, fresh) says not to.
 * Calls made while a fetch runs are folded into one more fetch after it, which sees every change before them.
 */
export function refreshParts(ids, { keep = () => false } = {}) {
  if (pending) {
    again = true;
    return pending;
  }
  pending = (async () => {
    do {
      again = false;
      const fresh = await fetchThisPage();
      if (!fresh) return;
      for (const id of ids) {
        const current = document.getElementById(id);
        const replacement = fresh.getElementById(id);
        if (!current || !replacement || keep(current, replacement)) continue;
        current.replaceWith(document.adoptNode(replacement));
        renderTimes(replacement);
      }
    } while (again);
  })().finally(() => {
    pending = null;
  });
  return pending;
}
