// The approvers field: a comma-separated list of usernames, in order. The datalist offers whole values, so its
// options are rewritten as you type to complete the last name after the ones already written.
const input = document.getElementById("id_approvers");
const datalist = document.getElementById("approver-names");
const candidates = [...datalist.options].map((option) => ({ username: option.value, name: option.textContent }));

function suggest() {
  const parts = input.value.split(",");
  const written = parts.slice(0, -1).map((part) => part.trim()).filter(Boolean);
  const prefix = written.length ? `${written.join(", ")}, ` : "";
  const options = candidates
    .filter((candidate) => !written.includes(candidate.username))
    .map((candidate) => {
      const option = document.createElement("option");
      option.value = prefix + candidate.username;
      option.textContent = candidate.name;
      return option;
    });
  datalist.replaceChildren(...options);
}

input.addEventListener("input", suggest);
