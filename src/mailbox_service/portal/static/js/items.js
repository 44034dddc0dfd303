// One list entry per document, built with DOM calls only (never innerHTML), so titles and
// summaries are always text. State lives in data-* attributes the rest of the page reads.

import { formatInstant, statusText, summaryParts, typeLabel } from "./format.js";

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A list entry for `item` (a list item or a `document.created` event). */
export function buildItem(item, { labels, onOpen, onArchive }) {
  const li = element("li", "item");
  li.dataset.id = item.id;
  li.dataset.type = item.type;
  li.dataset.issued = item.issued_at;
  li.dataset.account = item.account_id;
  li.dataset.title = item.title;

  const article = element("article", "item__body");
  const titleId = `item-title-${item.id}`;
  article.setAttribute("aria-labelledby", titleId);

  const marker = element("span", "item__marker");
  marker.setAttribute("aria-hidden", "true");

  const main = element("div", "item__main");
  const heading = element("h3", "item__title");
  const open = element("button", "item__open", item.title || typeLabel(labels, item.type));
  open.type = "button";
  open.id = titleId;
  open.addEventListener("click", () => onOpen(item.id, open));
  heading.append(open);

  const { lead, rest } = summaryParts(item);
  const summary = element("p", "item__summary");
  if (lead) summary.append(element("span", "item__lead", lead));
  const details = rest.filter(Boolean).join(" · ");
  if (details) summary.append(element("span", "item__details", details));

  const meta = element("p", "item__meta");
  meta.append(element("span", `item__type item__type--${item.type}`, typeLabel(labels, item.type)));
  const time = element("time", "item__date", formatInstant(item.issued_at));
  time.dateTime = item.issued_at;
  meta.append(time);
  meta.append(element("span", "item__state"));
  meta.append(element("span", "item__status"));
  meta.append(element("span", "item__account", item.account_id));

  main.append(heading, summary, meta);

  const actions = element("div", "item__actions");
  const archive = element("button", "button button--quiet item__archive");
  archive.type = "button";
  archive.addEventListener("click", () => onArchive(item.id, li.dataset.archived !== "true"));
  actions.append(archive);

  article.append(marker, main, actions);
  li.append(article);
  setItemState(li, {
    read_at: item.read_at ?? null,
    archived: Boolean(item.archived),
    status: item.status ?? null,
  });
  return li;
}

/** Show read and archive state and the business status (set by the sender: an invoice
 * `paid`): in words (not colour alone) and in data-* for the script. A `status` left out
 * (a `document.created` event carries none) keeps what is shown. */
export function setItemState(li, { read_at, archived, status }) {
  const read = Boolean(read_at);
  li.dataset.read = String(read);
  li.dataset.archived = String(archived);
  li.classList.toggle("item--unread", !read);
  li.querySelector(".item__state").textContent = read ? "Read" : "Unread";
  if (status !== undefined) {
    li.dataset.status = status || "";
    li.querySelector(".item__status").textContent = statusText(status);
  }
  const title = li.dataset.title;
  const archive = li.querySelector(".item__archive");
  archive.textContent = archived ? "Move to inbox" : "Archive";
  archive.setAttribute("aria-label", `${archived ? "Move to inbox" : "Archive"}: ${title}`);
}

/** Where a document issued at `issuedAt` goes in a newest-first list (null: at the end). */
export function insertionPoint(list, issuedAt) {
  const when = Date.parse(issuedAt);
  for (const li of list.children) {
    if (Date.parse(li.dataset.issued) < when) return li;
  }
  return null;
}
