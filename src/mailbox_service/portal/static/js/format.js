// How a document's summary reads: each type shows what its reader looks for first
// (an invoice: amount and due date). Unknown types fall back to their first summary fields.

const lang = document.documentElement.lang || "en";
const instant = new Intl.DateTimeFormat(lang, { dateStyle: "medium" });
// A due date is a calendar day, not an instant: format it in UTC so no time zone shifts it.
const calendarDay = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeZone: "UTC" });

export function formatInstant(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : instant.format(date);
}

export function formatDay(isoDate) {
  const date = new Date(`${isoDate}T00:00:00Z`);
  return Number.isNaN(date.getTime()) ? String(isoDate) : calendarDay.format(date);
}

export function formatMoney(amount, currency) {
  try {
    // A decimal string is formatted exactly (Intl takes strings as decimals).
    return new Intl.NumberFormat(lang, { style: "currency", currency }).format(amount);
  } catch {
    return `${amount} ${currency}`;
  }
}

export function humanize(name) {
  const text = String(name).replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function typeLabel(labels, type) {
  return labels[type] || humanize(type);
}

/** Lead: the one fact shown large; rest: the smaller details after it. */
export function summaryParts(item) {
  const s = item.summary || {};
  switch (item.type) {
    case "invoice":
      return {
        lead: s.total_amount ? formatMoney(s.total_amount, s.currency || "EUR") : "",
        rest: [s.due_date && `due ${formatDay(s.due_date)}`, s.invoice_number && `no. ${s.invoice_number}`],
      };
    case "contract_letter":
      return {
        lead: s.letter_kind ? humanize(s.letter_kind) : "",
        rest: [s.effective_date && `effective ${formatDay(s.effective_date)}`, s.contract_number && `contract ${s.contract_number}`],
      };
    case "shipment_document":
      return {
        lead: s.document_kind ? humanize(s.document_kind) : "",
        rest: [s.shipment_number && `shipment ${s.shipment_number}`, s.order_reference && `order ${s.order_reference}`],
      };
    default:
      return {
        lead: "",
        rest: Object.entries(s)
          .filter(([, value]) => value !== null && value !== "" && typeof value !== "object")
          .slice(0, 3)
          .map(([key, value]) => `${humanize(key)}: ${value}`),
      };
  }
}

/** The business status as the inbox shows it ("" when the type has none). */
export function statusText(status) {
  return status ? humanize(status) : "";
}

export function summaryText(item) {
  const { lead, rest } = summaryParts(item);
  return [lead, ...rest].filter(Boolean).join(" · ");
}
