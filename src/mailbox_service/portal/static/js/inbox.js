// The inbox page: lists documents through the mailbox API, keeps them current with live
// events, and never shows a blank page: without a usable token it goes back to sign-in,
// and every failed call shows a message with a way to try again.

import { ApiError, createApi } from "./api.js";
import { summaryText, statusText, typeLabel, formatInstant, formatDay } from "./format.js";
import { buildItem, insertionPoint, setItemState } from "./items.js";
import { connectLive } from "./live.js";
import {
  adoptTokenFromFragment,
  expiresInMs,
  leave,
  readClaims,
  storedToken,
  watchOtherTabs,
} from "./session.js";

const config = JSON.parse(document.body.dataset.config);
const PAGE_SIZE = 20;
const MAX_TIMER_MS = 2 ** 31 - 1;

// Which list each tab shows, and whether a live document belongs in it.
const TABS = {
  all: { query: {}, accepts: () => true },
  unread: { query: { unread: true }, accepts: (doc) => !doc.read_at },
  invoices: { query: { type: "invoice" }, accepts: (doc) => doc.type === "invoice" },
  letters: { query: { type: "contract_letter" }, accepts: (doc) => doc.type === "contract_letter" },
  shipments: { query: { type: "shipment_document" }, accepts: (doc) => doc.type === "shipment_document" },
  archived: { query: { archived: true }, accepts: () => false },
};

const $ = (id) => document.getElementById(id);
const ui = {
  session: $("session"),
  whoName: $("who-name"),
  whoAccounts: $("who-accounts"),
  live: $("live-status"),
  liveText: $("live-text"),
  signOut: $("sign-out"),
  badge: $("unread-badge"),
  error: $("error"),
  errorText: $("error-text"),
  retry: $("retry"),
  tabs: [...document.querySelectorAll('[role="tab"]')],
  panel: $("panel"),
  listStatus: $("list-status"),
  items: $("items"),
  loadMore: $("load-more"),
  end: $("end-of-list"),
  announcer: $("announcer"),
  dialog: $("detail"),
  detailTitle: $("detail-title"),
  detailSummary: $("detail-summary"),
  detailFacts: $("detail-facts"),
  detailStatus: $("detail-status"),
  detailDownload: $("detail-download"),
  detailRead: $("detail-read"),
  detailArchive: $("detail-archive"),
  detailClose: $("detail-close"),
  detailPreview: $("detail-preview"),
};

const state = {
  tab: "all",
  cursor: null,
  generation: 0, // bumps on every reload, so answers for an older list are dropped
  open: null, // { id, detail, opener, url }
};

let api;
let claims;

function signOutBecause(reason) {
  leave(config.portal, reason);
}

// ---- messages ---------------------------------------------------------------------------

function announce(text) {
  // Re-set even the same text, so a second identical message is read out too.
  ui.announcer.textContent = "";
  window.setTimeout(() => {
    ui.announcer.textContent = text;
  }, 50);
}

function showError(error, retry) {
  if (error instanceof ApiError && error.status === 401) return; // already leaving
  ui.errorText.textContent = error instanceof ApiError ? error.message : "Something went wrong.";
  ui.error.hidden = false;
  ui.retry.onclick = () => {
    ui.error.hidden = true;
    retry();
  };
}

function clearError() {
  ui.error.hidden = true;
}

// ---- unread count -----------------------------------------------------------------------

let countTimer = null;

function refreshCount() {
  // Coalesce bursts (a page of live events) into one request.
  window.clearTimeout(countTimer);
  countTimer = window.setTimeout(loadCount, 150);
}

async function loadCount() {
  try {
    const count = await api.unreadCount();
    ui.badge.textContent = String(count.total);
    ui.badge.dataset.count = String(count.total);
    ui.badge.classList.toggle("badge--zero", count.total === 0);
    document.title = `${count.total ? `(${count.total}) ` : ""}Inbox · Mailbox reference portal`;
    for (const chip of document.querySelectorAll("[data-count-for]")) {
      const key = chip.dataset.countFor;
      const n = key === "unread" ? count.total : count.by_type[key] || 0;
      chip.textContent = "";
      if (n > 0) {
        const visible = document.createElement("span");
        visible.setAttribute("aria-hidden", "true");
        visible.textContent = String(n);
        const spoken = document.createElement("span");
        spoken.className = "visually-hidden";
        spoken.textContent = `, ${n} unread`;
        chip.append(visible, spoken);
      }
    }
  } catch (error) {
    showError(error, loadCount);
  }
}

// ---- the list ---------------------------------------------------------------------------

function itemFor(id) {
  return ui.items.querySelector(`li[data-id="${CSS.escape(id)}"]`);
}

function makeItem(doc) {
  return buildItem(doc, { labels: config.typeLabels, onOpen: openDocument, onArchive: archive });
}

function updateListStatus() {
  const empty = ui.items.children.length === 0;
  ui.listStatus.hidden = !empty;
  if (empty) ui.listStatus.textContent = "No documents here.";
  ui.loadMore.hidden = !state.cursor;
  ui.end.hidden = Boolean(state.cursor) || empty;
}

async function loadFirstPage() {
  const generation = ++state.generation;
  state.cursor = null;
  ui.items.replaceChildren();
  ui.items.setAttribute("aria-busy", "true");
  ui.listStatus.hidden = false;
  ui.listStatus.textContent = "Loading your documents…";
  ui.loadMore.hidden = true;
  ui.end.hidden = true;
  try {
    const page = await api.list({ ...TABS[state.tab].query, limit: PAGE_SIZE });
    if (generation !== state.generation) return;
    clearError();
    ui.items.append(...page.items.map(makeItem));
    state.cursor = page.next_cursor;
  } catch (error) {
    if (generation !== state.generation) return;
    ui.listStatus.textContent = "Your documents could not be loaded.";
    showError(error, loadFirstPage);
    return;
  } finally {
    if (generation === state.generation) ui.items.setAttribute("aria-busy", "false");
  }
  updateListStatus();
}

async function loadMore() {
  const generation = state.generation;
  ui.loadMore.disabled = true;
  ui.items.setAttribute("aria-busy", "true");
  try {
    const page = await api.list({ ...TABS[state.tab].query, limit: PAGE_SIZE, cursor: state.cursor });
    if (generation !== state.generation) return;
    clearError();
    // A live event may already have added one of these.
    const fresh = page.items.filter((doc) => !itemFor(doc.id)).map(makeItem);
    ui.items.append(...fresh);
    state.cursor = page.next_cursor;
    updateListStatus();
    announce(`${fresh.length} more document${fresh.length === 1 ? "" : "s"} loaded.`);
    // Focus the first new entry: the button the person pressed may just have disappeared.
    if (fresh.length) fresh[0].querySelector(".item__open").focus();
  } catch (error) {
    showError(error, loadMore);
  } finally {
    ui.loadMore.disabled = false;
    ui.items.setAttribute("aria-busy", "false");
  }
}

function selectTab(name, { focus = false } = {}) {
  for (const tab of ui.tabs) {
    const selected = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    if (selected) {
      ui.panel.setAttribute("aria-labelledby", tab.id);
      if (focus) tab.focus();
    }
  }
  if (state.tab !== name) {
    state.tab = name;
    loadFirstPage();
  }
}

function setUpTabs() {
  for (const tab of ui.tabs) {
    tab.addEventListener("click", () => selectTab(tab.dataset.tab));
    // Arrow keys, Home and End move between tabs (the ARIA tabs pattern).
    tab.addEventListener("keydown", (event) => {
      const index = ui.tabs.indexOf(tab);
      const last = ui.tabs.length - 1;
      const target = {
        ArrowRight: index === last ? 0 : index + 1,
        ArrowLeft: index === 0 ? last : index - 1,
        Home: 0,
        End: last,
      }[event.key];
      if (target === undefined) return;
      event.preventDefault();
      selectTab(ui.tabs[target].dataset.tab, { focus: true });
    });
  }
}

function removeItem(li) {
  const next = li.nextElementSibling || li.previousElementSibling;
  const hadFocus = li.contains(document.activeElement);
  li.remove();
  if (hadFocus) (next ? next.querySelector(".item__open") : ui.panel).focus();
  updateListStatus();
}

/** Reflect a document's new read/archive state wherever it is shown. */
function applyState(doc) {
  const li = itemFor(doc.id);
  if (li) {
    const inArchiveTab = state.tab === "archived";
    if (doc.archived !== inArchiveTab) removeItem(li);
    else setItemState(li, doc);
  }
  if (state.open && state.open.id === doc.id) {
    const { detail } = state.open; // null while the document is still loading
    state.open.detail = { ...detail, read_at: doc.read_at, archived: doc.archived };
    if (detail && doc.status !== undefined && doc.status !== detail.status) {
      state.open.detail.status = doc.status;
      state.open.detail.status_at = doc.status_at;
      renderDetail(state.open.detail);
    } else {
      renderDetailState();
    }
  }
}

async function archive(id, archived) {
  try {
    const doc = await api.setArchived(id, archived);
    const li = itemFor(id);
    const title = (li && li.dataset.title) || doc.title;
    applyState(doc);
    refreshCount();
    announce(archived ? `Moved to the archive: ${title}` : `Moved back to the inbox: ${title}`);
  } catch (error) {
    showError(error, () => archive(id, archived));
  }
}

// ---- one document -----------------------------------------------------------------------

function fact(label, value) {
  const dt = document.createElement("dt");
  dt.textContent = label;
  const dd = document.createElement("dd");
  dd.textContent = value;
  ui.detailFacts.append(dt, dd);
}

function renderDetailState() {
  const { detail } = state.open;
  ui.detailRead.textContent = detail.read_at ? "Mark as unread" : "Mark as read";
  ui.detailArchive.textContent = detail.archived ? "Move to inbox" : "Archive";
  ui.dialog.dataset.read = String(Boolean(detail.read_at));
}

function renderDetail(detail) {
  ui.detailTitle.textContent = detail.title || typeLabel(config.typeLabels, detail.type);
  ui.detailSummary.textContent = summaryText(detail);
  ui.detailFacts.replaceChildren();
  fact("Type", typeLabel(config.typeLabels, detail.type));
  fact("Issued", formatInstant(detail.issued_at));
  fact("Account", detail.account_id);
  if (detail.type === "invoice" && detail.summary && detail.summary.due_date) {
    fact("Due", formatDay(detail.summary.due_date));
  }
  if (detail.status) {
    const since = detail.status_at ? ` (${formatInstant(detail.status_at)})` : "";
    fact("Status", `${statusText(detail.status)}${since}`);
  }
  fact("File", `${detail.filename || "document"} (${Math.max(1, Math.round(detail.size / 1024))} KB)`);
  renderDetailState();
}

function closeDetail() {
  if (ui.dialog.open) ui.dialog.close();
}

function forgetOpenDocument() {
  const open = state.open;
  state.open = null;
  ui.detailPreview.hidden = true;
  ui.detailPreview.removeAttribute("src");
  ui.detailDownload.hidden = true;
  ui.detailDownload.removeAttribute("href");
  if (open && open.url) URL.revokeObjectURL(open.url);
  const opener = open && open.opener;
  (opener && opener.isConnected ? opener : ui.panel).focus();
}

async function openDocument(id, opener) {
  if (state.open && state.open.url) URL.revokeObjectURL(state.open.url);
  state.open = { id, opener, detail: null, url: null };
  ui.detailTitle.textContent = "Opening…";
  ui.detailSummary.textContent = "";
  ui.detailFacts.replaceChildren();
  ui.detailStatus.textContent = "Loading the document…";
  ui.dialog.dataset.read = "";
  ui.detailPreview.hidden = true;
  ui.detailDownload.hidden = true;
  if (!ui.dialog.open) ui.dialog.showModal();
  try {
    // Opening is reading: mark it read (idempotent), which also returns the details.
    const detail = await api.setRead(id, true);
    if (!state.open || state.open.id !== id) return;
    state.open.detail = detail;
    renderDetail(detail);
    applyState(detail);
    refreshCount();
    const response = await api.content(id);
    const blob = await response.blob();
    if (!state.open || state.open.id !== id) return;
    state.open.url = URL.createObjectURL(blob);
    ui.detailDownload.href = state.open.url;
    ui.detailDownload.download = detail.filename || `${id}.pdf`;
    ui.detailDownload.dataset.bytes = String(blob.size);
    ui.detailDownload.hidden = false;
    if (blob.type === "application/pdf" && window.matchMedia("(min-width: 40rem)").matches) {
      ui.detailPreview.src = state.open.url;
      ui.detailPreview.title = `Preview of ${detail.title}`;
      ui.detailPreview.hidden = false;
    }
    ui.detailStatus.textContent = "";
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      ui.detailTitle.textContent = "Not found";
      ui.detailStatus.textContent = "This document is not in your mailbox.";
    } else if (!(error instanceof ApiError && error.status === 401)) {
      ui.detailStatus.textContent = error instanceof ApiError ? error.message : "The document could not be opened.";
    }
  }
}

async function toggleOpenRead() {
  const open = state.open;
  if (!open || !open.detail) return;
  try {
    const detail = await api.setRead(open.id, !open.detail.read_at);
    applyState(detail);
    refreshCount();
  } catch (error) {
    ui.detailStatus.textContent = error.message;
  }
}

async function toggleOpenArchive() {
  const open = state.open;
  if (!open || !open.detail) return;
  await archive(open.id, !open.detail.archived);
}

function setUpDetail() {
  ui.detailClose.addEventListener("click", closeDetail);
  ui.detailRead.addEventListener("click", toggleOpenRead);
  ui.detailArchive.addEventListener("click", toggleOpenArchive);
  ui.dialog.addEventListener("close", forgetOpenDocument);
  // A click on the backdrop (outside the dialog's box) closes it, like Escape does.
  ui.dialog.addEventListener("click", (event) => {
    if (event.target === ui.dialog) {
      const box = ui.dialog.getBoundingClientRect();
      const inside = event.clientX >= box.left && event.clientX <= box.right
        && event.clientY >= box.top && event.clientY <= box.bottom;
      if (!inside) closeDetail();
    }
  });
}

// ---- live -------------------------------------------------------------------------------

const LIVE_TEXT = {
  on: "Live updates on",
  reconnecting: "Reconnecting…",
  unavailable: "Live updates unavailable",
  off: "Live updates off",
};

function setLiveStatus(status) {
  ui.live.dataset.state = status;
  ui.liveText.textContent = LIVE_TEXT[status] || status;
}

function onCreated(event) {
  if (!claims.accounts.includes(event.account_id)) return;
  refreshCount();
  const doc = { ...event, read_at: null, archived: false };
  const label = typeLabel(config.typeLabels, doc.type);
  announce(`New ${label.toLowerCase()}: ${doc.title}. ${summaryText(doc)}`);
  if (!TABS[state.tab].accepts(doc) || itemFor(doc.id)) return;
  const before = insertionPoint(ui.items, doc.issued_at);
  // Older than everything shown while more pages exist: "Load more" will bring it in order.
  if (!before && state.cursor) return;
  const li = makeItem(doc);
  li.classList.add("item--new");
  ui.items.insertBefore(li, before);
  updateListStatus();
}

function onUpdated(event) {
  if (!claims.accounts.includes(event.account_id)) return;
  applyState(event);
  refreshCount();
}

// ---- start ------------------------------------------------------------------------------

function showSession() {
  ui.whoName.textContent = (config.names && config.names[claims.sub]) || claims.sub;
  ui.whoAccounts.textContent = `· accounts ${claims.accounts.join(", ")}`;
  ui.session.hidden = false;
  ui.signOut.addEventListener("click", () => signOutBecause("signed-out"));
}

function start(token) {
  api = createApi({ base: config.api, token, onUnauthenticated: signOutBecause });
  showSession();
  setUpTabs();
  setUpDetail();
  ui.loadMore.addEventListener("click", loadMore);
  watchOtherTabs(token, () => location.reload());
  // The page leaves when the token runs out, rather than failing at the next click.
  window.setTimeout(() => signOutBecause("expired"), Math.min(expiresInMs(claims), MAX_TIMER_MS));

  loadFirstPage().then(() => {
    if (config.openDocument) openDocument(config.openDocument, null);
  });
  loadCount();
  connectLive({
    path: config.socketPath,
    token,
    onStatus: setLiveStatus,
    onCreated,
    onUpdated,
    onRefused: signOutBecause,
    onResync: () => {
      loadFirstPage();
      refreshCount();
    },
  });
}

adoptTokenFromFragment();
const token = storedToken();
claims = token ? readClaims(token) : null;
if (!token) {
  signOutBecause(null);
} else if (!claims) {
  signOutBecause("invalid");
} else if (expiresInMs(claims) <= 0) {
  signOutBecause("expired");
} else {
  start(token);
}
