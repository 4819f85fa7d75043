// The admin's nav sidebar takes a third of a narrow window: on the Command Center it starts collapsed and
// remembers the operator's own choice here, without changing what the rest of the admin remembers.

const STORAGE_KEY = "kaiku.commandCenter.navSidebarIsOpen";
const ADMIN_KEY = "django.admin.navSidebarIsOpen"; // written by the admin's nav_sidebar.js

function read(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function write(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // storage disabled: the choice lasts for this page only
  }
}

// Runs after the admin's nav_sidebar.js (both are deferred; it comes first in the document).
export function collapseNavSidebar() {
  const main = document.getElementById("main");
  const sidebar = document.getElementById("nav-sidebar");
  const toggle = document.getElementById("toggle-nav-sidebar");
  if (!main || !sidebar || !toggle) return;
  const open = read(STORAGE_KEY) === "true";
  main.classList.toggle("shifted", open);
  sidebar.setAttribute("aria-expanded", String(open));
  toggle.setAttribute("aria-expanded", String(open));
  const adminChoice = read(ADMIN_KEY);
  // The admin's own handler runs first (it flips the class and stores its choice); ours then keeps the
  // choice for this page and puts back what the other admin pages remember.
  toggle.addEventListener("click", () => {
    const nowOpen = main.classList.contains("shifted");
    write(STORAGE_KEY, String(nowOpen));
    write(ADMIN_KEY, adminChoice);
    sidebar.setAttribute("aria-expanded", String(nowOpen));
    toggle.setAttribute("aria-expanded", String(nowOpen));
  });
}
